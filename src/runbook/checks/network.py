"""VPC-level checks: one VPC, routes to a NAT, DNS, network ACLs."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from runbook.topology import Topology
from runbook.model import ApiCall, Change, Evidence, Finding, Phase, Status
from runbook.registry import check

# Return traffic goes to the app's ephemeral port. The platforms run the app on Linux, whose default
# ip_local_port_range is 32768-60999: a deny outside it (say on 5432 inbound in one of the workload's
# subnets) never meets a reply. (AWS's advice to allow 1024-65535 covers every client OS.)

# What these checks read is discovery's to read (discovery.PERMISSIONS): only what fixes need is declared here.
EPHEMERAL = (32768, 60999)


@check("network.same-vpc")
def same_vpc(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The workload's subnets are in the VPC of the database and of the cache. Subnet overlap is shown, not judged.

    Example:
      - id: same-vpc
        check: network.same-vpc
    """
    noun = topology.workload.noun
    if topology.workload.outside_vpc:
        return Finding(Status.SKIPPED, topology.workload.outside_vpc)
    client_vpcs = topology.client_vpc_ids
    client_subnets = topology.client_subnet_ids
    evidence = [Evidence("ec2 describe_subnets", f"{noun} subnets {', '.join(client_subnets)} are in {', '.join(sorted(client_vpcs)) or '?'}")]
    problems = []
    targets = topology.found_targets
    for target in targets:
        overlap = [s for s in client_subnets if s in target.subnet_ids]
        evidence.append(
            Evidence(
                target.source,
                f"{target.kind} {target.resource_id} is in {target.vpc_id or '?'} on subnets {', '.join(target.subnet_ids) or '?'}; "
                f"shared with the {noun}: {', '.join(overlap) or 'none'}",
            )
        )
        if target.vpc_id and target.vpc_id not in client_vpcs:
            problems.append(f"{target.kind} {target.resource_id} is in {target.vpc_id}, the {noun} in {', '.join(sorted(client_vpcs))}")
    if not targets:
        return Finding(Status.SKIPPED, "no database or cache found to compare with", tuple(evidence))
    if problems:
        return Finding(Status.FAIL, "; ".join(problems) + f": a {noun} reaches only its own VPC", tuple(evidence))
    return Finding(Status.OK, f"{noun}, database and cache share {', '.join(sorted(client_vpcs))}", tuple(evidence))


def _route_target(route: Mapping[str, Any] | None) -> str:
    if route is None:
        return "no 0.0.0.0/0 route"
    target = (route.get("NatGatewayId") or route.get("GatewayId") or route.get("TransitGatewayId")
              or route.get("NetworkInterfaceId") or route.get("VpcPeeringConnectionId") or "?")
    return f"0.0.0.0/0 -> {target} ({route.get('State', '?')})"


def _default_route(table: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return next((r for r in (table or {}).get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)


# _nat_leads_out's answer when the NAT gateway's own way out was not read.
NAT_UNFOLLOWED = "not followed"


def _nat_leads_out(topology: Topology, nat_id: str) -> tuple[str | None, Evidence]:
    """Why traffic sent to this NAT gateway does not reach the internet (None: it does;
    NAT_UNFOLLOWED: where it leads was not read), with the evidence."""
    nat = topology.nat_gateways.get(nat_id)
    source = f"ec2 describe_nat_gateways vpc-id={','.join(sorted(topology.client_vpc_ids)) or '?'}"
    if nat is None:
        return f"{nat_id} is not among the VPC's NAT gateways", Evidence(source, f"no NAT gateway {nat_id}")
    # AWS's default connectivity type is public.
    state, connectivity = nat.get("State"), nat.get("ConnectivityType") or "public"
    subnet = nat.get("SubnetId")
    shown = f"{nat_id} State={state} ConnectivityType={connectivity}"
    table = None
    if nat.get("AvailabilityMode") == "regional":
        # A regional NAT gateway has no subnet: its own route table (RouteTableId) leads it out.
        shown += " AvailabilityMode=regional"
        table = next((t for t in topology.route_tables if t.get("RouteTableId") == nat.get("RouteTableId")), None)
        where = f"its route table {nat.get('RouteTableId') or '(none named)'}"
    elif subnet:
        table = topology.route_table_for(subnet, nat.get("VpcId"))
        where = f"{subnet} uses {(table or {}).get('RouteTableId', 'no route table found')}"
        shown += f" in {subnet}"
    route = _default_route(table)
    if table is not None or subnet:
        shown += f"; {where}: {_route_target(route)}"
    evidence = Evidence(source, shown)
    if state != "available":
        return f"{nat_id} is {state}, not available", evidence
    if connectivity != "public":
        return f"{nat_id} is a private NAT gateway: it reaches other networks, never the internet", evidence
    if table is None and not subnet:
        return NAT_UNFOLLOWED, evidence
    if route is None or not str(route.get("GatewayId", "")).startswith("igw-") or route.get("State") == "blackhole":
        return f"{nat_id}'s {'subnet ' + subnet if subnet else 'route table'} does not route 0.0.0.0/0 to an internet gateway", evidence
    return None, evidence


@check("network.nat-egress")
def nat_egress(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """Each of the workload's subnets routes 0.0.0.0/0 to an available public NAT gateway whose own subnet
    routes 0.0.0.0/0 to an internet gateway: with VPC egress, all outbound traffic goes through the VPC.

    A warning, never a failure: the platform's own traffic (pulling the image, say) need not take
    that way, and no API shows whether the app calls the internet at all.

    Example:
      - id: nat-egress
        check: network.nat-egress
    """
    noun = topology.workload.noun
    if topology.workload.outside_vpc:
        return Finding(Status.SKIPPED, topology.workload.outside_vpc)
    evidence, public, no_nat, elsewhere, nats = [], [], [], [], {}
    for subnet in topology.client_subnet_ids:
        table = topology.route_table_for(subnet)
        if table is None:
            evidence.append(Evidence("ec2 describe_route_tables", f"{subnet}: no route table found"))
            no_nat.append(subnet)
            continue
        default = _default_route(table)
        evidence.append(Evidence("ec2 describe_route_tables", f"{subnet} uses {table['RouteTableId']}: {_route_target(default)}"))
        if default and str(default.get("GatewayId", "")).startswith("igw-"):
            public.append(subnet)
        elif not default or (not default.get("NatGatewayId") and default.get("State") == "blackhole"):
            no_nat.append(subnet)
        elif not default.get("NatGatewayId"):
            elsewhere.append(subnet)  # a transit gateway, an appliance, a peering: not followed
        else:
            nat_id = default["NatGatewayId"]
            if nat_id not in nats:
                nats[nat_id], seen = _nat_leads_out(topology, nat_id)
                evidence.append(seen)
            if default.get("State") == "blackhole" or nats[nat_id] not in (None, NAT_UNFOLLOWED):
                no_nat.append(subnet)
            elif nats[nat_id] == NAT_UNFOLLOWED:
                elsewhere.append(subnet)
    consequence = "with VPC egress, calls to the internet (third-party APIs) time out, if the app makes any"
    if public:
        return Finding(
            Status.WARN,
            f"{', '.join(public)} route 0.0.0.0/0 to an internet gateway: a {noun}'s interfaces get no public address there, "
            f"so {consequence}; use private subnets with a NAT route",
            tuple(evidence),
        )
    if no_nat:
        reasons = "; ".join(why for why in nats.values() if why and why != NAT_UNFOLLOWED)
        return Finding(
            Status.WARN,
            f"{', '.join(no_nat)} have no working route to the internet through a NAT gateway"
            + (f" ({reasons})" if reasons else "") + f": {consequence}",
            tuple(evidence),
        )
    if elsewhere:
        return Finding(
            Status.WARN,
            f"{', '.join(elsewhere)} route 0.0.0.0/0 to something whose way out is not followed here, "
            "so whether the app can reach the internet is not known",
            tuple(evidence),
        )
    return Finding(Status.OK, f"every {noun} subnet routes 0.0.0.0/0 to an available public NAT gateway that routes to an internet gateway", tuple(evidence))


@check("network.vpc-dns", fix_permissions=("ec2:ModifyVpcAttribute",))
def vpc_dns(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The VPC resolves AWS endpoint names: enableDnsSupport is on (and enableDnsHostnames, advice).

    The Amazon DNS server answers only with enableDnsSupport on; RDS and ElastiCache names are
    public names that resolve to private addresses, so they need nothing more. enableDnsHostnames
    matters to interface VPC endpoints with private DNS, which this runbook does not read: advice.

    Example:
      - id: vpc-dns
        check: network.vpc-dns
    """
    vpcs = sorted(topology.client_vpc_ids) or sorted(topology.vpcs)
    if not vpcs:
        return Finding(Status.SKIPPED, "no VPC to inspect")
    evidence, changes, advice = [], [], []
    for vpc in vpcs:
        attrs = topology.vpcs.get(vpc, {})
        evidence.append(Evidence("ec2 describe_vpc_attribute", f"{vpc}: enableDnsSupport={attrs.get('EnableDnsSupport')}, enableDnsHostnames={attrs.get('EnableDnsHostnames')}"))
        for flag, attribute, fixes in (("EnableDnsSupport", "enableDnsSupport", True), ("EnableDnsHostnames", "enableDnsHostnames", False)):
            if attrs.get(flag) is False:
                (changes if fixes else advice).append(
                    Change(
                        ApiCall("ec2", "modify_vpc_attribute", {"VpcId": vpc, flag: {"Value": True}}),
                        f"turn on {attribute} in {vpc}" + ("" if fixes else " (for interface endpoints with private DNS)"),
                        Phase.AUTHORIZE,
                        inverse=ApiCall("ec2", "modify_vpc_attribute", {"VpcId": vpc, flag: {"Value": False}}),
                        recommendation=not fixes,
                    )
                )
    if changes:
        return Finding(Status.FAIL, "VPC DNS support is off: RDS and ElastiCache host names do not resolve", tuple(evidence), tuple(changes + advice))
    if advice:
        return Finding(
            Status.WARN,
            "enableDnsHostnames is off: RDS and ElastiCache names still resolve (DNS support is on); "
            "interface VPC endpoints with private DNS would not",
            tuple(evidence),
            tuple(advice),
        )
    return Finding(Status.OK, "DNS support and DNS host names are on", tuple(evidence))


def _entry_ports(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    protocol = str(entry.get("Protocol"))
    if protocol == "-1":
        return (0, 65535)
    if protocol not in ("6", "tcp"):
        return None
    ports = entry.get("PortRange") or {}
    return (ports.get("From", 0), ports.get("To", 65535))


def _applies(entry: Mapping[str, Any], peer_cidrs: list[str]) -> bool:
    """A DENY matters if it touches any peer address; an ALLOW only helps if it covers every peer.

    The peers are IPv4 subnet blocks (the workload's traffic leaves from its subnets' IPv4
    addresses), so an IPv6 entry (Ipv6CidrBlock) never applies to them."""
    block = entry.get("CidrBlock")
    if not block:
        return False
    if not peer_cidrs:
        return True
    network = ipaddress.ip_network(block, strict=False)
    peers = [ipaddress.ip_network(c) for c in peer_cidrs]
    if entry.get("RuleAction") == "deny":
        return any(network.overlaps(p) for p in peers)
    return all(p.version == network.version and p.subnet_of(network) for p in peers)


def acl_verdict(acl: Mapping[str, Any], egress: bool, ports: tuple[int, int], peer_cidrs: list[str]) -> tuple[bool, str]:
    """Walk the entries by rule number like AWS does; a DENY on any part of `ports` before an ALLOW covering all of it blocks."""
    entries = sorted((e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress), key=lambda e: e["RuleNumber"])
    low, high = ports
    ipv6_allows = []
    for entry in entries:
        span = _entry_ports(entry)
        if span is None or span[1] < low or span[0] > high:
            continue
        if entry.get("Ipv6CidrBlock") and entry.get("RuleAction") == "allow":
            ipv6_allows.append(f"rule {entry['RuleNumber']} ({entry['Ipv6CidrBlock']})")
        if not _applies(entry, peer_cidrs):
            continue
        rule = f"rule {entry['RuleNumber']} {entry.get('RuleAction')} {entry.get('CidrBlock')} ports {span[0]}-{span[1]}"
        if entry.get("RuleAction") == "deny":
            if ipv6_allows:
                rule += f" ({', '.join(ipv6_allows)} before it allow only IPv6 traffic)"
            return False, rule
        if span[0] <= low and span[1] >= high:
            return True, rule
    if ipv6_allows:
        return False, f"no IPv4 rule allows it (implicit deny); {', '.join(ipv6_allows)} allow only IPv6 traffic"
    return False, "no rule allows it (implicit deny)"


@check("network.nacl")
def nacl(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """Network ACLs are stateless: the port must pass both ways, and so must the ephemeral return ports.

    Example:
      - id: nacl
        check: network.nacl
    """
    if topology.workload.outside_vpc:
        return Finding(Status.SKIPPED, topology.workload.outside_vpc)
    targets = topology.found_targets
    if not targets:
        return Finding(Status.SKIPPED, "no database or cache found")

    client_cidrs = topology.cidrs(topology.client_subnet_ids)
    evidence, problems = [], []
    for target in targets:
        port = target.endpoint_port or target.port
        # Where the target's addresses can be: the subnets of its zones (a failover's included).
        target_subnets = topology.address_subnets(target)
        target_cidrs = topology.cidrs(target_subnets)
        legs = []
        for subnet in topology.client_subnet_ids:
            legs += [(subnet, True, (port, port), target_cidrs, f"out to {target.kind} port {port}"),
                     (subnet, False, EPHEMERAL, target_cidrs, "return traffic to the app's ephemeral ports (Linux's 32768-60999)")]
        for subnet in target_subnets:
            legs += [(subnet, False, (port, port), client_cidrs, f"in on {target.kind} port {port}"),
                     (subnet, True, EPHEMERAL, client_cidrs, "replies to the app's ephemeral ports (Linux's 32768-60999)")]
        for subnet, egress, ports, peers, what in legs:
            acl = topology.network_acl_for(subnet)
            if acl is None:
                continue
            allowed, rule = acl_verdict(acl, egress, ports, peers)
            if not allowed:
                problems.append(f"{acl['NetworkAclId']} on {subnet} blocks {what}: {rule}")
                evidence.append(Evidence("ec2 describe_network_acls", f"{acl['NetworkAclId']} ({subnet}, {'egress' if egress else 'ingress'}): {rule}"))
    if problems:
        return Finding(Status.FAIL, problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""), tuple(evidence))
    acls = sorted({a["NetworkAclId"] for a in topology.network_acls})
    return Finding(Status.OK, f"network ACLs {', '.join(acls) or '(none found)'} pass the ports both ways", tuple(evidence))
