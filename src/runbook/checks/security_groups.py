"""Security-group checks: does the target admit the workload, and may the workload reach it?"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from runbook.topology import Target, Topology
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.registry import Param, check


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


def _source(rule: Mapping[str, Any], owner: str | None) -> str:
    referenced = rule.get("ReferencedGroupInfo") or {}
    if referenced.get("GroupId"):
        where = []
        if referenced.get("VpcPeeringConnectionId"):
            where.append(f"in {referenced.get('VpcId') or 'a peered VPC'} via {referenced['VpcPeeringConnectionId']}")
        shown = referenced["GroupId"]
        if referenced.get("UserId") and referenced["UserId"] != (rule.get("GroupOwnerId") or owner):
            shown = f"{referenced['UserId']}/{shown}"
        return shown + (f" ({', '.join(where)})" if where else "")
    return rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId") or "?"


def describe_rule(rule: Mapping[str, Any], owner: str | None = None) -> str:
    """`sgr-…: tcp/5432 from sg-…`; a group of another account than `owner` (the rule's group's) as `account/sg-…`."""
    protocol = "all traffic" if str(rule.get("IpProtocol")) == "-1" else f"{rule.get('IpProtocol')}"
    ports = ""
    if str(rule.get("IpProtocol")) != "-1":
        low, high = rule.get("FromPort"), rule.get("ToPort")
        ports = f"/{low}" if low == high else f"/{low}-{high}"
    direction = "to" if rule.get("IsEgress") else "from"
    return f"{rule.get('SecurityGroupRuleId', '?')}: {protocol}{ports} {direction} {_source(rule, owner)}"


@dataclass(frozen=True)
class Admission:
    """What a set of security-group rules concludes about one peer (the workload, or a target).

    `rules` admit it: one rule naming a group the peer's network interfaces carry, or CIDR and
    prefix-list rules whose blocks together cover every peer network. `uncovered`: the peer
    networks the blocks leave (partly) uncovered, when some block covers part of them.
    `unresolved`: what cannot be read (a prefix list's entries), so cannot be concluded.
    `foreign`: rules naming groups the peer's interfaces are not in (a group of a peered VPC or
    of another account), which admit something else. `public`: the public blocks left out.
    """

    rules: tuple[Mapping[str, Any], ...]
    uncovered: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    public: tuple[str, ...] = ()  # 0.0.0.0/0 and ::/0 blocks left out on ingress

    @property
    def admitted(self) -> bool:
        return bool(self.rules)

    def notes(self) -> list[str]:
        return [*self.foreign, *self.unresolved, *self.public]


def _owner(topology: Topology, group_id: str) -> str | None:
    return (topology.security_groups.get(group_id) or {}).get("OwnerId")


def _described(topology: Topology, rule: Mapping[str, Any]) -> str:
    return describe_rule(rule, rule.get("GroupOwnerId") or _owner(topology, rule.get("GroupId", "")))


def admission(
    topology: Topology,
    group_ids: Iterable[str],
    port: int,
    peer_groups: Iterable[str],
    peer_cidrs: list[str],
    *,
    egress: bool = False,
    peer: str = "the service",
) -> Admission:
    """Whether the ingress (or egress) rules of `group_ids` let tcp/`port` traffic from (to) a peer
    whose network interfaces carry `peer_groups` and sit in the networks `peer_cidrs`.

    A rule naming one of `peer_groups` admits the peer wherever it sits. CIDR rules and the
    entries of prefix-list rules count together: the peer is admitted when their union covers
    every one of its IPv4 networks, one rule per subnet as well as one for all. On ingress,
    0.0.0.0/0 does not count: sg.no-public-ingress revokes it, and the workload must keep a way
    in once it is gone (the interlock). IPv6 blocks do not count for IPv4 networks.
    """
    sources = set(peer_groups)
    networks = [ipaddress.ip_network(c, strict=False) for c in peer_cidrs]
    blocks: list[tuple[Any, Mapping[str, Any]]] = []  # (network, the rule it came from)
    unresolved: list[str] = []
    foreign: list[str] = []
    public: list[str] = []
    for group_id in group_ids:
        for rule in topology.sg_rules.get(group_id, []):
            if bool(rule.get("IsEgress")) != egress or not covers_port(rule, port):
                continue
            referenced = rule.get("ReferencedGroupInfo") or {}
            if referenced.get("GroupId"):
                if referenced["GroupId"] in sources:
                    return Admission((rule,))
                owner = rule.get("GroupOwnerId") or _owner(topology, group_id)
                if referenced.get("VpcPeeringConnectionId") or (referenced.get("UserId") and owner and referenced["UserId"] != owner):
                    if referenced.get("UserId") and owner and referenced["UserId"] != owner:
                        kind = f"a group of account {referenced['UserId']}, which this account cannot describe"
                    else:
                        kind = f"a group of the peered VPC {referenced.get('VpcId') or '?'}"
                    foreign.append(
                        f"{describe_rule(rule, owner)} names {kind}; "
                        f"{peer}'s network interfaces carry only {', '.join(sorted(sources)) or 'no group'}, so it does not admit {peer}"
                    )
                continue
            cidrs: list[str] = []
            if rule.get("CidrIpv4"):
                cidrs = [rule["CidrIpv4"]]
            elif rule.get("PrefixListId"):
                prefix_list = topology.prefix_lists.get(rule["PrefixListId"])
                if prefix_list is None or prefix_list.get("error"):
                    why = (prefix_list or {}).get("error") or "its entries were not read"
                    unresolved.append(f"{describe_rule(rule)}: cannot tell whether prefix list {rule['PrefixListId']} covers {peer}: {why}")
                    continue
                cidrs = list(prefix_list.get("cidrs", ()))
            for cidr in cidrs:
                if not egress and cidr in PUBLIC_CIDRS:
                    public.append(f"{describe_rule(rule)}: {cidr} is not counted: {peer} needs a rule of its own, "
                                  "one that stays once the public one is revoked")
                    continue
                blocks.append((ipaddress.ip_network(cidr, strict=False), rule))
    if not networks:
        return Admission((), (), tuple(unresolved), tuple(foreign), tuple(public))
    union = list(ipaddress.collapse_addresses(b for b, _ in blocks if b.version == 4))
    uncovered = [str(n) for n in networks if n.version != 4 or not any(n.subnet_of(u) for u in union)]
    if uncovered:
        if not any(u.overlaps(n) for u in union for n in networks if n.version == 4):
            uncovered = []  # no CIDR rule comes near the peer: nothing to say about its subnets
        return Admission((), tuple(uncovered), tuple(unresolved), tuple(foreign), tuple(public))
    used: list[Mapping[str, Any]] = []
    for block, rule in blocks:
        if block.version == 4 and any(block.overlaps(n) for n in networks) and rule not in used:
            used.append(rule)
    return Admission(tuple(used), (), tuple(unresolved), tuple(foreign), tuple(public))


def admitting_rules(
    topology: Topology, group_ids: Iterable[str], port: int, source_groups: Iterable[str], source_cidrs: list[str]
) -> list[Mapping[str, Any]]:
    """The ingress rules on `group_ids` that together admit traffic on `port` from one of
    `source_groups` or from every network in `source_cidrs` (see :func:`admission`); empty if none do."""
    return list(admission(topology, group_ids, port, source_groups, source_cidrs).rules)


def _prefix_list_evidence(topology: Topology, group_ids: Iterable[str], egress: bool) -> list[Evidence]:
    """What each prefix list named by these groups' rules holds, as read."""
    named = sorted({r["PrefixListId"] for g in group_ids for r in topology.sg_rules.get(g, [])
                    if r.get("PrefixListId") and bool(r.get("IsEgress")) == egress})
    evidence = []
    for pl in named:
        entry = topology.prefix_lists.get(pl) or {"error": "not read"}
        shown = f"cannot be read: {entry['error']}" if entry.get("error") else (", ".join(entry.get("cidrs", ())) or "no entries")
        evidence.append(Evidence(f"ec2 get_managed_prefix_list_entries prefix-list-id={pl}", f"{pl}: {shown}"))
    return evidence


_TARGET_PARAMS = {"target": Param("cache", allowed=("cache", "database"))}


# What these checks read is discovery's to read (discovery.PERMISSIONS): only what fixes need is declared here.


@check(
    "sg.ingress-from-workload",
    fix_permissions=("ec2:AuthorizeSecurityGroupIngress",),
    params=_TARGET_PARAMS,
)
def ingress_from_workload(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The target's security groups admit the workload on the target's port: a rule naming one of the
    workload's groups, or CIDR and prefix-list rules that together cover every one of its subnets. Behind
    an RDS Proxy, the database admits the proxy too.

    Example:
      - id: redis-ingress
        check: sg.ingress-from-workload
        with: {target: cache}
    """
    kind = params["target"]
    workload = topology.workload
    if workload.outside_vpc:
        return Finding(Status.SKIPPED, f"{workload.outside_vpc}: its egress does not go through the VPC")
    target: Target | None = topology.targets.get(kind)
    if target is not None and target.unread:
        return Finding(Status.SKIPPED, f"no {kind} followed: {target.unread}")
    if target is None or target.resource_id is None:
        where = f"{target.env_var}={target.url}" if target else "the service environment"
        return Finding(Status.SKIPPED, f"no {kind} found: {where} names no resource this account has")
    port = target.endpoint_port or target.port
    if not target.security_group_ids:
        return Finding(Status.ERROR, f"{kind} {target.resource_id}: the API returned no security groups for it")

    client_groups = topology.client_sg_ids
    if not client_groups:
        return Finding(Status.ERROR, f"{workload.client}: the API returned no security groups for it")
    context = [
        Evidence(target.source, f"{target.env_var} names {kind} {target.resource_id} on port {port}, in security groups {', '.join(target.security_group_ids)}"),
        Evidence(workload.client_source, f"{workload.client} uses security groups {', '.join(client_groups)}"),
    ]
    legs = [ingress_leg(topology, target.security_group_ids, port, f"{kind} {target.resource_id}", client_groups,
                         topology.cidrs(topology.client_subnet_ids), f"the {workload.noun}",
                         f"{workload.rule_label} to {kind} {target.resource_id}")]
    backend = target.backend
    if backend is not None and backend.resource_id and backend.security_group_ids:
        # An RDS Proxy opens its own connections to its target, from its own groups and subnets
        # (a custom endpoint's are only where clients reach it): the database must admit those.
        proxy = (target.resource or {}).get("Proxy") or target.resource or {}
        name = proxy.get("DBProxyName", target.resource_id)
        proxy_groups = tuple(proxy.get("VpcSecurityGroupIds", target.security_group_ids))
        backend_port = backend.endpoint_port or port
        context.append(Evidence("rds describe_db_proxy_targets", f"proxy {name} forwards to database {backend.resource_id} "
                                f"on port {backend_port}, in security groups {', '.join(backend.security_group_ids)}"))
        legs.append(ingress_leg(topology, backend.security_group_ids, backend_port, f"database {backend.resource_id}",
                                 proxy_groups, topology.cidrs(proxy.get("VpcSubnetIds", target.subnet_ids)), f"proxy {name}",
                                 f"RDS Proxy {name} to database {backend.resource_id}"))
    evidence = tuple(context + [e for leg in legs for e in leg.evidence])
    changes = tuple(leg.change for leg in legs if leg.change is not None)
    summaries = [leg.summary for leg in legs]
    status = max((leg.status for leg in legs), key=lambda status: status.severity)
    if status is Status.FAIL:
        summaries = [leg.summary for leg in legs if leg.status is Status.FAIL] + [leg.summary for leg in legs if leg.status is not Status.FAIL]
    return Finding(status, "; ".join(summaries), evidence, changes)


@dataclass(frozen=True)
class _Leg:
    status: Status  # OK, WARN (cannot tell) or FAIL
    summary: str
    evidence: tuple[Evidence, ...]
    change: Change | None = None


def ingress_leg(topology: Topology, group_ids: tuple[str, ...], port: int, into: str, peer_groups: tuple[str, ...],
                 peer_cidrs: list[str], peer: str, rule_description: str) -> _Leg:
    """Whether `into` (its groups `group_ids`) admits `peer` on tcp/`port`, and the authorize that would make it so."""
    rules_seen = [
        Evidence(
            f"ec2 describe_security_group_rules group-id={group}",
            "; ".join(_described(topology, r) for r in topology.sg_rules.get(group, []) if not r.get("IsEgress")) or "no ingress rules",
        )
        for group in group_ids
    ] + _prefix_list_evidence(topology, group_ids, egress=False)
    verdict = admission(topology, group_ids, port, peer_groups, peer_cidrs, peer=peer)
    if verdict.admitted:
        together = " together cover the subnets " + ", ".join(peer_cidrs) if len(verdict.rules) > 1 else ""
        return _Leg(Status.OK, f"{into} admits {peer} on {port}: {'; '.join(_described(topology, r) for r in verdict.rules)}{together}",
                    tuple(rules_seen))
    notes = [Evidence(f"ec2 describe_security_group_rules group-id={', '.join(group_ids)}", n) for n in verdict.notes()]
    group_id, source_group = group_ids[0], peer_groups[0]
    permission = {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [{"GroupId": source_group, "Description": rule_description}],
    }
    call = ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": group_id, "IpPermissions": [permission]})
    inverse = ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": group_id, "IpPermissions": [permission]})
    uncovered = f" or covers its subnets {', '.join(verdict.uncovered)}" if verdict.uncovered else ""
    if verdict.unresolved:
        # A prefix list that cannot be read may hold the peer's subnets: not broken on evidence,
        # so the peer's own rule is advice, never applied.
        advice = Change(call, f"if the unreadable prefix list does not hold {peer}'s subnets: allow tcp/{port} from {source_group} into {group_id}",
                        Phase.AUTHORIZE, inverse=inverse, recommendation=True)
        return _Leg(Status.WARN, f"cannot tell whether {into} admits {peer} on tcp/{port}: no readable rule admits its "
                                 f"{', '.join(peer_groups)}{uncovered}, and a prefix list's entries could not be read",
                    tuple(rules_seen + notes), advice)
    why = ""
    if verdict.foreign:
        why = "; the rules naming other groups (peered VPC or another account) cannot admit it, so this is not a duplicate"
    change = Change(call, f"allow tcp/{port} from {peer}'s {source_group} into {group_id} ({into}){why}", Phase.AUTHORIZE, inverse=inverse)
    return _Leg(Status.FAIL, f"no rule on {', '.join(group_ids)} admits {peer}'s {', '.join(peer_groups)}{uncovered} on tcp/{port}",
                tuple(rules_seen + notes), change)


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
    fix_permissions=("ec2:RevokeSecurityGroupIngress",),
    params=_TARGET_PARAMS,
)
def no_public_ingress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """No ingress rule on the target's groups admits 0.0.0.0/0 or ::/0 on its port; each is revoked by its rule id.

    Run it `after` the matching sg.ingress-from-workload step, so the fix never
    cuts the app off from its database. A rule wider than the port is advice,
    never applied under --yes; at a terminal it is offered on its own (default
    No) once the workload has its own rule on every port of ours it serves.
    When the workload's traffic does not leave from inside the VPC, public rules
    are reported, never revoked.

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
    workload = topology.workload
    if public_rules and workload.outside_vpc:
        # Without VPC egress the app may reach the database over the internet: a revoke could cut it off.
        evidence.append(Evidence(workload.source, workload.network_config))
        return Finding(
            Status.WARN,
            f"{len(public_rules)} rule(s) open {kind} {target.resource_id} port {port} to the internet; {workload.outside_vpc}, "
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
    person only once the workload has its own rule on every port of ours it serves."""
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
        own = admitting_rules(topology, other.security_group_ids, other_port, topology.client_sg_ids,
                              topology.cidrs(topology.client_subnet_ids))
        if own:
            served.append(f"tcp/{other_port} of {other.kind} {other.resource_id} from {source}; "
                          f"the {topology.workload.noun} keeps {describe_rule(own[0])}")
        else:
            missing.append(f"tcp/{other_port} ({other.kind} {other.resource_id})")
    if missing:
        return Change(call, what + f" (offered at a terminal once the {topology.workload.noun} has its own rule on {', '.join(missing)})",
                      Phase.REVOKE, inverse=inverse, recommendation=True)
    ports = "every protocol and port" if str(rule["IpProtocol"]) == "-1" else f"{rule['IpProtocol']}/{rule.get('FromPort')}-{rule.get('ToPort')}"
    closes = (
        *served,
        f"{ports} of {group} from {source}, for every member of {group}: anything in it reached from the internet "
        "(not only the database and cache this runbook follows) loses that way in",
    )
    return Change(call, what, Phase.REVOKE, inverse=inverse, recommendation=True, offer=closes)


@check("sg.not-default", params=_TARGET_PARAMS)
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
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": g} for g in topology.client_sg_ids]}]}),
            f"admit only the {topology.workload.noun} on {port} in the new group",
            Phase.AUTHORIZE,
            recommendation=True,
        ),
    ]
    if kind == "cache":
        groups = [f"<id of {name}>"]
        move = {  # the call that sets a cache's groups depends on what kind of cache it is
            "elasticache describe_cache_clusters": ("modify_cache_cluster", {"CacheClusterId": target.resource_id, "SecurityGroupIds": groups, "ApplyImmediately": True}),
            "elasticache describe_serverless_caches": ("modify_serverless_cache", {"ServerlessCacheName": target.resource_id, "SecurityGroupIds": groups}),
        }.get(target.source, ("modify_replication_group", {"ReplicationGroupId": target.resource_id, "SecurityGroupIds": groups, "ApplyImmediately": True}))
        advice.append(
            Change(
                ApiCall("elasticache", *move),
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


@check("sg.workload-egress", fix_permissions=("ec2:AuthorizeSecurityGroupEgress",))
def workload_egress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The workload's security group lets traffic out to the database and cache ports.

    Example:
      - id: egress
        check: sg.workload-egress
    """
    workload = topology.workload
    if workload.outside_vpc:
        return Finding(Status.SKIPPED, workload.outside_vpc)
    targets = topology.found_targets
    if not targets:
        return Finding(Status.SKIPPED, "no database or cache found")
    if not topology.client_sg_ids:
        return Finding(Status.ERROR, f"{workload.client}: the API returned no security groups for it")
    evidence, changes, fine, blocked, unsure = [], [], [], [], []
    group = topology.client_sg_ids[0]
    egress_seen = Evidence(f"ec2 describe_security_group_rules group-id={group}", "egress: " + (
        "; ".join(_described(topology, r) for g in topology.client_sg_ids for r in topology.sg_rules.get(g, []) if r.get("IsEgress")) or "none"))
    for target in targets:
        port = target.endpoint_port or target.port
        # Egress must reach the target where its addresses are: the subnets of its zones (a failover's included).
        verdict = admission(topology, topology.client_sg_ids, port, target.security_group_ids, topology.address_cidrs(target),
                            egress=True, peer=f"{target.kind} {target.resource_id}")
        if verdict.admitted:
            fine.append(f"{target.kind} tcp/{port} by {'; '.join(_described(topology, r) for r in verdict.rules)}")
            continue
        evidence += [Evidence(f"ec2 describe_security_group_rules group-id={group}", n) for n in verdict.notes()]
        if not target.security_group_ids:
            blocked.append(f"{target.kind} {target.resource_id} on tcp/{port} (the API returned no security groups for it)")
            continue
        permission = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": target.security_group_ids[0], "Description": f"to {target.kind} {target.resource_id}"}]}
        change = Change(
            ApiCall("ec2", "authorize_security_group_egress", {"GroupId": group, "IpPermissions": [permission]}),
            ("if the unreadable prefix list does not hold its subnets: " if verdict.unresolved else "")
            + f"allow the {workload.noun}'s {group} out to {target.kind} {target.resource_id} on tcp/{port}",
            Phase.AUTHORIZE,
            inverse=ApiCall("ec2", "revoke_security_group_egress", {"GroupId": group, "IpPermissions": [permission]}),
            recommendation=bool(verdict.unresolved),
        )
        changes.append(change)
        (unsure if verdict.unresolved else blocked).append(f"{target.kind} {target.resource_id} on tcp/{port}")
    if blocked or unsure:
        evidence = [egress_seen, *_prefix_list_evidence(topology, topology.client_sg_ids, egress=True), *evidence]
    if blocked:
        return Finding(Status.FAIL, f"the {workload.noun}'s security group does not let traffic out to " + ", ".join(blocked)
                       + (f"; cannot tell for {', '.join(unsure)} (a prefix list's entries could not be read)" if unsure else ""),
                       tuple(evidence), tuple(changes))
    if unsure:
        return Finding(Status.WARN, f"cannot tell whether the {workload.noun}'s security group lets traffic out to {', '.join(unsure)}: "
                       "a prefix list's entries could not be read", tuple(evidence), tuple(changes))
    return Finding(Status.OK, "egress allowed: " + "; ".join(fine), tuple(evidence))
