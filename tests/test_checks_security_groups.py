"""Security-group checks on hand-made snapshots: the edge cases of rule semantics."""

import pytest

from runbook.checks.security_groups import ingress_from_workload as ingress_from_connector
from runbook.checks.security_groups import no_public_ingress, not_default
from runbook.checks.security_groups import workload_egress as connector_egress
from runbook.model import Phase, Status
from tests.topologies import CACHE_SG, CONNECTOR_SG, DB_SG, rule, topology


@pytest.mark.parametrize(
    "cache_rule",
    [
        rule(CACHE_SG, "sgr-1", source_group=CONNECTOR_SG),
        rule(CACHE_SG, "sgr-1", protocol="-1", source_group=CONNECTOR_SG),
        rule(CACHE_SG, "sgr-1", ports=(0, 65535), source_group=CONNECTOR_SG),
        rule(CACHE_SG, "sgr-1", protocol="6", ports=(6000, 7000), source_group=CONNECTOR_SG),
        rule(CACHE_SG, "sgr-1", cidr="10.0.0.0/16"),  # covers both connector subnets
    ],
)
def test_ingress_passes_for_every_rule_shape_that_admits_the_connector(cache_rule):
    finding = ingress_from_connector(topology([cache_rule]), {"target": "cache"})
    assert finding.status is Status.OK, finding.summary
    assert not finding.changes


@pytest.mark.parametrize(
    "cache_rule",
    [
        rule(CACHE_SG, "sgr-self", protocol="-1", source_group=CACHE_SG),  # the default group's self rule
        rule(CACHE_SG, "sgr-1", ports=(5432, 5432), source_group=CONNECTOR_SG),  # wrong port
        rule(CACHE_SG, "sgr-1", protocol="udp", ports=(6379, 6379), source_group=CONNECTOR_SG),
        rule(CACHE_SG, "sgr-1", cidr="10.0.1.0/24"),  # covers only one connector subnet
        rule(CACHE_SG, "sgr-1", egress=True, source_group=CONNECTOR_SG),  # egress is not ingress
        rule(CACHE_SG, "sgr-1", cidr="0.0.0.0/0"),  # to be revoked: the connector needs a rule of its own
    ],
)
def test_ingress_fails_and_proposes_the_exact_authorize(cache_rule):
    finding = ingress_from_connector(topology([cache_rule]), {"target": "cache"})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert change.phase is Phase.AUTHORIZE
    assert change.call.operation == "authorize_security_group_ingress"
    assert change.call.params["GroupId"] == CACHE_SG
    (permission,) = change.call.params["IpPermissions"]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"]) == ("tcp", 6379, 6379)
    assert permission["UserIdGroupPairs"][0]["GroupId"] == CONNECTOR_SG
    assert change.inverse.operation == "revoke_security_group_ingress"
    assert "aws ec2 authorize-security-group-ingress --group-id " + CACHE_SG in change.call.cli()
    assert any(CACHE_SG in e.source for e in finding.evidence)


def test_ingress_is_skipped_without_a_connector():
    finding = ingress_from_connector(topology(connector=None), {"target": "cache"})
    assert finding.status is Status.SKIPPED


@pytest.mark.parametrize(
    "public_rule",
    [
        rule(DB_SG, "sgr-pub", ports=(5432, 5432), cidr="0.0.0.0/0"),
        rule(DB_SG, "sgr-pub", ports=(0, 65535), cidr="0.0.0.0/0"),
        rule(DB_SG, "sgr-pub", protocol="-1", cidr="0.0.0.0/0"),
        rule(DB_SG, "sgr-pub", ports=(5432, 5432), cidr6="::/0"),
    ],
)
def test_public_ingress_is_revoked_by_rule_id_with_the_full_body_as_undo(public_rule):
    keep = rule(DB_SG, "sgr-keep", ports=(5432, 5432), source_group=CONNECTOR_SG)
    finding = no_public_ingress(topology(db_rules=[keep, public_rule]), {"target": "database"})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert change.phase is Phase.REVOKE
    assert change.call.params == {"GroupId": DB_SG, "SecurityGroupRuleIds": ["sgr-pub"]}
    # exactly the port: applied; wider (all traffic, 0-65535): advice only, never applied
    assert change.recommendation == (public_rule["IpProtocol"] == "-1" or public_rule["FromPort"] != 5432)
    (permission,) = change.inverse.params["IpPermissions"]
    assert permission["IpProtocol"] == public_rule["IpProtocol"]
    assert ("IpRanges" in permission) or ("Ipv6Ranges" in permission)


def test_public_rule_on_another_port_is_not_touched():
    finding = no_public_ingress(topology(db_rules=[rule(DB_SG, "sgr-web", ports=(443, 443), cidr="0.0.0.0/0")]), {"target": "database"})
    assert finding.status is Status.OK


def test_default_group_is_advice_only():
    finding = not_default(topology(), {"target": "cache"})
    assert finding.status is Status.WARN
    assert finding.changes and all(c.recommendation for c in finding.changes)


def test_connector_egress_missing_proposes_egress_rule():
    finding = connector_egress(topology(connector_rules=[rule(CONNECTOR_SG, "sgr-e", egress=True, ports=(443, 443), cidr="0.0.0.0/0")]), {})
    assert finding.status is Status.FAIL
    assert {c.call.operation for c in finding.changes} == {"authorize_security_group_egress"}
    assert len(finding.changes) == 2  # one for the database port, one for the cache port
    assert connector_egress(topology(), {}).status is Status.OK


def test_public_rules_are_reported_never_revoked_without_a_connector():
    """EgressType=DEFAULT: the app may reach its database over the internet, so a public rule is an exposure
    to warn about, with the rule as evidence, never a revoke (not even as advice)."""
    public = rule(DB_SG, "sgr-pub", ports=(5432, 5432), cidr="0.0.0.0/0")
    finding = no_public_ingress(topology(db_rules=[public], connector=None), {"target": "database"})
    assert finding.status is Status.WARN and not finding.changes
    assert any("sgr-pub" in e.observation and "0.0.0.0/0" in e.observation for e in finding.evidence)
    assert no_public_ingress(topology(db_rules=[], connector=None), {"target": "database"}).status is Status.OK


def _shared_group(db_rules, cache_in_db_group=True):
    """The cache shares the database's group (its own group emptied) when `cache_in_db_group`."""
    from dataclasses import replace

    top = topology(db_rules=db_rules)
    if cache_in_db_group:
        top.targets["cache"] = replace(top.targets["cache"], security_group_ids=(DB_SG,))
    return top


WIDE = rule(DB_SG, "sgr-wide", protocol="-1", cidr="0.0.0.0/0")
OWN_5432 = rule(DB_SG, "sgr-5432", ports=(5432, 5432), source_group=CONNECTOR_SG)
OWN_6379 = rule(DB_SG, "sgr-6379", ports=(6379, 6379), source_group=CONNECTOR_SG)


def test_a_wide_public_rule_is_offered_only_once_the_connector_has_every_port_it_serves():
    """All traffic from 0.0.0.0/0 on a group the database and cache share serves 5432 and 6379: it is
    advice (never applied under --yes) and offered at a terminal only when both ports have the connector's
    own rule, with what else it closes listed."""
    for rules in ([WIDE], [WIDE, OWN_5432], [WIDE, OWN_6379]):
        (change,) = no_public_ingress(_shared_group(rules), {"target": "database"}).changes
        assert change.recommendation and not change.offer, rules
        assert "offered at a terminal once the connector has its own rule on" in change.description
    (change,) = no_public_ingress(_shared_group([WIDE, OWN_5432, OWN_6379]), {"target": "database"}).changes
    assert change.recommendation and change.offer
    assert change.call.params == {"GroupId": DB_SG, "SecurityGroupRuleIds": ["sgr-wide"]}
    closes = "\n".join(change.offer)
    assert "tcp/5432 of database nerava-db" in closes and "sgr-5432" in closes
    assert "tcp/6379 of cache nerava-redis" in closes and "sgr-6379" in closes
    assert "every protocol and port" in closes and "every member of" in closes
    # A group only the database uses: 5432 is all it serves of ours.
    (change,) = no_public_ingress(_shared_group([WIDE, OWN_5432], cache_in_db_group=False), {"target": "database"}).changes
    assert change.offer and "6379" not in "\n".join(change.offer)
    # A range that misses the cache port does not serve the cache.
    ranged = rule(DB_SG, "sgr-range", ports=(5000, 6000), cidr="0.0.0.0/0")
    (change,) = no_public_ingress(_shared_group([ranged, OWN_5432]), {"target": "database"}).changes
    assert change.offer and "6379" not in "\n".join(change.offer) and "tcp/5000-6000" in "\n".join(change.offer)
