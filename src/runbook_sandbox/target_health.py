"""Ground truth for the sandbox's load balancers: what a health check (or a request) through an
Application Load Balancer would meet at an ECS task, read live from moto (ELBv2, EC2) and the ECS
emulator (the task holding the target's address, its app).

:class:`TargetJudge` is the ``elbv2-target-health`` shim's judge (:mod:`runbook_sandbox.shims.elbv2`).
For a registered ``ip`` target that is a running sandbox task, in this order:

* the task's availability zone is not one of the load balancer's: ``unused`` / ``Target.NotInUse``;
* its initial checks are not over (the scheduler's ``health_check_seconds`` after it turned
  ``RUNNING``): ``initial`` / ``Elb.InitialHealthChecking``;
* the load balancer's groups cannot reach the task's on the health-check port (``traffic-port``:
  the target's port) - :func:`runbook_sandbox.reachability.load_balancer_path`: ``unhealthy`` /
  ``Target.Timeout`` / "Request timed out";
* the health-check port is not the one the app listens on: ``unhealthy`` /
  ``Target.FailedHealthChecks`` (the connection is refused);
* the app answers 200 on its ``health_path`` and 404 elsewhere; a code outside
  ``Matcher.HttpCode``: ``unhealthy`` / ``Target.ResponseCodeMismatch`` / "Health checks
  failed with these codes: [404]";
* else ``healthy``.

:class:`SchedulerTargets` is the ECS scheduler's view of its tasks' targets: ``DescribeTargetHealth``
through the sandbox's own client, so the scheduler acts on what the tool reads.
:class:`FrontRoutes` tells a load balancer front (:mod:`runbook_sandbox.alb`) where a request goes
(the listener's rules by Host and path, then its default action).
"""

from __future__ import annotations

import fnmatch
import time
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from runbook_sandbox.alb import Backend, Fixed
from runbook_sandbox.reachability import NetworkSnapshot, load_balancer_path

if TYPE_CHECKING:  # pragma: no cover
    from runbook_sandbox.sandbox import Sandbox

TIMEOUT = ("unhealthy", "Target.Timeout", "Request timed out")
REFUSED = ("unhealthy", "Target.FailedHealthChecks", "Health checks failed")
INITIAL = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
OTHER_ZONE = ("unused", "Target.NotInUse", "Target is in an Availability Zone that is not enabled for the load balancer")


def code_matches(code: int, http_codes: str) -> bool:
    """``Matcher.HttpCode``: ``200``, ``200,202``, ``200-299``."""
    for part in http_codes.split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and int(low) <= code <= int(high or low):
            return True
    return False


class TargetJudge:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    def __call__(self, group: dict, target: dict, memo: dict) -> tuple[str, str | None, str | None] | None:
        scheduler = self.sandbox._ecs.scheduler
        task = scheduler.task_at(target["Id"], group.get("VpcId"))
        clients = self.sandbox._clients
        if task is None or task.last_status != "RUNNING" or clients is None:
            return None
        app = self.sandbox._ecs_judge.app_of(task.task_definition)
        if app is None:
            return None
        key = ("balancers", tuple(group["LoadBalancerArns"]))
        if key not in memo:
            memo[key] = clients.client("elbv2").describe_load_balancers(
                LoadBalancerArns=group["LoadBalancerArns"])["LoadBalancers"]
        balancers = memo[key]
        zones = [z for lb in balancers for z in lb.get("AvailabilityZones", [])]
        if task.subnet.availability_zone not in {z.get("ZoneName") for z in zones}:
            return OTHER_ZONE
        if time.time() < task.checks_from:
            return INITIAL
        port = int(target["Port"])
        check_port = port if group.get("HealthCheckPort") in (None, "traffic-port") else int(group["HealthCheckPort"])
        lb_groups = [g for lb in balancers for g in lb.get("SecurityGroups", [])]
        lb_subnets = [z["SubnetId"] for z in zones]
        key = ("network", tuple(lb_groups), tuple(lb_subnets), task.security_groups)
        if key not in memo:  # the tasks of one service share their groups: read them once per call
            memo[key] = NetworkSnapshot(clients, group_ids=sorted(set(lb_groups) | set(task.security_groups)),
                                        subnet_ids=lb_subnets)
        if load_balancer_path(memo[key], lb_groups, lb_subnets, list(task.security_groups), task.ip, check_port):
            return TIMEOUT
        if check_port != int(app.port):
            return REFUSED
        path = (group.get("HealthCheckPath") or "/").split("?", 1)[0]
        code = 200 if path == app.health_path else 404
        if not code_matches(code, (group.get("Matcher") or {}).get("HttpCode", "200")):
            return ("unhealthy", "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]")
        return ("healthy", None, None)


class SchedulerTargets:
    """``DescribeTargetHealth`` of one task in each of its target groups. A target group moto does not
    know (an ARN the emulator fabricated) is left out: nothing to wait for; another error reads
    ``unavailable`` (the scheduler waits)."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    def __call__(self, service: dict, task: dict, load_balancers: list[dict]) -> list[dict]:
        clients = self.sandbox._clients
        ip = task_ip(task)
        if clients is None or not ip:
            return []
        elbv2 = clients.client("elbv2")
        out = []
        for lb in load_balancers:
            try:
                (found,) = elbv2.describe_target_health(
                    TargetGroupArn=lb["targetGroupArn"],
                    Targets=[{"Id": ip, "Port": int(lb["containerPort"])}])["TargetHealthDescriptions"]
                health = found["TargetHealth"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "TargetGroupNotFound":
                    continue
                health = {"State": "unavailable", "Reason": "Elb.InternalError", "Description": str(exc)[:200]}
            out.append({"targetGroupArn": lb["targetGroupArn"], "state": health.get("State"),
                        "reason": health.get("Reason"), "description": health.get("Description")})
        return out


class FrontRoutes:
    """Where a request to a load balancer's listener goes, as an ALB decides: the listener's rules in
    priority order (``host-header`` matched without the port and case-insensitively, ``path-pattern``
    with ``*`` and ``?``; a rule with any other condition never matches here), then its default
    action. A ``forward`` goes to the app behind a healthy target (``None``: no healthy target, the
    load balancer answers 503); a ``fixed-response`` is answered by the load balancer (:class:`Fixed`)."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    def __call__(self, load_balancer_arn: str, port: int, host: str = "", path: str = "/") -> Backend | Fixed | None:
        clients = self.sandbox._clients
        if clients is None:
            return None
        elbv2 = clients.client("elbv2")
        listeners = [l for l in elbv2.describe_listeners(LoadBalancerArn=load_balancer_arn)["Listeners"]
                     if l.get("Port") == port]
        if not listeners:
            return None
        rules = elbv2.describe_rules(ListenerArn=listeners[0]["ListenerArn"])["Rules"]
        ordered = sorted((r for r in rules if not r.get("IsDefault")), key=lambda r: int(r["Priority"]))
        chosen = next((r for r in ordered if _matches(r.get("Conditions", []), host, path)), None)
        actions = chosen["Actions"] if chosen is not None else listeners[0].get("DefaultActions", [])
        groups: list[str] = []
        for action in actions:
            if action.get("Type") == "fixed-response":
                fixed = action.get("FixedResponseConfig") or {}
                return Fixed(int(fixed.get("StatusCode", 503)), fixed.get("ContentType") or "text/plain",
                             (fixed.get("MessageBody") or "").encode())
            if action.get("Type") == "forward":
                groups += [action["TargetGroupArn"]] if action.get("TargetGroupArn") else [
                    g["TargetGroupArn"] for g in (action.get("ForwardConfig") or {}).get("TargetGroups", [])]
        for arn in dict.fromkeys(groups):
            for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
                if description["TargetHealth"].get("State") != "healthy":
                    continue
                task = self.sandbox._ecs.scheduler.task_at(description["Target"]["Id"])
                app = self.sandbox._ecs_judge.app_of(task.task_definition) if task is not None else None
                if app is not None:
                    return Backend(app.health_path)
        return None


def _matches(conditions: list[dict], host: str, path: str) -> bool:
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # no port; an IPv6 literal as is
    for condition in conditions:
        field = condition.get("Field")
        if field == "host-header":
            values = (condition.get("HostHeaderConfig") or {}).get("Values") or condition.get("Values") or []
            if not any(fnmatch.fnmatchcase(hostname.lower(), v.lower()) for v in values):
                return False
        elif field == "path-pattern":
            values = (condition.get("PathPatternConfig") or {}).get("Values") or condition.get("Values") or []
            if not any(fnmatch.fnmatchcase(path, v) for v in values):
                return False
        else:
            return False
    return bool(conditions)


def task_ip(task: dict) -> str | None:
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return detail.get("value")
    return None


__all__ = ["FrontRoutes", "SchedulerTargets", "TargetJudge", "code_matches", "task_ip"]
