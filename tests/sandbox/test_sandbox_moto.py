"""What moto (with the sandbox's shims) really returns for the describes the tool relies on."""

from __future__ import annotations

from runbook_sandbox import shims


def test_every_shim_is_documented():
    """Each shim is described, by name, in the docstring of the module that holds it (one per service)."""
    assert shims.SHIMS
    for module in shims.MODULES:
        for shim in module.SHIMS:
            assert f"``{shim}``" in module.__doc__, shim


def test_servers_listen_on_loopback_free_ports(sandbox):
    moto_url = sandbox.env["AWS_ENDPOINT_URL"]
    apprunner_url = sandbox.env["AWS_ENDPOINT_URL_APPRUNNER"]
    assert moto_url.startswith("http://127.0.0.1:") and not moto_url.endswith(":5000")
    assert apprunner_url.startswith("http://127.0.0.1:") and apprunner_url != moto_url
    assert sandbox.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_replication_group_shape(load):
    sb = load("field-report")
    ec = sb.client("elasticache")
    group = ec.describe_replication_groups(ReplicationGroupId="nerava-redis")["ReplicationGroups"][0]
    primary = group["NodeGroups"][0]["PrimaryEndpoint"]
    assert primary["Address"] and primary["Port"] == 6379
    assert group["MemberClusters"] == ["nerava-redis-001"]
    assert group["TransitEncryptionEnabled"] is False
    assert group["AuthTokenEnabled"] is False


def test_member_cache_cluster_has_security_groups_and_subnet_group(load):
    """Shims 1-3: moto creates no member clusters and omits SecurityGroups and CacheNodes."""
    sb = load("field-report")
    ec = sb.client("elasticache")
    cluster = ec.describe_cache_clusters(CacheClusterId="nerava-redis-001", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cluster["SecurityGroups"] == [{"SecurityGroupId": sb.ids["sg:default"], "Status": "active"}]
    assert cluster["CacheSubnetGroupName"] == "default"
    assert cluster["ReplicationGroupId"] == "nerava-redis"
    node = cluster["CacheNodes"][0]
    assert node["Endpoint"]["Port"] == 6379 and node["Endpoint"]["Address"].startswith("nerava-redis-001.")
    plain = ec.describe_cache_clusters(CacheClusterId="nerava-redis-001")["CacheClusters"][0]
    assert "CacheNodes" not in plain and plain["SecurityGroups"]


def test_cache_subnet_group_lists_vpc_and_six_subnets(load):
    sb = load("field-report")
    group = sb.client("elasticache").describe_cache_subnet_groups(CacheSubnetGroupName="default")["CacheSubnetGroups"][0]
    assert group["VpcId"] == sb.ids["vpc:main"]
    subnet_ids = {s["SubnetIdentifier"] for s in group["Subnets"]}
    assert len(subnet_ids) == 6
    assert {sb.ids["subnet:private-a"], sb.ids["subnet:private-b"]} <= subnet_ids
    # Shim 4: the AZ comes back as {"Name": ...}, not {}.
    assert all(s["SubnetAvailabilityZone"]["Name"].startswith("us-east-1") for s in group["Subnets"])


def test_db_instance_shape(load):
    sb = load("field-report")
    db = sb.client("rds").describe_db_instances(DBInstanceIdentifier="nerava-db")["DBInstances"][0]
    assert db["Endpoint"]["Port"] == 5432 and db["Endpoint"]["Address"].startswith("nerava-db.")
    assert db["VpcSecurityGroups"] == [{"VpcSecurityGroupId": sb.ids["sg:default"], "Status": "active"}]
    assert db["DBSubnetGroup"]["VpcId"] == sb.ids["vpc:main"]
    assert db["PubliclyAccessible"] is False
    assert db["MasterUsername"] == "nerava_admin"


def test_default_security_group_admits_itself(load):
    """Shim 5: AWS's default group has the self-referencing all-traffic rule."""
    sb = load("healthy")
    ec2 = sb.client("ec2")
    group = ec2.describe_security_groups(GroupIds=[sb.ids["sg:default"]])["SecurityGroups"][0]
    assert {"IpProtocol": "-1", "UserIdGroupPairs": [{"UserId": "123456789012", "GroupId": sb.ids["sg:default"]}],
            "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": []} in group["IpPermissions"]


def test_security_group_rules_filter_by_group_id_and_revoke_by_rule_id(load):
    sb = load("field-report")
    ec2 = sb.client("ec2")
    sg = sb.ids["sg:default"]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert {r["GroupId"] for r in rules} == {sg}
    ingress = [r for r in rules if not r["IsEgress"]]
    open_rule = [r for r in ingress if r.get("CidrIpv4") == "0.0.0.0/0"]
    assert len(open_rule) == 1 and open_rule[0]["FromPort"] == 5432 and open_rule[0]["SecurityGroupRuleId"]
    from_connector = [r for r in ingress if r.get("ReferencedGroupInfo", {}).get("GroupId") == sb.ids["sg:connector-sg"]]
    assert [(r["FromPort"], r["ToPort"]) for r in from_connector] == [(5432, 5432)]

    ec2.revoke_security_group_ingress(GroupId=sg, SecurityGroupRuleIds=[open_rule[0]["SecurityGroupRuleId"]])
    after = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert open_rule[0]["SecurityGroupRuleId"] not in {r["SecurityGroupRuleId"] for r in after}
    assert len(after) == len(rules) - 1  # nothing grouped with it went away


def test_custom_network_acl_has_default_deny_entries(load, test_scenario):
    """Shim 6: a custom ACL shows AWS's '*' deny entries."""
    sb = load(test_scenario("nacl"))
    acl = sb.client("ec2").describe_network_acls(NetworkAclIds=[sb.ids["acl:locked"]])["NetworkAcls"][0]
    stars = [(e["Egress"], e["RuleAction"]) for e in acl["Entries"] if e["RuleNumber"] == 32767]
    assert sorted(stars) == [(False, "deny"), (True, "deny")]
    assert {a["SubnetId"] for a in acl["Associations"]} == {sb.ids["subnet:private-b"]}


def test_vpc_attributes_and_routes(load):
    sb = load("field-report")
    ec2 = sb.client("ec2")
    vpc = sb.ids["vpc:main"]
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"] is True
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [sb.ids["subnet:private-a"]]}]
    )["RouteTables"]
    assert any(r.get("NatGatewayId") == sb.ids["nat:nat-a"] and r["DestinationCidrBlock"] == "0.0.0.0/0"
               for r in tables[0]["Routes"])


NAT_WORLD = """
vpcs:
  main:
    cidr: 10.0.0.0/16
    internet_gateway: igw
    nat_gateways:
      up: {subnet: public-a}
      inner: {subnet: private-a, connectivity: private}
      gone: {subnet: public-a, state: deleted}
    route_tables:
      public: {routes: [{destination: 0.0.0.0/0, internet_gateway: igw}]}
      to-gone: {routes: [{destination: 0.0.0.0/0, nat_gateway: gone}]}
    subnets:
      public-a: {cidr: 10.0.0.0/24, route_table: public}
      private-a: {cidr: 10.0.1.0/24, route_table: to-gone}
"""


def test_nat_gateways_connectivity_state_and_a_blackhole_route(load, yaml_scenario):
    """The NAT gateway fields nat-egress reads, and shim 7: a route to a deleted NAT gateway is a blackhole."""
    sb = load(yaml_scenario(NAT_WORLD))
    ec2 = sb.client("ec2")
    nats = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [sb.ids["vpc:main"]]}])["NatGateways"]
    seen = {n["NatGatewayId"]: (n["State"], n["ConnectivityType"], n["SubnetId"]) for n in nats}
    assert seen == {
        sb.ids["nat:up"]: ("available", "public", sb.ids["subnet:public-a"]),
        sb.ids["nat:inner"]: ("available", "private", sb.ids["subnet:private-a"]),
        sb.ids["nat:gone"]: ("deleted", "public", sb.ids["subnet:public-a"]),
    }
    (route,) = [r for r in ec2.describe_route_tables(RouteTableIds=[sb.ids["rtb:to-gone"]])["RouteTables"][0]["Routes"]
                if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert (route["NatGatewayId"], route["State"]) == (sb.ids["nat:gone"], "blackhole")
    (igw_route,) = [r for r in ec2.describe_route_tables(RouteTableIds=[sb.ids["rtb:public"]])["RouteTables"][0]["Routes"]
                    if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert igw_route["State"] == "active"


def test_reset_between_loads_leaves_no_trace(load):
    sb = load("field-report")
    first_vpc = sb.ids["vpc:main"]
    sb = load("healthy")
    vpcs = {v["VpcId"] for v in sb.client("ec2").describe_vpcs()["Vpcs"]}
    assert first_vpc not in vpcs and sb.ids["vpc:main"] in vpcs
    assert len(vpcs) == 2  # the scenario's and moto's default VPC
    assert [s["ServiceName"] for s in sb.client("apprunner").list_services()["ServiceSummaryList"]] == ["nerava-backend"]
