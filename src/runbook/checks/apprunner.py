"""App Runner checks: the service's state and its deployments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping
from urllib.parse import urlsplit

from runbook.checks.http import probe_evidence
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.platforms.apprunner import FAILED_OPERATION, OPEN_OPERATION, of, runtime_values, service_health_path
from runbook.registry import check
from runbook.topology import Topology

# Their reads are the platform's own (runbook.platforms.apprunner.PERMISSIONS): only what fixes need is declared here.


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
    "apprunner.service-status",
    fix_permissions=("apprunner:UpdateService", "apprunner:ResumeService"),
)
def service_status(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service exists and can serve: not CREATE_FAILED, PAUSED or DELETE_FAILED.

    Example:
      - id: service-status
        check: apprunner.service-status
    """
    service = of(topology).service
    status = service["Status"]
    evidence = (
        Evidence(
            "apprunner describe_service",
            f"{service['ServiceName']} {service['ServiceArn']} Status={status} ServiceUrl={service.get('ServiceUrl', '-')}",
        ),
    )
    if status == "CREATE_FAILED":
        return Finding(
            Status.FAIL,
            "CREATE_FAILED: the service never started and cannot serve; rebuild it with update_service once the causes are fixed",
            evidence,
            (Change(rebuild_call(service), "rebuild the CREATE_FAILED service with its current configuration", Phase.REDEPLOY),),
        )
    if status == "PAUSED":
        arn = of(topology).arn
        return Finding(
            Status.FAIL,
            "PAUSED: the service serves nothing until resumed",
            evidence,
            (
                Change(
                    ApiCall("apprunner", "resume_service", {"ServiceArn": arn}),
                    "resume the paused service",
                    Phase.REDEPLOY,
                    inverse=ApiCall("apprunner", "pause_service", {"ServiceArn": arn}),
                ),
            ),
        )
    if status == "DELETE_FAILED":
        # App Runner: the service failed to delete and can't be recovered; retry the deletion.
        return Finding(
            Status.FAIL,
            "DELETE_FAILED: the deletion failed and App Runner cannot recover the service; retry delete_service to "
            "remove what is left, then create it anew (this runbook cannot repair it)",
            evidence,
        )
    if status == "DELETED":
        return Finding(Status.FAIL, "DELETED: the service no longer exists; create it anew", evidence)
    return Finding(Status.OK, f"{service['ServiceName']} found, Status={status}", evidence)


@check("apprunner.vpc-connector")
def vpc_connector(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service sends its egress through an ACTIVE VPC connector, when what it reaches needs one.

    With EgressType=DEFAULT, App Runner ignores any connector the configuration still names: an
    ElastiCache cache or a database that is not publicly accessible is then out of reach.

    Example:
      - id: vpc-connector
        check: apprunner.vpc-connector
    """
    egress = of(topology).egress
    egress_type = egress.get("EgressType", "DEFAULT")
    arn = egress.get("VpcConnectorArn")
    named = of(topology).named_connector
    evidence = [Evidence("apprunner describe_service", f"NetworkConfiguration.EgressConfiguration={dict(egress)}")]
    if named is not None:
        subnets = ", ".join(
            f"{s} ({topology.subnets[s]['CidrBlock']}, {topology.subnets[s].get('AvailabilityZone', '?')})" if s in topology.subnets else s
            for s in named.get("Subnets", ())
        )
        deleted = f" DeletedAt={named['DeletedAt']:%Y-%m-%d %H:%M:%S}" if hasattr(named.get("DeletedAt"), "strftime") else ""
        evidence.append(
            Evidence(
                "apprunner describe_vpc_connector",
                f"{named['VpcConnectorName']} revision {named.get('VpcConnectorRevision')} Status={named.get('Status')}{deleted}; "
                f"subnets {subnets or 'none'}; security groups {', '.join(named.get('SecurityGroups', ())) or 'none'}",
            )
        )
    if egress_type != "VPC":
        ignored = ""
        if arn:
            name = named["VpcConnectorName"] if named else arn
            ignored = f"; the connector it names ({name}) is ignored by App Runner with DEFAULT egress"
        private = [t for t in topology.found_targets
                   if t.kind == "cache" or not (t.resource or {}).get("PubliclyAccessible")]
        if private:
            what = ", ".join(f"{t.kind} {t.resource_id}" for t in private)
            return Finding(
                Status.FAIL,
                f"EgressType=DEFAULT: the service reaches only the public internet, and {what} can be reached only "
                f"from inside its VPC (through a connector with EgressType=VPC){ignored}",
                tuple(evidence),
            )
        unknown = [t for t in topology.targets.values() if not t.resource_id]
        if unknown:
            why = f"whether {', '.join(t.env_var for t in unknown)} need(s) the VPC cannot be told (not followed)"
        elif topology.found_targets:
            why = f"{', '.join(f'{t.kind} {t.resource_id}' for t in topology.found_targets)} is publicly accessible"
        else:
            why = "no database or cache in the environment needs the VPC"
        return Finding(Status.WARN, f"EgressType=DEFAULT: no VPC connector carries the traffic; {why}{ignored}", tuple(evidence))
    if named is None:
        return Finding(
            Status.FAIL,
            f"EgressType=VPC names connector {arn}, which describe_vpc_connector does not know (ResourceNotFoundException): "
            "the service has no way into the VPC; create a connector and update the service",
            tuple(evidence),
        )
    if named.get("Status") != "ACTIVE":
        return Finding(
            Status.FAIL,
            f"connector {named['VpcConnectorName']} is {named.get('Status')}: it was deleted and can't be used; "
            "connectors are immutable, create a new one and update the service",
            tuple(evidence),
        )
    return Finding(Status.OK, f"egress through ACTIVE connector {named['VpcConnectorName']}", tuple(evidence))


@check(
    "apprunner.health-check-config",
    fix_permissions=("apprunner:UpdateService",),
    params={"health_path": "/healthz"},
)
def health_check_config(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """App Runner's own health check probes a path the app serves, on the app's port.

    A configured HTTP path that answers 200 from the app is right, whatever the runbook's
    health_path; a new path is proposed only when the app answers 404 on the configured one
    and 200 on the new one (the probes show both).

    Example:
      - id: health-check-config
        check: apprunner.health-check-config   # the runbook's params.health_path is tried first when the path fails
    """
    service = of(topology).service
    config = dict(service.get("HealthCheckConfiguration") or {})
    expected = params["health_path"]
    protocol = config.get("Protocol", "TCP")
    evidence = [Evidence("apprunner describe_service", f"HealthCheckConfiguration={config}")]
    image_port = runtime_values(service).get("Port")  # ImageConfiguration, or a code service's CodeConfigurationValues
    env_port = topology.env.get("PORT")
    notes = []
    if image_port and env_port and str(env_port) != str(image_port):
        notes.append(f"the image port is {image_port} but PORT={env_port}: App Runner routes and health-checks {image_port}")
    result = topology.probe
    if result is not None:
        evidence.append(probe_evidence(result))
    if protocol == "HTTP":
        path = service_health_path(service, expected)
        if topology.health_path != path:
            result = None  # the probe asked another path: it says nothing about this one
        if result is not None and result.status == 404 and result.from_app:
            return _http_path_fails(topology, config, path, evidence)
        if notes:
            return Finding(Status.WARN, "; ".join(notes), tuple(evidence))
        if result is not None and result.from_app:
            answer = "answers 200 there" if result.status == 200 else f"serves that path (HTTP {result.status} now: see healthz)"
            return Finding(Status.OK, f"HTTP health check on {path}: the app {answer}", tuple(evidence))
        if path == expected:
            return Finding(Status.OK, f"HTTP health check on {path}", tuple(evidence))
        # Nothing shows which path the app serves: the configuration may well be right.
        return Finding(
            Status.WARN,
            f"HTTP health check on {path}, not the runbook's {expected}; no instance answers to show which one the app serves, so nothing is changed",
            tuple(evidence),
            (_path_change(topology, config, expected, f"point the HTTP health check at {expected} once you know the app serves it", advice=True),),
        )
    if notes:
        return Finding(Status.WARN, "; ".join(notes), tuple(evidence))
    # App Runner's default: the deployment passes once the port accepts connections.
    return Finding(Status.OK, f"TCP health check on port {image_port or '8080'}: App Runner checks that the port accepts connections", tuple(evidence))


def _http_path_fails(topology: Topology, config: Mapping[str, Any], path: str, evidence: list[Evidence]) -> Finding:
    """The app answered 404 on the configured path: propose a path where it answered 200, if one did."""
    tried = topology.alternate_probes
    evidence = evidence + [probe_evidence(alt) for alt in tried]
    answering = [alt for alt in tried if alt.status == 200 and alt.from_app]
    if not answering:
        shown = ", ".join(urlsplit(alt.url).path for alt in tried) or "none"
        return Finding(
            Status.FAIL,
            f"HTTP health check on {path}, where the app answers 404: every deployment fails its health check; "
            f"no other path tried answers 200 ({shown}), so no path is proposed",
            tuple(evidence),
        )
    found = urlsplit(answering[0].url).path
    return Finding(
        Status.FAIL,
        f"HTTP health check on {path}, where the app answers 404; it answers 200 on {found}: every deployment fails its health check",
        tuple(evidence),
        (_path_change(topology, config, found, f"point the HTTP health check at {found}, where the app answers 200 "
                      "(the whole HealthCheckConfiguration is resent; nothing else changes)"),),
    )


def _path_change(topology: Topology, config: Mapping[str, Any], path: str, description: str, advice: bool = False) -> Change:
    fixed = {**config, "Protocol": "HTTP", "Path": path}
    arn = of(topology).arn
    return Change(
        ApiCall("apprunner", "update_service", {"ServiceArn": arn, "HealthCheckConfiguration": fixed}),
        description,
        Phase.REDEPLOY,
        inverse=ApiCall("apprunner", "update_service", {"ServiceArn": arn, "HealthCheckConfiguration": dict(config)}),
        recommendation=advice,
    )


@check(
    "apprunner.deployment",
    fix_permissions=("apprunner:StartDeployment", "apprunner:UpdateService", "apprunner:ResumeService"),
)
def deployment(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service's latest deployment finished and succeeded; wait for one in flight, redeploy a failed one.

    Example:
      - id: deployment
        check: apprunner.deployment
        after: [redis-ingress]
    """
    service = of(topology).service
    status = service["Status"]
    ops = of(topology).operations
    latest = ops[0] if ops else None
    evidence = [Evidence("apprunner describe_service", f"{service['ServiceName']} Status={status}")]
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
    if status in ("CREATE_FAILED", "PAUSED", "DELETE_FAILED", "DELETED"):
        return Finding(Status.SKIPPED, f"the service is {status}: see service-status", tuple(evidence))
    if latest and latest.get("Status") in FAILED_OPERATION:
        redeploy = Change(
            ApiCall("apprunner", "start_deployment", {"ServiceArn": of(topology).arn}),
            "redeploy the current image now that the network is fixed",
            Phase.REDEPLOY,
        )
        causes = sorted(topology.broken_this_run)
        if status == "RUNNING" and latest["Status"] != "ROLLBACK_FAILED" and not causes:
            # The service serves the version before the failed one. Nothing this run found explains the
            # failure, so a redeploy would most likely fail the same way (or ship whatever a mutable tag
            # names now): advice with its CLI twin, never sent.
            return Finding(
                Status.WARN,
                f"the last {latest['Type']} ended {latest['Status']}: the service is RUNNING on the version before it; "
                "no step it waits on was found broken, so nothing explains the failure (see startup-logs) and it is not redeployed",
                tuple(evidence),
                (
                    replace(
                        redeploy,
                        description="redeploy once the failure's cause is fixed (a mutable image tag may name a new image "
                                    "by now; App Runner keeps the running version if the new one fails its health check)",
                        recommendation=True,
                    ),
                ),
            )
        if causes:
            evidence.append(Evidence("this run", f"found broken before the redeploy: {', '.join(causes)}"))
        return Finding(
            Status.FAIL,
            f"the last {latest['Type']} ended {latest['Status']}: the new version never served",
            tuple(evidence),
            (redeploy,),
        )
    return Finding(Status.OK, f"{status}; last operation {_op_line(latest) if latest else 'none'}", tuple(evidence))
