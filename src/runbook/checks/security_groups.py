"""Security-group checks: does the target admit the App Runner connector?"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping

from runbook.discovery import Target, Topology
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.registry import check


def covers_port(rule: Mapping[str, Any], port: int) -> bool:
    protocol = str(rule.get("IpProtocol"))
    if protocol == "-1":
        return True
    if protocol not in ("tcp", "6"):
        return False
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    if low == -1 and high == -1:
        return True
    return low <= port <= high


def describe_rule(rule: Mapping[str, Any]) -> str:
    protocol = "all traffic" if str(rule.get("IpProtocol")) == "-1" else f"{rule.get('IpProtocol')}"
    ports = ""
    if str(rule.get("IpProtocol")) != "-1":
        low, high = rule.get("FromPort"), rule.get("ToPort")
        ports = f"/{low}" if low == high else f"/{low}-{high}"
    source = (
        (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
        or rule.get("CidrIpv4")
        or rule.get("CidrIpv6")
        or rule.get("PrefixListId")
        or "?"
    )
    direction = "to" if rule.get("IsEgress") else "from"
    return f"{rule.get('SecurityGroupRuleId', '?')}: {protocol}{ports} {direction} {source}"


def admitting_rules(
    topology: Topology, group_ids: Iterable[str], port: int, source_groups: Iterable[str], source_cidrs: list[str]
) -> list[dict[str, Any]]:
    """Ingress rules on `group_ids` that admit traffic on `port` from one of `source_groups`
    or from a CIDR covering every network in `source_cidrs`."""
    sources = set(source_groups)
    networks = [ipaddress.ip_network(c) for c in source_cidrs]
    found = []
    for group_id in group_ids:
        for rule in topology.sg_rules.get(group_id, []):
            if rule.get("IsEgress") or not covers_port(rule, port):
                continue
            referenced = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
            if referenced and referenced in sources:
                found.append(rule)
                continue
            cidr = rule.get("CidrIpv4")
            if cidr and networks:
                allowed = ipaddress.ip_network(cidr, strict=False)
                if all(net.version == allowed.version and net.subnet_of(allowed) for net in networks):
                    found.append(rule)
    return found


def connector_cidrs(topology: Topology) -> list[str]:
    return [topology.subnets[s]["CidrBlock"] for s in topology.connector_subnet_ids if s in topology.subnets]


_TARGET_PARAMS = {"target": "cache"}


@check(
    "sg.ingress-from-connector",
    permissions=(
        "apprunner:DescribeVpcConnector",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "rds:DescribeDBInstances",
        "elasticache:DescribeReplicationGroups",
        "elasticache:DescribeCacheClusters",
    ),
    fix_permissions=("ec2:AuthorizeSecurityGroupIngress",),
    params=_TARGET_PARAMS,
)
def ingress_from_connector(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The target's security groups admit the connector's security group on the target's port.

    Example:
      - id: redis-ingress
        check: sg.ingress-from-connector
        with: {target: cache}
    """
    kind = params["target"]
    if kind not in ("cache", "database"):
        return Finding(Status.ERROR, f"unknown target {kind!r}: use cache or database")
    if not topology.connector:
        return Finding(Status.SKIPPED, "the service has no VPC connector: its egress does not go through the VPC")
    target: Target | None = topology.targets.get(kind)
    if target is None or target.resource_id is None:
        where = f"{target.env_var}={target.url}" if target else "the service environment"
        return Finding(Status.SKIPPED, f"no {kind} found: {where} names no resource this account has")
    port = target.endpoint_port or target.port
    if not target.security_group_ids:
        return Finding(Status.ERROR, f"{kind} {target.resource_id}: the API returned no security groups for it")

    connector_groups = topology.connector_sg_ids
    rules_seen = [
        Evidence(
            f"ec2 describe_security_group_rules group-id={group}",
            "; ".join(describe_rule(r) for r in topology.sg_rules.get(group, []) if not r.get("IsEgress")) or "no ingress rules",
        )
        for group in target.security_group_ids
    ]
    context = [
        Evidence(target.source, f"{target.env_var} names {kind} {target.resource_id} on port {port}, in security groups {', '.join(target.security_group_ids)}"),
        Evidence("apprunner describe_vpc_connector", f"connector {topology.connector['VpcConnectorName']} uses security groups {', '.join(connector_groups)}"),
    ]
    found = admitting_rules(topology, target.security_group_ids, port, connector_groups, connector_cidrs(topology))
    if found:
        return Finding(
            Status.OK,
            f"{kind} {target.resource_id} admits the connector on {port}: {describe_rule(found[0])}",
            tuple(context + rules_seen),
        )
    group_id = target.security_group_ids[0]
    source_group = connector_groups[0]
    permission = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [
            {
                "GroupId": source_group,
                "Description": f"App Runner connector {topology.connector['VpcConnectorName']} to {kind} {target.resource_id}",
            }
        ],
    }
    change = Change(
        call=ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": group_id, "IpPermissions": [permission]}),
        inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": group_id, "IpPermissions": [permission]}),
        description=f"allow tcp/{port} from the connector's {source_group} into {group_id} ({kind} {target.resource_id})",
        phase=Phase.AUTHORIZE,
    )
    return Finding(
        Status.FAIL,
        f"no rule on {', '.join(target.security_group_ids)} admits the connector's {', '.join(connector_groups)} on tcp/{port}",
        tuple(context + rules_seen),
        (change,),
    )
