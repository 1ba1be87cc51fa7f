"""The ecs-service runbook end to end against the sandbox: ECS from the project's emulator, the
rest from moto, the load balancer's front a real HTTP server; every world fixed by the engine."""

from __future__ import annotations

import copy
from pathlib import Path

import boto3
import pytest
import yaml

from runbook import policy
from runbook import runbook as rb
from tests.helpers import mutating_calls, run, step

ECS = "ecs-service"
SCENARIOS = Path(__import__("runbook_sandbox").__file__).parent / "scenarios"
HEALTHY = yaml.safe_load((SCENARIOS / "ecs-healthy.yaml").read_text())


def ecs_run(**kwargs):
    return run(ECS, **kwargs)


def load_variant(world, tmp_path, name: str, edit) -> object:
    doc = copy.deepcopy(HEALTHY)
    doc["name"] = name
    edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return world(str(path))


def _calls_within_policy(aws, fix: bool) -> None:
    read, write = policy.actions(rb.load(ECS), fix=fix)
    made = set(aws.calls)
    assert made <= set(read) | set(write), sorted(made - set(read) - set(write))


def test_the_field_report_on_ecs_is_fixed_without_ever_cutting_the_database_off(world):
    """The cache's group lacks 6379 from the task group and PostgreSQL is open to 0.0.0.0/0: authorize,
    then revoke (the interlock), redeploy if the first deployment failed, then 200s through the ALB."""
    box = world("ecs-field-report")
    plan, _, aws = ecs_run(fix=False)
    _calls_within_policy(aws, fix=False)
    assert step(plan, "redis-ingress").finding.status.value == "fail"
    assert step(plan, "rds-public-ingress").held_by == ("rds-ingress",) or step(plan, "rds-public-ingress").finding.changes
    lb = step(plan, "lb-ingress").finding
    assert lb.status.value == "ok" and "load balancer nerava-alb" in lb.summary

    report, recorder, aws = ecs_run(timeout=60)
    assert report.healthy, report.stopped
    _calls_within_policy(aws, fix=True)
    made = mutating_calls(aws)
    assert made["ec2:AuthorizeSecurityGroupIngress"] == 1 and made["ec2:RevokeSecurityGroupIngress"] == 1
    assert set(made) <= {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ecs:UpdateService"}
    operations = [e[2] for e in recorder.of("applied")]
    assert operations.index("authorize_security_group_ingress") < operations.index("revoke_security_group_ingress")
    healthz = step(report, "healthz").finding
    assert healthz.status.value == "ok" and "from the application" in healthz.summary

    # The sandbox's ground truth, re-judged from every task subnet after every mutating call: the
    # database stayed reachable throughout, and the cache became so.
    database = [e for e in box.history() if e.kind == "reachability" and e.data["label"] == "database"]
    assert database and all(e.data["reachable"] for e in database), [str(e) for e in database]
    cache = [e for e in box.history() if e.kind == "reachability" and e.data["label"] == "cache"]
    assert cache and cache[-1].data["reachable"]

    again, recorder, aws = ecs_run(timeout=60)
    assert again.healthy and not mutating_calls(aws) and not recorder.of("proposing")


def test_the_healthy_twin_is_left_alone(world):
    world("ecs-healthy")
    report, recorder, aws = ecs_run(timeout=60)
    assert report.healthy, report.stopped
    assert not mutating_calls(aws) and not recorder.of("proposing")
    assert "answered 200" in step(report, "healthz").finding.summary
    assert step(report, "target-health").finding.status.value == "ok"


def test_a_cluster_and_a_missing_service_are_named_in_one_line(world):
    from runbook.errors import UsageError

    world("ecs-healthy")
    with pytest.raises(UsageError, match=r"no ECS service named 'nope' in cluster default \(us-east-1\); services there: nerava-backend"):
        ecs_run(service="nope", fix=False)
    with pytest.raises(UsageError, match=r"no ECS cluster 'prod'"):
        ecs_run(service="prod/nerava-backend", fix=False)
    arn = boto3.client("ecs").list_services(cluster="default")["serviceArns"][0]
    report, _, _ = ecs_run(service=arn, fix=False)
    assert step(report, "service-status").finding.summary.startswith("service nerava-backend ACTIVE")


def _no_lb_rule(doc):
    doc["security_groups"]["task-sg"]["ingress"] = []


def _ping_health_check(doc):
    doc["ecs_services"][0]["load_balancer"]["target_group"]["health_path"] = "/ping"


def _public_subnets_without_public_ip(doc):
    doc["ecs_services"][0]["subnets"] = ["public-a", "public-b"]


def _log_group_never_created(doc):
    doc["ecs_services"][0]["task_definition"]["log_group_exists"] = False


@pytest.mark.parametrize("broken, edit, sent", [
    ("log-group", _log_group_never_created, {"logs:CreateLogGroup"}),
    ("lb-ingress", _no_lb_rule, {"ec2:AuthorizeSecurityGroupIngress"}),
    ("target-health", _ping_health_check, {"elasticloadbalancing:ModifyTargetGroup"}),
    ("image-pull", _public_subnets_without_public_ip, {"ecs:UpdateService"}),
])
def test_each_ecs_step_fails_on_its_world_and_the_fix_converges(world, tmp_path, broken, edit, sent):
    """One cause per world: its step fails with a change, fix sends it (and a redeploy when the first
    deployment failed), the service ends healthy, and a second fix changes nothing."""
    load_variant(world, tmp_path, f"ecs-{broken}", edit)
    report, _, aws = ecs_run(timeout=60)
    assert report.healthy, (report.stopped, [(r.step.id, r.finding.summary) for r in report.results if not r.finding.status.passed])
    failed_first = [r for r in report.results if r.applied]
    assert broken in {r.step.id for r in failed_first}, [r.step.id for r in failed_first]
    assert sent <= set(mutating_calls(aws)), mutating_calls(aws)
    assert set(mutating_calls(aws)) <= sent | {"ecs:UpdateService"}
    _calls_within_policy(aws, fix=True)
    again, recorder, aws = ecs_run(timeout=60)
    assert again.healthy and not mutating_calls(aws) and not recorder.of("proposing")


def test_the_cli_plans_applies_and_undoes_an_ecs_fix_and_no_secret_reaches_any_output(world, tmp_path):
    """Through the real CLI: a saved plan applied as reviewed, the journal's history, the undo; the
    password in the task definition's DATABASE_URL appears in none of it."""
    import json

    from tests.test_cli import cli, sandbox_env

    box = world("ecs-field-report")
    env = sandbox_env(box, tmp_path)
    plan = tmp_path / "plan.json"
    outputs = []
    dry = cli("fix", ECS, "--service", "nerava-backend", "--cluster", "default", "--dry-run", "--plan-out", str(plan),
              "--format", "json", env=env)
    outputs += [dry.stdout, dry.stderr, plan.read_text()]
    assert dry.returncode == 1, dry.stderr
    doc = json.loads(plan.read_text())
    assert doc["service"] == "default/nerava-backend"
    assert "authorize_security_group_ingress" in [c["call"]["operation"] for c in doc["changes"]]

    applied = cli("apply", str(plan), "--yes", "--format", "json", "--timeout", "60", env=env)
    outputs += [applied.stdout, applied.stderr]
    result = json.loads(applied.stdout)
    assert result["summary"]["applied"] >= 1 and result["run_id"], applied.stderr
    history = cli("history", "--format", "json", env=env)
    outputs += [history.stdout, history.stderr]
    assert result["run_id"] in history.stdout
    undone = cli("undo", result["run_id"], "--yes", env=env)
    outputs += [undone.stdout, undone.stderr]
    assert undone.returncode == 0, undone.stderr
    rules = boto3.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [box.ids["sg:default"]]}])["SecurityGroupRules"]
    assert not any(r.get("FromPort") == 6379 and (r.get("ReferencedGroupInfo") or {}).get("GroupId") == box.ids["sg:task-sg"]
                   for r in rules if not r["IsEgress"])
    journal = (tmp_path / "state" / "runbook" / "journal.jsonl").read_text()
    for text in [*outputs, journal]:
        assert "S3cr3t-pw" not in text
        assert "Traceback" not in text

    wrong = cli("check", "apprunner-vpc", "--service", "nerava-backend", "--cluster", "prod", env=env)
    assert wrong.returncode == 2 and "has no clusters: drop --cluster" in wrong.stderr and "Traceback" not in wrong.stderr


def test_an_express_service_s_health_path_and_cache_rule_are_fixed_and_its_twin_left_alone(world):
    """ecs-express: /ping checked while the app serves /healthz, and the customer's task group kept
    out of the cache. The cache rule names the customer's group, never ECS's managed one. The runbook
    and service are the ones `runbook demo --scenario ecs-express` picks, so this is that demo's fix
    (in-process: a whole sandbox start cheaper than the demo's own process)."""
    from runbook_sandbox import load_scenario
    from runbook_sandbox.runs import bundled_runs

    assert bundled_runs(load_scenario("ecs-express")) == [(ECS, "nerava-api")]
    assert bundled_runs(load_scenario("ecs-field-report")) == [(ECS, "nerava-backend")]
    box = world("ecs-express")
    report, recorder, aws = ecs_run(service="nerava-api", timeout=90)
    assert report.healthy, report.stopped
    status = step(report, "service-status").finding
    assert "Express Mode service nerava-api" in status.summary
    made = mutating_calls(aws)
    assert made.get("ecs:UpdateExpressGatewayService") == 1 and made.get("ec2:AuthorizeSecurityGroupIngress") == 1, made
    redis = step(report, "redis-ingress").finding
    authorized = next(a.change for r in report.results for a in r.applied if a.change.call.operation == "authorize_security_group_ingress")
    assert authorized.call.params["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == box.ids["sg:task-sg"], redis
    _calls_within_policy(aws, fix=True)
    again, recorder, aws = ecs_run(service="nerava-api", timeout=60)
    assert again.healthy and not mutating_calls(aws)

    world("ecs-express-healthy")
    twin, recorder, aws = ecs_run(service="nerava-api", timeout=60)
    assert twin.healthy and not mutating_calls(aws) and not recorder.of("proposing"), twin.stopped
