"""Worlds the sandbox could not build before (issue 10 §3), each judged failing and passing over HTTP.

A DELETE_FAILED service, an INACTIVE connector, DEFAULT egress that still names a connector, URLs
held in RuntimeEnvironmentSecrets (Secrets Manager and SSM Parameter Store), code repository
services. Each world is the bundled `healthy` scenario with one change, saved and loaded like any
scenario file. Verdicts follow App Runner: a connector named with DEFAULT egress is ignored, an
INACTIVE one can't be used, a secret's value is what the container gets.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import journal_entries, mutating_calls, run, step
from runbook import policy
from runbook import render
from runbook import runbook as rb
from runbook.errors import UsageError
from runbook_sandbox.scenario import SCENARIO_DIR

HEALTHY = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text())
PASSWORD = "S3cr3t-pw"
DB_URL = "postgresql+psycopg2://nerava_admin:S3cr3t-pw@${database.nerava-db.address}:${database.nerava-db.port}/nerava"
REDIS_URL = "redis://${cache.nerava-redis.address}:${cache.nerava-redis.port}/0"


def world_file(tmp_path, name, change) -> str:
    doc = copy.deepcopy(HEALTHY)
    change(doc)
    doc["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def svc(doc):
    return doc["services"][0]


def statuses(report):
    return {r.step.id: r.finding.status.value for r in report.results}


def reading_runbook(tmp_path) -> str:
    """apprunner-vpc with params.read_secrets: true."""
    doc = yaml.safe_load(Path(rb.resolve("apprunner-vpc")).read_text())
    doc["params"]["read_secrets"] = True
    path = tmp_path / "reading.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


# ---------------------------------------------------------------------- service and connector states


def test_delete_failed_service_fails_service_status_and_nothing_is_sent(world, tmp_path):
    world(world_file(tmp_path, "delete-failed", lambda d: svc(d).update(status="DELETE_FAILED", operations=None)))
    report, _, aws = run(timeout=5)
    result = step(report, "service-status").finding
    assert result.status.value == "fail" and "DELETE_FAILED" in result.summary
    assert "Status=DELETE_FAILED" in result.evidence[0].observation
    assert [c.call.operation for c in result.changes if not c.recommendation] == []
    assert step(report, "deployment").finding.status.value == "skipped"
    assert not mutating_calls(aws) and report.exit_code == 1


@pytest.mark.parametrize("status, expected", [("INACTIVE", "fail"), ("ACTIVE", "ok")])
def test_inactive_connector_carries_nothing(world, tmp_path, status, expected):
    """INACTIVE: deleted, can't be used. The network checks see no connector (nothing to authorize for
    it); vpc-connector fails with the connector's status and DeletedAt as evidence."""
    def change(doc):
        doc["connectors"][0]["status"] = status
        doc["security_groups"]["cache-sg"]["ingress"] = []  # would be an authorize if the connector counted
    world(world_file(tmp_path, f"connector-{status.lower()}", change))
    report, _, aws = run(fix=False)
    finding = step(report, "vpc-connector").finding
    assert finding.status.value == expected, finding.summary
    if status == "INACTIVE":
        assert "INACTIVE" in finding.summary and "DeletedAt=" in finding.evidence[-1].observation
        assert step(report, "redis-ingress").finding.status.value == "skipped"
        assert not step(report, "redis-ingress").finding.changes
    else:
        assert step(report, "redis-ingress").finding.status.value == "fail"
    assert not mutating_calls(aws)


def test_default_egress_ignores_the_connector_it_names(world, tmp_path):
    """EgressType=DEFAULT with VpcConnectorArn: App Runner ignores the connector. Its groups' rules are not
    judged (no authorize for a path the traffic never takes); the private cache and database are out of reach."""
    def change(doc):
        svc(doc)["egress"] = "DEFAULT"
        doc["security_groups"]["cache-sg"]["ingress"] = []
    box = world(world_file(tmp_path, "default-egress-named-connector", change))
    config = box.service_state("nerava-backend")["config"]["NetworkConfiguration"]["EgressConfiguration"]
    assert config == {"EgressType": "DEFAULT", "VpcConnectorArn": box.ids["connector:nerava-vpc-connector"]}
    report, _, aws = run(fix=False)
    finding = step(report, "vpc-connector").finding
    assert finding.status.value == "fail"
    assert "ignored by App Runner with DEFAULT egress" in finding.summary
    assert "cache nerava-redis" in finding.summary and "database nerava-db" in finding.summary
    for step_id in ("rds-ingress", "redis-ingress", "connector-egress", "same-vpc", "nacl", "nat-egress"):
        assert step(report, step_id).finding.status.value == "skipped", step_id
    assert not [c for r in report.results for c in (*r.finding.changes, *r.held) if not c.recommendation]
    assert not box.app_health("nerava-backend")[0]  # the sandbox agrees: nothing private is reachable
    assert not mutating_calls(aws)


def test_default_egress_to_a_public_database_passes_vpc_connector(world, tmp_path):
    """Nothing private to reach: DEFAULT egress is no failure (a warning naming why), and fix sends nothing."""
    def change(doc):
        svc(doc)["egress"] = "DEFAULT"
        svc(doc)["env"].pop("REDIS_URL")
        svc(doc)["app"]["needs"] = {"database": "DATABASE_URL"}
        doc["caches"] = []
        doc["databases"][0].update(publicly_accessible=True, subnets=["public-a", "public-b"])
        doc["vpcs"]["main"]["subnets"]["public-b"] = {"cidr": "10.0.3.0/24", "az": "us-east-1b", "route_table": "public"}
        doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "cidr": "0.0.0.0/0"}]
    box = world(world_file(tmp_path, "default-egress-public-db", change))
    assert box.app_health("nerava-backend")[0]
    report, _, aws = run(timeout=10)
    finding = step(report, "vpc-connector").finding
    assert finding.status.value == "warn" and "database nerava-db is publicly accessible" in finding.summary
    assert "ignored by App Runner" in finding.summary
    assert not mutating_calls(aws)


# ---------------------------------------------------------------------- URLs held in secrets


def in_secrets(doc, *, db_ref=None, redis_ref=None):
    """DATABASE_URL in Secrets Manager, REDIS_URL in an SSM SecureString parameter."""
    doc["secrets"] = [
        {"name": "nerava/database-url", "value": DB_URL},
        {"name": "/nerava/redis-url", "store": "ssm", "value": REDIS_URL},
    ]
    env = svc(doc)["env"]
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    svc(doc)["secrets"] = {"DATABASE_URL": db_ref or "nerava/database-url",
                           "REDIS_URL": redis_ref or {"secret": "/nerava/redis-url", "by": "name"}}


def test_secret_held_urls_are_not_followed_without_the_opt_in(world, tmp_path):
    box = world(world_file(tmp_path, "secrets", in_secrets))
    state = box.service_state("nerava-backend")
    assert state["secrets"]["DATABASE_URL"] == box.ids["secret:nerava/database-url"] and state["env"] == {}
    assert box.app_health("nerava-backend")[0]  # App Runner resolves them: the app is fine
    report, _, aws = run(timeout=10)
    finding = step(report, "env-endpoints").finding
    assert finding.status.value == "warn"
    assert "cannot be followed without reading the secret" in finding.summary and "read_secrets" in finding.summary
    assert box.ids["secret:nerava/database-url"] in finding.summary and "/nerava/redis-url" in finding.summary
    text = render.render(report, "text")  # Rich would print ":secret:" as an emoji
    assert ":secret:nerava/database-url" in text.replace("\n", "").replace(" ", "").replace("│", ""), text
    for step_id in ("rds-ingress", "redis-ingress"):
        assert step(report, step_id).finding.status.value == "skipped"
        assert "RuntimeEnvironmentSecrets" in step(report, step_id).finding.summary
    assert not any(k.startswith(("secretsmanager:", "ssm:")) for k in aws.calls), aws.calls
    assert report.healthy and not mutating_calls(aws)  # the probe shows the app serves
    assert not set(policy.actions(rb.load("apprunner-vpc"), fix=True)[0]) & {"secretsmanager:GetSecretValue", "ssm:GetParameter"}


def test_with_read_secrets_the_hosts_are_followed_and_the_values_never_shown(world, tmp_path):
    """params.read_secrets: the database's 5432 rule is missing; only reading the secret finds the
    database, whose fix is then proposed and applied. No output, plan or journal holds the values."""
    def change(doc):
        in_secrets(doc, db_ref={"secret": "nerava/database", "json_key": "url"})
        doc["secrets"][0] = {"name": "nerava/database", "value": {"url": DB_URL, "password": PASSWORD}}
        doc["security_groups"]["db-sg"]["ingress"] = []
        svc(doc).update(status="RUNNING")
    box = world(world_file(tmp_path, "secrets-read", change))
    runbook = reading_runbook(tmp_path)
    assert box.service_state("nerava-backend")["secrets"]["DATABASE_URL"].endswith(":url::")

    plan, _, aws = run(runbook, fix=False)
    followed = step(plan, "env-endpoints").finding
    assert followed.status.value == "ok", followed.summary
    text = " ".join(e.observation for e in followed.evidence)
    assert "-> database nerava-db" in text and "-> cache nerava-redis" in text
    assert box.ids["secret:nerava/database"] in text and "/nerava/redis-url" in text
    assert step(plan, "rds-ingress").finding.status.value == "fail"
    assert aws.calls["secretsmanager:GetSecretValue"] == 1 and aws.calls["ssm:GetParameter"] == 1
    # The scrubber holds what was read: the whole values and the password in them.
    assert PASSWORD in plan.scrubber.secrets
    assert any(s.startswith("postgresql+psycopg2://nerava_admin:") for s in plan.scrubber.secrets)
    assert any(s.startswith("redis://") for s in plan.scrubber.secrets)
    read, _ = policy.actions(rb.load(runbook), fix=False)
    assert set(aws.calls) <= set(read)

    journal = tmp_path / "journal.jsonl"
    report, _, aws = run(runbook, timeout=60, journal_path=journal)
    assert report.healthy, statuses(report)
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    host = box.client("rds").describe_db_instances()["DBInstances"][0]["Endpoint"]["Address"]
    for output in (render.render(report, "json"), render.render(report, "markdown"), render.render(report, "text"),
                   journal.read_text()):
        assert PASSWORD not in output and f"{host}:5432/nerava" not in output
    assert journal_entries(journal)


def test_a_secret_that_is_not_there_fails_env_endpoints(world, tmp_path):
    """The reference names a secret that does not exist: App Runner cannot start the app either."""
    def change(doc):
        in_secrets(doc, db_ref="arn:aws:secretsmanager:us-east-1:123456789012:secret:nerava/gone-AbCdEf")
    box = world(world_file(tmp_path, "secret-gone", change))
    healthy, reasons = box.app_health("nerava-backend")
    assert not healthy and any("ResourceNotFoundException" in r for r in reasons), reasons
    report, _, aws = run(reading_runbook(tmp_path), fix=False)
    finding = step(report, "env-endpoints").finding
    assert finding.status.value == "fail" and "does not exist" in finding.summary, finding.summary
    assert not mutating_calls(aws)


def test_read_secrets_must_be_a_boolean(tmp_path):
    doc = yaml.safe_load(Path(rb.resolve("apprunner-vpc")).read_text())
    doc["params"]["read_secrets"] = "yes"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UsageError, match=r"params.read_secrets: expected true or false"):
        rb.load(str(path))


def test_read_secrets_flag_on_check_and_the_policy(world, tmp_path):
    import subprocess
    import sys

    world(world_file(tmp_path, "secrets", in_secrets))
    done = subprocess.run([sys.executable, "-m", "runbook", "check", "apprunner-vpc", "--service", "nerava-backend",
                           "--read-secrets", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert PASSWORD not in done.stdout + done.stderr
    doc = json.loads(done.stdout)
    env_step = next(s for s in doc["steps"] if s["id"] == "env-endpoints")
    assert env_step["status"] == "ok", env_step
    done = subprocess.run([sys.executable, "-m", "runbook", "iam-policy", "apprunner-vpc", "--mode", "check", "--read-secrets"],
                          capture_output=True, text=True, timeout=60)
    granted = json.loads(done.stdout)["Statement"][0]["Action"]
    assert {"secretsmanager:GetSecretValue", "ssm:GetParameter"} <= set(granted)


# ---------------------------------------------------------------------- code repository services


def as_code_service(doc, configuration_source="API"):
    svc(doc).pop("image")
    svc(doc)["code_repository"] = {"url": "https://github.com/nerava/backend", "branch": "main", "runtime": "PYTHON_311",
                                   "configuration_source": configuration_source}


def test_code_repository_service_is_followed_and_rebuilt_with_its_whole_block(world, tmp_path):
    """CREATE_FAILED code service: the rebuild resends SourceConfiguration as read back (CodeRepository with
    its CodeConfigurationValues, environment included), never an ImageRepository."""
    def change(doc):
        as_code_service(doc)
        svc(doc).update(status="CREATE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}])
    box = world(world_file(tmp_path, "code-create-failed", change))
    plan, _, _ = run(fix=False)
    assert step(plan, "env-endpoints").finding.status.value == "ok"
    (rebuild,) = [c for c in step(plan, "service-status").finding.changes if c.call.operation == "update_service"]
    source = rebuild.call.params["SourceConfiguration"]
    assert "ImageRepository" not in source
    values = source["CodeRepository"]["CodeConfiguration"]["CodeConfigurationValues"]
    assert set(values["RuntimeEnvironmentVariables"]) == {"DATABASE_URL", "REDIS_URL"} and values["Port"] == "8000"

    report, _, aws = run(timeout=60)
    assert report.healthy, statuses(report)
    assert mutating_calls(aws) == {"apprunner:UpdateService": 1}
    state = box.service_state("nerava-backend")
    assert state["status"] == "RUNNING" and set(state["env"]) == {"DATABASE_URL", "REDIS_URL"}


def test_code_repository_with_apprunner_yaml_cannot_be_followed(world, tmp_path):
    """ConfigurationSource=REPOSITORY: the environment lives in apprunner.yaml, which no API returns."""
    box = world(world_file(tmp_path, "code-repository-yaml", lambda d: as_code_service(d, "REPOSITORY")))
    assert box.app_health("nerava-backend")[0]
    report, _, aws = run(timeout=10)
    finding = step(report, "env-endpoints").finding
    assert finding.status.value == "warn" and "apprunner.yaml" in finding.summary
    assert report.healthy and not mutating_calls(aws)


def test_a_plan_made_with_read_secrets_is_applied_reading_them(world, tmp_path):
    """`fix --dry-run --plan-out --read-secrets`, then `apply`: the plan records the opt-in, so apply follows
    the secret-held URL as the plan did, sends the authorize and exits healthy; no file holds the value."""
    import subprocess
    import sys

    def change(doc):
        in_secrets(doc)
        doc["security_groups"]["db-sg"]["ingress"] = []
    world(world_file(tmp_path, "secrets-plan", change))
    plan = tmp_path / "plan.json"
    journal = tmp_path / "journal.jsonl"
    base = [sys.executable, "-m", "runbook"]
    made = subprocess.run([*base, "fix", "apprunner-vpc", "--service", "nerava-backend", "--dry-run", "--plan-out", str(plan),
                           "--read-secrets"], capture_output=True, text=True, timeout=120)
    assert made.returncode == 1, made.stderr[-2000:]
    doc = json.loads(plan.read_text())
    assert doc["read_secrets"] is True and [c["call"]["operation"] for c in doc["changes"]] == ["authorize_security_group_ingress"]
    applied = subprocess.run([*base, "apply", str(plan), "--yes", "--journal", str(journal), "--timeout", "60"],
                             capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-2000:]
    for text in (plan.read_text(), journal.read_text(), made.stdout + made.stderr, applied.stdout + applied.stderr):
        assert PASSWORD not in text



def test_reading_a_secret_the_caller_may_not_read_is_exit_3_naming_the_action(world, tmp_path):
    from runbook.aws import ApiError
    from runbook.errors import EXIT_AWS

    box = world(world_file(tmp_path, "secrets-denied", in_secrets))
    box.faults.deny("secretsmanager:GetSecretValue")
    with pytest.raises(ApiError) as err:
        run(reading_runbook(tmp_path), fix=False)
    assert err.value.exit_code == EXIT_AWS
    assert str(err.value) == ("access denied: secretsmanager:GetSecretValue was refused (AccessDeniedException); "
                              "grant it to the caller")
    assert box.faults.denied == 1


def healthy_code_service(doc):
    as_code_service(doc)


def healthy_secrets(doc):
    in_secrets(doc, db_ref={"secret": "nerava/database", "json_key": "url"})
    doc["secrets"][0] = {"name": "nerava/database", "value": {"url": DB_URL, "password": PASSWORD}}


@pytest.mark.parametrize("name, change, reads", [
    ("healthy-code-service", healthy_code_service, False),
    ("healthy-secrets-read", healthy_secrets, True),
    ("healthy-default-egress-named-inactive-connector",
     lambda d: (d["connectors"][0].update(status="INACTIVE"), svc(d).update(egress="DEFAULT"),
                d.update(caches=[]), svc(d)["env"].pop("REDIS_URL"), svc(d)["env"].pop("DATABASE_URL"),
                d.update(databases=[]), svc(d)["app"].update(needs={})), False),
])
def test_fix_on_a_healthy_world_of_these_shapes_changes_nothing(world, tmp_path, name, change, reads):
    box = world(world_file(tmp_path, name, change))
    assert box.app_health("nerava-backend")[0]
    report, recorder, aws = run(reading_runbook(tmp_path) if reads else "apprunner-vpc", timeout=30)
    assert report.healthy and report.exit_code == 0, statuses(report)
    assert not mutating_calls(aws) and not recorder.of("proposing")
    assert all(r.finding.status.value in ("ok", "warn", "skipped") for r in report.results), statuses(report)


def test_a_region_without_the_service_lists_what_is_there(world):
    from runbook import platforms
    from runbook.aws import Aws
    from runbook.discovery import discover

    world("healthy")
    with pytest.raises(UsageError, match=r"no App Runner service named 'nerava-backend' in eu-west-1; services there: none"):
        discover(Aws(region="eu-west-1", read_only=True), "nerava-backend", platform=platforms.get("apprunner"))
