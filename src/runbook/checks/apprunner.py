"""App Runner checks: the service's state and its deployments."""

from __future__ import annotations

from typing import Any, Mapping

from runbook.discovery import Topology
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.registry import check

OPEN_OPERATION = {"PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS"}
FAILED_OPERATION = {"FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED"}


def _op_line(op: Mapping[str, Any]) -> str:
    started = op.get("StartedAt")
    when = f" started {started:%Y-%m-%d %H:%M:%S}" if hasattr(started, "strftime") else ""
    ended = op.get("EndedAt")
    end = f", ended {ended:%H:%M:%S}" if hasattr(ended, "strftime") else ""
    return f"{op.get('Type')} {op.get('Id', '?')} {op.get('Status')}{when}{end}"


def rebuild_call(service: Mapping[str, Any]) -> ApiCall:
    """UpdateService replaces what it is given: resend the whole source block as DescribeService returned it."""
    return ApiCall(
        "apprunner",
        "update_service",
        {"ServiceArn": service["ServiceArn"], "SourceConfiguration": service["SourceConfiguration"]},
    )


@check(
    "apprunner.deployment",
    permissions=("apprunner:DescribeService", "apprunner:ListServices", "apprunner:ListOperations"),
    fix_permissions=("apprunner:StartDeployment", "apprunner:UpdateService", "apprunner:ResumeService"),
)
def deployment(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service's latest deployment finished and succeeded; wait for one in flight, redeploy a failed one.

    Example:
      - id: deployment
        check: apprunner.deployment
        after: [redis-ingress]
    """
    service = topology.service
    status = service["Status"]
    ops = topology.operations
    latest = ops[0] if ops else None
    evidence = [Evidence("apprunner describe_service", f"{topology.service_name} Status={status}")]
    if latest:
        evidence.append(Evidence("apprunner list_operations", "; ".join(_op_line(op) for op in ops[:3])))
    else:
        evidence.append(Evidence("apprunner list_operations", "no operations"))

    if latest and latest.get("Status") in OPEN_OPERATION:
        return Finding(
            Status.FAIL,
            f"{latest['Type']} {latest['Status']}: waiting for it to finish (operations cannot be cancelled)",
            tuple(evidence),
            waits_for="deployment",
        )
    if status == "OPERATION_IN_PROGRESS":
        return Finding(
            Status.WARN,
            "OPERATION_IN_PROGRESS with no open operation: App Runner maintenance; waiting for it",
            tuple(evidence),
            waits_for="deployment",
        )
    if status == "CREATE_FAILED":
        return Finding(
            Status.FAIL,
            "the service failed to create and cannot serve; rebuild it with update_service once the causes are fixed",
            tuple(evidence),
            (Change(rebuild_call(service), "rebuild the CREATE_FAILED service with its current configuration", Phase.REDEPLOY),),
        )
    if status == "PAUSED":
        return Finding(
            Status.FAIL,
            "the service is paused and serves nothing",
            tuple(evidence),
            (
                Change(
                    ApiCall("apprunner", "resume_service", {"ServiceArn": topology.service_arn}),
                    "resume the paused service",
                    Phase.REDEPLOY,
                    inverse=ApiCall("apprunner", "pause_service", {"ServiceArn": topology.service_arn}),
                ),
            ),
        )
    if status in ("DELETE_FAILED", "DELETED"):
        return Finding(Status.FAIL, f"the service is {status}; this runbook cannot repair it", tuple(evidence))
    if latest and latest.get("Status") in FAILED_OPERATION:
        return Finding(
            Status.FAIL,
            f"the last {latest['Type']} ended {latest['Status']}: the new version never served",
            tuple(evidence),
            (
                Change(
                    ApiCall("apprunner", "start_deployment", {"ServiceArn": topology.service_arn}),
                    "redeploy the current image now that the network is fixed",
                    Phase.REDEPLOY,
                ),
            ),
        )
    return Finding(Status.OK, f"{status}; last operation {_op_line(latest) if latest else 'none'}", tuple(evidence))
