"""Every step of apprunner-vpc, failing in a scenario of its own and passing in `healthy`, against the sandbox.

Each variant is the bundled `healthy` scenario with one fault written into it,
saved as a scenario file and loaded like any other.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.helpers import mutating_calls, run, step
from runbook import policy
from runbook import runbook as rb
from runbook_sandbox.scenario import SCENARIO_DIR

HEALTHY = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text())


def service(doc):
    return doc["services"][0]


def other_vpc_database(doc):
    doc["vpcs"]["other"] = {
        "cidr": "10.9.0.0/16",
        "subnets": {"other-a": {"cidr": "10.9.1.0/24", "az": "us-east-1a"}, "other-b": {"cidr": "10.9.2.0/24", "az": "us-east-1b"}},
    }
    doc["security_groups"]["db-sg"]["vpc"] = "other"
    doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "cidr": "10.0.0.0/16"}]
    doc["databases"][0]["subnets"] = ["other-a", "other-b"]


def deny_6379_acl(doc):
    doc["vpcs"]["main"]["network_acls"] = {
        "no-redis": {
            "subnets": ["private-a", "private-b"],
            "entries": [
                {"rule": 90, "egress": True, "action": "deny", "protocol": "tcp", "from_port": 6379, "to_port": 6379},
                {"rule": 100, "egress": True, "action": "allow", "protocol": "-1"},
                {"rule": 100, "egress": False, "action": "allow", "protocol": "-1"},
            ],
        }
    }


def cache_in_default_group(doc):
    doc["security_groups"]["default"] = {"ingress": [{"protocol": "tcp", "port": 6379, "source_group": "connector-sg"}]}
    doc["caches"][0]["security_groups"] = ["default"]


# step id -> (fault, expected status, operation the fix sends or None)
FAULTS = {
    "service-status": (lambda d: service(d).update(status="CREATE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}]), "fail", "update_service"),
    "vpc-connector": (lambda d: service(d).update(connector=None), "fail", None),
    "same-vpc": (other_vpc_database, "fail", None),
    "env-endpoints": (lambda d: service(d)["env"].update(DATABASE_URL="postgresql://nerava_admin:S3cr3t-pw@old-db.example.com:5432/nerava"), "fail", None),
    "vpc-dns": (lambda d: d["vpcs"]["main"].update(dns_support=False), "fail", "modify_vpc_attribute"),
    "rds-ingress": (lambda d: d["security_groups"]["db-sg"].update(ingress=[]), "fail", "authorize_security_group_ingress"),
    "redis-ingress": (lambda d: d["security_groups"]["cache-sg"].update(ingress=[]), "fail", "authorize_security_group_ingress"),
    "connector-egress": (lambda d: d["security_groups"]["connector-sg"].update(egress=[{"protocol": "tcp", "port": 443, "cidr": "0.0.0.0/0"}]), "fail", "authorize_security_group_egress"),
    "nacl": (deny_6379_acl, "fail", None),
    "rds-public-ingress": (lambda d: d["security_groups"]["db-sg"]["ingress"].append({"protocol": "tcp", "port": 5432, "cidr": "0.0.0.0/0"}), "fail", "revoke_security_group_ingress"),
    "redis-default-sg": (cache_in_default_group, "warn", None),
    # A warning: no API shows whether the app calls the internet at all (issue 10).
    "nat-egress": (lambda d: d["vpcs"]["main"]["route_tables"]["private"].update(routes=[{"destination": "0.0.0.0/0", "internet_gateway": "main-igw"}]), "warn", None),
    "health-check-config": (lambda d: service(d).update(health_check={"protocol": "HTTP", "path": "/"}), "fail", "update_service"),
    # Rolled back with the network broken: the redeploy is proposed (held until the network passes).
    "deployment": (lambda d: (service(d).update(operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"}, {"type": "START_DEPLOYMENT", "status": "ROLLBACK_SUCCEEDED"}]),
                              d["security_groups"]["cache-sg"].update(ingress=[])), "fail", "start_deployment"),
    "healthz": (lambda d: service(d).update(health_check={"protocol": "TCP"}, app={**service(d)["app"], "health_path": "/health"}), "fail", None),
    "startup-logs": (lambda d: service(d).update(logs={"application": ["redis.exceptions.ConnectionError: Error 110 connecting to x:6379. Connection timed out."]}), "warn", None),
}


def write_variant(tmp_path, step_id) -> str:
    doc = copy.deepcopy(HEALTHY)
    FAULTS[step_id][0](doc)
    doc["name"] = f"broken-{step_id}"
    path = tmp_path / f"broken-{step_id}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_every_step_passes_on_the_healthy_scenario(world):
    world("healthy")
    report, _, _ = run(fix=False)
    assert {r.step.id: r.finding.status.value for r in report.results} == {r.step.id: "ok" for r in report.results}
    assert report.healthy and report.exit_code == 0


def test_every_step_has_a_failing_scenario():
    assert set(FAULTS) == {s.id for s in rb.load("apprunner-vpc").steps}


@pytest.mark.parametrize("step_id", sorted(FAULTS))
def test_step_fails_on_its_scenario(world, tmp_path, step_id):
    world(write_variant(tmp_path, step_id))
    report, _, aws = run(fix=False)
    result = step(report, step_id)
    _, expected, operation = FAULTS[step_id]
    assert result.finding.status.value == expected, (result.finding.summary, [(r.step.id, r.finding.status.value) for r in report.results])
    assert result.finding.evidence, "a verdict without evidence"
    proposed = [c.call.operation for c in (*result.finding.changes, *result.held) if not c.recommendation]
    if operation:
        assert operation in proposed
    assert not mutating_calls(aws)


@pytest.mark.parametrize("step_id", ["rds-ingress", "redis-ingress", "connector-egress", "vpc-dns", "rds-public-ingress", "health-check-config", "deployment", "service-status"])
def test_fix_converges_and_a_second_fix_changes_nothing(world, tmp_path, step_id):
    box = world(write_variant(tmp_path, step_id))
    report, _, aws = run(timeout=60)
    assert report.healthy, [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results]
    assert mutating_calls(aws)
    read, write = policy.actions(rb.load("apprunner-vpc"), fix=True)
    assert set(aws.calls) <= set(read) | set(write), "a call the iam-policy does not grant"
    assert box.app_health("nerava-backend")[0]
    again, recorder, aws = run(timeout=60)
    assert again.healthy and not mutating_calls(aws) and not recorder.of("proposing")


@pytest.mark.parametrize("engine", ["postgres", "aurora-postgresql"])
def test_interlock_the_database_is_never_cut_off(world, tmp_path, engine):
    """The connector's 5432 rule is missing while 0.0.0.0/0 is present: authorize first, revoke after.

    With aurora-postgresql, DATABASE_URL names the cluster endpoint, followed through describe_db_clusters.
    """
    doc = copy.deepcopy(HEALTHY)
    doc["name"] = "interlock"
    doc["databases"][0]["engine"] = engine
    doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "cidr": "0.0.0.0/0"}]
    path = tmp_path / "interlock.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    box = world(str(path))

    plan, _, aws = run(fix=False)
    assert set(aws.calls) <= set(policy.actions(rb.load("apprunner-vpc"), fix=False)[0])
    followed = step(plan, "env-endpoints").finding.evidence[0]
    expected = "rds describe_db_clusters" if engine.startswith("aurora") else "rds describe_db_instances"
    assert followed.source == expected and "-> database nerava-db " in followed.observation, followed
    assert f"VPC {box.ids['vpc:main']})" in followed.observation, followed  # through its subnet group
    assert step(plan, "rds-ingress").finding.changes
    assert step(plan, "rds-public-ingress").held and step(plan, "rds-public-ingress").held_by == ("rds-ingress",)

    report, recorder, aws = run(timeout=60)
    assert report.healthy
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1, "ec2:RevokeSecurityGroupIngress": 1}
    operations = [e[2] for e in recorder.of("applied")]
    assert operations == ["authorize_security_group_ingress", "revoke_security_group_ingress"]

    import boto3

    rules = boto3.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [box.ids["sg:db-sg"]]}])["SecurityGroupRules"]
    ingress = [r for r in rules if not r["IsEgress"]]
    assert [r.get("ReferencedGroupInfo", {}).get("GroupId") for r in ingress] == [box.ids["sg:connector-sg"]]
    assert not any(r.get("CidrIpv4") == "0.0.0.0/0" for r in ingress)

    # The sandbox's own ground truth, re-judged after every mutating call: the database stayed reachable.
    database = [e for e in box.history() if e.kind == "reachability" and e.data["label"] == "database"]
    assert database and all(e.data["reachable"] for e in database), [str(e) for e in database]
    assert len([e for e in box.history() if e.kind == "aws-call"]) >= 2


def plan_and_apply(timeout=60.0, journal_path=None):
    """`fix --dry-run --plan-out`, the plan through JSON, then `apply --yes`, in-process."""
    import json

    from tests.helpers import TEST_PACE, Recorder
    from runbook.aws import Aws
    from runbook.confirm import AssumeYes, NonInteractive
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    loaded = rb.load("apprunner-vpc")
    dry = Engine(Aws(read_only=True), loaded, "nerava-backend", confirmer=NonInteractive(), reporter=Recorder(),
                 options=Options(dry_run=True))
    plan = json.loads(json.dumps(dry.plan_document(dry.fix()), default=str))
    aws, recorder = Aws(), Recorder()
    journal = Journal(journal_path, runbook=loaded.name, service="nerava-backend", region=aws.region) if journal_path else None
    engine = Engine(aws, loaded, "nerava-backend", confirmer=AssumeYes(), reporter=recorder, journal=journal,
                    options=Options(timeout=timeout, **TEST_PACE))
    return plan, engine.apply_plan(plan), recorder, aws


def test_apply_sends_the_plan_then_waits_until_healthy(world, tmp_path):
    box = world(write_variant(tmp_path, "redis-ingress"))
    plan, report, recorder, aws = plan_and_apply()
    assert [c["call"]["operation"] for c in plan["changes"]] == ["authorize_security_group_ingress"]
    assert report.healthy and report.exit_code == 0, report.stopped
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    assert any(what == "health" and "3/3" in state for _, what, state in recorder.of("waiting"))
    assert box.app_health("nerava-backend")[0]


def test_apply_sends_nothing_the_plan_does_not_hold(world, tmp_path):
    """The public rule's revoke was held (the connector's rule was missing) when the plan was made: `fix`
    would revoke it next, a saved plan does not."""
    doc = copy.deepcopy(HEALTHY)
    doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "cidr": "0.0.0.0/0"}]
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    world(str(path))
    plan, report, _, aws = plan_and_apply()
    assert [c["call"]["operation"] for c in plan["changes"]] == ["authorize_security_group_ingress"]
    assert plan["held"] == [{"step": "rds-public-ingress", "operation": "revoke_security_group_ingress",
                             "description": plan["held"][0]["description"], "held_by": ["rds-ingress"]}]
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    assert not report.healthy and report.exit_code == 1
    public = step(report, "rds-public-ingress").finding
    assert public.status.value == "fail" and [c.call.operation for c in public.changes] == ["revoke_security_group_ingress"]
    assert report.stopped == "sent 1 of the plan's 1 change(s); the plan holds nothing more to send; what remains needs a new plan"


def test_apply_keeps_the_interlock_and_times_out_while_a_deployment_runs(world, tmp_path):
    """The field report's plan: authorize 6379, revoke public 5432. Its CREATE_SERVICE never ends here:
    apply authorizes, waits for the deployment like fix, never revokes, and exits 4 with a journal."""
    from tests.helpers import journal_entries
    from runbook.errors import EXIT_TIMEOUT

    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    journal = tmp_path / "journal.jsonl"
    plan, report, recorder, aws = plan_and_apply(timeout=2, journal_path=journal)
    assert sorted(c["call"]["operation"] for c in plan["changes"]) == ["authorize_security_group_ingress",
                                                                       "revoke_security_group_ingress"]
    assert report.exit_code == EXIT_TIMEOUT and not report.healthy
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    assert any(what == "deployment" for _, what, _ in recorder.of("waiting"))
    assert report.stopped.startswith("sent 1 of the plan's 2 change(s); timed out")
    entries = journal_entries(journal)
    assert [(e["event"], e.get("call", {}).get("operation")) for e in entries if e["event"] in ("call", "result")] == [
        ("call", "authorize_security_group_ingress"), ("result", None)]


def test_apply_resends_a_masked_secret_as_configured_and_only_once(world, tmp_path):
    """The CREATE_FAILED rebuild resends the environment: the plan holds DATABASE_URL masked, the call
    that goes out holds the real password (else the app could not log in), and it goes out once."""
    import json

    box = world(write_variant(tmp_path, "service-status"))
    plan, report, _, aws = plan_and_apply()
    assert [c["call"]["operation"] for c in plan["changes"]] == ["update_service"]
    assert "S3cr3t" not in json.dumps(plan) and "***" in json.dumps(plan)
    assert report.healthy and report.exit_code == 0, report.stopped
    assert mutating_calls(aws) == {"apprunner:UpdateService": 1}
    assert box.app_health("nerava-backend")[0]
