"""Fault injection against the ecs-service runbook: throttled ECS and load balancer calls, denied
fixes, the endpoints going down between two applied calls (ECS from the project's emulator,
the load balancer from moto, both faulted on the wire)."""

from __future__ import annotations

import boto3
import pytest

from runbook.aws import ApiError
from runbook.errors import EXIT_AWS, AwsError
from tests.helpers import journal_entries, mutating_calls, run, step
from tests.test_ecs_service import _ping_health_check, _public_subnets_without_public_ip, load_variant

ECS = "ecs-service"


def _public_ip() -> str:
    service = boto3.client("ecs").describe_services(cluster="default", services=["nerava-backend"])["services"][0]
    return service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"]


def _health_path() -> str:
    (group,) = boto3.client("elbv2").describe_target_groups(Names=["nerava-tg"])["TargetGroups"]
    return group["HealthCheckPath"]


def _outcome_of(journal, step_id: str) -> str:
    entries = journal_entries(journal)
    (call,) = [e for e in entries if e["event"] == "call" and e["step"] == step_id]
    (result,) = [e for e in entries if e["event"] == "result" and e["seq"] == call["seq"]]
    return result["outcome"]


@pytest.mark.parametrize("service, budgets", [
    ("ecs", [("ecs:UpdateService", 1)]),  # the fix's first attempt (the sandbox tests throttle ECS reads)
    ("elasticloadbalancing", [(None, 2)]),  # the first two load balancer reads
], ids=["ecs", "elasticloadbalancing"])
def test_throttled_calls_are_retried_and_the_fix_ends_healthy(world, tmp_path, service, budgets):
    """botocore's standard retry mode absorbs throttled reads and the throttled first attempt of the
    fix: the update_service lands once, is journaled as applied, and the service ends healthy.
    (The image pull world: its fix starts the deployment it waits on, so a slower run changes no plan.)"""
    box = load_variant(world, tmp_path, "ecs-image-pull", _public_subnets_without_public_ip)
    for action, n in budgets:
        box.faults.throttle(n, service=service, action=action)
    journal = tmp_path / "journal.jsonl"
    report, _, aws = run(ECS, journal_path=journal, timeout=30)
    assert report.healthy, report.stopped
    code = "ThrottlingException" if service == "ecs" else "Throttling"
    assert [(i.service, i.code) for i in box.faults.injected] == [(service, code)] * sum(n for _, n in budgets)
    assert mutating_calls(aws) == {"ecs:UpdateService": 1}
    assert _outcome_of(journal, "image-pull") == "applied" and _public_ip() == "ENABLED"


# A world that needs one fix, sent to the service under test: (world, its edit, service, the fix's action).
ECS_FIX = ("image-pull", _public_subnets_without_public_ip, "ecs", "UpdateService")
LB_FIX = ("target-health", _ping_health_check, "elasticloadbalancing", "ModifyTargetGroup")


@pytest.mark.parametrize("name, edit, service, action, code", [(*ECS_FIX, "AccessDeniedException"), (*LB_FIX, "AccessDenied")],
                         ids=["ecs", "elasticloadbalancing"])
def test_a_denied_fix_ends_with_exit_3_naming_the_iam_action(world, tmp_path, name, edit, service, action, code):
    box = load_variant(world, tmp_path, f"ecs-{name}", edit)
    before = (_public_ip(), _health_path())
    box.faults.deny(f"{service}:{action}")
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(ApiError) as info:
        run(ECS, journal_path=journal, timeout=30)
    message = str(info.value)
    assert info.value.exit_code == EXIT_AWS
    assert message == f"access denied: {service}:{action} was refused ({code}); grant it to the caller"
    entries = journal_entries(journal)
    (call,) = [e for e in entries if e["event"] == "call"]
    (result,) = [e for e in entries if e["event"] == "result"]
    assert call["step"] == name and result["seq"] == call["seq"]
    assert call["call"]["service"] == ("ecs" if service == "ecs" else "elbv2")
    assert result["outcome"] == f"failed: {code}" and result["detail"] == message
    assert box.faults.denied == 1
    assert (_public_ip(), _health_path()) == before  # nothing changed


def test_ecs_endpoint_down_between_two_applied_calls(world, tmp_path):
    """The redeploy with a public IP lands, then the endpoints go down before the health check's fix
    (it comes after the image pull path): the journal says the first landed and no second was sent."""

    def both(doc):
        _public_subnets_without_public_ip(doc)
        _ping_health_check(doc)

    box = load_variant(world, tmp_path, "ecs-image-pull-and-health-path", both)
    box.faults.stop_aws_after("ecs:UpdateService")
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(AwsError) as info:
        run(ECS, journal_path=journal, timeout=30)
    assert info.value.exit_code == EXIT_AWS and "cannot reach the ecs endpoint" in str(info.value)

    entries = journal_entries(journal)
    (call,) = [e for e in entries if e["event"] == "call"]
    (result,) = [e for e in entries if e["event"] == "result"]
    assert (call["step"], call["call"]["operation"]) == ("image-pull", "update_service")
    assert call["call"]["params"]["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    assert result["seq"] == call["seq"] and result["outcome"] == "applied"
    assert call["caller"]["Arn"]

    box.start_aws()
    assert (_public_ip(), _health_path()) == ("ENABLED", "/ping")  # what the journal says: one landed
    report, _, _ = run(ECS, fix=False)
    assert step(report, "image-pull").finding.status.value == "ok"
