"""Which rules admit the connector, on hand-made snapshots: CIDR rules together, prefix lists,
groups of peered VPCs and of other accounts."""

import pytest

from runbook.checks.security_groups import ingress_from_workload as ingress_from_connector
from runbook.checks.security_groups import workload_egress as connector_egress
from runbook.model import Status
from tests.topologies import CACHE_SG, CONNECTOR, CONNECTOR_SG, DB_SG, apprunner, rule, topology

OWNER = "123456789012"


def prefix_rule(group, rule_id, prefix_list, *, egress=False, ports=(6379, 6379)):
    body = rule(group, rule_id, egress=egress, ports=ports)
    body["PrefixListId"] = prefix_list
    return body


def foreign_rule(group, rule_id, *, user_id=OWNER, peering=None, ports=(6379, 6379), egress=False, group_id="sg-0feed000000000001"):
    body = rule(group, rule_id, egress=egress, ports=ports)
    body["ReferencedGroupInfo"] = {"GroupId": group_id, "UserId": user_id,
                                   **({"VpcPeeringConnectionId": peering, "VpcId": "vpc-0peer"} if peering else {})}
    return body


def world(cache_rules=(), prefix_lists=None, connector_rules=None):
    t = topology(cache_rules, connector_rules=connector_rules)
    for group in t.security_groups.values():
        group["OwnerId"] = OWNER
    t.prefix_lists = prefix_lists or {}
    return t


@pytest.mark.parametrize("rules", [
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), rule(CACHE_SG, "sgr-b", cidr="10.0.2.0/24")],  # one per subnet
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/25"), rule(CACHE_SG, "sgr-b", cidr="10.0.1.128/25"),
     rule(CACHE_SG, "sgr-c", cidr="10.0.2.0/24")],  # halves of a subnet
    [rule(CACHE_SG, "sgr-a", cidr="10.0.0.0/23"), rule(CACHE_SG, "sgr-b", protocol="-1", cidr="10.0.2.0/23")],
])
def test_cidr_rules_that_together_cover_every_connector_subnet_admit_it(rules):
    finding = ingress_from_connector(world(rules), {"target": "cache"})
    assert finding.status is Status.OK, finding.summary
    assert not finding.changes
    assert all(r["SecurityGroupRuleId"] in finding.summary for r in rules), finding.summary


@pytest.mark.parametrize("rules", [
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), rule(CACHE_SG, "sgr-b", cidr="10.0.2.0/25")],  # half of b missing
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), rule(CACHE_SG, "sgr-b", ports=(5432, 5432), cidr="10.0.2.0/24")],
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), rule(CACHE_SG, "sgr-b", cidr="0.0.0.0/0")],  # public does not count
    [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), rule(CACHE_SG, "sgr-b", cidr6="::/0")],
])
def test_a_subnet_no_rule_covers_fails_and_names_it(rules):
    finding = ingress_from_connector(world(rules), {"target": "cache"})
    assert finding.status is Status.FAIL
    assert "10.0.2.0/24" in finding.summary, finding.summary
    assert [c.call.operation for c in finding.changes] == ["authorize_security_group_ingress"]


def test_prefix_list_entries_count_with_cidr_rules():
    lists = {"pl-1": {"cidrs": ["10.0.2.0/24", "192.168.0.0/16"]}}
    rules = [rule(CACHE_SG, "sgr-a", cidr="10.0.1.0/24"), prefix_rule(CACHE_SG, "sgr-pl", "pl-1")]
    finding = ingress_from_connector(world(rules, lists), {"target": "cache"})
    assert finding.status is Status.OK and "sgr-pl" in finding.summary and "sgr-a" in finding.summary
    assert any("pl-1: 10.0.2.0/24, 192.168.0.0/16" in e.observation for e in finding.evidence)


def test_a_prefix_list_that_misses_a_subnet_fails():
    lists = {"pl-1": {"cidrs": ["10.0.1.0/24"]}}
    finding = ingress_from_connector(world([prefix_rule(CACHE_SG, "sgr-pl", "pl-1")], lists), {"target": "cache"})
    assert finding.status is Status.FAIL and "10.0.2.0/24" in finding.summary
    assert finding.changes and not finding.changes[0].recommendation


def test_an_unreadable_prefix_list_is_never_ok_and_never_applied():
    lists = {"pl-gone": {"error": "InvalidPrefixListID.NotFound: it does not exist or is not shared with this account"}}
    finding = ingress_from_connector(world([prefix_rule(CACHE_SG, "sgr-pl", "pl-gone")], lists), {"target": "cache"})
    assert finding.status is Status.WARN and "cannot tell" in finding.summary
    assert finding.changes and all(c.recommendation for c in finding.changes)
    assert any("pl-gone" in e.observation and "cannot be read" in e.observation for e in finding.evidence)
    # A readable rule that admits the connector settles it.
    admitted = world([prefix_rule(CACHE_SG, "sgr-pl", "pl-gone"), rule(CACHE_SG, "sgr-c", source_group=CONNECTOR_SG)], lists)
    assert ingress_from_connector(admitted, {"target": "cache"}).status is Status.OK


@pytest.mark.parametrize("foreign", [
    foreign_rule(CACHE_SG, "sgr-peer", peering="pcx-0abc"),
    foreign_rule(CACHE_SG, "sgr-other", user_id="111122223333"),
])
def test_a_group_of_a_peered_vpc_or_another_account_does_not_admit_the_connector(foreign):
    finding = ingress_from_connector(world([foreign]), {"target": "cache"})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert not change.recommendation and "not a duplicate" in change.description
    note = next(e.observation for e in finding.evidence if foreign["SecurityGroupRuleId"] in e.observation and "does not admit" in e.observation)
    assert CONNECTOR_SG in note
    # Only another account's group is out of this account's reach; a peered VPC of this account can be described.
    assert ("cannot describe" in note) == (foreign["ReferencedGroupInfo"]["UserId"] != OWNER)


def test_the_connectors_own_group_named_with_another_owner_still_admits_it():
    """A shared VPC: the rule names the connector's group by id, whoever owns it."""
    own = foreign_rule(CACHE_SG, "sgr-shared", user_id="111122223333", group_id=CONNECTOR_SG)
    assert ingress_from_connector(world([own]), {"target": "cache"}).status is Status.OK


def test_egress_cidr_rules_count_together_and_prefix_lists_too():
    out = [rule(CONNECTOR_SG, "sgr-e1", egress=True, ports=(0, 65535), cidr="10.0.1.0/24"),
           prefix_rule(CONNECTOR_SG, "sgr-e2", "pl-data", egress=True, ports=(0, 65535))]
    finding = connector_egress(world(connector_rules=out, prefix_lists={"pl-data": {"cidrs": ["10.0.2.0/24"]}}), {})
    assert finding.status is Status.OK, finding.summary
    half = [rule(CONNECTOR_SG, "sgr-e1", egress=True, ports=(0, 65535), cidr="10.0.1.0/24")]
    finding = connector_egress(world(connector_rules=half), {})
    assert finding.status is Status.FAIL and len(finding.changes) == 2


def test_egress_to_a_peered_group_or_an_unreadable_list():
    peer = [foreign_rule(CONNECTOR_SG, "sgr-e", peering="pcx-1", egress=True, ports=(0, 65535))]
    finding = connector_egress(world(connector_rules=peer), {})
    assert finding.status is Status.FAIL and any("does not admit" in e.observation for e in finding.evidence)
    unknown = [prefix_rule(CONNECTOR_SG, "sgr-e", "pl-x", egress=True, ports=(0, 65535))]
    finding = connector_egress(world(connector_rules=unknown, prefix_lists={"pl-x": {"error": "gone"}}), {})
    assert finding.status is Status.WARN and all(c.recommendation for c in finding.changes)


def test_database_target_rules_on_db_group_still_work():
    t = world()
    t.sg_rules[DB_SG] = [rule(DB_SG, "sgr-d1", ports=(5432, 5432), cidr="10.0.1.0/24"),
                         rule(DB_SG, "sgr-d2", ports=(5432, 5432), cidr="10.0.2.0/24")]
    assert ingress_from_connector(t, {"target": "database"}).status is Status.OK


@pytest.mark.parametrize("source,operation,key", [
    ("elasticache describe_replication_groups", "modify_replication_group", "ReplicationGroupId"),
    ("elasticache describe_cache_clusters", "modify_cache_cluster", "CacheClusterId"),
    ("elasticache describe_serverless_caches", "modify_serverless_cache", "ServerlessCacheName"),
])
def test_the_advice_to_move_a_cache_uses_the_call_of_its_kind(source, operation, key):
    from dataclasses import replace

    from runbook.checks.security_groups import not_default

    t = world()
    t.targets["cache"] = replace(t.targets["cache"], source=source)
    move = not_default(t, {"target": "cache"}).changes[-1]
    assert move.recommendation and move.call.operation == operation and move.call.params[key] == "nerava-redis"


def test_a_public_block_is_named_as_not_counted_and_is_no_reason_for_a_duplicate_claim():
    finding = ingress_from_connector(world([rule(CACHE_SG, "sgr-pub", cidr="0.0.0.0/0")]), {"target": "cache"})
    assert finding.status is Status.FAIL
    assert any("0.0.0.0/0 is not counted" in e.observation for e in finding.evidence)
    assert "not a duplicate" not in finding.changes[0].description


def test_a_connector_without_groups_is_an_error_not_a_crash():
    t = apprunner(world(), connector={**CONNECTOR, "SecurityGroups": []})
    assert ingress_from_connector(t, {"target": "cache"}).status is Status.ERROR
    assert connector_egress(t, {}).status is Status.ERROR


@pytest.mark.parametrize("zones,expected", [
    (("us-east-1a",), Status.OK),  # single-AZ: its address is in subnet-a, which the egress rule reaches
    (("us-east-1a", "us-east-1b"), Status.FAIL),  # a standby (or replica) in us-east-1b: a failover lands outside
    ((), Status.FAIL),  # zone unknown: any of its subnets
])
def test_egress_must_reach_the_subnets_of_the_targets_zones(zones, expected):
    from dataclasses import replace

    out = [rule(CONNECTOR_SG, "sgr-e1", egress=True, ports=(0, 65535), cidr="10.0.1.0/24")]
    t = world(connector_rules=out)
    t.targets = {k: replace(v, zones=zones) for k, v in t.targets.items()}
    assert connector_egress(t, {}).status is expected


def test_nacl_judges_replies_against_the_apps_linux_ephemeral_ports():
    """A deny of 5432 inbound (or of 1024-2000) meets no reply to a Linux client: only 32768-60999 do."""
    from runbook.checks.network import nacl

    def acl(*denies):
        entries = [{"RuleNumber": 50 + i, "RuleAction": "deny", "Egress": False, "Protocol": "6", "CidrBlock": "0.0.0.0/0",
                    "PortRange": {"From": lo, "To": hi}} for i, (lo, hi) in enumerate(denies)]
        entries += [{"RuleNumber": 100, "RuleAction": "allow", "Egress": e, "Protocol": "-1", "CidrBlock": "0.0.0.0/0"} for e in (True, False)]
        # Only the connector's subnet-b carries it; the targets' subnets use no custom ACL here.
        return [{"NetworkAclId": "acl-b", "Entries": entries, "Associations": [{"SubnetId": "subnet-b"}]}]

    from dataclasses import replace

    def judged(*denies):
        t = world()
        t.targets = {k: replace(v, subnet_ids=("subnet-a",), zones=("us-east-1a",)) for k, v in t.targets.items()}
        t.network_acls = acl(*denies)
        return nacl(t, {}).status

    assert judged((5432, 5432)) is Status.OK
    assert judged((1024, 2000)) is Status.OK
    assert judged((40000, 40000)) is Status.FAIL
