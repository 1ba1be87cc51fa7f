"""EC2 shims: what AWS creates or answers on its own and moto 5.2.5 does not.

- ``ec2-default-sg-self-rule`` - a new VPC's default security group in AWS
  has one ingress rule: all traffic from the group itself. moto creates the
  group with no ingress at all. The shim authorizes that rule (through
  moto's own backend method, so it gets a ``SecurityGroupRuleId``).

- ``ec2-custom-nacl-default-deny`` - AWS gives every custom network ACL the
  two ``*`` entries (rule 32767, deny all, ingress and egress) that
  ``DescribeNetworkAcls`` shows; moto adds them only to a VPC's default ACL.

- ``ec2-route-blackhole`` - a route whose NAT gateway was deleted shows
  ``State: blackhole`` in AWS's ``DescribeRouteTables``; moto's routes are
  always ``active``. The shim answers ``blackhole`` for a route to a NAT
  gateway whose state is ``deleted``.

- ``ec2-foreign-group-reference`` - a rule may name a group of another
  account (``UserIdGroupPairs[{UserId, GroupId}]``); AWS checks it in that
  account. moto looks every GroupId up in the caller's own account and
  answers ``InvalidGroup.NotFound``. The sandbox has no second account, so the
  shim accepts a pair whose ``UserId`` is not the caller's without looking the
  group up, and keeps the ``UserId`` (``ReferencedGroupInfo.UserId``).

- ``ec2-unknown-prefix-list`` - ``GetManagedPrefixListEntries`` for a prefix
  list this account cannot see (never created, or another account's that is
  no longer shared) answers ``InvalidPrefixListID.NotFound`` in AWS; moto
  answers an empty list, which reads as "holds nothing". moto still accepts a
  rule naming such a list, as AWS keeps a rule whose list was unshared.
"""

from __future__ import annotations

from typing import Any

SHIMS = (
    "ec2-default-sg-self-rule",
    "ec2-custom-nacl-default-deny",
    "ec2-route-blackhole",
    "ec2-foreign-group-reference",
    "ec2-unknown-prefix-list",
)


def apply() -> None:
    _shim_ec2()
    _shim_ec2_foreign_groups()
    _shim_ec2_unknown_prefix_list()


def _shim_ec2() -> None:
    from moto.ec2.models import network_acls, route_tables, vpcs

    # ec2-default-sg-self-rule: the default security group admits itself.
    original_create_vpc = vpcs.VPCBackend.create_vpc

    def create_vpc(self: Any, *args: Any, **kwargs: Any) -> Any:
        vpc = original_create_vpc(self, *args, **kwargs)
        group = self.get_security_group_from_name("default", vpc_id=vpc.id)
        if group is not None and not group.ingress_rules:
            self.authorize_security_group_ingress(
                group_name_or_id=group.id,
                ip_protocol="-1",
                from_port=None,
                to_port=None,
                ip_ranges=[],
                source_groups=[{"GroupId": group.id, "UserId": self.account_id}],
                vpc_id=vpc.id,
            )
        return vpc

    vpcs.VPCBackend.create_vpc = create_vpc

    # ec2-custom-nacl-default-deny: custom network ACLs carry the '*' deny entries.
    original_create_acl = network_acls.NetworkAclBackend.create_network_acl

    def create_network_acl(self: Any, vpc_id: str, tags: Any = None, default: bool = False) -> Any:
        acl = original_create_acl(self, vpc_id, tags=tags, default=default)
        if not default:
            for egress in (True, False):
                self.create_network_acl_entry(
                    network_acl_id=acl.id,
                    rule_number=32767,
                    protocol="-1",
                    rule_action="deny",
                    egress=egress,
                    cidr_block="0.0.0.0/0",
                    icmp_code=None,
                    icmp_type=None,
                    port_range_from=None,
                    port_range_to=None,
                    ipv6_cidr_block=None,
                )
        return acl

    network_acls.NetworkAclBackend.create_network_acl = create_network_acl

    # ec2-route-blackhole: a route to a deleted NAT gateway is a blackhole.
    def route_state(self: Any) -> str:
        nat = getattr(self, "nat_gateway", None)
        return "blackhole" if nat is not None and getattr(nat, "state", None) == "deleted" else "active"

    route_tables.Route.state = property(route_state)


def _shim_ec2_foreign_groups() -> None:
    from moto.ec2.models import security_groups

    backend_cls = security_groups.SecurityGroupBackend
    original = backend_cls._add_source_group

    def _add_source_group(self: Any, source_groups: Any, vpc_id: Any) -> list[dict[str, Any]]:
        foreign = [g for g in source_groups or [] if g.get("UserId") and g["UserId"] != self.account_id and "GroupId" in g]
        own = [g for g in source_groups or [] if g not in foreign]
        for group in foreign:
            group.setdefault("OwnerId", self.account_id)
        return original(self, own, vpc_id) + foreign

    backend_cls._add_source_group = _add_source_group


def _shim_ec2_unknown_prefix_list() -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import vpcs

    original = vpcs.VPCs.get_managed_prefix_list_entries

    def get_managed_prefix_list_entries(self: Any) -> Any:
        prefix_list_id = self._get_param("PrefixListId")
        if self.ec2_backend.get_managed_prefix_list_entries(prefix_list_id=prefix_list_id) is None:
            raise EC2ClientError("InvalidPrefixListID.NotFound", f"The prefix list ID '{prefix_list_id}' does not exist")
        return original(self)

    vpcs.VPCs.get_managed_prefix_list_entries = get_managed_prefix_list_entries
