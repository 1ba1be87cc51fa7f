"""The security groups of a scenario and their rules (every kind of source a rule can name)."""

from __future__ import annotations

from typing import Any

from runbook.validation import join
from runbook.validation import kind as _kind
from runbook_sandbox.scenario.fields import Fields
from runbook_sandbox.scenario.model import SecurityGroup, SgRule, Vpc
from runbook_sandbox.scenario.vocabulary import FOREIGN_GROUP, FOREIGN_PREFIX_LIST


class SecurityGroupParser(Fields):
    """security_groups: (read in two passes, so that a rule may name any group)."""

    def security_groups(self, value: Any, vpcs: tuple[Vpc, ...]) -> tuple[SecurityGroup, ...]:
        spec = dict(self.mapping(value, "security_groups"))
        vpc_names = [v.name for v in vpcs]
        # Pass 1: names, VPCs and real group names, so that rules may reference any group.
        heads: dict[str, tuple[str, str, str, dict]] = {}
        for name, body in spec.items():
            path = join("security_groups", name)
            self.symbol(name, path)
            b = self.mapping(body, path, ("vpc", "group_name", "description", "ingress", "egress"))
            vpc = b.get("vpc")
            vpc = self.symbol(vpc, join(path, "vpc")) if vpc is not None else vpc_names[0]
            if vpc not in vpc_names:
                raise self.fail(join(path, "vpc"), f"no vpc {vpc!r} (defined: {', '.join(vpc_names)})")
            group_name = self.string(b.get("group_name"), join(path, "group_name"),
                                     default="default" if name == "default" else name)
            for other, (ovpc, oname, _, _) in heads.items():
                if ovpc == vpc and oname == group_name:
                    raise self.fail(join(path, "group_name"),
                                    f"group {other!r} already has the name {group_name!r} in vpc {vpc!r}")
            heads[name] = (vpc, group_name, "", b)
        if "default" not in heads:
            heads["default"] = (vpc_names[0], "default", "", {})

        groups: list[SecurityGroup] = []
        for name, (vpc, group_name, _, b) in heads.items():
            path = join("security_groups", name)
            is_default = group_name == "default"
            if is_default and b.get("description") is not None:
                raise self.fail(join(path, "description"), "the default group's description is AWS's own")
            description = self.string(b.get("description"), join(path, "description"),
                                      default="default VPC security group" if is_default else group_name)
            ingress = self.sg_rules(b.get("ingress"), join(path, "ingress"), vpc, heads, "source_group")
            egress = None
            if "egress" in b:
                egress = self.sg_rules(b.get("egress"), join(path, "egress"), vpc, heads, "destination_group")
            groups.append(SecurityGroup(name, vpc, group_name, description, ingress, egress))
        return tuple(groups)

    def sg_rules(self, value: Any, path: str, vpc: str, heads: dict, alias: str) -> tuple[SgRule, ...]:
        rules: list[SgRule] = []
        for i, item in enumerate(self.seq(value, path)):
            rp = join(path, i)
            r = self.mapping(item, rp, ("protocol", "port", "from_port", "to_port", "cidr", "cidr_ipv6",
                                        "group", alias, "prefix_list", "peer_group", "foreign_group",
                                        "foreign_prefix_list", "description"), required=("protocol",))
            protocol = self.sg_protocol(r["protocol"], join(rp, "protocol"))
            from_port, to_port = self.ports(r, rp, protocol in ("tcp", "udp"))
            if protocol == "icmp":
                from_port, to_port = -1, -1
            sources = [k for k in ("cidr", "cidr_ipv6", "group", alias, "prefix_list", "peer_group", "foreign_group",
                                   "foreign_prefix_list") if r.get(k) is not None]
            if len(sources) != 1:
                raise self.fail(rp, f"needs exactly one of cidr, cidr_ipv6, {alias}, prefix_list, peer_group, "
                                    "foreign_group, foreign_prefix_list (one source type per rule)")
            key = sources[0]
            extra = self.sg_rule_source(r, rp, key, vpc, heads)
            cidr = self.cidr(r[key], join(rp, key)) if key == "cidr" else None
            cidr6 = self.cidr(r[key], join(rp, key), v6=True) if key == "cidr_ipv6" else None
            group = None
            if key in ("group", alias):
                group = self.symbol(r[key], join(rp, key))
                if group not in heads:
                    known = ", ".join(sorted(heads))
                    raise self.fail(join(rp, key), f"no security group {group!r} (defined: {known})")
                if heads[group][0] != vpc:
                    raise self.fail(join(rp, key),
                                    f"security group {group!r} is in vpc {heads[group][0]!r}, not {vpc!r}")
            description = self.opt_string(r.get("description"), join(rp, "description"))
            rule = SgRule(protocol, from_port, to_port, cidr, cidr6, group, description, **extra)
            if rule in rules:
                raise self.fail(rp, "the same rule is listed twice")
            rules.append(rule)
        return tuple(rules)

    def sg_rule_source(self, r: dict, rp: str, key: str, vpc: str, heads: dict) -> dict[str, str]:
        """The prefix-list, peered-group and foreign-group sources of a rule (SgRule's later fields)."""
        if key == "prefix_list":
            name = self.symbol(r[key], join(rp, key))
            if name not in getattr(self, "prefix_list_names", set()):
                known = ", ".join(sorted(getattr(self, "prefix_list_names", set()))) or "none"
                raise self.fail(join(rp, key), f"no prefix list {name!r} (defined: {known})")
            return {"prefix_list": name}
        if key == "peer_group":
            name = self.symbol(r[key], join(rp, key))
            if name not in heads:
                raise self.fail(join(rp, key), f"no security group {name!r} (defined: {', '.join(sorted(heads))})")
            if heads[name][0] == vpc:
                raise self.fail(join(rp, key), f"security group {name!r} is in this rule's vpc {vpc!r}: name it with group")
            if frozenset((vpc, heads[name][0])) not in getattr(self, "peered", set()):
                raise self.fail(join(rp, key), f"security group {name!r} is in vpc {heads[name][0]!r}, "
                                                f"which no vpc_peerings entry joins to {vpc!r}")
            return {"peer_group": name}
        if key == "foreign_group":
            text = self.string(r[key], join(rp, key))
            if not FOREIGN_GROUP.match(text):
                raise self.fail(join(rp, key), f"expected <12-digit account>/<sg-id>, got {text!r}")
            return {"foreign_group": text}
        if key == "foreign_prefix_list":
            text = self.string(r[key], join(rp, key))
            if not FOREIGN_PREFIX_LIST.match(text):
                raise self.fail(join(rp, key), f"expected a prefix list id pl-<8-17 hex digits>, got {text!r}")
            return {"foreign_prefix_list": text}
        return {}

    def sg_protocol(self, value: Any, path: str) -> str:
        names = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                 "-1": "-1", "all": "-1"}
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected tcp, udp, icmp or -1, got {_kind(value)}")
        text = str(value).lower()
        if text not in names:
            raise self.fail(path, f"expected tcp, udp, icmp or -1, got {value!r}")
        return names[text]
