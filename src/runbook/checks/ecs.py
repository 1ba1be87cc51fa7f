"""ECS checks: the service's state, its deployment and stopped tasks, the load balancer in front of
it (its way to the tasks, its health check), the image pull path and the log group."""

from __future__ import annotations

import re
from typing import Any, Mapping

from runbook.checks.security_groups import admission, describe_rule, ingress_leg
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.platforms.ecs import (FAILED_DEPLOYMENT, OPEN_DEPLOYMENT, PULL_ENDPOINTS, EcsService, endpoint_service,
                                   epoch, managed_resources, of, serving_target_group)
from runbook.registry import check
from runbook.topology import Topology

# Their reads are the platform's own (runbook.platforms.ecs.PERMISSIONS): only what fixes need is declared here.

# A stopped task's reason, and the check kind that shows its cause (the first that matches).
_STOP_CAUSES = (
    (re.compile(r"log group does not exist", re.I), "ecs.log-group", "the awslogs group is missing"),
    (re.compile(r"retrieve secret|secrets ?manager|GetSecretValue|ssm:GetParameters?|unable to retrieve ssm", re.I),
     "env.endpoints", "a secret could not be read"),
    (re.compile(r"CannotPullContainerError|pull image manifest|\bECR\b|registry auth", re.I), "ecs.image-pull-path",
     "the image could not be pulled"),
    # Timeouts reaching S3 or CloudWatch Logs are the network's way out (a route, an endpoint) as well.
    (re.compile(r"i/o timeout|dial tcp|send request failed", re.I), "ecs.image-pull-path",
     "the task could not reach an AWS endpoint (no route out, or no VPC endpoint)"),
    (re.compile(r"failed ELB health checks", re.I), "ecs.target-health-check", "the load balancer's health check failed"),
    (re.compile(r"failed container health checks", re.I), "logs.startup", "the container's own health check failed"),
    (re.compile(r"Essential container in task exited", re.I), "logs.startup", "the app exited (its log says why)"),
)
# What the scheduler stops a task for, beside a task that failed to start or exited.
_FAILED_STOP = re.compile(r"failed (ELB|container) health checks", re.I)


def _tasks_line(service: Mapping[str, Any]) -> str:
    return (f"desiredCount={service.get('desiredCount')} runningCount={service.get('runningCount')} "
            f"pendingCount={service.get('pendingCount')}")


@check("ecs.service-status")
def service_status(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service exists, is ACTIVE and asks for tasks; an Express Mode service is recognised.

    Example:
      - id: service-status
        check: ecs.service-status
    """
    payload = of(topology)
    service = payload.service
    status = service.get("status")
    evidence = [Evidence("ecs describe_services",
                         f"{payload.name} in cluster {payload.cluster} status={status} {_tasks_line(service)} "
                         f"launchType={service.get('launchType', '-')} resourceManagementType={service.get('resourceManagementType', 'CUSTOMER')}")]
    express = payload.express
    if express is not None:
        code = (express.get("status") or {}).get("statusCode")
        evidence.append(Evidence("ecs describe_express_gateway_service", f"Express Mode service, status {code}"))
    if status != "ACTIVE":
        return Finding(Status.FAIL, f"the service is {status}: it is being deleted and runs nothing; create it anew", tuple(evidence))
    kind = "Express Mode service" if payload.is_express else "service"
    resources = managed_resources(payload)
    if resources:
        evidence.append(Evidence("ecs describe_service_revisions", "ecsManagedResources: " + "; ".join(
            f"{what} {r.get('arn', '?').rsplit(':', 1)[-1]} {r.get('status')}" for what, r in resources)))
    failed = [(what, r) for what, r in resources if r.get("status") == "FAILED"]
    if failed:
        return Finding(Status.FAIL, "Express Mode failed to provision " + ", ".join(
            f"its {what}" + (f" ({r['statusReason']})" if r.get("statusReason") else "") for what, r in failed)
            + ": fix the cause AWS names, then update the Express service", tuple(evidence))
    moving = [what for what, r in resources if r.get("status") in ("PROVISIONING", "DEPROVISIONING")]
    if moving:
        return Finding(Status.WARN, f"Express Mode is still provisioning its {', '.join(sorted(set(moving)))}", tuple(evidence))
    if not service.get("desiredCount"):
        return Finding(Status.WARN, f"{kind} {payload.name} is ACTIVE with desiredCount 0: it runs no task and serves nothing "
                                    "(scale it with update_service --desired-count once it should)", tuple(evidence))
    return Finding(Status.OK, f"{kind} {payload.name} ACTIVE, {service.get('runningCount')}/{service.get('desiredCount')} tasks running",
                   tuple(evidence))


def _deployment_line(d: Mapping[str, Any]) -> str:
    reason = f" ({d['statusReason']})" if d.get("statusReason") else ""
    breaker = (d.get("deploymentCircuitBreaker") or {}).get("status")
    return f"{d.get('serviceDeploymentArn', '?').rsplit('/', 1)[-1]} {d.get('status')}{reason}" + (f", circuit breaker {breaker}" if breaker else "")


def _primary_line(d: Mapping[str, Any]) -> str:
    reason = f" ({d['rolloutStateReason']})" if d.get("rolloutStateReason") else ""
    return (f"{d.get('id')} {d.get('status')} rolloutState={d.get('rolloutState', '-')}{reason} "
            f"running {d.get('runningCount')}/{d.get('desiredCount')} failedTasks={d.get('failedTasks', 0)}")


def _redeploy(payload: EcsService) -> Change:
    return Change(ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn, "forceNewDeployment": True}),
                  "start a new deployment of the current task definition now that its causes are fixed", Phase.REDEPLOY)


@check("ecs.deployment", fix_permissions=("ecs:UpdateService",))
def deployment(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The newest deployment finished and succeeded: one in flight is waited out; a failed or
    rolled-back one is redeployed (update_service forceNewDeployment) once a cause was found and fixed.

    A circuit-breaker rollback leaves the service "stable" on the old revision: that is a failure
    of the deployment all the same.

    Example:
      - id: deployment
        check: ecs.deployment
        after: [redis-ingress]
    """
    payload = of(topology)
    service = payload.service
    primary = payload.primary
    evidence = [Evidence("ecs describe_services", "; ".join(_primary_line(d) for d in service.get("deployments", [])) or "no deployments")]
    if service.get("status") != "ACTIVE":
        return Finding(Status.SKIPPED, f"the service is {service.get('status')}: see service-status", tuple(evidence))
    newest = (payload.deployments or [None])[0]
    if newest is not None:
        evidence.append(Evidence("ecs list_service_deployments", "; ".join(_deployment_line(d) for d in payload.deployments[:3])))
        state, failed, open_ = newest.get("status"), newest.get("status") in FAILED_DEPLOYMENT, newest.get("status") in OPEN_DEPLOYMENT
    elif primary is not None and primary.get("rolloutState"):
        state = f"rolloutState {primary.get('rolloutState')}"
        failed, open_ = primary.get("rolloutState") == "FAILED", primary.get("rolloutState") == "IN_PROGRESS"
        rolled_back = _rolled_back_to(payload, primary)
        if rolled_back and not failed:
            failed, state = True, rolled_back
            evidence.append(Evidence("ecs describe_services events", rolled_back))
    elif primary is not None:
        # No rolloutState (another deployment controller, or no circuit breaker): the counts alone.
        running, desired = primary.get("runningCount", 0), primary.get("desiredCount", 0)
        state = f"{running}/{desired} tasks running, {primary.get('failedTasks', 0)} failed"
        failed = running < desired and bool(primary.get("failedTasks"))
        open_ = running < desired and not failed
    else:
        return Finding(Status.WARN, "no deployment is reported for the service", tuple(evidence))
    if open_:
        return Finding(Status.FAIL, f"the newest deployment is {state}: waiting for it to finish", tuple(evidence), waits_for="deployment")
    # A rolling deployment the circuit breaker failed keeps serving the tasks it had, if any.
    if not failed and primary is not None and primary.get("rolloutState") == "FAILED":
        failed, state = True, f"{state}, rolloutState FAILED"
    if not failed:
        return Finding(Status.OK, f"the newest deployment is {state}, {service.get('runningCount')}/{service.get('desiredCount')} running",
                       tuple(evidence))
    causes = sorted(topology.broken_this_run)
    serving = bool(service.get("runningCount"))
    if not causes:
        what = ("the service runs the revision before it" if serving else "no task runs")
        return Finding(
            Status.WARN if serving else Status.FAIL,
            f"the newest deployment ended {state}: {what}; no step it waits on was found broken, so nothing explains the "
            "failure (see stopped-tasks and startup-logs) and it is not redeployed",
            tuple(evidence),
            (Change(_redeploy(payload).call, "redeploy once the failure's cause is fixed", Phase.REDEPLOY, recommendation=True),),
        )
    evidence.append(Evidence("this run", f"found broken before the redeploy: {', '.join(causes)}"))
    return Finding(Status.FAIL, f"the newest deployment ended {state}: its tasks never served", tuple(evidence), (_redeploy(payload),))


_ROLLING_BACK = re.compile(r"rolling back to deployment (?P<to>\S+?)\.?$")


def _rolled_back_to(payload: EcsService, primary: Mapping[str, Any]) -> str | None:
    """The event saying the circuit breaker rolled the service back to the PRIMARY deployment, if one did
    since it was created: the newest deployment then failed although the PRIMARY one is COMPLETED."""
    since = epoch(primary.get("createdAt"))
    for event in payload.service.get("events", []):
        found = _ROLLING_BACK.search(event.get("message") or "")
        if found and found["to"] == primary.get("id") and epoch(event.get("createdAt")) >= since:
            return f"rolled back to {primary.get('id')}: {event.get('message')}"
    return None


def _stop_line(task: Mapping[str, Any]) -> str:
    containers = "; ".join(f"{c.get('name')}: exitCode={c.get('exitCode')}" + (f" reason={c['reason']}" if c.get("reason") else "")
                           for c in task.get("containers", []) if c.get("exitCode") is not None or c.get("reason"))
    task_id = task.get("taskArn", "?").rsplit("/", 1)[-1]
    return (f"task {task_id} ({task.get('startedBy', '-')}) stopCode={task.get('stopCode', '-')} "
            f"stoppedReason={task.get('stoppedReason', '-')}" + (f"; {containers}" if containers else ""))


def _reasons(task: Mapping[str, Any]) -> str:
    return " ".join([task.get("stoppedReason") or "", *(c.get("reason") or "" for c in task.get("containers", []))])


@check("ecs.stopped-tasks")
def stopped_tasks(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The newest deployment's stopped tasks, each reason tied to the step that shows its cause
    (CannotPullContainerError: the image pull path; a missing log group; a secret; failed ELB health
    checks: the target group; an essential container that exited: the startup logs).

    Example:
      - id: stopped-tasks
        check: ecs.stopped-tasks
    """
    payload = of(topology)
    primary = payload.primary
    if "stopped" in payload.reads_failed:
        return Finding(Status.WARN, f"the stopped tasks could not be read: {payload.reads_failed['stopped']}")
    newest = (payload.deployments or [{}])[0].get("status")
    rolled_back = newest in ("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS") or (
        primary is not None and _rolled_back_to(payload, primary) is not None)
    # After a rollback the PRIMARY deployment is the restored older one: the newest's tasks are the others.
    mine = [t for t in payload.stopped_tasks if primary is None
            or (t.get("startedBy") != primary.get("id") if rolled_back else t.get("startedBy") == primary.get("id"))]
    failed = [t for t in mine if t.get("stopCode") in ("TaskFailedToStart", "EssentialContainerExited")
              or _FAILED_STOP.search(t.get("stoppedReason") or "")]
    older = len(payload.stopped_tasks) - len(mine)
    note = f" ({older} more from earlier deployments)" if older else ""
    if not failed:
        return Finding(Status.OK, f"no task of the newest deployment failed{note}",
                       tuple(Evidence("ecs describe_tasks", _stop_line(t)) for t in payload.stopped_tasks[:3]))
    evidence = [Evidence("ecs describe_tasks", _stop_line(t)) for t in failed[:5]]
    found: dict[str, list[str]] = {}
    for task in failed:
        for pattern, kind, meaning in _STOP_CAUSES:
            if pattern.search(_reasons(task)):
                where = topology.step_for(kind)
                found.setdefault(meaning + (f" (see {where})" if where else ""), []).append(task.get("taskArn", ""))
                break
        else:
            found.setdefault("for a reason this runbook does not know", []).append(task.get("taskArn", ""))
    causes = "; ".join(f"{len(tasks)}: {meaning}" for meaning, tasks in found.items())
    completed = primary is not None and primary.get("rolloutState") == "COMPLETED" and not rolled_back
    if completed:
        return Finding(Status.WARN, f"{len(failed)} task(s) of the newest deployment failed before it completed{note}: {causes}",
                       tuple(evidence))
    return Finding(Status.FAIL, f"{len(failed)} task(s) of the newest deployment failed{note}: {causes}", tuple(evidence))


def _container_port(payload: EcsService, group: Mapping[str, Any]) -> int | None:
    for lb in payload.service.get("loadBalancers", []):
        if lb.get("targetGroupArn") == group.get("TargetGroupArn") and lb.get("containerPort"):
            return int(lb["containerPort"])
    return group.get("Port")


def _health_port(group: Mapping[str, Any], traffic: int | None) -> int | None:
    port = group.get("HealthCheckPort", "traffic-port")
    return traffic if port in (None, "traffic-port") else int(port)


def _balancer(payload: EcsService, group: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((lb for lb in payload.load_balancers if lb["LoadBalancerArn"] in group.get("LoadBalancerArns", [])), None)


@check("ecs.load-balancer-ingress", fix_permissions=("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"))
def load_balancer_ingress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The load balancer can reach the tasks: the task groups admit the load balancer's groups on
    the container port (and the health-check port), and the load balancer's groups let that port out.

    Example:
      - id: lb-ingress
        check: ecs.load-balancer-ingress
    """
    payload = of(topology)
    workload = topology.workload
    unread = _unread_balancing(payload)
    if unread is not None:
        return unread
    group = serving_target_group(payload)
    if group is None:
        return Finding(Status.SKIPPED, "the service has no load balancer")
    balancer = _balancer(payload, group)
    if balancer is None:
        return Finding(Status.SKIPPED, f"target group {group.get('TargetGroupName')} is attached to no load balancer")
    name = balancer.get("LoadBalancerName", "?")
    lb_groups = tuple(balancer.get("SecurityGroups", ()))
    task_groups = topology.client_sg_ids
    evidence = [Evidence("elbv2 describe_load_balancers", f"{name} Scheme={balancer.get('Scheme')} security groups "
                         f"{', '.join(lb_groups) or 'none'}; subnets {', '.join(workload.peer_subnet_ids) or 'none'}"),
                Evidence("ecs describe_services", f"{workload.client} uses security groups {', '.join(task_groups) or 'none'}")]
    if not lb_groups:
        return Finding(Status.SKIPPED, f"load balancer {name} has no security groups (a Network Load Balancer without any)", tuple(evidence))
    if not task_groups:
        return Finding(Status.ERROR, f"{workload.client}: the API returned no security groups for its tasks", tuple(evidence))
    traffic = _container_port(payload, group)
    ports = sorted({p for p in (traffic, _health_port(group, traffic)) if p})
    lb_cidrs = topology.cidrs(workload.peer_subnet_ids)
    task_cidrs = topology.cidrs(topology.client_subnet_ids)
    summaries, changes, status = [], [], Status.OK
    for port in ports:
        leg = ingress_leg(topology, task_groups, port, f"the task group of {payload.name}", lb_groups, lb_cidrs,
                          f"load balancer {name}", f"load balancer {name} to ECS service {payload.name} tasks")
        evidence.extend(leg.evidence)
        summaries.append(leg.summary)
        if leg.change is not None and leg.status is Status.FAIL:
            changes.append(leg.change)
        status = _worse(status, leg.status)
        out = admission(topology, lb_groups, port, task_groups, task_cidrs, egress=True, peer=f"the tasks of {payload.name}")
        egress = "; ".join(describe_rule(r) for g in lb_groups for r in topology.sg_rules.get(g, []) if r.get("IsEgress")) or "none"
        evidence.append(Evidence(f"ec2 describe_security_group_rules group-id={', '.join(lb_groups)}", f"egress: {egress}"))
        if out.admitted:
            continue
        status = Status.FAIL
        permission = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                      "UserIdGroupPairs": [{"GroupId": task_groups[0], "Description": f"to ECS service {payload.name} tasks"}]}
        changes.append(Change(
            ApiCall("ec2", "authorize_security_group_egress", {"GroupId": lb_groups[0], "IpPermissions": [permission]}),
            f"allow load balancer {name}'s {lb_groups[0]} out to the tasks' {task_groups[0]} on tcp/{port}", Phase.AUTHORIZE,
            inverse=ApiCall("ec2", "revoke_security_group_egress", {"GroupId": lb_groups[0], "IpPermissions": [permission]})))
        summaries.append(f"load balancer {name}'s groups {', '.join(lb_groups)} do not let tcp/{port} out to the tasks")
    return Finding(status, "; ".join(summaries), tuple(evidence), tuple(changes))


def _worse(a: Status, b: Status) -> Status:
    order = [Status.OK, Status.WARN, Status.FAIL]
    return max(a, b, key=lambda s: order.index(s) if s in order else 0)


def _health_line(target: Mapping[str, Any]) -> str:
    t, h = target.get("Target", {}), target.get("TargetHealth", {})
    reason = f" {h['Reason']}" if h.get("Reason") else ""
    description = f" ({h['Description']})" if h.get("Description") else ""
    return f"{t.get('Id')}:{t.get('Port')} {h.get('State')}{reason}{description}"


@check("ecs.target-health-check", fix_permissions=("elasticloadbalancing:ModifyTargetGroup", "ecs:UpdateExpressGatewayService"),
       params={"health_path": "/healthz"})
def target_health_check(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The target group's health check probes what the app serves: its targets are healthy, or the
    reasons they are not say why (Target.ResponseCodeMismatch: the path; Target.Timeout: the network).

    When every target answers the health check with 404 on a path other than the runbook's
    health_path, the check is pointed at health_path (modify_target_group, or for Express Mode
    update_express_gateway_service, which starts a deployment); its inverse puts the old path back.

    Example:
      - id: target-health
        check: ecs.target-health-check
    """
    payload = of(topology)
    unread = _unread_balancing(payload)
    if unread is not None:
        return unread
    group = serving_target_group(payload)
    if group is None:
        return Finding(Status.SKIPPED, "the service has no load balancer")
    # ECS registers each task in every target group of loadBalancers[] and replaces it when it
    # fails any of them: the worst group speaks for the service.
    findings = [_group_health(topology, payload, g, params) for g in payload.target_groups]
    worst = max(findings, key=lambda f: f.status.severity)
    if len(findings) == 1:
        return worst
    others = tuple(e for f in findings if f is not worst for e in f.evidence)
    return Finding(worst.status, worst.summary, worst.evidence + others, tuple(c for f in findings for c in f.changes))


def _unread_balancing(payload: EcsService) -> Finding | None:
    """An ERROR when the service names target groups that could not be read: nothing can be said of its load balancer."""
    named = [lb.get("targetGroupArn") for lb in payload.service.get("loadBalancers", []) if lb.get("targetGroupArn")]
    if not named:
        return None
    why = payload.reads_failed.get("load_balancing")
    read = {g.get("TargetGroupArn") for g in payload.target_groups}
    missing = [arn for arn in named if arn not in read]
    if why is None and not missing:
        return None
    return Finding(Status.ERROR, f"the service names target group(s) {', '.join(a.rsplit('/', 2)[-2] for a in missing or named)}, "
                                 f"which could not be read: {why or 'not found'}",
                   (Evidence("ecs describe_services", f"loadBalancers={payload.service.get('loadBalancers')}"),))


def _group_health(topology: Topology, payload: EcsService, group: Mapping[str, Any], params: Mapping[str, Any]) -> Finding:
    path = group.get("HealthCheckPath", "/")
    matcher = (group.get("Matcher") or {}).get("HttpCode", "200")
    evidence = [Evidence("elbv2 describe_target_groups",
                         f"{group.get('TargetGroupName')} {group.get('HealthCheckProtocol', 'HTTP')} path {path} port "
                         f"{group.get('HealthCheckPort', 'traffic-port')} matcher {matcher}, interval {group.get('HealthCheckIntervalSeconds')}s, "
                         f"healthy after {group.get('HealthyThresholdCount')}, target type {group.get('TargetType')}")]
    targets = payload.target_health.get(group["TargetGroupArn"], [])
    evidence.append(Evidence(f"elbv2 describe_target_health {group.get('TargetGroupName')}",
                             "; ".join(_health_line(t) for t in targets[:6]) or "no targets registered"))
    states = [t.get("TargetHealth", {}) for t in targets]
    healthy = [s for s in states if s.get("State") == "healthy"]
    if healthy:
        return Finding(Status.OK, f"{len(healthy)} of {len(states)} target(s) healthy on {path}", tuple(evidence))
    if not any(s.get("State") == "unhealthy" for s in states):
        # The tasks ECS stopped for failing the checks are deregistered with their verdicts: what
        # the checks said is then in the service's events since the newest deployment began.
        told = _unhealthy_events(payload, group)
        if told:
            evidence.append(Evidence("ecs describe_services events", told[0]["message"]))
            said = [_event_state(e["message"]) for e in told]
            moved = _moved_path(topology, group, params, said, evidence,
                                f"the newest deployment's tasks failed the health check on {path} with {{codes}} and were stopped")
            if moved is not None:
                return moved
            # Events outlive the configuration they were about (a path changed since): with no target
            # registered now, nothing shows what the current check would say.
            return Finding(Status.WARN, f"the newest deployment's tasks failed the health check ({said[0]['Description']}) and "
                                        "were stopped; no target is registered now to show what the current check says",
                           tuple(evidence))
        if not states:
            return Finding(Status.SKIPPED, "no target is registered and no event reports a failed health check: no task "
                                           "has been checked (see stopped-tasks)", tuple(evidence))
    unused = [s for s in states if s.get("State") == "unused"]
    if unused and len(unused) == len(states):
        why = unused[0].get("Description") or unused[0].get("Reason") or "unused"
        return Finding(Status.FAIL, f"no target is in use: {why}; such a target never turns healthy (enable the tasks' "
                                    "zones on the load balancer, or attach the target group to it)", tuple(evidence))
    reasons = {s.get("Reason") for s in states if s.get("State") == "unhealthy"}
    if not reasons:
        shown = ", ".join(sorted({str(s.get("State")) for s in states}))
        return Finding(Status.WARN, f"no target is healthy yet ({shown}): the load balancer is still checking them", tuple(evidence))
    if "Target.ResponseCodeMismatch" in reasons:
        moved = _moved_path(topology, group, params, states, evidence,
                            f"the health check asks for {path}, where the app answers {{codes}}: no target can turn healthy")
        if moved is not None:
            return moved
        codes = _codes(states) or "?"
        return Finding(Status.FAIL, f"the app answers the health check on {path} with {codes}, not {matcher}: no target turns healthy "
                                    "and nothing shows which path it serves, so nothing is changed", tuple(evidence))
    where = topology.step_for("ecs.load-balancer-ingress")
    if "Target.Timeout" in reasons:
        return Finding(Status.FAIL, "the health checks time out: the load balancer gets no answer from the tasks (its way to "
                                    f"them{f', see {where}' if where else ''}, a NACL, or the container port)", tuple(evidence))
    return Finding(Status.FAIL, f"no target is healthy: {', '.join(sorted(r for r in reasons if r))}", tuple(evidence))


def _codes(states: list[Mapping[str, Any]]) -> str:
    """The HTTP codes the health checks got, from the reasons' descriptions ("... codes: [404]")."""
    return ", ".join(sorted({m for s in states for m in re.findall(r"\[([^\]]*)\]", s.get("Description") or "")}))


def _moved_path(topology: Topology, group: Mapping[str, Any], params: Mapping[str, Any], states: list[Mapping[str, Any]],
                evidence: list[Evidence], what: str) -> Finding | None:
    """The health check moved to the runbook's health_path when the app answered 404 on another
    path (`what` says where that was seen, with {codes}); None when that is not what was seen."""
    path, wanted, codes = group.get("HealthCheckPath", "/"), params["health_path"], _codes(states)
    if "404" not in codes or path == wanted:
        return None
    return Finding(Status.FAIL, what.replace("{codes}", codes) + f"; pointing it at the runbook's health_path {wanted}",
                   tuple(evidence), (_path_change(topology, group, wanted),))


_UNHEALTHY_EVENT = re.compile(r"is unhealthy in \(target-group (?P<group>[^)]+)\) due to \(reason (?P<reason>.*)\)")


def _unhealthy_events(payload: EcsService, group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The service's events saying a task failed this target group's checks, since the newest deployment began."""
    since = epoch((payload.primary or {}).get("createdAt"))
    out = []
    for event in payload.service.get("events", []):
        found = _UNHEALTHY_EVENT.search(event.get("message") or "")
        if found and found["group"] in (group.get("TargetGroupArn"), group.get("TargetGroupName")) \
                and epoch(event.get("createdAt")) >= since:
            out.append(event)
    return out


def _event_state(message: str) -> Mapping[str, Any]:
    """A target health state as the event line tells it: a wrong code, or no answer."""
    reason = _UNHEALTHY_EVENT.search(message)["reason"].rstrip(".")
    kind = "Target.ResponseCodeMismatch" if "codes" in reason else "Target.Timeout" if "timed out" in reason.lower() else "Target.FailedHealthChecks"
    return {"State": "unhealthy", "Reason": kind, "Description": reason}


def _path_change(topology: Topology, group: Mapping[str, Any], path: str) -> Change:
    payload = of(topology)
    if payload.express is not None:
        # Express's own setting, which the update replaces (the group's may have been changed by hand since).
        active = (payload.express.get("activeConfigurations") or [{}])[0]
        before = active.get("healthCheckPath") or group.get("HealthCheckPath", "/")
        call = ApiCall("ecs", "update_express_gateway_service", {"serviceArn": payload.arn, "healthCheckPath": path})
        return Change(call, f"point Express Mode's health check at {path} (starts a deployment)", Phase.REDEPLOY,
                      inverse=ApiCall("ecs", "update_express_gateway_service", {"serviceArn": payload.arn, "healthCheckPath": before}))
    arn = group["TargetGroupArn"]
    matcher = dict(group.get("Matcher") or {"HttpCode": "200"})
    # Nothing serves while no target is healthy: the new path can break nothing, so it goes with the rules.
    return Change(ApiCall("elbv2", "modify_target_group", {"TargetGroupArn": arn, "HealthCheckPath": path}),
                  f"point target group {group.get('TargetGroupName')}'s health check at {path} (matcher {matcher.get('HttpCode')} kept)",
                  Phase.AUTHORIZE,
                  inverse=ApiCall("elbv2", "modify_target_group", {"TargetGroupArn": arn, "HealthCheckPath": group.get("HealthCheckPath", "/")}))


_ECR = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


def _default_route(table: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    for route in (table or {}).get("Routes", []):
        if route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("State", "active") == "active":
            return route
    return None


@check("ecs.image-pull-path", fix_permissions=("ecs:UpdateService",))
def image_pull_path(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """Every task subnet has a way to the image registry: a 0.0.0.0/0 route to a NAT gateway, or to
    an internet gateway with assignPublicIp ENABLED, or (for an ECR image) the ecr.api and ecr.dkr
    interface endpoints and the s3 gateway endpoint. A public subnet without a public IP is fixed by
    resending the whole awsvpcConfiguration with assignPublicIp ENABLED (a deployment); endpoints
    are advice, since they cost money.

    Example:
      - id: image-pull
        check: ecs.image-pull-path
    """
    payload = of(topology)
    awsvpc = payload.awsvpc
    if not awsvpc.get("subnets"):
        return Finding(Status.SKIPPED, "the service has no awsvpc network configuration")
    image = payload.container.get("image", "")
    ecr = _ECR.match(image)
    public_ip = awsvpc.get("assignPublicIp", "DISABLED") == "ENABLED"
    evidence = [Evidence("ecs describe_services", f"assignPublicIp={awsvpc.get('assignPublicIp', 'DISABLED')}; image {image}")]
    endpoints = payload.vpc_endpoints
    vpcs = topology.client_vpc_ids
    present = [e for e in (endpoints or []) if e.get("VpcId") in vpcs and e.get("State", "available").lower() == "available"]
    uses_awslogs = (payload.container.get("logConfiguration") or {}).get("logDriver") == "awslogs"
    if endpoints is not None:
        evidence.append(Evidence("ec2 describe_vpc_endpoints", "; ".join(sorted(_endpoint_line(e) for e in present)) or "none in the VPC"))
    lacking: dict[str, list[str]] = {}  # subnet -> what its endpoint way lacks
    no_way, need_ip = [], []
    for subnet in topology.client_subnet_ids:
        table = topology.route_table_for(subnet)
        route = _default_route(table)
        target = (route or {}).get("NatGatewayId") or (route or {}).get("GatewayId") or (route or {}).get("TransitGatewayId") or "none"
        evidence.append(Evidence("ec2 describe_route_tables", f"{subnet}: {table.get('RouteTableId') if table else 'no route table read'}, "
                                 f"0.0.0.0/0 -> {target}"))
        if table is None:
            continue
        if route and (route.get("NatGatewayId") or route.get("TransitGatewayId") or route.get("NetworkInterfaceId")):
            continue
        lacking[subnet] = _endpoint_gaps(topology, present, subnet, table, uses_awslogs) if ecr else [f"{image} is not in ECR"]
        if route and str(route.get("GatewayId", "")).startswith("igw-"):
            # Without a public IP an internet gateway is no way out; the endpoints still are.
            if not public_ip and lacking[subnet]:
                need_ip.append(subnet)
            continue
        if lacking[subnet]:
            no_way.append(subnet)
    via = [s for s in topology.client_subnet_ids if s in lacking and not lacking[s]]
    if not no_way and not need_ip:
        return Finding(Status.OK, "every task subnet reaches the registry" + (" through the VPC endpoints" if via else ""),
                       tuple(evidence))
    if endpoints is None and ecr:
        # What the endpoints would show is unknown: a gap cannot be told from an unread answer.
        return Finding(Status.WARN, f"subnets {', '.join(no_way + need_ip)} have no way out but VPC endpoints, and those could not "
                                    f"be read: {payload.reads_failed.get('endpoints', 'not read')}", tuple(evidence),
                       (Change(ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn,
                                                                 "networkConfiguration": {"awsvpcConfiguration": {**awsvpc, "assignPublicIp": "ENABLED"}}}),
                               "if the endpoints are missing: give the tasks a public IP", Phase.REDEPLOY, recommendation=True),)
                       if need_ip and not payload.is_express else ())
    changes: list[Change] = []
    summary = []
    if need_ip:
        summary.append(f"subnets {', '.join(need_ip)} route to an internet gateway but the tasks get no public IP "
                       "(assignPublicIp DISABLED): they cannot pull the image")
        fixed = {**awsvpc, "assignPublicIp": "ENABLED"}
        call = ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn,
                                                 "networkConfiguration": {"awsvpcConfiguration": fixed}})
        inverse = ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn,
                                                    "networkConfiguration": {"awsvpcConfiguration": dict(awsvpc)}})
        if payload.is_express:
            changes.append(Change(call, "Express Mode cannot set assignPublicIp: add ECR and S3 endpoints, or move the service to "
                                        "private subnets with a NAT route", Phase.REDEPLOY, recommendation=True))
        else:
            changes.append(Change(call, "give the tasks a public IP (the whole awsvpcConfiguration is resent; starts a deployment)",
                                  Phase.REDEPLOY, inverse=inverse))
    if no_way:
        gaps = sorted({g for s in no_way for g in lacking[s]})
        summary.append(f"subnets {', '.join(no_way)} have no 0.0.0.0/0 route to a NAT or internet gateway, and no endpoint way: "
                       + "; ".join(gaps))
        region = topology.region
        changes.append(Change(
            ApiCall("ec2", "create_vpc_endpoint", {"VpcEndpointType": "Interface", "VpcId": sorted(vpcs)[0] if vpcs else "<the tasks' VPC>",
                                                   "ServiceName": f"com.amazonaws.{region}.ecr.dkr", "SubnetIds": list(no_way),
                                                   "SecurityGroupIds": ["<a group admitting the tasks on 443>"], "PrivateDnsEnabled": True}),
            "add what is missing (" + "; ".join(gaps) + "), likewise for ecr.api and logs, and the s3 gateway on the subnets' "
            "route tables; or a NAT route. Endpoints cost money, so this is advice", Phase.AUTHORIZE, recommendation=True))
    return Finding(Status.FAIL, "; ".join(summary), tuple(evidence), tuple(changes))


def _endpoint_line(endpoint: Mapping[str, Any]) -> str:
    kind = endpoint.get("VpcEndpointType", "?")
    more = (f"private DNS {'on' if endpoint.get('PrivateDnsEnabled') else 'off'}, groups "
            f"{', '.join(g.get('GroupId', '?') for g in endpoint.get('Groups', [])) or 'none'}" if kind == "Interface"
            else f"route tables {', '.join(endpoint.get('RouteTableIds', [])) or 'none'}")
    return f"{endpoint.get('ServiceName', '?')} ({kind}: {more})"


def _endpoint_gaps(topology: Topology, present: list[Mapping[str, Any]], subnet: str, table: Mapping[str, Any],
                   uses_awslogs: bool) -> list[str]:
    """What a subnet without a route out lacks to pull an ECR image (and start the awslogs driver)
    through VPC endpoints: each interface endpoint with private DNS (else the names resolve to public
    addresses) and groups that admit the tasks on 443, and the s3 gateway on the subnet's route table."""
    gaps = []
    for name in (*PULL_ENDPOINTS[:2], *(("logs",) if uses_awslogs else ())):
        found = [e for e in present if endpoint_service(e) == name and e.get("VpcEndpointType", "Interface") == "Interface"]
        if not found:
            gaps.append(f"no {name} endpoint")
            continue
        endpoint = found[0]
        if not endpoint.get("PrivateDnsEnabled"):
            gaps.append(f"the {name} endpoint has private DNS off (the service's name resolves to public addresses)")
            continue
        groups = [g["GroupId"] for g in endpoint.get("Groups", []) if g.get("GroupId")]
        if groups and all(g in topology.sg_rules for g in groups):
            verdict = admission(topology, groups, 443, topology.client_sg_ids, topology.cidrs([subnet]), peer="the tasks")
            if not verdict.admitted:
                gaps.append(f"the {name} endpoint's groups {', '.join(groups)} do not admit the tasks on 443")
    s3 = [e for e in present if endpoint_service(e) == "s3" and e.get("VpcEndpointType") == "Gateway"]
    if not s3:
        gaps.append("no s3 gateway endpoint (the image's layers come from S3)")
    elif not any(table.get("RouteTableId") in e.get("RouteTableIds", []) for e in s3):
        gaps.append(f"the s3 gateway endpoint is not on route table {table.get('RouteTableId')}")
    return gaps


@check("ecs.log-group", fix_permissions=("logs:CreateLogGroup",))
def log_group(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The awslogs group the container logs to exists: without it no task starts
    (ResourceInitializationError: failed to validate logger args). Fixed by creating it.

    Example:
      - id: log-group
        check: ecs.log-group
    """
    payload = of(topology)
    log = payload.container.get("logConfiguration") or {}
    if log.get("logDriver") != "awslogs":
        return Finding(Status.SKIPPED, f"the container logs with {log.get('logDriver') or 'no log driver'}, not awslogs")
    group = (log.get("options") or {}).get("awslogs-group")
    if not group:
        return Finding(Status.FAIL, "the awslogs driver names no awslogs-group")
    evidence = (Evidence("ecs describe_task_definition", f"logConfiguration awslogs-group={group}"),)
    region = (log.get("options") or {}).get("awslogs-region")
    if region and region != topology.region:
        return Finding(Status.WARN, f"log group {group} is in {region} (awslogs-region), which this run does not read", evidence)
    if group not in payload.log_groups:
        return Finding(Status.WARN, f"whether log group {group} exists could not be read: "
                                    f"{payload.reads_failed.get(f'log_group:{group}', 'not read')}", evidence)
    if payload.log_groups[group]:
        return Finding(Status.OK, f"log group {group} exists", evidence + (Evidence("logs describe_log_groups", f"{group} found"),))
    if (log.get("options") or {}).get("awslogs-create-group") == "true":
        return Finding(Status.OK, f"log group {group} does not exist yet; awslogs-create-group=true creates it", evidence)
    return Finding(Status.FAIL, f"log group {group} does not exist: no task can start its log driver", evidence
                   + (Evidence("logs describe_log_groups", f"no group named {group}"),),
                   (Change(ApiCall("logs", "create_log_group", {"logGroupName": group}), f"create log group {group}", Phase.AUTHORIZE,
                           inverse=ApiCall("logs", "delete_log_group", {"logGroupName": group})),))


@check("ecs.grace-period", fix_permissions=("ecs:UpdateService",), params={"grace_seconds": 120})
def grace_period(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The health-check grace period gives a slow-starting app time before the load balancer's
    checks count: tasks of the newest deployment stopped for failed ELB health checks that timed
    out (not a wrong answer) while the load balancer may reach them, with a grace period under a
    minute, get advice to raise it (update_service healthCheckGracePeriodSeconds; its inverse
    puts the old value back). Advice only: nothing shows the app would be up in time.

    Example:
      - id: grace-period
        check: ecs.grace-period
        with: {grace_seconds: 180}
    """
    payload = of(topology)
    group = serving_target_group(payload)
    if group is None:
        return Finding(Status.SKIPPED, "the service has no load balancer")
    grace = int(payload.service.get("healthCheckGracePeriodSeconds") or 0)
    evidence = [Evidence("ecs describe_services", f"healthCheckGracePeriodSeconds={grace}")]
    primary = payload.primary
    elb_stops = [t for t in payload.stopped_tasks if re.search(r"failed ELB health checks", t.get("stoppedReason") or "", re.I)
                 and (primary is None or t.get("startedBy") == primary.get("id"))]
    told = [_event_state(e["message"]) for e in _unhealthy_events(payload, group)]
    timed_out = [s for s in told if s["Reason"] in ("Target.Timeout", "Target.FailedHealthChecks")]
    if not elb_stops or not timed_out or len(timed_out) < len(told):
        return Finding(Status.OK, f"grace period {grace}s; no task of the newest deployment was stopped for health checks that "
                                  "went unanswered", tuple(evidence))
    evidence += [Evidence("ecs describe_tasks", _stop_line(t)) for t in elb_stops[:2]]
    if grace >= 60:
        return Finding(Status.OK, f"grace period {grace}s; tasks were stopped for unanswered health checks all the same "
                                  "(see lb-ingress and the startup logs)", tuple(evidence))
    wanted = int(params["grace_seconds"])
    call = ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn, "healthCheckGracePeriodSeconds": wanted})
    inverse = ApiCall("ecs", "update_service", {"cluster": payload.cluster, "service": payload.arn, "healthCheckGracePeriodSeconds": grace})
    return Finding(
        Status.WARN,
        f"{len(elb_stops)} task(s) were stopped for health checks that went unanswered, with a grace period of {grace}s: "
        "if the app is still starting then (migrations, retries), a longer grace period lets it",
        tuple(evidence),
        (Change(call, f"raise the health-check grace period to {wanted}s once the startup logs show a slow start",
                Phase.REDEPLOY, inverse=inverse, recommendation=True),),
    )
