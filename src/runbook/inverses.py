"""The exact undo of each call `fix` and `apply` send, recomputed from a journaled call.

`undo` never sends an inverse because the journal names it: a journal is a file
anyone with the account's shell can edit. It recomputes the inverse from the
journaled call and the bodies the journal recorded for it (the rule a revoke
removed, the rule ids an authorize created, the health check an update
replaced), checks those bodies have the shape this tool records, and refuses
the entry when the journal's inverse is not that exact undo. A call this tool
does not send (`ec2 delete_security_group`, say) has no undo here at all. The calls a
platform's checks send (runbook.platforms) are undone by that platform's `undo`.
"""

from __future__ import annotations

import re
from typing import Any

from dataclasses import replace
from typing import Mapping

from runbook.checks.security_groups import PUBLIC_CIDRS
from runbook.model import ApiCall, Change

_RULE_ID = re.compile(r"^sgr-[0-9a-f]{1,32}$")
_GROUP_ID = re.compile(r"^sg-[0-9a-f]{1,32}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{1,32}$")
_DNS_FLAGS = ("EnableDnsSupport", "EnableDnsHostnames")
_PERMISSION_KEYS = {"IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds"}
_SOURCE_KEYS = ("IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds")


class Refused(Exception):
    """The journal entry does not describe a call this tool sends, or names an inverse that is not its undo."""


def require(condition: bool, why: str) -> None:
    if not condition:
        raise Refused(why)



def answered(change: Change, response: Mapping) -> Change:
    """The change with its inverse made exact by the call's answer: an authorize is undone by
    revoking the rules it created, by id, and nothing grouped with them."""
    created = [r["SecurityGroupRuleId"] for r in response.get("SecurityGroupRules", []) if "SecurityGroupRuleId" in r]
    if created and change.inverse and change.inverse.operation.startswith("revoke_security_group_"):
        return replace(change, inverse=replace(change.inverse, params={"GroupId": change.call.params["GroupId"], "SecurityGroupRuleIds": created}))
    return change


def _sources(permissions: Any) -> int:
    """How many rules an IpPermissions list makes; Refused unless it is a list of well-formed permissions."""
    require(isinstance(permissions, list) and permissions, "IpPermissions is not a list of permissions")
    count = 0
    for permission in permissions:
        require(isinstance(permission, dict) and set(permission) <= _PERMISSION_KEYS and "IpProtocol" in permission,
                 f"{permission!r} is not an IpPermissions entry")
        for key in _SOURCE_KEYS:
            sources = permission.get(key, [])
            require(isinstance(sources, list) and all(isinstance(s, dict) for s in sources), f"{key} is not a list of sources")
            count += len(sources)
    require(count > 0, "the permission names no source")
    return count


def _group(params: dict[str, Any]) -> str:
    group = params.get("GroupId")
    require(isinstance(group, str) and bool(_GROUP_ID.match(group)), f"GroupId {group!r} is not a security group id")
    return group


def undo_of(call: dict[str, Any], recorded: dict[str, Any] | None) -> ApiCall | None:
    """The undo of one journaled call (service, operation, params as journaled), given the journal's
    inverse for it: None for a call sent with no inverse; Refused for anything this tool would not send."""
    from runbook.platforms import owning

    journaled = ApiCall(call["service"], call["operation"], call["params"])
    platform = owning(journaled.service)
    if platform is not None and platform.without_undo(journaled):
        require(recorded is None, f"{journaled.service} {journaled.operation} has no undo, yet the journal names one")
        return None
    require(recorded is not None, f"the journal names no undo for {journaled.service} {journaled.operation}")
    expected = platform.undo(journaled, recorded.get("params") or {}) if platform else _recompute(journaled, recorded)
    named = ApiCall(recorded["service"], recorded["operation"], recorded["params"])
    require(named.as_dict() == expected.as_dict(),
             f"the journal's undo ({named.service} {named.operation}) is not the undo of {journaled.service} {journaled.operation}")
    return expected


def _recompute(call: ApiCall, recorded: dict[str, Any]) -> ApiCall:
    params, kept = dict(call.params), recorded.get("params") or {}
    what = f"{call.service} {call.operation}"
    if call.service == "ec2" and call.operation in ("authorize_security_group_ingress", "authorize_security_group_egress"):
        require(set(params) == {"GroupId", "IpPermissions"}, f"{what} with parameters {sorted(params)} is not one runbook sends")
        group, rules = _group(params), _sources(params["IpPermissions"])
        revoke = call.operation.replace("authorize", "revoke")
        if "SecurityGroupRuleIds" in kept:
            # The rules the call created, by id (recorded from its answer): no more of them than it could create.
            ids = kept["SecurityGroupRuleIds"]
            require(isinstance(ids, list) and 0 < len(ids) <= rules and all(isinstance(i, str) and _RULE_ID.match(i) for i in ids),
                     f"the recorded rule ids {ids!r} are not what one {what} creates")
            return ApiCall("ec2", revoke, {"GroupId": group, "SecurityGroupRuleIds": list(ids)})
        return ApiCall("ec2", revoke, {"GroupId": group, "IpPermissions": params["IpPermissions"]})
    if call.service == "ec2" and call.operation == "revoke_security_group_ingress":
        # fix revokes one public rule by its id; the journal recorded that rule's body to re-create it.
        require(set(params) == {"GroupId", "SecurityGroupRuleIds"}, f"{what} with parameters {sorted(params)} is not one runbook sends")
        group, ids = _group(params), params["SecurityGroupRuleIds"]
        require(isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], str) and bool(_RULE_ID.match(ids[0])),
                 f"{what} of {ids!r} is not one runbook sends (one rule id)")
        body = kept.get("IpPermissions")
        require(_sources(body) == 1 and len(body) == 1, "the recorded rule body is not one rule")
        cidrs = [r.get("CidrIp") for r in body[0].get("IpRanges", [])] + [r.get("CidrIpv6") for r in body[0].get("Ipv6Ranges", [])]
        require(len(cidrs) == 1 and cidrs[0] in PUBLIC_CIDRS,
                 "the recorded rule is not a public one (runbook revokes only rules open to 0.0.0.0/0 or ::/0)")
        return ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": group, "IpPermissions": body})
    if call.service == "ec2" and call.operation == "modify_vpc_attribute":
        flags = [f for f in _DNS_FLAGS if f in params]
        require(len(params) == 2 and isinstance(params.get("VpcId"), str) and bool(_VPC_ID.match(params["VpcId"]))
                 and len(flags) == 1 and params[flags[0]] == {"Value": True},
                 f"{what} with {params!r} is not one runbook sends (it turns one DNS attribute on)")
        return ApiCall("ec2", "modify_vpc_attribute", {"VpcId": params["VpcId"], flags[0]: {"Value": False}})
    raise Refused(f"{what} is not a call runbook sends, so it has no undo")
