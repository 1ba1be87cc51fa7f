"""App Runner: a service, its operations and the VPC connector its egress goes through.

The one module that reads App Runner's API (DescribeService, ListOperations, DescribeVpcConnector,
for discovery, the drift guard's re-read and the deployment wait alike), and the one that knows
App Runner's shape: where the environment lives, what the health check asks for, which log groups
the service writes, and that its traffic reaches the VPC through a connector's security groups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from runbook import registry
from runbook.aws import Aws
from runbook.errors import UsageError
from runbook.model import ApiCall
from runbook.probe import ENVOY, service_url
from runbook.topology import DEFAULT_HEALTH_PATH, LogSignature, Topology, Workload

NAME = "apprunner"
GROUPED_BY = None  # service names are the region's
PERMISSIONS = (
    "apprunner:ListServices",
    "apprunner:DescribeService",
    "apprunner:ListOperations",
    "apprunner:DescribeVpcConnector",
)
REDEPLOYS_AT_ONCE = 1  # App Runner runs one operation at a time: start one, then wait for it
SERVICES = ("apprunner",)
READ_BACK = {
    ("apprunner", "update_service", "SourceConfiguration"): ("describe_service", "ServiceArn", "Service.SourceConfiguration"),
}

# ListOperations statuses: still running (cannot be cancelled), and ended without the new version serving.
OPEN_OPERATION = frozenset({"PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})
FAILED_OPERATION = frozenset({"FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED"})
_OPERATIONS_READ = 20  # ListOperations' largest page: the newest operations, newest first

# The runbook's check names from before the checks were platform-neutral: App Runner's words for them.
registry.alias("sg.ingress-from-connector", "sg.ingress-from-workload")
registry.alias("sg.connector-egress", "sg.workload-egress")

# App Runner's own lines in the service log group, after the shared signatures (checks/logs.py).
LOG_SIGNATURES = tuple(
    LogSignature(re.compile(p, re.I), meaning, kind)
    for p, meaning, kind in (
        (r"Health check failed on protocol", "App Runner's health check failed: the app did not answer it", "apprunner.deployment"),
        (r"Container exit code", "the application stopped or failed to start", "logs.startup"),
        (r"Deployment failed", "a deployment failed", "apprunner.deployment"),
    )
)


# App Runner's envoy front: its own 404 means no instance is healthy.
FRONT = replace(ENVOY, name="the App Runner proxy")


@dataclass(frozen=True)
class AppRunnerService:
    """The answers App Runner's own checks read: the Workload's payload."""

    service: Mapping[str, Any]
    operations: list[dict[str, Any]]  # ListOperations, newest first
    connector: Mapping[str, Any] | None  # the connector the service's traffic goes through: VPC egress, ACTIVE
    named_connector: Mapping[str, Any] | None  # what the ARN the service names describes, whatever its use

    @property
    def arn(self) -> str:
        return self.service["ServiceArn"]

    @property
    def egress(self) -> Mapping[str, Any]:
        return self.service.get("NetworkConfiguration", {}).get("EgressConfiguration", {})


def of(topology: Topology) -> AppRunnerService:
    """The App Runner answers behind a snapshot."""
    return topology.workload.payload


# -- reading App Runner -----------------------------------------------------------------------------
def describe(aws: Aws, arn: str) -> dict[str, Any]:
    return aws.call("apprunner", "describe_service", ServiceArn=arn)["Service"]


def operations(aws: Aws, arn: str, count: int = _OPERATIONS_READ) -> list[dict[str, Any]]:
    return aws.call("apprunner", "list_operations", ServiceArn=arn, MaxResults=count).get("OperationSummaryList", [])


def describe_connector(aws: Aws, arn: str) -> dict[str, Any] | None:
    """The connector, or None when the API no longer knows it (deleted revisions are removed some time later)."""
    from runbook.aws import ApiError

    try:
        return aws.call("apprunner", "describe_vpc_connector", VpcConnectorArn=arn)["VpcConnector"]
    except ApiError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise


def find(aws: Aws, name_or_arn: str) -> dict[str, Any]:
    if name_or_arn.startswith("arn:"):
        from runbook.aws import ApiError

        try:
            return describe(aws, name_or_arn)
        except ApiError as exc:
            if exc.code in ("ResourceNotFoundException", "InvalidRequestException"):
                raise UsageError(f"no App Runner service {name_or_arn} in {aws.region}") from None
            raise
    summaries = aws.paginate("apprunner", "list_services", "ServiceSummaryList", MaxResults=20)
    for summary in summaries:
        if summary["ServiceName"] == name_or_arn:
            return describe(aws, summary["ServiceArn"])
    existing = ", ".join(sorted(s["ServiceName"] for s in summaries)) or "none"
    raise UsageError(f"no App Runner service named {name_or_arn!r} in {aws.region}; services there: {existing}")


# -- what the description names ---------------------------------------------------------------------
def runtime_values(service: Mapping[str, Any]) -> Mapping[str, Any]:
    """ImageConfiguration of an image service, CodeConfigurationValues of a code repository service."""
    source = service.get("SourceConfiguration", {})
    if "CodeRepository" in source:
        return source["CodeRepository"].get("CodeConfiguration", {}).get("CodeConfigurationValues") or {}
    return source.get("ImageRepository", {}).get("ImageConfiguration") or {}


def env_source(service: Mapping[str, Any]) -> str:
    """Where the service's environment is configured: image, code (through the API) or
    repository (the repository's apprunner.yaml, which no App Runner API returns)."""
    source = service.get("SourceConfiguration", {})
    if "CodeRepository" not in source:
        return "image"
    configured = source["CodeRepository"].get("CodeConfiguration", {}).get("ConfigurationSource")
    return "repository" if configured == "REPOSITORY" else "code"


def runtime_env(service: Mapping[str, Any]) -> dict[str, str]:
    return dict(runtime_values(service).get("RuntimeEnvironmentVariables") or {})


def runtime_secrets(service: Mapping[str, Any]) -> dict[str, str]:
    """RuntimeEnvironmentSecrets: variable -> a Secrets Manager secret ARN (optionally
    ``:json-key:version-stage:version-id``), an SSM parameter ARN, or a parameter's name."""
    return dict(runtime_values(service).get("RuntimeEnvironmentSecrets") or {})


def service_health_path(service: Mapping[str, Any], default: str) -> str:
    """The path App Runner's own health check asks for when it is HTTP: the app answering 200 there
    is what keeps the service deployed. A TCP check names no path: the runbook's is probed."""
    config = service.get("HealthCheckConfiguration") or {}
    if config.get("Protocol") == "HTTP":
        path = config.get("Path") or "/"
        return path if path.startswith("/") else "/" + path
    return default


def running_since_ms(ops: list[dict[str, Any]]) -> float | None:
    """Epoch milliseconds when the deployment of the running version started: the newest
    SUCCEEDED operation (operations are listed newest first)."""
    for op in ops:
        if op.get("Status") == "SUCCEEDED" and hasattr(op.get("StartedAt"), "timestamp"):
            return op["StartedAt"].timestamp() * 1000
    return None


def workload(service: Mapping[str, Any], params: Mapping[str, Any]) -> Workload:
    """What the description names, before its operations and connector are read."""
    egress = service.get("NetworkConfiguration", {}).get("EgressConfiguration", {})
    name, service_id = service["ServiceName"], service.get("ServiceId", "")
    hidden = env_source(service) == "repository"
    return Workload(
        platform=NAME,
        name=name,
        id=service["ServiceArn"],
        status=service.get("Status"),
        env=runtime_env(service),
        env_secrets=runtime_secrets(service),
        secrets_field="RuntimeEnvironmentSecrets",
        env_hidden=("the repository's apprunner.yaml (ConfigurationSource=REPOSITORY), which no App Runner API returns"
                    if hidden else None),
        env_hidden_in="apprunner.yaml" if hidden else "",
        url=service_url(service["ServiceUrl"], "/")[:-1] if service.get("ServiceUrl") else None,
        front=FRONT,
        health_path=service_health_path(service, params.get("health_path", DEFAULT_HEALTH_PATH)),
        health_check=dict(service.get("HealthCheckConfiguration") or {}),
        log_groups=tuple(f"/aws/apprunner/{name}/{service_id}/{suffix}" for suffix in ("service", "application")),
        log_signatures=LOG_SIGNATURES,
        outside_vpc="the service has no VPC connector",
        noun="connector",
        client="connector ?",
        client_source="apprunner describe_vpc_connector",
        rule_label="App Runner connector ?",
        source="apprunner describe_service",
        network_config=f"NetworkConfiguration.EgressConfiguration={dict(egress)}",
        payload=AppRunnerService(service, [], None, None),
    )


def reads(aws: Aws, workload: Workload) -> dict[str, Callable[[], Any]]:
    """Its operations, and its connector (described whatever the egress type, for the evidence)."""
    jobs: dict[str, Callable[[], Any]] = {"operations": lambda: operations(aws, workload.id)}
    connector_arn = workload.payload.egress.get("VpcConnectorArn")
    if connector_arn:
        jobs["connector"] = lambda: describe_connector(aws, connector_arn)
    return jobs


def completed(workload: Workload, got: Mapping[str, Any]) -> Workload:
    """The workload with its operations and connector: the connector's groups and subnets are where
    its traffic to the targets leaves from."""
    service = workload.payload.service
    ops = got.get("operations", [])
    named = got.get("connector")
    egress = service.get("NetworkConfiguration", {}).get("EgressConfiguration", {})
    # App Runner ignores a connector named with DEFAULT egress, and an INACTIVE one (deleted) can't be used:
    # only an ACTIVE connector under VPC egress carries the service's traffic.
    connector = named if (egress.get("EgressType") == "VPC" and named and named.get("Status") == "ACTIVE") else None
    name = (connector or {}).get("VpcConnectorName", "?")
    return replace(
        workload,
        logs_since_ms=running_since_ms(ops),
        security_group_ids=tuple((connector or {}).get("SecurityGroups", ())),
        subnet_ids=tuple((connector or {}).get("Subnets", ())),
        outside_vpc=None if connector is not None else workload.outside_vpc,
        client=f"connector {name}",
        rule_label=f"App Runner connector {name}",
        payload=AppRunnerService(service, ops, connector, named),
    )


# -- waits and re-reads -----------------------------------------------------------------------------
def deployment(aws: Aws, workload: Workload) -> tuple[bool, str]:
    """Finished once no operation is open and the service is out of OPERATION_IN_PROGRESS (with no
    operation open, that status means App Runner maintenance)."""
    ops = operations(aws, workload.id, 1)
    if ops and ops[0]["Status"] in OPEN_OPERATION:
        return False, f"{ops[0]['Type']} {ops[0]['Status']}"
    status = describe(aws, workload.id)["Status"]
    latest = f"{ops[0]['Type']} {ops[0]['Status']}, " if ops else ""
    return status != "OPERATION_IN_PROGRESS", f"{latest}service {status}"


def refresh(aws: Aws, topology: Topology, call: ApiCall) -> Topology | None:
    """After an App Runner call, the service and its operations read again (the connector as it was)."""
    if call.service != "apprunner" or "ServiceArn" not in call.params:
        return None
    arn = call.params["ServiceArn"]
    fresh = workload(describe(aws, arn), topology.params)
    return replace(topology, workload=completed(fresh, {"operations": operations(aws, arn),
                                                        "connector": of(topology).named_connector}))


# -- undo -------------------------------------------------------------------------------------------
_HEALTH_CHECK_KEYS = {"Protocol", "Path", "Interval", "Timeout", "HealthyThreshold", "UnhealthyThreshold"}


def without_undo(call: ApiCall) -> bool:
    """Sent by fix, never undone: a rebuild and a redeploy change no configuration to put back."""
    return call.operation == "start_deployment" or (call.operation == "update_service" and "SourceConfiguration" in call.params)


def undo(call: ApiCall, kept: Mapping[str, Any]) -> ApiCall:
    """The undo of one App Runner call fix sends, from the bodies the journal recorded (`kept`)."""
    from runbook.inverses import Refused, require

    params, what = dict(call.params), f"{call.service} {call.operation}"
    if call.operation == "resume_service":
        require(set(params) == {"ServiceArn"} and isinstance(params["ServiceArn"], str), f"{what} with {sorted(params)} is not one runbook sends")
        return ApiCall("apprunner", "pause_service", {"ServiceArn": params["ServiceArn"]})
    if call.operation == "update_service":
        # fix resends the whole HealthCheckConfiguration; the journal recorded the one it replaced.
        require(set(params) == {"ServiceArn", "HealthCheckConfiguration"} and isinstance(params["ServiceArn"], str),
                f"{what} with {sorted(params)} is not one runbook sends")
        previous = kept.get("HealthCheckConfiguration")
        require(isinstance(previous, dict) and set(previous) <= _HEALTH_CHECK_KEYS
                and previous.get("Protocol", "TCP") in ("TCP", "HTTP"),
                "the recorded health check is not an App Runner HealthCheckConfiguration")
        return ApiCall("apprunner", "update_service", {"ServiceArn": params["ServiceArn"], "HealthCheckConfiguration": previous})
    raise Refused(f"{what} is not a call runbook sends, so it has no undo")
