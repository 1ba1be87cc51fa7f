"""Speed and cost: the call budget of one discovery, fast start-up, polite polling, and IAM coverage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from tests.helpers import PRODUCTION_PACE, run, step
from runbook import policy
from runbook import runbook as rb
from runbook_sandbox.scenario import SCENARIO_DIR

SCENARIOS = SCENARIO_DIR

# One discovery of the field report: every resource described once, independent ones together.
FIELD_REPORT_BUDGET = {
    "apprunner:ListServices": 1,
    "apprunner:DescribeService": 1,
    "apprunner:ListOperations": 1,
    "apprunner:DescribeVpcConnector": 1,
    "rds:DescribeDBInstances": 1,
    "elasticache:DescribeReplicationGroups": 1,
    "elasticache:DescribeCacheClusters": 1,
    "elasticache:DescribeCacheSubnetGroups": 1,
    "ec2:DescribeSecurityGroups": 1,
    "ec2:DescribeSecurityGroupRules": 1,
    "ec2:DescribeSubnets": 1,  # the connector's, database's and cache's subnets together
    "ec2:DescribeRouteTables": 1,
    "ec2:DescribeNatGateways": 1,  # where the connector subnets' NAT routes lead, in the same round
    "ec2:DescribeNetworkAcls": 1,
    "ec2:DescribeVpcAttribute": 2,  # DNS support and DNS host names: one attribute per call
    "logs:FilterLogEvents": 2,  # the service and application log groups
}


def test_one_discovery_stays_within_its_call_budget_and_describes_nothing_twice(world):
    world("field-report")
    report, _, aws = run(fix=False)
    assert dict(aws.calls) == FIELD_REPORT_BUDGET
    assert report.stats["api_calls_total"] == sum(FIELD_REPORT_BUDGET.values())
    assert report.stats["http_probes"] == 1
    subnets = [s for op, params in aws.sent if op == "ec2:DescribeSubnets" for s in params["SubnetIds"]]
    assert len(subnets) == len(set(subnets)), "a subnet was described twice"
    attributes = [(p["VpcId"], p["Attribute"]) for op, p in aws.sent if op == "ec2:DescribeVpcAttribute"]
    assert len(attributes) == len(set(attributes))
    # Three dependent rounds: the service; what it names; the network of all of it.
    assert set(report.stats["discovery_seconds"]) == {"service", "resources", "network", "total"}


def test_a_connector_in_a_vpc_no_target_names_costs_one_more_round(world, tmp_path):
    """Without a database or cache, only the connector's subnets say which VPC to read routes from."""
    doc = yaml.safe_load((SCENARIOS / "healthy.yaml").read_text())
    for var in ("DATABASE_URL", "REDIS_URL"):
        doc["services"][0]["env"].pop(var)
    path = tmp_path / "connector-only.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    world(str(path))
    report, _, aws = run(fix=False)
    assert set(report.stats["discovery_seconds"]) == {"service", "resources", "network", "vpc", "total"}
    assert aws.calls["ec2:DescribeRouteTables"] == 1 and aws.calls["ec2:DescribeVpcAttribute"] == 2
    assert step(report, "nat-egress").finding.status.value == "ok"
    assert step(report, "vpc-dns").finding.status.value == "ok"


def test_help_list_and_show_do_not_import_boto3_moto_or_pydantic():
    """boto3 is imported lazily; pydantic (typer >= 0.29 coerces through it) costs 0.2 s a command."""
    for argv in (["--help"], ["list"], ["show", "apprunner-vpc"]):
        code = (
            "import sys\n"
            f"sys.argv = ['runbook', *{argv!r}]\n"
            "from runbook.cli import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'moto', 'pydantic')])\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.stdout.strip().splitlines()[-1] == "[]", (argv, result.stdout[-500:])


def test_waiting_for_a_deployment_is_polite(world, sandbox, monkeypatch):
    """Polls stay near one App Runner call a second, and the end is seen within one poll interval."""
    # A deployment long enough to be in flight whatever the machine's load when the run starts.
    monkeypatch.setattr(sandbox, "deploy_seconds", 3.0)
    world("field-report")
    started = time.monotonic()
    report, recorder, aws = run(timeout=60, **PRODUCTION_PACE)
    assert report.healthy
    waits = [e for e in recorder.events if e[0] == "waiting" and e[1] == "deployment"]
    assert waits, "the deployment in flight was not waited for"
    polls = aws.calls["apprunner:ListOperations"] - 1 * sum(1 for e in recorder.events if e[0] == "evaluated")
    elapsed = time.monotonic() - started
    assert polls <= elapsed * 1.2 + 1, (polls, elapsed)


def test_every_call_the_tool_made_is_in_its_iam_policy(world):
    """Run check and fix against the field report, record the calls, compare with iam-policy.

    test_scenarios.py makes the same comparison for the fix of every other step.
    """
    loaded = rb.load("apprunner-vpc")
    read, write = policy.actions(loaded, fix=True)
    allowed = set(read) | set(write)
    check_read, _ = policy.actions(loaded, fix=False)
    made: Counter[str] = Counter()
    world("field-report")
    _, _, aws = run(fix=False)
    assert set(aws.calls) <= set(check_read), set(aws.calls) - set(check_read)
    report, _, aws = run(timeout=60)
    assert report.healthy
    made.update(aws.calls)
    missing = set(made) - allowed
    assert not missing, f"calls not covered by iam-policy: {sorted(missing)}"
    assert {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "sts:GetCallerIdentity"} <= set(made)


def test_iam_policy_command_prints_valid_json():
    result = subprocess.run([sys.executable, "-m", "runbook", "iam-policy", "apprunner-vpc", "--mode", "check"],
                            capture_output=True, text=True, timeout=60)
    doc = json.loads(result.stdout)
    (statement,) = doc["Statement"]
    assert all(a.split(":")[1].startswith(("Describe", "List", "Get", "Filter")) for a in statement["Action"])


def test_service_models_are_parsed_into_plain_dicts(monkeypatch):
    """OrderedDicts double the cost of parsing EC2's model (see aws._PlainJsonFileLoader)."""
    from collections import OrderedDict

    from runbook.aws import Aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    loader = Aws().session._session.get_component("data_loader")
    model = loader.load_service_model("ec2", "service-2")
    assert type(model) is dict and not any(isinstance(v, OrderedDict) for v in model["shapes"].values())
    assert "DescribeSecurityGroups" in model["operations"]


def test_logs_are_read_page_by_page_up_to_a_limit_and_then_the_newest_minutes(world):
    from runbook.discovery import LOG_EVENTS, LOG_PAGE_SIZE

    box = world("field-report")  # no successful deployment yet: the whole last hour is read
    box.faults.hang_deployments("nerava-backend")
    logs = box.client("logs")
    group = box.ids["log-group:nerava-backend/application"]
    logs.create_log_stream(logGroupName=group, logStreamName="chatty")
    half_hour_ago = int(time.time() * 1000) - 1_800_000

    def write(lines, start):
        logs.put_log_events(logGroupName=group, logStreamName="chatty",
                            logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(lines)])

    write(["GET /api/orders 200"] * (LOG_PAGE_SIZE * 2) + ["ModuleNotFoundError: No module named 'psycopg2'"], half_hour_ago)
    report, _, aws = run(fix=False)
    found = step(report, "startup-logs").finding
    assert any("ModuleNotFoundError" in e.observation for e in found.evidence)
    assert aws.calls["logs:FilterLogEvents"] == 1 + 3  # the service group's one page, the application's three
    assert "logged more than one discovery reads" not in found.summary

    # Past the limit: the oldest LOG_EVENTS, then the last minutes, where the crash loop of now is.
    write(["GET /api/orders 200"] * LOG_EVENTS, half_hour_ago + 60_000)
    write(["exec format error"], int(time.time() * 1000))
    report, _, aws = run(fix=False)
    found = step(report, "startup-logs").finding
    assert aws.calls["logs:FilterLogEvents"] == 1 + LOG_EVENTS // LOG_PAGE_SIZE + 1
    assert any("exec format error" in e.observation for e in found.evidence), found.evidence
    assert f"{group} logged more than one discovery reads" in found.summary, found.summary


def test_logs_from_before_the_running_versions_deployment_are_not_fetched(world):
    box = world("healthy")
    ops = box.client("apprunner").list_operations(ServiceArn=box.ids["service:nerava-backend"])["OperationSummaryList"]
    started = int(next(op for op in ops if op["Status"] == "SUCCEEDED")["StartedAt"].timestamp() * 1000)
    logs = box.client("logs")
    group = box.ids["log-group:nerava-backend/application"]
    logs.create_log_stream(logGroupName=group, logStreamName="old")
    logs.put_log_events(logGroupName=group, logStreamName="old",
                        logEvents=[{"timestamp": started - 60_000, "message": "ModuleNotFoundError: No module named 'x'"}])
    report, _, _ = run(fix=False)
    found = step(report, "startup-logs").finding
    # Filtered by startTime on the server: the line is older than the running version's deployment.
    assert found.status.value == "ok", found.summary
