"""Security-group checks: does the target admit the App Runner connector?"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping

from runbook.discovery import Target, Topology
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.registry import check


PUBLIC_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


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
    or from a CIDR covering every network in `source_cidrs`.

    0.0.0.0/0 does not count: sg.no-public-ingress revokes it, and the
    connector must keep a way in once it is gone (the interlock).
    """
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
            if cidr and networks and cidr not in PUBLIC_CIDRS:
                allowed = ipaddress.ip_network(cidr, strict=False)
                if all(net.version == allowed.version and net.subnet_of(allowed) for net in networks):
                    found.append(rule)
    return found


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
    if target is not None and target.unread:
        return Finding(Status.SKIPPED, f"no {kind} followed: {target.unread}")
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
    found = admitting_rules(topology, target.security_group_ids, port, connector_groups, topology.cidrs(topology.connector_subnet_ids))
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




def rule_permission(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The IpPermissions body that re-creates one rule from describe_security_group_rules."""
    permission: dict[str, Any] = {"IpProtocol": rule["IpProtocol"]}
    if str(rule["IpProtocol"]) != "-1":
        permission["FromPort"] = rule.get("FromPort")
        permission["ToPort"] = rule.get("ToPort")
    description = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("CidrIpv4"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIpv4"], **description}]
    elif rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **description}]
    elif rule.get("ReferencedGroupInfo"):
        permission["UserIdGroupPairs"] = [{"GroupId": rule["ReferencedGroupInfo"]["GroupId"], **description}]
    elif rule.get("PrefixListId"):
        permission["PrefixListIds"] = [{"PrefixListId": rule["PrefixListId"], **description}]
    return permission


@check(
    "sg.no-public-ingress",
    permissions=("ec2:DescribeSecurityGroupRules", "rds:DescribeDBInstances"),
    fix_permissions=("ec2:RevokeSecurityGroupIngress",),
    params=_TARGET_PARAMS,
)
def no_public_ingress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """No ingress rule on the target's groups admits 0.0.0.0/0 or ::/0 on its port; each is revoked by its rule id.

    Run it `after` the matching ingress-from-connector step, so the fix never
    cuts the app off from its database. A rule wider than the port is advice,
    never applied under --yes; at a terminal it is offered on its own (default
    No) once the connector has its own rule on every port of ours it serves.
    Without a VPC connector public rules are reported, never revoked.

    Example:
      - id: rds-public-ingress
        check: sg.no-public-ingress
        with: {target: database}
        after: [rds-ingress]
    """
    kind = params["target"]
    target = topology.targets.get(kind)
    if target is None or target.resource_id is None:
        return Finding(Status.SKIPPED, f"no {kind} found in the service environment")
    port = target.endpoint_port or target.port
    public_rules = [
        (group, rule)
        for group in target.security_group_ids
        for rule in topology.sg_rules.get(group, [])
        if not rule.get("IsEgress") and (rule.get("CidrIpv4") or rule.get("CidrIpv6")) in PUBLIC_CIDRS and covers_port(rule, port)
    ]
    evidence = [
        Evidence(f"ec2 describe_security_group_rules group-id={group}", f"{describe_rule(rule)} is open to the internet on {port}")
        for group, rule in public_rules
    ]
    public_instance = bool((target.resource or {}).get("PubliclyAccessible"))
    if public_instance:
        evidence.append(Evidence(target.source, f"{target.resource_id} PubliclyAccessible=True: it has a public address"))
    if public_rules and not topology.connector:
        # Without VPC egress the app may reach the database over the internet: a revoke could cut it off.
        evidence.append(Evidence("apprunner describe_service", f"NetworkConfiguration.EgressConfiguration={dict(topology.egress)}"))
        return Finding(
            Status.WARN,
            f"{len(public_rules)} rule(s) open {kind} {target.resource_id} port {port} to the internet; the service has no VPC connector, "
            "so it may reach it over the internet: nothing is revoked",
            tuple(evidence),
        )
    changes = [_revoke_public(topology, target, group, rule, port) for group, rule in public_rules]
    if changes:
        return Finding(Status.FAIL, f"{len(changes)} rule(s) open {kind} {target.resource_id} port {port} to the internet", tuple(evidence), tuple(changes))
    if public_instance:
        return Finding(Status.WARN, f"no public rule on port {port}, but {target.resource_id} is PubliclyAccessible", tuple(evidence))
    return Finding(Status.OK, f"no rule opens {kind} port {port} to 0.0.0.0/0 or ::/0", tuple(evidence))


def _revoke_public(topology: Topology, target: Target, group: str, rule: Mapping[str, Any], port: int) -> Change:
    """Revoke one public rule by its id. A rule wider than the port also opens other ports, maybe for
    other members of the group: revoking it could cut them off, so that one is advice, offered to a
    person only once the connector has its own rule on every port of ours it serves."""
    source = rule.get("CidrIpv4") or rule.get("CidrIpv6")
    rule_id = rule["SecurityGroupRuleId"]
    call = ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": group, "SecurityGroupRuleIds": [rule_id]})
    inverse = ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": group, "IpPermissions": [rule_permission(rule)]})
    what = f"revoke {rule_id} ({source} on {target.kind} {target.resource_id}) and nothing grouped with it"
    wide = str(rule["IpProtocol"]) == "-1" or (rule.get("FromPort"), rule.get("ToPort")) != (port, port)
    if not wide:
        return Change(call, what, Phase.REVOKE, inverse=inverse)
    what += f"; it opens more than port {port}: check what else uses it first"
    served, missing = [], []
    for other in topology.found_targets:
        other_port = other.endpoint_port or other.port
        if group not in other.security_group_ids or other_port is None or not covers_port(rule, other_port):
            continue
        own = admitting_rules(topology, other.security_group_ids, other_port, topology.connector_sg_ids,
                              topology.cidrs(topology.connector_subnet_ids))
        if own:
            served.append(f"tcp/{other_port} of {other.kind} {other.resource_id} from {source}; the connector keeps {describe_rule(own[0])}")
        else:
            missing.append(f"tcp/{other_port} ({other.kind} {other.resource_id})")
    if missing:
        return Change(call, what + f" (offered at a terminal once the connector has its own rule on {', '.join(missing)})",
                      Phase.REVOKE, inverse=inverse, recommendation=True)
    ports = "every protocol and port" if str(rule["IpProtocol"]) == "-1" else f"{rule['IpProtocol']}/{rule.get('FromPort')}-{rule.get('ToPort')}"
    closes = (
        *served,
        f"{ports} of {group} from {source}, for every member of {group}: anything in it reached from the internet "
        "(not only the database and cache this runbook follows) loses that way in",
    )
    return Change(call, what, Phase.REVOKE, inverse=inverse, recommendation=True, offer=closes)


@check(
    "sg.not-default",
    permissions=("ec2:DescribeSecurityGroups",),
    params=_TARGET_PARAMS,
)
def not_default(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The target does not live in its VPC's default security group. Advice only: never applied, not even with --yes.

    Example:
      - id: redis-default-sg
        check: sg.not-default
        with: {target: cache}
    """
    kind = params["target"]
    target = topology.targets.get(kind)
    if target is None or target.resource_id is None:
        return Finding(Status.SKIPPED, f"no {kind} found in the service environment")
    defaults = [g for g in target.security_group_ids if topology.security_groups.get(g, {}).get("GroupName") == "default"]
    evidence = (Evidence("ec2 describe_security_groups", f"{kind} {target.resource_id} groups: " + ", ".join(
        f"{g} ({topology.security_groups.get(g, {}).get('GroupName', '?')})" for g in target.security_group_ids)),)
    if not defaults:
        return Finding(Status.OK, f"{kind} {target.resource_id} has a dedicated security group", evidence)
    vpc = topology.security_groups[defaults[0]].get("VpcId", target.vpc_id)
    port = target.endpoint_port or target.port
    name = f"{target.resource_id}-{kind}"
    advice = [
        Change(
            ApiCall("ec2", "create_security_group", {"GroupName": name, "Description": f"{kind} {target.resource_id}", "VpcId": vpc}),
            f"create a dedicated group {name} for {kind} {target.resource_id}",
            Phase.AUTHORIZE,
            recommendation=True,
        ),
        Change(
            ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": f"<id of {name}>", "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": g} for g in topology.connector_sg_ids]}]}),
            f"admit only the connector on {port} in the new group",
            Phase.AUTHORIZE,
            recommendation=True,
        ),
    ]
    if kind == "cache":
        advice.append(
            Change(
                ApiCall("elasticache", "modify_replication_group", {"ReplicationGroupId": target.resource_id, "SecurityGroupIds": [f"<id of {name}>"], "ApplyImmediately": True}),
                f"move {target.resource_id} into the new group",
                Phase.AUTHORIZE,
                recommendation=True,
            )
        )
    return Finding(
        Status.WARN,
        f"{kind} {target.resource_id} uses the VPC's default group {defaults[0]}: every member of that group reaches it; give it a dedicated group",
        evidence,
        tuple(advice),
    )


@check(
    "sg.connector-egress",
    permissions=("ec2:DescribeSecurityGroupRules",),
    fix_permissions=("ec2:AuthorizeSecurityGroupEgress",),
)
def connector_egress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The connector's security group lets traffic out to the database and cache ports.

    Example:
      - id: connector-egress
        check: sg.connector-egress
    """
    if not topology.connector:
        return Finding(Status.SKIPPED, "the service has no VPC connector")
    targets = topology.found_targets
    if not targets:
        return Finding(Status.SKIPPED, "no database or cache found")
    evidence, changes, fine, blocked = [], [], [], []
    for target in targets:
        port = target.endpoint_port or target.port
        networks = [ipaddress.ip_network(c) for c in topology.cidrs(target.subnet_ids)]
        allowing = None
        for group in topology.connector_sg_ids:
            for rule in topology.sg_rules.get(group, []):
                if not rule.get("IsEgress") or not covers_port(rule, port):
                    continue
                referenced = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
                cidr = rule.get("CidrIpv4")
                if referenced in target.security_group_ids or (
                    cidr and networks and all(n.subnet_of(ipaddress.ip_network(cidr, strict=False)) for n in networks if n.version == 4)
                ):
                    allowing = rule
                    break
            if allowing:
                break
        if allowing:
            fine.append(f"{target.kind} tcp/{port} by {describe_rule(allowing)}")
            continue
        blocked.append(f"{target.kind} {target.resource_id} on tcp/{port}")
        group = topology.connector_sg_ids[0]
        permission = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": target.security_group_ids[0], "Description": f"to {target.kind} {target.resource_id}"}]}
        evidence.append(Evidence(f"ec2 describe_security_group_rules group-id={group}", "egress: " + ("; ".join(describe_rule(r) for r in topology.sg_rules.get(group, []) if r.get("IsEgress")) or "none")))
        changes.append(
            Change(
                ApiCall("ec2", "authorize_security_group_egress", {"GroupId": group, "IpPermissions": [permission]}),
                f"allow the connector's {group} out to {target.kind} {target.resource_id} on tcp/{port}",
                Phase.AUTHORIZE,
                inverse=ApiCall("ec2", "revoke_security_group_egress", {"GroupId": group, "IpPermissions": [permission]}),
            )
        )
    if changes:
        return Finding(Status.FAIL, "the connector's security group does not let traffic out to " + ", ".join(blocked), tuple(evidence), tuple(changes))
    return Finding(Status.OK, "egress allowed: " + "; ".join(fine), tuple(evidence))
