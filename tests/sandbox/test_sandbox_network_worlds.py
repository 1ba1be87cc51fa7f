"""The scenario format's network worlds: prefix lists, VPC peerings, rules naming peered or foreign
groups, IPv6 network-ACL entries, standalone and serverless caches, RDS Proxies; their validation
errors, what moto (with the sandbox's shims) returns for them, and the ground truth on them."""

from __future__ import annotations

import copy

import pytest

from tests.sandbox.test_sandbox_scenarios import MINIMAL, error_of

TWO_VPCS = {
    "main": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.1.0/24"}, "b": {"cidr": "10.0.2.0/24", "az": "us-east-1b"}}},
    "peer": {"cidr": "10.9.0.0/16", "subnets": {"p": {"cidr": "10.9.1.0/24"}}},
}


def mini(**changes):
    data = copy.deepcopy(MINIMAL)
    data.update(changes)
    return data


def db_rule(**source):
    return {"db-sg": {"ingress": [{"protocol": "tcp", "port": 5432, **source}]}}


@pytest.mark.parametrize("data,expected", [
    (mini(security_groups=db_rule(prefix_list="ghost")), "security_groups.db-sg.ingress[0].prefix_list: no prefix list 'ghost' (defined: none)"),
    (mini(vpcs=TWO_VPCS, security_groups={**db_rule(peer_group="app"), "app": {"vpc": "peer"}}),
     "security_groups.db-sg.ingress[0].peer_group: security group 'app' is in vpc 'peer', which no vpc_peerings entry joins to 'main'"),
    (mini(security_groups={**db_rule(peer_group="app"), "app": {}}),
     "security_groups.db-sg.ingress[0].peer_group: security group 'app' is in this rule's vpc 'main': name it with group"),
    (mini(security_groups=db_rule(foreign_prefix_list="pl-xyz")),
     "security_groups.db-sg.ingress[0].foreign_prefix_list: expected a prefix list id pl-<8-17 hex digits>, got 'pl-xyz'"),
    (mini(security_groups=db_rule(foreign_group="sg-0123456789abcdef0")),
     "security_groups.db-sg.ingress[0].foreign_group: expected <12-digit account>/<sg-id>, got 'sg-0123456789abcdef0'"),
    (mini(security_groups=db_rule(cidr="10.0.0.0/16", prefix_list="x")), "security_groups.db-sg.ingress[0]: needs exactly one of "),
    (mini(prefix_lists={"pl": {"entries": ["10.0.1.0/24", "10.0.1.0/24"]}}), "prefix_lists.pl.entries[1]: 10.0.1.0/24 is listed twice"),
    (mini(prefix_lists={"pl": {"entries": ["::/0"]}}), "prefix_lists.pl.entries[0]: expected an IPv4 CIDR block, got '::/0'"),
    (mini(prefix_lists={"pl": {"entries": ["10.0.1.0/24", "10.0.2.0/24"], "max_entries": 1}}),
     "prefix_lists.pl.max_entries: 2 entries do not fit in max_entries 1"),
    (mini(vpc_peerings=[{"name": "p", "vpcs": ["main", "ghost"]}]), "vpc_peerings[0].vpcs[1]: no vpc 'ghost' (defined: main)"),
    (mini(vpcs={"main": TWO_VPCS["main"], "twin": {"cidr": "10.0.0.0/16", "subnets": {"t": {"cidr": "10.0.5.0/24"}}}},
          vpc_peerings=[{"name": "p", "vpcs": ["main", "twin"]}]),
     "vpc_peerings[0].vpcs: 10.0.0.0/16 and 10.0.0.0/16 overlap: AWS peers only disjoint VPCs"),
    (mini(vpcs={"main": {**TWO_VPCS["main"], "network_acls": {"x": {"entries": [
        {"rule": 10, "action": "deny", "protocol": "-1", "cidr": "0.0.0.0/0", "cidr_ipv6": "::/0"}]}}}}),
     "vpcs.main.network_acls.x.entries[0].cidr_ipv6: give either cidr or cidr_ipv6, not both"),
    (mini(vpcs={"main": {**TWO_VPCS["main"], "network_acls": {"x": {"entries": [
        {"rule": 10, "action": "deny", "protocol": "-1", "cidr_ipv6": "10.0.0.0/8"}]}}}}),
     "vpcs.main.network_acls.x.entries[0].cidr_ipv6: expected an IPv6 CIDR block, got '10.0.0.0/8'"),
    (mini(caches=[{"id": "c1", "mode": "serverless", "port": 6380, "subnets": ["a"], "security_groups": ["default"]}]),
     "caches[0].port: a serverless cache has no port"),
    (mini(caches=[{"id": "c1", "mode": "serverless", "transit_encryption": False, "subnets": ["a"], "security_groups": ["default"]}]),
     "caches[0].transit_encryption: a serverless cache accepts TLS connections only"),
    (mini(caches=[{"id": "c1", "mode": "cluster", "replicas": 1, "subnets": ["a"], "security_groups": ["default"]}]),
     "caches[0].replicas: a cluster cache has no read replicas"),
    (mini(caches=[{"id": "c1", "mode": "grid", "subnets": ["a"], "security_groups": ["default"]}]),
     "caches[0].mode: must be one of replication-group, cluster, serverless, got 'grid'"),
    (mini(vpcs=TWO_VPCS, proxies=[{"name": "px", "database": "ghost", "subnets": ["a", "b"], "security_groups": ["default"]}]),
     "proxies[0].database: no database 'ghost' (defined: none)"),
    (mini(vpcs=TWO_VPCS, databases=[{"id": "db1", "engine": "mysql", "subnets": ["a", "b"], "security_groups": ["default"]}],
          proxies=[{"name": "px", "database": "db1", "engine_family": "POSTGRESQL", "subnets": ["a", "b"], "security_groups": ["default"]}]),
     "proxies[0].engine_family: database 'db1' is mysql, not POSTGRESQL"),
    (mini(vpcs=TWO_VPCS, databases=[{"id": "db1", "subnets": ["a", "b"], "security_groups": ["default"]}],
          proxies=[{"name": "px", "database": "db1", "subnets": ["a"], "security_groups": ["default"]}]),
     "proxies[0].subnets: needs at least 2 entries"),
    (mini(services=[{"name": "mini-app", "env": {"DATABASE_URL": "postgres://${proxy.px.address}/x"}}]),
     "services[0].env.DATABASE_URL: ${proxy.px.address} names no proxy 'px' (defined: none)"),
])
def test_malformed_network_worlds_fail_with_one_line(tmp_path, data, expected):
    message = error_of(tmp_path, data)
    assert message.startswith(expected), message


WORLD = f"""
name: network-world
vpcs:
  main:
    cidr: 10.0.0.0/16
    subnets:
      a: {{cidr: 10.0.1.0/24, az: us-east-1a}}
      b: {{cidr: 10.0.2.0/24, az: us-east-1b}}
    network_acls:
      dual:
        subnets: [b]
        entries:
          - {{rule: 50, action: deny, protocol: tcp, port: 5432, cidr_ipv6: "::/0"}}
          - {{rule: 100, action: allow, protocol: "-1"}}
          - {{rule: 100, egress: true, action: allow, protocol: "-1"}}
  peer:
    cidr: 10.9.0.0/16
    subnets: {{p: {{cidr: 10.9.1.0/24}}}}
vpc_peerings: [{{name: main-peer, vpcs: [main, peer]}}]
prefix_lists:
  subnets: {{entries: [10.0.1.0/24, 10.0.2.0/24], max_entries: 4}}
security_groups:
  app: {{vpc: peer}}
  db-sg:
    ingress:
      - {{protocol: tcp, port: 5432, prefix_list: subnets}}
      - {{protocol: tcp, port: 5432, peer_group: app}}
      - {{protocol: tcp, port: 5432, foreign_group: "111122223333/sg-0123456789abcdef0"}}
databases:
  - {{id: world-db, subnets: [a, b], security_groups: [db-sg]}}
proxies:
  - {{name: world-proxy, database: world-db, subnets: [a, b], security_groups: [db-sg]}}
caches:
  - {{id: solo, mode: cluster, subnets: [a], security_groups: [db-sg]}}
  - {{id: nimbus, mode: serverless, engine: valkey, subnets: [a, b], security_groups: [db-sg]}}
"""


def test_moto_serves_the_network_world(load, yaml_scenario):
    """Shims 7 and 8: serverless caches, and rules naming another account's group."""
    sb = load(yaml_scenario(WORLD))
    ec2, rds, ec = sb.client("ec2"), sb.client("rds"), sb.client("elasticache")
    rules = {r.get("PrefixListId") or r["ReferencedGroupInfo"]["GroupId"]: r for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sb.ids["sg:db-sg"]]}])["SecurityGroupRules"] if not r["IsEgress"]}
    assert set(rules) == {sb.ids["pl:subnets"], sb.ids["sg:app"], "sg-0123456789abcdef0"}
    assert rules[sb.ids["sg:app"]]["ReferencedGroupInfo"]["VpcPeeringConnectionId"] == sb.ids["pcx:main-peer"]
    assert rules["sg-0123456789abcdef0"]["ReferencedGroupInfo"]["UserId"] == "111122223333"
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=sb.ids["pl:subnets"])["Entries"]
    assert sorted(e["Cidr"] for e in entries) == ["10.0.1.0/24", "10.0.2.0/24"]
    acl = ec2.describe_network_acls(NetworkAclIds=[sb.ids["acl:dual"]])["NetworkAcls"][0]
    assert {"RuleNumber": 50, "Ipv6CidrBlock": "::/0"}.items() <= next(e for e in acl["Entries"] if e["RuleNumber"] == 50).items()

    (serverless,) = ec.describe_serverless_caches()["ServerlessCaches"]
    assert serverless["ServerlessCacheName"] == "nimbus" and serverless["Engine"] == "valkey"
    assert ".serverless." in serverless["Endpoint"]["Address"] and serverless["Endpoint"]["Port"] == 6379
    assert serverless["SecurityGroupIds"] == [sb.ids["sg:db-sg"]]
    assert sorted(serverless["SubnetIds"]) == sorted([sb.ids["subnet:a"], sb.ids["subnet:b"]])
    with pytest.raises(ec.exceptions.ClientError, match="ServerlessCacheNotFoundFault"):
        ec.describe_serverless_caches(ServerlessCacheName="ghost")

    solo = ec.describe_cache_clusters(CacheClusterId="solo", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert "ReplicationGroupId" not in solo and solo["CacheNodes"][0]["Endpoint"]["Port"] == 6379
    (proxy,) = rds.describe_db_proxies()["DBProxies"]
    assert proxy["VpcSecurityGroupIds"] == [sb.ids["sg:db-sg"]] and proxy["EngineFamily"] == "POSTGRESQL"
    (target,) = rds.describe_db_proxy_targets(DBProxyName="world-proxy")["Targets"]
    assert target["RdsResourceId"] == "world-db" and target["Type"] == "RDS_INSTANCE"


def test_ground_truth_on_the_network_world(load, yaml_scenario):
    """Each target is found at its address; a prefix list's entries add up; peered and foreign groups never
    admit a client of this VPC; an IPv6 deny does not stop IPv4 traffic."""
    from runbook_sandbox.reachability import AwsSnapshot, Egress, evaluate

    sb = load(yaml_scenario(WORLD))
    snapshot = AwsSnapshot(sb._clients)
    found = {t.ident: t for t in snapshot.targets}
    assert {"world-db", "world-proxy", "solo", "nimbus"} <= set(found)
    assert found["world-proxy"].backend is found["world-db"] and found["nimbus"].transit_encryption
    client = Egress("VPC", "c", (sb.ids["subnet:a"], sb.ids["subnet:b"]), (sb.ids["sg:default"],))
    db = f"postgresql://dbadmin:sandbox-pass@{found['world-db'].address}:5432/x"
    assert evaluate(snapshot, client, "database", "DATABASE_URL", db, {"world-db": "sandbox-pass"}).reachable
    ec2 = sb.client("ec2")
    ec2.modify_managed_prefix_list(PrefixListId=sb.ids["pl:subnets"], CurrentVersion=1, RemoveEntries=[{"Cidr": "10.0.2.0/24"}])
    verdict = evaluate(AwsSnapshot(sb._clients), client, "database", "DATABASE_URL", db, {"world-db": "sandbox-pass"})
    assert not verdict.reachable and "no ingress on" in verdict.reasons[0], verdict.reasons


def test_proxy_endpoint_names_are_checked(tmp_path):
    data = mini(vpcs=TWO_VPCS, databases=[{"id": "db1", "subnets": ["a", "b"], "security_groups": ["default"]}],
                proxies=[{"name": "px", "database": "db1", "subnets": ["a", "b"], "security_groups": ["default"],
                          "endpoints": [{"name": "db1", "subnets": ["a", "b"], "security_groups": ["default"]}]}])
    assert error_of(tmp_path, data).startswith("proxies[0].endpoints[0].name: 'db1' is already used by a proxy, endpoint or database")


def test_moto_serves_proxy_custom_endpoints(load, yaml_scenario):
    """Shim 10: CreateDBProxyEndpoint / DescribeDBProxyEndpoints, with each proxy's default endpoint listed too."""
    world = WORLD.replace("  - {name: world-proxy, database: world-db, subnets: [a, b], security_groups: [db-sg]}",
                          "  - {name: world-proxy, database: world-db, subnets: [a, b], security_groups: [db-sg],\n"
                          "     endpoints: [{name: world-reads, subnets: [a, b], security_groups: [default], target_role: READ_ONLY}]}")
    sb = load(yaml_scenario(world))
    rds = sb.client("rds")
    endpoints = {e["DBProxyEndpointName"]: e for e in rds.describe_db_proxy_endpoints(DBProxyName="world-proxy")["DBProxyEndpoints"]}
    assert set(endpoints) == {"default", "world-reads"} and endpoints["default"]["IsDefault"]
    reads = endpoints["world-reads"]
    assert reads["Endpoint"].startswith("world-reads.endpoint.proxy-") and reads["TargetRole"] == "READ_ONLY"
    assert reads["VpcSecurityGroupIds"] == [sb.ids["sg:default"]] and reads["VpcId"] == sb.ids["vpc:main"]
    with pytest.raises(rds.exceptions.ClientError, match="DBProxyEndpointNotFoundFault"):
        rds.describe_db_proxy_endpoints(DBProxyEndpointName="ghost")


def test_mutated_network_worlds_are_refused_cleanly(tmp_path):
    """The network world's new fields, broken at random: one clear line each, never a traceback."""
    from runbook_sandbox import load_scenario
    from tests.test_mutations import outcomes

    text = WORLD.replace("  - {name: world-proxy, database: world-db, subnets: [a, b], security_groups: [db-sg]}",
                         "  - {name: world-proxy, database: world-db, subnets: [a, b], security_groups: [db-sg],\n"
                         "     endpoints: [{name: world-reads, subnets: [a, b], security_groups: [default]}]}")
    text = text.replace("      - {protocol: tcp, port: 5432, foreign_group:",
                        "      - {protocol: tcp, port: 5432, foreign_prefix_list: pl-0123456789abcdef0}\n"
                        "      - {protocol: tcp, port: 5432, foreign_group:")
    refused, accepted = outcomes(text, load_scenario, tmp_path, 150, seed=23)
    assert refused >= 90, (refused, accepted)
