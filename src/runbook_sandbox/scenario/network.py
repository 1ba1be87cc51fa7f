"""The network sections of a scenario: VPCs (subnets, route tables, NAT gateways, network ACLs),
peerings, prefix lists, and where a resource is placed (subnets of one VPC, groups of that VPC)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from runbook.validation import join
from runbook.validation import kind as _kind
from runbook_sandbox.scenario.fields import Fields
from runbook_sandbox.scenario.model import (
    NaclEntry,
    NatGateway,
    NetworkAcl,
    PrefixList,
    Route,
    RouteTable,
    SecurityGroup,
    Subnet,
    Vpc,
    VpcEndpoint,
    VpcPeering,
)


class NetworkParser(Fields):
    """vpcs:, vpc_peerings:, prefix_lists:, vpc_endpoints:, and the placement of a resource in them."""

    GATEWAY_SERVICES = ("s3", "dynamodb")

    def vpc_endpoints(self, value: Any, vpcs: tuple[Vpc, ...], subnets: dict[str, Subnet],
                      groups: dict[str, SecurityGroup]) -> tuple[VpcEndpoint, ...]:
        out: list[VpcEndpoint] = []
        for i, item in enumerate(self.seq(value, "vpc_endpoints")):
            path = join("vpc_endpoints", i)
            b = self.mapping(item, path, ("service", "vpc", "subnets", "security_groups", "route_tables",
                                          "private_dns"), required=("service",))
            service = self.string(b["service"], join(path, "service"))
            if not re.match(r"^[a-z0-9][a-z0-9.-]*$", service):
                raise self.fail(join(path, "service"), f"{service!r} is not a service name such as ecr.api or s3")
            if service in self.GATEWAY_SERVICES:
                vpc_name = self.string(b.get("vpc"), join(path, "vpc"), default=vpcs[0].name if len(vpcs) == 1 else None)
                vpc = next((v for v in vpcs if v.name == vpc_name), None)
                if vpc is None:
                    raise self.fail(join(path, "vpc"), f"no vpc {vpc_name!r}")
                for key in ("subnets", "security_groups"):
                    if key in b:
                        raise self.fail(join(path, key), f"a {service} endpoint is a Gateway one: give route_tables")
                tables = self.names(b.get("route_tables"), join(path, "route_tables"))
                known = {t.name for t in vpc.route_tables} | {"main"}
                for j, table in enumerate(tables):
                    if table not in known:
                        raise self.fail(join(join(path, "route_tables"), j),
                                        f"no route table {table!r} in vpc {vpc.name!r}")
                endpoint = VpcEndpoint(service=service, vpc=vpc.name, type="Gateway", route_tables=tables)
            else:
                if "route_tables" in b:
                    raise self.fail(join(path, "route_tables"), "an Interface endpoint has subnets, not route tables")
                names, sgs, vpc_name = self.placement(b, path, subnets, groups)
                if "vpc" in b and b["vpc"] != vpc_name:
                    raise self.fail(join(path, "vpc"), f"the subnets are in vpc {vpc_name!r}")
                endpoint = VpcEndpoint(service=service, vpc=vpc_name, type="Interface", subnets=names,
                                       security_groups=sgs,
                                       private_dns=self.boolean(b.get("private_dns"), join(path, "private_dns"), True))
            if any(e.service == service and e.vpc == endpoint.vpc for e in out):
                raise self.fail(join(path, "service"), f"vpc {endpoint.vpc!r} has a {service} endpoint already")
            out.append(endpoint)
        return tuple(out)

    def vpc_peerings(self, value: Any, vpcs: tuple[Vpc, ...]) -> tuple[VpcPeering, ...]:
        names = {v.name: v for v in vpcs}
        out: list[VpcPeering] = []
        for i, item in enumerate(self.seq(value, "vpc_peerings")):
            path = join("vpc_peerings", i)
            b = self.mapping(item, path, ("name", "vpcs"), required=("name", "vpcs"))
            name = self.symbol(b["name"], join(path, "name"))
            if any(p.name == name for p in out):
                raise self.fail(join(path, "name"), f"peering {name!r} is defined twice")
            pair = self.names(b["vpcs"], join(path, "vpcs"), minimum=2)
            if len(pair) != 2:
                raise self.fail(join(path, "vpcs"), "a peering joins exactly two VPCs")
            for j, vpc in enumerate(pair):
                if vpc not in names:
                    raise self.fail(join(join(path, "vpcs"), j), f"no vpc {vpc!r} (defined: {', '.join(names)})")
            a, b_ = (ipaddress.ip_network(names[v].cidr) for v in pair)
            if a.overlaps(b_):
                raise self.fail(join(path, "vpcs"), f"{names[pair[0]].cidr} and {names[pair[1]].cidr} overlap: AWS peers only disjoint VPCs")
            if any(set(p.vpcs) == set(pair) for p in out):
                raise self.fail(join(path, "vpcs"), f"vpcs {pair[0]!r} and {pair[1]!r} are already peered")
            out.append(VpcPeering(name, (pair[0], pair[1])))
        return tuple(out)

    def prefix_lists(self, value: Any) -> tuple[PrefixList, ...]:
        spec = self.mapping(value, "prefix_lists")
        out: list[PrefixList] = []
        for name, body in spec.items():
            path = join("prefix_lists", name)
            self.symbol(name, path)
            b = self.mapping(body, path, ("address_family", "entries", "max_entries"), required=("entries",))
            family = self.choice(b.get("address_family"), join(path, "address_family"), ("IPv4", "IPv6"), default="IPv4")
            entries = []
            for i, entry in enumerate(self.seq(b["entries"], join(path, "entries"))):
                cidr = self.cidr(entry, join(join(path, "entries"), i), v6=family == "IPv6")
                if cidr in entries:
                    raise self.fail(join(join(path, "entries"), i), f"{cidr} is listed twice")
                entries.append(cidr)
            max_entries = self.integer(b.get("max_entries"), join(path, "max_entries"), default=max(1, len(entries)), lo=1, hi=1000)
            if len(entries) > max_entries:
                raise self.fail(join(path, "max_entries"), f"{len(entries)} entries do not fit in max_entries {max_entries}")
            out.append(PrefixList(name, family, tuple(entries), max_entries))
        return tuple(out)

    def vpcs(self, value: Any, region: str) -> tuple[Vpc, ...]:
        spec = self.mapping(value, "vpcs")
        if not spec:
            raise self.fail("vpcs", "needs at least one VPC")
        vpcs: list[Vpc] = []
        seen_subnets: dict[str, str] = {}
        for vpc_name, body in spec.items():
            path = join("vpcs", vpc_name)
            self.symbol(vpc_name, path)
            b = self.mapping(
                body, path,
                ("cidr", "dns_support", "dns_hostnames", "subnets", "route_tables", "internet_gateway",
                 "nat_gateways", "network_acls"),
                required=("cidr", "subnets"),
            )
            cidr = self.cidr(b["cidr"], join(path, "cidr"))
            net = ipaddress.ip_network(cidr)
            if not 16 <= net.prefixlen <= 28:
                raise self.fail(join(path, "cidr"), f"a VPC block must be /16 to /28, got /{net.prefixlen}")
            igw = b.get("internet_gateway")
            igw = self.symbol(igw, join(path, "internet_gateway")) if igw is not None else None

            subnet_specs = self.mapping(b["subnets"], join(path, "subnets"))
            if not subnet_specs:
                raise self.fail(join(path, "subnets"), "needs at least one subnet")
            rt_specs = self.mapping(b.get("route_tables"), join(path, "route_tables"))
            nat_specs = self.mapping(b.get("nat_gateways"), join(path, "nat_gateways"))

            subnets: list[Subnet] = []
            for sn_name, sn_body in subnet_specs.items():
                sp = join(join(path, "subnets"), sn_name)
                self.symbol(sn_name, sp)
                if sn_name in seen_subnets:
                    raise self.fail(sp, f"subnet name {sn_name!r} is already used in vpc {seen_subnets[sn_name]!r}")
                seen_subnets[sn_name] = vpc_name
                sb = self.mapping(sn_body, sp, ("cidr", "az", "route_table"), required=("cidr",))
                sn_cidr = self.cidr(sb["cidr"], join(sp, "cidr"))
                sn_net = ipaddress.ip_network(sn_cidr)
                if not sn_net.subnet_of(net):  # type: ignore[arg-type]
                    raise self.fail(join(sp, "cidr"), f"{sn_cidr} is not inside the VPC block {cidr}")
                if not 16 <= sn_net.prefixlen <= 28:
                    raise self.fail(join(sp, "cidr"), f"a subnet block must be /16 to /28, got /{sn_net.prefixlen}")
                for other in subnets:
                    if sn_net.overlaps(ipaddress.ip_network(other.cidr)):
                        raise self.fail(join(sp, "cidr"), f"{sn_cidr} overlaps subnet {other.name!r} ({other.cidr})")
                az = self.string(sb.get("az"), join(sp, "az"), default=f"{region}a")
                if not re.match(rf"^{re.escape(region)}[a-z]$", az):
                    raise self.fail(join(sp, "az"), f"{az!r} is not an availability zone of {region}")
                rt = sb.get("route_table")
                if rt is not None:
                    rt = self.symbol(rt, join(sp, "route_table"))
                    if rt not in rt_specs:
                        raise self.fail(join(sp, "route_table"), f"no route table {rt!r} in vpc {vpc_name!r}")
                subnets.append(Subnet(sn_name, vpc_name, sn_cidr, az, rt))
            subnet_names = {s.name for s in subnets}

            nats: list[NatGateway] = []
            for nat_name, nat_body in nat_specs.items():
                np_ = join(join(path, "nat_gateways"), nat_name)
                self.symbol(nat_name, np_)
                nb = self.mapping(nat_body, np_, ("subnet", "connectivity", "state"), required=("subnet",))
                sn = self.symbol(nb["subnet"], join(np_, "subnet"))
                if sn not in subnet_names:
                    raise self.fail(join(np_, "subnet"), f"no subnet {sn!r} in vpc {vpc_name!r}")
                nats.append(NatGateway(
                    nat_name, sn,
                    self.choice(nb.get("connectivity"), join(np_, "connectivity"), ("public", "private"), default="public"),
                    self.choice(nb.get("state"), join(np_, "state"), ("available", "deleted"), default="available"),
                ))
            nat_names = {n.name for n in nats}

            tables: list[RouteTable] = []
            for rt_name, rt_body in rt_specs.items():
                rp = join(join(path, "route_tables"), rt_name)
                self.symbol(rt_name, rp)
                rb = self.mapping(rt_body, rp, ("routes",))
                routes: list[Route] = []
                for i, route in enumerate(self.seq(rb.get("routes"), join(rp, "routes"))):
                    ip = join(join(rp, "routes"), i)
                    r = self.mapping(route, ip, ("destination", "nat_gateway", "internet_gateway"),
                                     required=("destination",))
                    dest = self.cidr(r["destination"], join(ip, "destination"))
                    targets = [k for k in ("nat_gateway", "internet_gateway") if r.get(k) is not None]
                    if len(targets) != 1:
                        raise self.fail(ip, "needs exactly one target: nat_gateway or internet_gateway")
                    target = self.symbol(r[targets[0]], join(ip, targets[0]))
                    if targets[0] == "nat_gateway" and target not in nat_names:
                        raise self.fail(join(ip, "nat_gateway"), f"no NAT gateway {target!r} in vpc {vpc_name!r}")
                    if targets[0] == "internet_gateway" and target != igw:
                        raise self.fail(join(ip, "internet_gateway"),
                                        f"vpc {vpc_name!r} has no internet gateway {target!r}")
                    if any(x.destination == dest for x in routes):
                        raise self.fail(join(ip, "destination"), f"a route to {dest} is already listed")
                    routes.append(Route(dest, **{targets[0]: target}))
                tables.append(RouteTable(rt_name, tuple(routes)))

            acls = self.network_acls(b.get("network_acls"), join(path, "network_acls"), vpc_name, subnet_names)
            vpcs.append(Vpc(
                name=vpc_name,
                cidr=cidr,
                dns_support=self.boolean(b.get("dns_support"), join(path, "dns_support"), True),
                dns_hostnames=self.boolean(b.get("dns_hostnames"), join(path, "dns_hostnames"), True),
                subnets=tuple(subnets),
                route_tables=tuple(tables),
                internet_gateway=igw,
                nat_gateways=tuple(nats),
                network_acls=acls,
            ))
        return tuple(vpcs)

    def network_acls(self, value: Any, path: str, vpc_name: str, subnet_names: set[str]) -> tuple[NetworkAcl, ...]:
        spec = self.mapping(value, path)
        acls: list[NetworkAcl] = []
        claimed: dict[str, str] = {}
        for acl_name, body in spec.items():
            ap = join(path, acl_name)
            self.symbol(acl_name, ap)
            b = self.mapping(body, ap, ("subnets", "entries"))
            subnets = self.names(b.get("subnets"), join(ap, "subnets"), minimum=0)
            for i, sn in enumerate(subnets):
                if sn not in subnet_names:
                    raise self.fail(join(join(ap, "subnets"), i), f"no subnet {sn!r} in vpc {vpc_name!r}")
                if sn in claimed:
                    raise self.fail(join(join(ap, "subnets"), i),
                                    f"subnet {sn!r} is already associated with network ACL {claimed[sn]!r}")
                claimed[sn] = acl_name
            if acl_name == "default" and subnets:
                raise self.fail(join(ap, "subnets"),
                                "the default network ACL holds every subnet not listed elsewhere; list no subnets")
            entries: list[NaclEntry] = []
            for i, entry in enumerate(self.seq(b.get("entries"), join(ap, "entries"))):
                ep = join(join(ap, "entries"), i)
                e = self.mapping(entry, ep, ("rule", "action", "egress", "protocol", "port", "from_port",
                                             "to_port", "cidr", "cidr_ipv6"), required=("rule", "action", "protocol"))
                rule = self.integer(e["rule"], join(ep, "rule"), lo=1, hi=32766)
                action = self.choice(e["action"], join(ep, "action"), ("allow", "deny"))
                egress = self.boolean(e.get("egress"), join(ep, "egress"), False)
                protocol = self.nacl_protocol(e["protocol"], join(ep, "protocol"))
                from_port, to_port = self.ports(e, ep, protocol in ("6", "17"))
                if e.get("cidr") is not None and e.get("cidr_ipv6") is not None:
                    raise self.fail(join(ep, "cidr_ipv6"), "give either cidr or cidr_ipv6, not both")
                if e.get("cidr_ipv6") is not None:
                    cidr = self.cidr(e["cidr_ipv6"], join(ep, "cidr_ipv6"), v6=True)
                else:
                    cidr = self.cidr(e.get("cidr", "0.0.0.0/0"), join(ep, "cidr"))
                if acl_name == "default" and rule == 100:
                    raise self.fail(join(ep, "rule"), "rule 100 of the default network ACL is AWS's allow-all entry")
                if any(x.rule == rule and x.egress == egress for x in entries):
                    raise self.fail(join(ep, "rule"),
                                    f"rule {rule} is already used for {'egress' if egress else 'ingress'}")
                entries.append(NaclEntry(rule, action, egress, protocol, from_port, to_port, cidr))
            acls.append(NetworkAcl(acl_name, subnets, tuple(entries)))
        return tuple(acls)

    def nacl_protocol(self, value: Any, path: str) -> str:
        names = {"tcp": "6", "udp": "17", "icmp": "1", "-1": "-1", "all": "-1"}
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected tcp, udp, icmp, -1 or a protocol number, got {_kind(value)}")
        text = str(value).lower()
        if text in names:
            return names[text]
        if text.isdigit() and 0 <= int(text) <= 255:
            return str(int(text))
        raise self.fail(path, f"expected tcp, udp, icmp, -1 or a protocol number, got {value!r}")

    def ports(self, spec: dict, path: str, needs_ports: bool) -> tuple[int | None, int | None]:
        has_port = spec.get("port") is not None
        has_range = spec.get("from_port") is not None or spec.get("to_port") is not None
        if has_port and has_range:
            raise self.fail(join(path, "port"), "give either port or from_port/to_port, not both")
        if not needs_ports:
            if has_port or has_range:
                key = "port" if has_port else "from_port"
                raise self.fail(join(path, key), "ports apply only to tcp and udp")
            return None, None
        if has_port:
            p = self.integer(spec["port"], join(path, "port"), lo=0, hi=65535)
            return p, p
        if not has_range:
            raise self.fail(path, "tcp and udp need port, or from_port and to_port")
        lo = self.integer(spec.get("from_port"), join(path, "from_port"), lo=0, hi=65535)
        hi = self.integer(spec.get("to_port"), join(path, "to_port"), lo=0, hi=65535)
        if lo > hi:
            raise self.fail(join(path, "to_port"), f"to_port {hi} is below from_port {lo}")
        return lo, hi

    def placement(self, b: dict, path: str, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                  *, min_subnets: int = 1) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        names = self.names(b.get("subnets"), join(path, "subnets"), minimum=min_subnets)
        vpc = None
        for i, sn in enumerate(names):
            if sn not in subnets:
                raise self.fail(join(join(path, "subnets"), i),
                                f"no subnet {sn!r} (defined: {', '.join(sorted(subnets))})")
            if vpc is None:
                vpc = subnets[sn].vpc
            elif subnets[sn].vpc != vpc:
                raise self.fail(join(join(path, "subnets"), i),
                                f"subnet {sn!r} is in vpc {subnets[sn].vpc!r}, the others in {vpc!r}")
        sgs = self.names(b.get("security_groups"), join(path, "security_groups"))
        for i, sg in enumerate(sgs):
            if sg not in groups:
                raise self.fail(join(join(path, "security_groups"), i),
                                f"no security group {sg!r} (defined: {', '.join(sorted(groups))})")
            if groups[sg].vpc != vpc:
                raise self.fail(join(join(path, "security_groups"), i),
                                f"security group {sg!r} is in vpc {groups[sg].vpc!r}, the subnets in {vpc!r}")
        assert vpc is not None
        return names, sgs, vpc
