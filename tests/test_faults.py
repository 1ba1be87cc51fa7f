"""Fault injection against the sandbox: endpoints down mid-fix, throttling, access denied, flapping health, endless deployments."""

from __future__ import annotations

import copy

import boto3
import pytest
import yaml

from tests.helpers import journal_entries, mutating_calls, run, step
from runbook.aws import ApiError
from runbook.errors import EXIT_AWS, EXIT_TIMEOUT, AwsError
from tests.test_scenarios import HEALTHY


def two_rules_missing(tmp_path) -> str:
    """Both the database and the cache lack their connector rule: two authorizes in one phase."""
    doc = copy.deepcopy(HEALTHY)
    doc["name"] = "two-rules-missing"
    doc["security_groups"]["db-sg"]["ingress"] = []
    doc["security_groups"]["cache-sg"]["ingress"] = []
    path = tmp_path / "two-rules-missing.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_endpoint_down_between_two_applied_calls(world, tmp_path):
    box = world(two_rules_missing(tmp_path))
    box.faults.stop_aws_after("AuthorizeSecurityGroupIngress", 1)
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(AwsError) as info:
        run(journal_path=journal, timeout=30)
    assert info.value.exit_code == EXIT_AWS and "cannot reach" in str(info.value)

    entries = journal_entries(journal)
    (plan,) = [e for e in entries if e["event"] == "plan"]
    planned = [(c["step"], c["call"]["operation"]) for c in plan["changes"]]
    assert sorted(planned) == [("rds-ingress", "authorize_security_group_ingress"), ("redis-ingress", "authorize_security_group_ingress")]
    (call,) = [e for e in entries if e["event"] == "call"]  # the second was never sent: the drift re-read failed first
    (result,) = [e for e in entries if e["event"] == "result"]
    assert result["seq"] == call["seq"] and result["outcome"] == "applied" and result["detail"].startswith("created sgr-")
    assert call["caller"]["Arn"]  # who did it
    not_applied = {s for s, _ in planned} - {call["step"]}
    assert len(not_applied) == 1

    box.start_aws()
    report, _, aws = run(timeout=30)
    assert report.healthy
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}  # only the one that never landed


@pytest.mark.parametrize("service", [None, "ec2", "apprunner"])
def test_throttling_is_retried_and_the_run_still_succeeds(world, tmp_path, service):
    """botocore's standard retry mode (5 attempts) absorbs the first 4 throttled requests."""
    box = world(two_rules_missing(tmp_path))
    box.faults.throttle(4, service=service)
    report, _, _ = run(timeout=30)
    assert report.healthy
    assert box.faults.throttled == 4


def test_access_denied_names_the_iam_action_and_applies_nothing(world, tmp_path):
    box = world(two_rules_missing(tmp_path))
    box.faults.deny("ec2:AuthorizeSecurityGroupIngress")
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(ApiError) as info:
        run(journal_path=journal, timeout=30)
    assert info.value.exit_code == EXIT_AWS
    assert "access denied: ec2:AuthorizeSecurityGroupIngress was refused" in str(info.value)
    (result,) = [e for e in journal_entries(journal) if e["event"] == "result"]
    assert result["outcome"] == "failed: UnauthorizedOperation"
    assert not box.app_health("nerava-backend")[0]


def test_flapping_health_is_not_healthy(world):
    box = world("healthy")
    box.faults.flap("nerava-backend", (200, 503))
    report, recorder, _ = run(timeout=6)
    assert not report.healthy and report.exit_code == EXIT_TIMEOUT
    assert "waiting for health" in report.stopped
    seen = {state for kind, what, state in recorder.of("waiting") if what == "health"}
    assert any("503" in s for s in seen) and any("HTTP 200 (1/3" in s for s in seen)


def test_a_deployment_that_never_finishes_times_out_with_exit_4(world):
    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    report, _, _ = run(timeout=4)
    assert report.exit_code == EXIT_TIMEOUT and not report.healthy
    assert "timed out (--timeout 4s) waiting for deployment; last seen: CREATE_SERVICE IN_PROGRESS" in report.stopped
    # the 6379 rule went in before the wait: what could be fixed, was
    assert step(report, "redis-ingress").finding.status.value == "ok"
