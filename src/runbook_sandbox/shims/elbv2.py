"""ELBv2 shims: what AWS's load balancers answer and moto 5.2.5 does not.

- ``elbv2-target-health`` - moto answers every registered target ``healthy``
  (``FakeTargetGroup.health_for``): no health check ever runs. AWS probes each
  target. The shim keeps moto's answer for a target that is not registered, and
  for a registered one answers, in AWS's words:

  * a target group attached to no load balancer: ``unused`` /
    ``Target.NotInUse`` ("Target group is not configured to receive traffic from
    the load balancer"), for every target type;
  * an ``ip`` target: what the sandbox's judge says (installed with
    :func:`install`; see :mod:`runbook_sandbox.target_health`), given the
    target group as ``DescribeTargetGroups`` shows it (read live from moto's
    model: path, port, matcher, load balancers), the target ``{Id, Port}`` and a
    dict that lives as long as one ``DescribeTargetHealth`` call (to read the
    network once for all its targets). The judge answers ``(State, Reason, Description)`` or ``None`` (moto's
    answer stands: an address that is no sandbox task). A judge that raises
    gives ``unavailable`` / ``Elb.InternalError``.

- ``elbv2-loopback-dns-name`` - ``DNSName`` is ``NAME-1.REGION.elb.amazonaws.com``
  in moto, a name that resolves nowhere. For a load balancer the sandbox fronts
  (:mod:`runbook_sandbox.alb`) the shim answers the front's loopback address
  ``127.0.0.1:PORT`` instead, as the App Runner emulator's ``ServiceUrl`` is one,
  so ``http://<DNSName>/path`` reaches it. Other load balancers keep moto's name.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

SHIMS = ("elbv2-target-health", "elbv2-loopback-dns-name")

Verdict = tuple[str, "str | None", "str | None"]
TargetJudge = Callable[[dict, dict, dict], "Verdict | None"]
DnsNames = Callable[[str], "str | None"]

_judge: TargetJudge | None = None
_dns_names: DnsNames | None = None
_call = threading.local()  # .memo: the judge's dict for the DescribeTargetHealth call this thread serves


def install(*, target_health: TargetJudge | None, dns_names: DnsNames | None) -> None:
    """The sandbox's judge of ``ip`` targets and its load balancer fronts (``arn -> 127.0.0.1:PORT``);
    ``None`` for moto's own answers. moto's state is process-wide, and so are these."""
    global _judge, _dns_names
    _judge, _dns_names = target_health, dns_names


def apply() -> None:
    _shim_target_health()
    _shim_dns_name()


def target_group_view(group: Any) -> dict:
    """A moto target group as ``DescribeTargetGroups`` shows it (the members a health check reads)."""
    return {
        "TargetGroupArn": group.arn, "TargetGroupName": group.name, "Protocol": group.protocol,
        "Port": int(group.port) if group.port is not None else None, "VpcId": group.vpc_id,
        "HealthCheckProtocol": group.health_check_protocol, "HealthCheckPort": str(group.health_check_port),
        "HealthCheckPath": group.health_check_path or "/",
        "Matcher": dict(getattr(group, "matcher", None) or {"HttpCode": "200"}),
        "LoadBalancerArns": list(group.load_balancer_arns), "TargetType": group.target_type,
    }


def _shim_target_health() -> None:
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

    original_describe = ELBv2Backend.describe_target_health

    def describe_target_health(self: Any, *args: Any, **kwargs: Any) -> Any:
        _call.memo = {}
        try:
            return original_describe(self, *args, **kwargs)
        finally:
            _call.memo = None

    ELBv2Backend.describe_target_health = describe_target_health
    original = FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        registered = self.targets.get(target["Id"])
        if registered is None:
            return status
        port = registered["Port"]
        if not self.load_balancer_arns:
            return FakeHealthStatus(registered["Id"], port, self.health_check_port, "unused", "Target.NotInUse",
                                    "Target group is not configured to receive traffic from the load balancer")
        judge = _judge
        if judge is None or self.target_type != "ip":
            return status
        try:
            memo = getattr(_call, "memo", None)
            verdict = judge(target_group_view(self), {"Id": registered["Id"], "Port": int(port)},
                            memo if memo is not None else {})
        except Exception as exc:  # noqa: BLE001 - answered as AWS answers its own failures
            verdict = ("unavailable", "Elb.InternalError", f"sandbox target judge failed: {type(exc).__name__}: {exc}")
        if verdict is None:
            return status
        return FakeHealthStatus(registered["Id"], port, self.health_check_port, *verdict)

    FakeTargetGroup.health_for = health_for


def _shim_dns_name() -> None:
    from moto.elbv2.models import FakeLoadBalancer

    def get(self: Any) -> str:
        names = _dns_names
        loopback = names(self.arn) if names is not None and hasattr(self, "arn") else None
        return loopback or self.__dict__.get("_moto_dns_name", "")

    def put(self: Any, value: str) -> None:
        self.__dict__["_moto_dns_name"] = value

    FakeLoadBalancer.dns_name = property(get, put)
