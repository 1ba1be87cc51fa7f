"""Worlds the sandbox could not build before: CIDR rules that count together, prefix lists, groups of
peered VPCs and of other accounts, a standalone cache cluster, a serverless cache, an RDS Proxy, IPv6
network-ACL entries. Each has a world where its check fails and one where it passes, built from the
bundled `healthy` scenario, judged by the tool over HTTP and by the sandbox's own ground truth.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from helpers import mutating_calls, run, step
from runbook import policy
from runbook import runbook as rb
from test_scenarios import HEALTHY, service

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


# name -> (edit of healthy, step, expected status, operation proposed or None, label the ground truth judges, reachable)
WORLDS = {
    # §1: CIDR rules count together
    "cidr-per-subnet": (lambda d: cache_ingress(d, per_subnet(6379)), "redis-ingress", "ok", None, "cache", True),
    "cidr-one-subnet": (lambda d: cache_ingress(d, per_subnet(6379)[:1]), "redis-ingress", "fail",
                        "authorize_security_group_ingress", "cache", False),
    "egress-per-subnet": (lambda d: d["security_groups"]["connector-sg"].update(
        egress=[*per_subnet(5432), *per_subnet(6379)]), "connector-egress", "ok", None, "database", True),
    "egress-one-subnet": (lambda d: d["security_groups"]["connector-sg"].update(
        egress=[per_subnet(5432)[1], *per_subnet(6379)]), "connector-egress", "fail", "authorize_security_group_egress",
        "database", False),
    # §3: managed prefix lists, read entry by entry
    "prefix-list-covers": (both(subnet_prefix_list, lambda d: db_ingress(d, [{"protocol": "tcp", "port": 5432, "prefix_list": "connector-subnets"}])),
                           "rds-ingress", "ok", None, "database", True),
    "prefix-list-short": (both(lambda d: subnet_prefix_list(d, ["10.0.1.0/24"]), lambda d: db_ingress(d, [{"protocol": "tcp", "port": 5432, "prefix_list": "connector-subnets"}])),
                          "rds-ingress", "fail", "authorize_security_group_ingress", "database", False),
    "egress-prefix-list": (both(subnet_prefix_list, lambda d: d["security_groups"]["connector-sg"].update(
        egress=[{"protocol": "-1", "prefix_list": "connector-subnets"}])), "connector-egress", "ok", None, "cache", True),
    "prefix-list-unreadable": (lambda d: db_ingress(d, [{"protocol": "tcp", "port": 5432, "foreign_prefix_list": "pl-0123456789abcdef0"}]),
                               "rds-ingress", "warn", None, "database", False),
    # §3: groups of a peered VPC and of another account admit their own members, never the connector
    "foreign-groups-only": (both(peered_vpc, lambda d: db_ingress(d, [
        {"protocol": "tcp", "port": 5432, "peer_group": "peer-app"}, {"protocol": "tcp", "port": 5432, "foreign_group": FOREIGN}])),
        "rds-ingress", "fail", "authorize_security_group_ingress", "database", False),
    "foreign-groups-and-connector": (both(peered_vpc, lambda d: db_ingress(d, [
        {"protocol": "tcp", "port": 5432, "peer_group": "peer-app"}, {"protocol": "tcp", "port": 5432, "foreign_group": FOREIGN},
        connector_rule(5432)])), "rds-ingress", "ok", None, "database", True),
    # §3: a standalone cache cluster, a serverless cache, an RDS Proxy
    "standalone-cache": (standalone_cache, "redis-ingress", "ok", None, "cache", True),
    "serverless-cache": (serverless_cache, "redis-ingress", "ok", None, "cache", True),
    "serverless-cache-plain-url": (both(serverless_cache, lambda d: service(d)["env"].update(
        REDIS_URL="redis://${cache.nerava-redis.address}:${cache.nerava-redis.port}/0")), "env-endpoints", "fail", None, "cache", False),
    "rds-proxy": (proxy, "rds-ingress", "ok", None, "database", True),
    "rds-proxy-closed": (both(proxy, lambda d: d["security_groups"]["proxy-sg"].update(ingress=[])), "rds-ingress", "fail",
                         "authorize_security_group_ingress", "database", False),
    "rds-proxy-database-closed": (both(proxy, lambda d: db_ingress(d, [connector_rule(5432)])), "rds-ingress", "fail",
                                  "authorize_security_group_ingress", "database", False),
    "rds-proxy-custom-endpoint": (proxy_endpoint, "rds-ingress", "ok", None, "database", True),
    "rds-proxy-custom-endpoint-closed": (both(proxy_endpoint, lambda d: d["security_groups"]["endpoint-sg"].update(ingress=[])),
                                         "rds-ingress", "fail", "authorize_security_group_ingress", "database", False),
    # §3: IPv6 entries in network ACLs never match the connector's IPv4 traffic
    "nacl-ipv6-allow-only": (ipv6_only_acl, "nacl", "fail", None, "database", False),
    "nacl-ipv6-deny-first": (ipv6_deny_before_ipv4_allow, "nacl", "ok", None, "database", True),
}


def write_world(tmp_path, name) -> str:
    doc = copy.deepcopy(HEALTHY)
    WORLDS[name][0](doc)
    doc["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


# What each failing world's verdict says: the words an on-call engineer acts on.
SAYS = {
    "cidr-one-subnet": ["10.0.2.0/24"],
    "prefix-list-short": ["10.0.2.0/24", "pl-"],
    "prefix-list-unreadable": ["cannot tell", "pl-0123456789abcdef0", "InvalidPrefixListID.NotFound"],
    "foreign-groups-only": ["does not admit the connector", "a group of a peered VPC", "a group of account 111122223333",
                            "not a duplicate"],
    "rds-proxy-closed": ["(database nerava-proxy)"],
    "rds-proxy-database-closed": ["proxy nerava-proxy's", "(database nerava-db)"],
    "serverless-cache-plain-url": ["rediss://"],
    "rds-proxy-custom-endpoint-closed": ["(database nerava-writes)", "proxy nerava-proxy forwards to database nerava-db"],
    "nacl-ipv6-allow-only": ["allow only IPv6 traffic"],
}


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_the_check_and_the_ground_truth_agree(world, tmp_path, name):
    """A failing world: `check` fails the step with what it saw and proposes only the fix that works.
    A passing world: `fix --yes` finds everything ok, changes nothing, and the service is healthy."""
    box = world(write_world(tmp_path, name))
    _, step_id, expected, operation, label, reachable = WORLDS[name]
    truth = {v.label: v for v in box.dependencies("nerava-backend")}[label]
    assert truth.reachable is reachable, truth.describe()
    report, recorder, aws = run(fix=expected == "ok", timeout=30)
    read, write = policy.actions(rb.load("apprunner-vpc"), fix=True)
    assert set(aws.calls) <= set(read) | set(write), "a call iam-policy does not grant"
    result = step(report, step_id)
    assert result.finding.status.value == expected, (result.finding.summary, [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results])
    if expected != "ok":  # an ok verdict names what holds in its summary
        assert result.finding.evidence, "a verdict without evidence"
    proposed = [c.call.operation for c in (*result.finding.changes, *result.held) if not c.recommendation]
    assert proposed == ([operation] if operation else []), proposed
    if expected == "warn":  # cannot tell: the connector's own rule is advice, never applied
        assert [c.call.operation for c in result.finding.changes if c.recommendation] == ["authorize_security_group_ingress"]
    if expected == "ok":
        assert all(r.finding.status.value == "ok" for r in report.results), [(r.step.id, r.finding.summary) for r in report.results if r.finding.status.value != "ok"]
        assert report.healthy and report.exit_code == 0 and not recorder.of("proposing")
        assert box.app_health("nerava-backend")[0]
    said = " ".join([result.finding.summary, *(e.observation for e in result.finding.evidence), *(c.description for c in result.finding.changes)])
    for words in SAYS.get(name, ()):
        assert words in said, (words, said)
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
