"""The sandbox's ground truth for reachability, driven by real EC2 changes in moto."""

from __future__ import annotations

import pytest

SERVICE = "nerava-backend"


def verdict(sb, label):
    return {v.label: v for v in sb.dependencies(SERVICE)}[label]


def cache_ingress_ids(sb):
    rules = sb.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sb.ids["sg:cache-sg"]]}])["SecurityGroupRules"]
    return [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]


@pytest.fixture
def bare_cache(load):
    """healthy, with every ingress rule of the cache's group revoked."""
    sb = load("healthy")
    sb.client("ec2").revoke_security_group_ingress(GroupId=sb.ids["sg:cache-sg"],
                                                   SecurityGroupRuleIds=cache_ingress_ids(sb))
    v = verdict(sb, "cache")
    assert not v.reachable and "no ingress on " + sb.ids["sg:cache-sg"] in v.reasons[0]
    return sb


def allow_cache(sb, **permission):
    sb.client("ec2").authorize_security_group_ingress(GroupId=sb.ids["sg:cache-sg"], IpPermissions=[permission])


def test_healthy_world_is_healthy(load):
    sb = load("healthy")
    assert sb.app_health(SERVICE) == (True, [])
    assert all(v.reachable for v in sb.dependencies(SERVICE))


def test_protocol_all_from_the_connector_group(bare_cache):
    allow_cache(bare_cache, IpProtocol="-1", UserIdGroupPairs=[{"GroupId": bare_cache.ids["sg:connector-sg"]}])
    assert verdict(bare_cache, "cache").reachable


def _try_cache_rules(sb, cases):
    """Authorize each permission alone on the bare cache group; return the verdicts."""
    ec2 = sb.client("ec2")
    results = []
    for permission in cases:
        allow_cache(sb, **permission)
        results.append(verdict(sb, "cache").reachable)
        ec2.revoke_security_group_ingress(GroupId=sb.ids["sg:cache-sg"], SecurityGroupRuleIds=cache_ingress_ids(sb))
    return results


def test_port_ranges(bare_cache):
    pair = [{"GroupId": bare_cache.ids["sg:connector-sg"]}]
    cases = [(6000, 7000, True), (6379, 6379, True), (6380, 7000, False), (0, 6378, False), (0, 65535, True)]
    results = _try_cache_rules(bare_cache, [
        {"IpProtocol": "tcp", "FromPort": lo, "ToPort": hi, "UserIdGroupPairs": pair} for lo, hi, _ in cases])
    assert results == [ok for _, _, ok in cases]


def test_udp_does_not_carry_redis(bare_cache):
    allow_cache(bare_cache, IpProtocol="udp", FromPort=0, ToPort=65535,
                UserIdGroupPairs=[{"GroupId": bare_cache.ids["sg:connector-sg"]}])
    assert not verdict(bare_cache, "cache").reachable


def test_cidr_must_cover_every_connector_subnet(bare_cache):
    # The connector's subnets are 10.0.1.0/24 and 10.0.2.0/24.
    cases = [("10.0.0.0/16", True), ("10.0.0.0/22", True), ("0.0.0.0/0", True),
             ("10.0.1.0/24", False), ("10.0.2.0/24", False), ("192.168.0.0/16", False)]
    results = _try_cache_rules(bare_cache, [
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": cidr}]} for cidr, _ in cases])
    assert results == [ok for _, ok in cases]


def test_ipv6_everywhere_does_not_admit_ipv4_traffic(bare_cache):
    allow_cache(bare_cache, IpProtocol="tcp", FromPort=6379, ToPort=6379, Ipv6Ranges=[{"CidrIpv6": "::/0"}])
    assert not verdict(bare_cache, "cache").reachable


def test_a_rule_from_another_group_does_not_help(bare_cache):
    allow_cache(bare_cache, IpProtocol="tcp", FromPort=6379, ToPort=6379,
                UserIdGroupPairs=[{"GroupId": bare_cache.ids["sg:db-sg"]}])
    assert not verdict(bare_cache, "cache").reachable


def test_connector_egress_must_allow_the_port(load):
    sb = load("healthy")
    ec2 = sb.client("ec2")
    connector_sg = sb.ids["sg:connector-sg"]
    ec2.revoke_security_group_egress(GroupId=connector_sg,
                                     IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    for label in ("cache", "database"):
        v = verdict(sb, label)
        assert not v.reachable and v.reasons[0].startswith(f"no egress rule on {connector_sg}")
    ec2.authorize_security_group_egress(GroupId=connector_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
         "UserIdGroupPairs": [{"GroupId": sb.ids["sg:cache-sg"]}]},
        {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 6000, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
    ])
    assert verdict(sb, "cache").reachable and verdict(sb, "database").reachable


def test_dns_support_off_means_names_do_not_resolve(load):
    sb = load("healthy")
    sb.client("ec2").modify_vpc_attribute(VpcId=sb.ids["vpc:main"], EnableDnsSupport={"Value": False})
    v = verdict(sb, "database")
    assert not v.reachable and v.reasons[0].startswith("could not translate host name")
    assert "could not translate host name" in v.app_log


def test_network_acl_denies_and_ephemeral_ports(load, test_scenario):
    sb = load(test_scenario("nacl"))
    service = "app-service"
    assert sb.app_health(service) == (True, [])
    ec2 = sb.client("ec2")
    acl = sb.ids["acl:locked"]
    # A deny before the allow-all egress on the connector subnet stops Redis only.
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=50, Protocol="6", RuleAction="deny", Egress=True,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 6379, "To": 6379})
    verdicts = {v.label: v for v in sb.dependencies(service)}
    assert verdicts["database"].reachable
    assert not verdicts["cache"].reachable
    assert f"network ACL {acl} rule 50 denies outbound tcp/6379" in verdicts["cache"].reasons[0]
    ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=50, Egress=True)
    assert sb.app_health(service)[0]
    # Return traffic to the client's ephemeral ports (Linux: 32768-60999) must get back in.
    ec2.replace_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False,
                                  CidrBlock="10.0.0.0/16", PortRange={"From": 32768, "To": 65535})
    assert sb.app_health(service)[0]
    ec2.replace_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False,
                                  CidrBlock="10.0.0.0/16", PortRange={"From": 1024, "To": 40000})
    verdicts = {v.label: v for v in sb.dependencies(service)}
    assert not verdicts["database"].reachable and not verdicts["cache"].reachable
    assert f"network ACL {acl} has no entry allowing inbound tcp/40001-60999" in verdicts["database"].reasons[0]
    # A deny on the whole ephemeral range, ahead of the allow, blocks too.
    ec2.replace_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False,
                                  CidrBlock="10.0.0.0/16", PortRange={"From": 1024, "To": 65535})
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="6", RuleAction="deny", Egress=False,
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 1024, "To": 65535})
    reasons = sb.app_health(service)[1]
    assert len(reasons) == 2 and all(f"network ACL {acl} rule 90 denies inbound" in r for r in reasons)


def test_default_network_acl_deny_on_the_target_side(load):
    sb = load("healthy")
    sb.client("ec2").create_network_acl_entry(
        NetworkAclId=sb.ids["acl:default@main"], RuleNumber=10, Protocol="6", RuleAction="deny", Egress=False,
        CidrBlock="10.0.1.0/24", PortRange={"From": 5432, "To": 5432})
    v = verdict(sb, "database")
    assert not v.reachable and "denies inbound tcp/5432" in v.reasons[0]
    assert verdict(sb, "cache").reachable


def test_env_var_changes_are_judged_from_the_live_service_config(load):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    image = apprunner.describe_service(ServiceArn=arn)["Service"]["SourceConfiguration"]["ImageRepository"]
    env = image["ImageConfiguration"]["RuntimeEnvironmentVariables"]
    env["REDIS_URL"] = "redis://old-cache.abc123.ng.0001.use1.cache.amazonaws.com:6379/0"
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("S3cr3t-pw", "wrong-password")
    apprunner.update_service(ServiceArn=arn, SourceConfiguration={"ImageRepository": image})
    cache, database = verdict(sb, "cache"), verdict(sb, "database")
    assert not cache.reachable and cache.reasons[0].startswith("could not translate host name old-cache.")
    assert not database.reachable and "password" in database.reasons[0]
    assert "wrong-password" not in " ".join(database.reasons) + (database.app_log or "")
    assert 'password authentication failed for user "nerava_admin"' in database.app_log


def test_wrong_port_in_url(load):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    image = apprunner.describe_service(ServiceArn=arn)["Service"]["SourceConfiguration"]["ImageRepository"]
    env = image["ImageConfiguration"]["RuntimeEnvironmentVariables"]
    env["REDIS_URL"] = env["REDIS_URL"].replace(":6379/", ":6380/")
    apprunner.update_service(ServiceArn=arn, SourceConfiguration={"ImageRepository": image})
    v = verdict(sb, "cache")
    assert not v.reachable and "listens on 6379, the URL says 6380" in v.reasons[0]


def test_default_egress_cannot_reach_private_stores(load):
    sb = load("healthy")
    sb.client("apprunner").update_service(ServiceArn=sb.ids["service:nerava-backend"], NetworkConfiguration={
        "EgressConfiguration": {"EgressType": "DEFAULT"}})
    for label in ("cache", "database"):
        v = verdict(sb, label)
        assert not v.reachable and v.reasons[0].startswith("egress is DEFAULT")


PUBLIC_DB = """
name: public-db
vpcs:
  main:
    cidr: 10.1.0.0/16
    internet_gateway: igw
    route_tables: {public: {routes: [{destination: 0.0.0.0/0, internet_gateway: igw}]}}
    subnets:
      pub-a: {cidr: 10.1.0.0/24, az: us-east-1a, route_table: public}
      pub-b: {cidr: 10.1.1.0/24, az: us-east-1b, route_table: public}
security_groups:
  db-sg:
    ingress: [{protocol: tcp, port: 5432, cidr: 0.0.0.0/0}]
databases:
  - {id: public-db, subnets: [pub-a, pub-b], security_groups: [db-sg], publicly_accessible: true,
     master_username: app, master_password: app-password}
services:
  - name: public-app
    env: {DATABASE_URL: "postgresql://app:app-password@${database.public-db.address}/app"}
    app: {needs: {database: DATABASE_URL}}
"""


def test_default_egress_reaches_a_public_database(load, yaml_scenario):
    sb = load(yaml_scenario(PUBLIC_DB))
    assert sb.app_health("public-app") == (True, [])
    rules = sb.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sb.ids["sg:db-sg"]]}])["SecurityGroupRules"]
    open_rule = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]
    sb.client("ec2").revoke_security_group_ingress(GroupId=sb.ids["sg:db-sg"], SecurityGroupRuleIds=open_rule)
    healthy, reasons = sb.app_health("public-app")
    assert not healthy and "admits the internet (0.0.0.0/0)" in reasons[0]


TLS_CACHE = """
name: tls-cache
vpcs:
  main:
    cidr: 10.2.0.0/16
    subnets:
      a: {cidr: 10.2.1.0/24, az: us-east-1a}
      b: {cidr: 10.2.2.0/24, az: us-east-1b}
security_groups:
  conn: {}
  cache-sg: {ingress: [{protocol: tcp, port: 6379, source_group: conn}]}
caches:
  - {id: tls-redis, subnets: [a, b], security_groups: [cache-sg], transit_encryption: true,
     auth_token: "a-long-auth-token-123"}
connectors:
  - {name: tls-connector, subnets: [a, b], security_groups: [conn]}
services:
  - name: plain-app
    connector: tls-connector
    image: public.ecr.aws/sandbox/plain:1
    env: {REDIS_URL: "redis://${cache.tls-redis.address}:${cache.tls-redis.port}/0"}
    app: {needs: {cache: REDIS_URL}}
  - name: tls-app
    connector: tls-connector
    image: public.ecr.aws/sandbox/tls:1
    env: {REDIS_URL: "rediss://:a-long-auth-token-123@${cache.tls-redis.address}:${cache.tls-redis.port}/0"}
    app: {needs: {cache: REDIS_URL}}
  - name: noauth-app
    connector: tls-connector
    image: public.ecr.aws/sandbox/noauth:1
    env: {REDIS_URL: "rediss://${cache.tls-redis.address}:${cache.tls-redis.port}/0"}
    app: {needs: {cache: REDIS_URL}}
"""


def test_transit_encryption_needs_rediss_and_auth(load, yaml_scenario):
    sb = load(yaml_scenario(TLS_CACHE))
    group = sb.client("elasticache").describe_replication_groups()["ReplicationGroups"][0]
    assert group["TransitEncryptionEnabled"] is True and group["AuthTokenEnabled"] is True
    assert sb.app_health("tls-app") == (True, [])
    healthy, reasons = sb.app_health("plain-app")
    assert not healthy and "must use rediss://" in reasons[0]
    healthy, reasons = sb.app_health("noauth-app")
    assert not healthy and "AUTH token" in reasons[0]
    assert all("a-long-auth-token" not in r for r in reasons)


def test_services_without_a_connector_in_a_scenario_use_default_egress(load, yaml_scenario):
    sb = load(yaml_scenario(TLS_CACHE.replace("    connector: tls-connector\n    image: public.ecr.aws/sandbox/tls:1",
                                              "    image: public.ecr.aws/sandbox/tls:1")))
    service = sb.client("apprunner").describe_service(ServiceArn=sb.ids["service:tls-app"])["Service"]
    assert service["NetworkConfiguration"]["EgressConfiguration"] == {"EgressType": "DEFAULT"}
    healthy, reasons = sb.app_health("tls-app")
    assert not healthy and reasons[0].startswith("cache tls-redis:6379 unreachable: egress is DEFAULT")


TWO_VPCS = """
name: two-vpcs
region: eu-west-1
vpcs:
  app:
    cidr: 10.10.0.0/16
    subnets:
      app-a: {cidr: 10.10.1.0/24, az: eu-west-1a}
      app-b: {cidr: 10.10.2.0/24, az: eu-west-1b}
    network_acls:
      default:
        entries:
          - {rule: 90, action: deny, protocol: udp, port: 53, egress: true}
  legacy:
    cidr: 172.20.0.0/16
    dns_hostnames: false
    subnets:
      old-a: {cidr: 172.20.1.0/24, az: eu-west-1a}
      old-b: {cidr: 172.20.2.0/24, az: eu-west-1b}
security_groups:
  conn:
    vpc: app
    egress: []
  app-default:
    vpc: app
    group_name: default
    ingress: [{protocol: icmp, cidr: 10.10.0.0/16}]
  old-db:
    vpc: legacy
    ingress:
      - {protocol: "-1", cidr: 0.0.0.0/0}
      - {protocol: tcp, port: 5432, cidr_ipv6: "::/0", description: v6}
databases:
  - {id: old-db, subnets: [old-a, old-b], security_groups: [old-db], master_username: app,
     master_password: app-password}
caches:
  - {id: new-cache, subnets: [app-a, app-b], security_groups: [app-default]}
connectors:
  - {name: app-connector, subnets: [app-a, app-b], security_groups: [conn]}
services:
  - name: app-service
    connector: app-connector
    env:
      DATABASE_URL: "postgresql://app:app-password@${database.old-db.address}:${database.old-db.port}/app"
      REDIS_URL: "redis://${cache.new-cache.address}:${cache.new-cache.port}"
    app: {needs: {database: DATABASE_URL, cache: REDIS_URL}}
"""


def test_two_vpcs_no_egress_and_a_foreign_default_group(load, yaml_scenario):
    sb = load(yaml_scenario(TWO_VPCS))
    assert sb.env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert sb.service_state("app-service")["config"]["NetworkConfiguration"]["EgressConfiguration"][
        "VpcConnectorArn"].startswith("arn:aws:apprunner:eu-west-1:123456789012:vpcconnector/app-connector/1/")
    ec2 = sb.client("ec2")
    assert sb.ids["sg:app-default"] == sb.ids["sg:default@app"] == sb.ids["sg:default"] != sb.ids["sg:default@legacy"]
    assert ec2.describe_security_groups(GroupIds=[sb.ids["sg:conn"]])["SecurityGroups"][0]["IpPermissionsEgress"] == []
    assert ec2.describe_vpc_attribute(VpcId=sb.ids["vpc:legacy"], Attribute="enableDnsHostnames")[
        "EnableDnsHostnames"]["Value"] is False
    verdicts = {v.label: v for v in sb.dependencies("app-service")}
    assert verdicts["database"].reasons == (
        f"database old-db is in {sb.ids['vpc:legacy']}, connector app-connector in {sb.ids['vpc:app']}",)
    assert verdicts["cache"].reasons[0].startswith(f"no egress rule on {sb.ids['sg:conn']} (connector) allows tcp/6379")
    assert any("no ingress on " + sb.ids["sg:app-default"] in r for r in verdicts["cache"].reasons)
    acl = ec2.describe_network_acls(NetworkAclIds=[sb.ids["acl:default@app"]])["NetworkAcls"][0]
    assert {"CidrBlock": "0.0.0.0/0", "Egress": True, "PortRange": {"From": 53, "To": 53}, "Protocol": "17",
            "RuleAction": "deny", "RuleNumber": 90} in acl["Entries"]


AURORA = """
name: aurora
vpcs:
  main:
    cidr: 10.3.0.0/16
    subnets:
      a: {cidr: 10.3.1.0/24, az: us-east-1a}
      b: {cidr: 10.3.2.0/24, az: us-east-1b}
security_groups:
  conn: {}
  db-sg: {ingress: [{protocol: tcp, port: 5432, source_group: conn}]}
databases:
  - {id: orders-db, engine: aurora-postgresql, subnets: [a, b], security_groups: [db-sg],
     master_username: orders, master_password: orders-pass}
connectors:
  - {name: orders-connector, subnets: [a, b], security_groups: [conn]}
services:
  - name: orders-app
    connector: orders-connector
    image: public.ecr.aws/sandbox/orders:1
    env: {DATABASE_URL: "postgresql://orders:orders-pass@${database.orders-db.address}:${database.orders-db.port}/orders"}
    app: {needs: {database: DATABASE_URL}}
"""


def test_an_aurora_cluster_is_reached_at_its_cluster_endpoint_through_its_groups(load, yaml_scenario):
    sb = load(yaml_scenario(AURORA))
    rds = sb.client("rds")
    (cluster,) = rds.describe_db_clusters()["DBClusters"]
    assert cluster["DBClusterIdentifier"] == "orders-db" and ".cluster-" in cluster["Endpoint"]
    assert [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]] == ["orders-db-1"]
    assert sb.app_health("orders-app") == (True, [])
    rules = sb.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sb.ids["sg:db-sg"]]}])["SecurityGroupRules"]
    sb.client("ec2").revoke_security_group_ingress(
        GroupId=sb.ids["sg:db-sg"], SecurityGroupRuleIds=[r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]])
    healthy, reasons = sb.app_health("orders-app")
    assert not healthy and "orders-db" in reasons[0] and sb.ids["sg:db-sg"] in reasons[0], reasons
