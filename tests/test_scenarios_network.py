"""Worlds the sandbox could not build before: CIDR rules that count together, prefix lists, groups of
peered VPCs and of other accounts, a standalone cache cluster, a serverless cache, an RDS Proxy, IPv6
network-ACL entries. Each has a world where its check fails and one where it passes, built from the
bundled `healthy` scenario, judged by the tool over HTTP and by the sandbox's own ground truth.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.helpers import mutating_calls, run, step
from runbook import policy
from runbook import runbook as rb
from tests.test_scenarios import HEALTHY, service

FOREIGN = "111122223333/sg-0123456789abcdef0"


def per_subnet(port, *, egress=False):
    key = "cidr"
    return [{"protocol": "tcp", "port": port, key: "10.0.1.0/24"}, {"protocol": "tcp", "port": port, key: "10.0.2.0/24"}]


def cache_ingress(doc, rules):
    doc["security_groups"]["cache-sg"]["ingress"] = rules


def db_ingress(doc, rules):
    doc["security_groups"]["db-sg"]["ingress"] = rules


def connector_rule(port):
    return {"protocol": "tcp", "port": port, "source_group": "connector-sg"}


def subnet_prefix_list(doc, entries=("10.0.1.0/24", "10.0.2.0/24")):
    doc["prefix_lists"] = {"connector-subnets": {"entries": list(entries), "max_entries": 5}}


def peered_vpc(doc):
    doc["vpcs"]["peer"] = {"cidr": "10.9.0.0/16", "subnets": {"peer-a": {"cidr": "10.9.1.0/24", "az": "us-east-1a"}}}
    doc["vpc_peerings"] = [{"name": "main-peer", "vpcs": ["main", "peer"]}]
    doc["security_groups"]["peer-app"] = {"vpc": "peer", "description": "app in the peered VPC"}


def serverless_cache(doc):
    doc["caches"][0]["mode"] = "serverless"
    doc["caches"][0]["engine"] = "valkey"
    service(doc)["env"]["REDIS_URL"] = "rediss://${cache.nerava-redis.address}:${cache.nerava-redis.port}/0"


def standalone_cache(doc):
    doc["caches"][0]["mode"] = "cluster"


def proxy(doc):
    doc["security_groups"]["proxy-sg"] = {"description": "nerava-proxy", "ingress": [connector_rule(5432)]}
    doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "source_group": "proxy-sg"}]
    doc["proxies"] = [{"name": "nerava-proxy", "database": "nerava-db", "subnets": ["private-a", "private-b"],
                       "security_groups": ["proxy-sg"]}]
    service(doc)["env"]["DATABASE_URL"] = (
        "postgresql://nerava_admin:S3cr3t-pw@${proxy.nerava-proxy.address}:${proxy.nerava-proxy.port}/nerava")


def proxy_endpoint(doc):
    """The app reaches the proxy through a custom endpoint with a group of its own; the proxy's group stays
    closed to the connector, and the database admits only the proxy's group."""
    proxy(doc)
    doc["security_groups"]["proxy-sg"]["ingress"] = []
    doc["security_groups"]["endpoint-sg"] = {"description": "nerava-writes", "ingress": [connector_rule(5432)]}
    doc["proxies"][0]["endpoints"] = [{"name": "nerava-writes", "subnets": ["private-a", "private-b"], "security_groups": ["endpoint-sg"]}]
    service(doc)["env"]["DATABASE_URL"] = (
        "postgresql://nerava_admin:S3cr3t-pw@${proxy.nerava-writes.address}:${proxy.nerava-writes.port}/nerava")


def ipv6_only_acl(doc):
    """A custom ACL on the connector subnets whose allow entries are all IPv6: IPv4 traffic meets the '*' deny."""
    doc["vpcs"]["main"]["network_acls"] = {"v6-only": {"subnets": ["private-a", "private-b"], "entries": [
        {"rule": 100, "egress": True, "action": "allow", "protocol": "-1", "cidr_ipv6": "::/0"},
        {"rule": 100, "egress": False, "action": "allow", "protocol": "-1", "cidr_ipv6": "::/0"}]}}


def ipv6_deny_before_ipv4_allow(doc):
    doc["vpcs"]["main"]["network_acls"] = {"dual": {"subnets": ["private-a", "private-b"], "entries": [
        {"rule": 50, "egress": True, "action": "deny", "protocol": "-1", "cidr_ipv6": "::/0"},
        {"rule": 50, "egress": False, "action": "deny", "protocol": "-1", "cidr_ipv6": "::/0"},
        {"rule": 100, "egress": True, "action": "allow", "protocol": "-1"},
        {"rule": 100, "egress": False, "action": "allow", "protocol": "-1"}]}}


def both(*edits):
    def apply(doc):
        for edit in edits:
            edit(doc)
    return apply


def network_shapes(doc):
    """Every rule shape that admits the connector without naming its group, at once: CIDR rules one per
    subnet (cache), a prefix list and a CIDR rule together next to rules naming a peered VPC's group and
    another account's (database), egress by CIDR rules per subnet and by a prefix list, an IPv6 deny
    before the IPv4 allow in the network ACL."""
    peered_vpc(doc)
    doc["prefix_lists"] = {"half": {"entries": ["10.0.2.0/24"]}, "private": {"entries": ["10.0.1.0/24", "10.0.2.0/24"]}}
    cache_ingress(doc, per_subnet(6379))
    db_ingress(doc, [{"protocol": "tcp", "port": 5432, "prefix_list": "half"}, {"protocol": "tcp", "port": 5432, "cidr": "10.0.1.0/24"},
                     {"protocol": "tcp", "port": 5432, "peer_group": "peer-app"}, {"protocol": "tcp", "port": 5432, "foreign_group": FOREIGN}])
    doc["security_groups"]["connector-sg"]["egress"] = [*per_subnet(5432), {"protocol": "-1", "prefix_list": "private"}]
    ipv6_deny_before_ipv4_allow(doc)


def egress_to_where_they_are(doc):
    """The single-AZ database and the cache's only node are in private-a (us-east-1a): the connector's egress
    reaches only private-a, and private-b's network ACL refuses 5432 inbound, which no client of the database
    there needs."""
    doc["security_groups"]["connector-sg"]["egress"] = [per_subnet(5432)[0], per_subnet(6379)[0]]
    doc["vpcs"]["main"]["network_acls"] = {"no-db-in-b": {"subnets": ["private-b"], "entries": [
        {"rule": 50, "action": "deny", "protocol": "tcp", "port": 5432},
        {"rule": 100, "egress": True, "action": "allow", "protocol": "-1"},
        {"rule": 100, "egress": False, "action": "allow", "protocol": "-1"}]}}


def proxy_with_lists(doc):
    """An RDS Proxy admitting the connector by a prefix list and a CIDR rule together, and a standalone cache cluster."""
    proxy(doc)
    standalone_cache(doc)
    doc["prefix_lists"] = {"half": {"entries": ["10.0.2.0/24"]}}
    doc["security_groups"]["proxy-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "prefix_list": "half"},
                                                     {"protocol": "tcp", "port": 5432, "cidr": "10.0.1.0/24"}]


# Passing worlds: name -> (edit of healthy, step -> words its verdict says). `fix --yes` must change nothing.
PASSING = {
    "network-shapes": (network_shapes, {
        "redis-ingress": ["together cover the subnets 10.0.1.0/24, 10.0.2.0/24"],
        "rds-ingress": ["together cover", "get_managed_prefix_list_entries", ": 10.0.2.0/24"],
        "connector-egress": ["database tcp/5432 by", "cache tcp/6379 by"],
        "nacl": ["pass the ports both ways"]}),
    "egress-to-the-targets-zone": (egress_to_where_they_are, {
        "connector-egress": ["database tcp/5432 by", "cache tcp/6379 by"], "nacl": ["pass the ports both ways"]}),
    "standalone-cache-and-proxy": (proxy_with_lists, {
        "env-endpoints": ["elasticache describe_cache_clusters", "rds describe_db_proxies"],
        "rds-ingress": ["database nerava-proxy admits the connector", "database nerava-db admits proxy nerava-proxy"]}),
    "serverless-cache-and-proxy-endpoint": (both(serverless_cache, proxy_endpoint), {
        "env-endpoints": ["elasticache describe_serverless_caches", "rds describe_db_proxy_endpoints"],
        "redis-ingress": ["cache nerava-redis admits the connector"],
        "rds-ingress": ["database nerava-writes admits the connector", "database nerava-db admits proxy nerava-proxy"]}),
}

# Failing worlds: name -> (edit of healthy, step, expected status, operation proposed or None, the dependency the
# ground truth finds unreachable, words the verdict says)
FAILING = {
    # §1: CIDR rules count together, and each subnet must be covered
    "cidr-one-subnet": (lambda d: cache_ingress(d, per_subnet(6379)[:1]), "redis-ingress", "fail",
                        "authorize_security_group_ingress", "cache", ["10.0.2.0/24"]),
    "egress-one-subnet": (lambda d: d["security_groups"]["connector-sg"].update(egress=[per_subnet(5432)[1], *per_subnet(6379)]),
                          "connector-egress", "fail", "authorize_security_group_egress", "database", ["database nerava-db on tcp/5432"]),
    # §3: managed prefix lists, read entry by entry
    "prefix-list-short": (both(lambda d: subnet_prefix_list(d, ["10.0.1.0/24"]),
                               lambda d: db_ingress(d, [{"protocol": "tcp", "port": 5432, "prefix_list": "connector-subnets"}])),
                          "rds-ingress", "fail", "authorize_security_group_ingress", "database", ["10.0.2.0/24", "pl-"]),
    "prefix-list-unreadable": (lambda d: db_ingress(d, [{"protocol": "tcp", "port": 5432, "foreign_prefix_list": "pl-0123456789abcdef0"}]),
                               "rds-ingress", "warn", None, "database",
                               ["cannot tell", "pl-0123456789abcdef0", "InvalidPrefixListID.NotFound"]),
    # §3: groups of a peered VPC and of another account admit their own members, never the connector
    "foreign-groups-only": (both(peered_vpc, lambda d: db_ingress(d, [
        {"protocol": "tcp", "port": 5432, "peer_group": "peer-app"}, {"protocol": "tcp", "port": 5432, "foreign_group": FOREIGN}])),
        "rds-ingress", "fail", "authorize_security_group_ingress", "database",
        ["does not admit the connector", "a group of the peered VPC vpc-", "a group of account 111122223333, which this account cannot describe", "not a duplicate"]),
    # §3: a serverless cache (TLS only), an RDS Proxy, its database, its custom endpoint
    "serverless-cache-plain-url": (both(serverless_cache, lambda d: service(d)["env"].update(
        REDIS_URL="redis://${cache.nerava-redis.address}:${cache.nerava-redis.port}/0")), "env-endpoints", "fail", None, "cache",
        ["rediss://"]),
    "standalone-cache-closed": (both(standalone_cache, lambda d: cache_ingress(d, [])), "redis-ingress", "fail",
                                "authorize_security_group_ingress", "cache", ["elasticache describe_cache_clusters", "(cache nerava-redis)"]),
    "rds-proxy-closed": (both(proxy, lambda d: d["security_groups"]["proxy-sg"].update(ingress=[])), "rds-ingress", "fail",
                         "authorize_security_group_ingress", "database", ["(database nerava-proxy)"]),
    "rds-proxy-database-closed": (both(proxy, lambda d: db_ingress(d, [connector_rule(5432)])), "rds-ingress", "fail",
                                  "authorize_security_group_ingress", "database", ["proxy nerava-proxy's", "(database nerava-db)"]),
    "rds-proxy-custom-endpoint-closed": (both(proxy_endpoint, lambda d: d["security_groups"]["endpoint-sg"].update(ingress=[])),
                                         "rds-ingress", "fail", "authorize_security_group_ingress", "database",
                                         ["(database nerava-writes)", "proxy nerava-proxy forwards to database nerava-db"]),
    # §3: IPv6 entries in network ACLs never match the connector's IPv4 traffic
    "nacl-ipv6-allow-only": (ipv6_only_acl, "nacl", "fail", None, "database", ["allow only IPv6 traffic"]),
}


def write_world(tmp_path, name) -> str:
    doc = copy.deepcopy(HEALTHY)
    (PASSING.get(name) or FAILING[name])[0](doc)
    doc["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def said(finding) -> str:
    return " ".join([finding.summary, *(f"{e.source}: {e.observation}" for e in finding.evidence),
                     *(c.description for c in finding.changes)])


@pytest.mark.parametrize("name", sorted(PASSING))
def test_fix_yes_on_a_passing_world_changes_nothing(world, tmp_path, name):
    box = world(write_world(tmp_path, name))
    assert all(v.reachable for v in box.dependencies("nerava-backend")), [v.describe() for v in box.dependencies("nerava-backend")]
    report, recorder, aws = run(timeout=30)
    read, write = policy.actions(rb.load("apprunner-vpc"), fix=True)
    assert set(aws.calls) <= set(read) | set(write), "a call iam-policy does not grant"
    assert all(r.finding.status.value == "ok" for r in report.results), [(r.step.id, r.finding.summary) for r in report.results if r.finding.status.value != "ok"]
    assert report.healthy and report.exit_code == 0 and not recorder.of("proposing") and not mutating_calls(aws)
    assert box.app_health("nerava-backend")[0]
    for step_id, words in PASSING[name][1].items():
        text = said(step(report, step_id).finding)
        assert all(w in text for w in words), (step_id, words, text)


@pytest.mark.parametrize("name", sorted(FAILING))
def test_the_check_fails_where_the_ground_truth_does(world, tmp_path, name):
    """`check` fails (or, for what cannot be read, warns) the step with what it saw, and proposes only the fix that works."""
    box = world(write_world(tmp_path, name))
    _, step_id, expected, operation, label, words = FAILING[name]
    truth = {v.label: v for v in box.dependencies("nerava-backend")}[label]
    assert not truth.reachable, truth.describe()
    report, _, aws = run(fix=False)
    assert set(aws.calls) <= set(policy.actions(rb.load("apprunner-vpc"), fix=False)[0]), "a call iam-policy does not grant"
    finding = step(report, step_id).finding
    assert finding.status.value == expected, (finding.summary, [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results])
    assert finding.evidence, "a verdict without evidence"
    proposed = [c.call.operation for c in (*finding.changes, *step(report, step_id).held) if not c.recommendation]
    assert proposed == ([operation] if operation else []), proposed
    if expected == "warn":  # cannot tell: the connector's own rule is advice, never applied
        assert [c.call.operation for c in finding.changes if c.recommendation] == ["authorize_security_group_ingress"]
    text = said(finding)
    assert all(w in text for w in words), (words, text)
    assert not mutating_calls(aws)


def test_fix_opens_the_proxys_database_to_the_proxy_and_converges(world, tmp_path):
    box = world(write_world(tmp_path, "rds-proxy-database-closed"))
    report, _, aws = run(timeout=60)
    assert report.healthy, [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results]
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    rules = box.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [box.ids["sg:db-sg"]]}])["SecurityGroupRules"]
    assert box.ids["sg:proxy-sg"] in [r.get("ReferencedGroupInfo", {}).get("GroupId") for r in rules if not r["IsEgress"]]
    assert box.app_health("nerava-backend")[0]


def test_the_new_readers_run_once_and_only_when_the_world_calls_for_them(world, tmp_path):
    """The field report's budget (test_budget) is untouched; a proxy, a serverless cache and a prefix list
    each cost their own reads, once."""
    doc = copy.deepcopy(HEALTHY)
    for edit in (proxy, serverless_cache, subnet_prefix_list):
        edit(doc)
    doc["security_groups"]["proxy-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "prefix_list": "connector-subnets"}]
    path = tmp_path / "readers.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    world(str(path))
    report, _, aws = run(fix=False)
    assert {k: aws.calls[k] for k in ("rds:DescribeDBProxies", "rds:DescribeDBProxyTargets",
                                      "elasticache:DescribeServerlessCaches", "ec2:GetManagedPrefixListEntries")} == {
        "rds:DescribeDBProxies": 1, "rds:DescribeDBProxyTargets": 1, "elasticache:DescribeServerlessCaches": 1,
        "ec2:GetManagedPrefixListEntries": 1}
    assert aws.calls["ec2:DescribeSecurityGroupRules"] == 2  # the proxy's database's group, read in the late round
    assert "rds:DescribeDBClusters" not in aws.calls
    assert {r.step.id: r.finding.status.value for r in report.results if r.step.id in ("rds-ingress", "redis-ingress")} == {
        "rds-ingress": "ok", "redis-ingress": "ok"}
