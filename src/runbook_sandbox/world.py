"""Build a scenario's AWS resources in moto, through boto3 calls only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runbook_sandbox.scenario import PLACEHOLDER, Scenario, SgRule


@dataclass
class World:
    """What the builder made: symbolic name -> real id, and the endpoints moto gave."""

    ids: dict[str, str] = field(default_factory=dict)
    endpoints: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # (kind, id) -> (address, port)

    def substitute(self, text: str) -> str:
        def value(match: re.Match) -> str:
            kind, ident, attr = match.group(1).split(".")
            address, port = self.endpoints[(kind, ident)]
            return address if attr == "address" else str(port)

        return PLACEHOLDER.sub(value, text)


def build(scenario: Scenario, clients: Any) -> World:
    world = World()
    ec2 = clients.client("ec2")
    ids = world.ids

    for vpc in scenario.vpcs:
        vpc_id = ec2.create_vpc(CidrBlock=vpc.cidr, TagSpecifications=_name_tag("vpc", vpc.name))["Vpc"]["VpcId"]
        ids[f"vpc:{vpc.name}"] = vpc_id
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": vpc.dns_support})
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": vpc.dns_hostnames})
        default_sg = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        ids[f"sg:default@{vpc.name}"] = default_sg
        main_rt = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        ids[f"rtb:main@{vpc.name}"] = main_rt

        for subnet in vpc.subnets:
            ids[f"subnet:{subnet.name}"] = ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=subnet.cidr, AvailabilityZone=subnet.az,
                TagSpecifications=_name_tag("subnet", subnet.name),
            )["Subnet"]["SubnetId"]

        if vpc.internet_gateway:
            igw = ec2.create_internet_gateway(
                TagSpecifications=_name_tag("internet-gateway", vpc.internet_gateway)
            )["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
            ids[f"igw:{vpc.internet_gateway}"] = igw

        for nat in vpc.nat_gateways:
            # A private NAT gateway has no Elastic IP: AWS refuses one.
            address = {"AllocationId": ec2.allocate_address(Domain="vpc")["AllocationId"]} if nat.connectivity == "public" else {}
            ids[f"nat:{nat.name}"] = ec2.create_nat_gateway(
                SubnetId=ids[f"subnet:{nat.subnet}"], ConnectivityType=nat.connectivity,
                TagSpecifications=_name_tag("natgateway", nat.name), **address,
            )["NatGateway"]["NatGatewayId"]

        for table in vpc.route_tables:
            rt_id = ec2.create_route_table(
                VpcId=vpc_id, TagSpecifications=_name_tag("route-table", table.name)
            )["RouteTable"]["RouteTableId"]
            ids[f"rtb:{table.name}"] = rt_id
            for route in table.routes:
                target = ({"NatGatewayId": ids[f"nat:{route.nat_gateway}"]} if route.nat_gateway
                          else {"GatewayId": ids[f"igw:{route.internet_gateway}"]})
                ec2.create_route(RouteTableId=rt_id, DestinationCidrBlock=route.destination, **target)
        for subnet in vpc.subnets:
            if subnet.route_table:
                ec2.associate_route_table(RouteTableId=ids[f"rtb:{subnet.route_table}"],
                                          SubnetId=ids[f"subnet:{subnet.name}"])
        for nat in vpc.nat_gateways:
            if nat.state == "deleted":  # after its routes exist: they now lead to a deleted gateway
                ec2.delete_nat_gateway(NatGatewayId=ids[f"nat:{nat.name}"])

        default_acl = ec2.describe_network_acls(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
        )["NetworkAcls"][0]
        ids[f"acl:default@{vpc.name}"] = default_acl["NetworkAclId"]
        associations = {a["SubnetId"]: a["NetworkAclAssociationId"] for a in default_acl.get("Associations", [])}
        for acl in vpc.network_acls:
            if acl.name == "default":
                acl_id = default_acl["NetworkAclId"]
            else:
                acl_id = ec2.create_network_acl(
                    VpcId=vpc_id, TagSpecifications=_name_tag("network-acl", acl.name)
                )["NetworkAcl"]["NetworkAclId"]
                ids[f"acl:{acl.name}"] = acl_id
            for entry in acl.entries:
                block = {"Ipv6CidrBlock": entry.cidr} if ":" in entry.cidr else {"CidrBlock": entry.cidr}
                kwargs: dict[str, Any] = dict(
                    NetworkAclId=acl_id, RuleNumber=entry.rule, Protocol=entry.protocol,
                    RuleAction=entry.action, Egress=entry.egress, **block,
                )
                if entry.from_port is not None:
                    kwargs["PortRange"] = {"From": entry.from_port, "To": entry.to_port}
                ec2.create_network_acl_entry(**kwargs)
            for subnet_name in acl.subnets:
                ec2.replace_network_acl_association(
                    AssociationId=associations[ids[f"subnet:{subnet_name}"]], NetworkAclId=acl_id
                )

    _peerings_and_prefix_lists(scenario, ec2, ids)

    # Security groups: create all first, so that rules can name any of them.
    for group in scenario.security_groups:
        if group.is_default:
            ids[f"sg:{group.name}"] = ids[f"sg:default@{group.vpc}"]
        else:
            ids[f"sg:{group.name}"] = ec2.create_security_group(
                GroupName=group.group_name, Description=group.description, VpcId=ids[f"vpc:{group.vpc}"],
                TagSpecifications=_name_tag("security-group", group.name),
            )["GroupId"]
    for group in scenario.security_groups:
        sg_id = ids[f"sg:{group.name}"]
        if group.ingress:
            ec2.authorize_security_group_ingress(
                GroupId=sg_id, IpPermissions=[_permission(r, ids, group.vpc, scenario) for r in group.ingress]
            )
        if group.egress is not None:
            ec2.revoke_security_group_egress(
                GroupId=sg_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
            )
            if group.egress:
                ec2.authorize_security_group_egress(
                    GroupId=sg_id, IpPermissions=[_permission(r, ids, group.vpc, scenario) for r in group.egress]
                )

    for endpoint in scenario.vpc_endpoints:
        service = f"com.amazonaws.{scenario.region}.{endpoint.service}"
        if endpoint.type == "Gateway":
            placement: dict[str, Any] = {"RouteTableIds": [
                ids[f"rtb:main@{endpoint.vpc}"] if t == "main" else ids[f"rtb:{t}"] for t in endpoint.route_tables]}
        else:
            placement = {"SubnetIds": [ids[f"subnet:{s}"] for s in endpoint.subnets],
                         "SecurityGroupIds": [ids[f"sg:{g}"] for g in endpoint.security_groups],
                         "PrivateDnsEnabled": endpoint.private_dns}
        ids[f"vpce:{endpoint.service}@{endpoint.vpc}"] = ec2.create_vpc_endpoint(
            VpcId=ids[f"vpc:{endpoint.vpc}"], ServiceName=service, VpcEndpointType=endpoint.type, **placement,
        )["VpcEndpoint"]["VpcEndpointId"]

    rds = clients.client("rds")
    for db in scenario.databases:
        rds.create_db_subnet_group(
            DBSubnetGroupName=db.subnet_group, DBSubnetGroupDescription=f"subnets of {db.id}",
            SubnetIds=[ids[f"subnet:{s}"] for s in db.subnets],
        )
        placement = dict(
            Engine=db.engine, MasterUsername=db.master_username, MasterUserPassword=db.master_password,
            DBSubnetGroupName=db.subnet_group, VpcSecurityGroupIds=[ids[f"sg:{g}"] for g in db.security_groups],
            Port=db.port,
        )
        if db.engine.startswith("aurora"):
            cluster = rds.create_db_cluster(
                DBClusterIdentifier=db.id, **placement, **({"DatabaseName": db.db_name} if db.db_name else {}),
            )["DBCluster"]
            rds.create_db_instance(
                DBInstanceIdentifier=f"{db.id}-1", DBClusterIdentifier=db.id, Engine=db.engine,
                DBInstanceClass=db.instance_class, PubliclyAccessible=db.publicly_accessible,
                DBSubnetGroupName=db.subnet_group,  # AWS gives members the cluster's; moto needs telling
                AvailabilityZone=scenario.subnet(db.subnets[0]).az,
            )
            world.endpoints[("database", db.id)] = (cluster["Endpoint"], int(cluster["Port"]))
        else:
            kwargs = dict(
                DBInstanceIdentifier=db.id, DBInstanceClass=db.instance_class, **placement,
                PubliclyAccessible=db.publicly_accessible, AllocatedStorage=20,
                AvailabilityZone=scenario.subnet(db.subnets[0]).az,
            )
            if db.db_name:
                kwargs["DBName"] = db.db_name
            endpoint = rds.create_db_instance(**kwargs)["DBInstance"]["Endpoint"]
            world.endpoints[("database", db.id)] = (endpoint["Address"], int(endpoint["Port"]))
        ids[f"db:{db.id}"] = db.id
    _proxies(scenario, rds, world)

    elasticache = clients.client("elasticache")
    made_groups: set[str] = set()
    for cache in scenario.caches:
        if cache.mode != "replication-group":
            _standalone_cache(scenario, cache, elasticache, world, made_groups)
            continue
        if cache.subnet_group not in made_groups:
            elasticache.create_cache_subnet_group(
                CacheSubnetGroupName=cache.subnet_group, CacheSubnetGroupDescription=f"subnets of {cache.id}",
                SubnetIds=[ids[f"subnet:{s}"] for s in cache.subnets],
            )
            made_groups.add(cache.subnet_group)
        kwargs = dict(
            ReplicationGroupId=cache.id, ReplicationGroupDescription=f"{cache.id} ({cache.engine})",
            Engine=cache.engine, CacheNodeType=cache.node_type, NumCacheClusters=1 + cache.replicas,
            CacheSubnetGroupName=cache.subnet_group,
            SecurityGroupIds=[ids[f"sg:{g}"] for g in cache.security_groups],
            Port=cache.port, TransitEncryptionEnabled=cache.transit_encryption,
            PreferredCacheClusterAZs=[scenario.subnet(cache.subnets[i % len(cache.subnets)]).az
                                      for i in range(1 + cache.replicas)],
        )
        if cache.replicas:
            kwargs["ReplicasPerNodeGroup"] = cache.replicas  # moto sizes non-cluster groups by this
        if cache.auth_token:
            kwargs["AuthToken"] = cache.auth_token
        group = elasticache.create_replication_group(**kwargs)["ReplicationGroup"]
        primary = group["NodeGroups"][0]["PrimaryEndpoint"]
        world.endpoints[("cache", cache.id)] = (primary["Address"], int(primary["Port"]))
        ids[f"cache:{cache.id}"] = cache.id
    return world


def _peerings_and_prefix_lists(scenario: Scenario, ec2: Any, ids: dict[str, str]) -> None:
    for peering in scenario.peerings:
        requester, accepter = (ids[f"vpc:{v}"] for v in peering.vpcs)
        pcx = ec2.create_vpc_peering_connection(VpcId=requester, PeerVpcId=accepter)["VpcPeeringConnection"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx["VpcPeeringConnectionId"])
        ids[f"pcx:{peering.name}"] = pcx["VpcPeeringConnectionId"]
    for prefix_list in scenario.prefix_lists:
        ids[f"pl:{prefix_list.name}"] = ec2.create_managed_prefix_list(
            PrefixListName=prefix_list.name, AddressFamily=prefix_list.address_family,
            MaxEntries=prefix_list.max_entries, Entries=[{"Cidr": c} for c in prefix_list.entries],
        )["PrefixList"]["PrefixListId"]


def _proxies(scenario: Scenario, rds: Any, world: World) -> None:
    """RDS Proxies, each with its database registered as the default target group's target."""
    ids = world.ids
    for proxy in scenario.proxies:
        account = "123456789012"
        answer = rds.create_db_proxy(
            DBProxyName=proxy.name, EngineFamily=proxy.engine_family,
            Auth=[{"AuthScheme": "SECRETS", "IAMAuth": "DISABLED",
                   "SecretArn": f"arn:aws:secretsmanager:{scenario.region}:{account}:secret:{proxy.name}-credentials"}],
            RoleArn=f"arn:aws:iam::{account}:role/{proxy.name}-secrets",
            VpcSubnetIds=[ids[f"subnet:{s}"] for s in proxy.subnets],
            VpcSecurityGroupIds=[ids[f"sg:{g}"] for g in proxy.security_groups],
        )["DBProxy"]
        database = next(d for d in scenario.databases if d.id == proxy.database)
        key = "DBClusterIdentifiers" if database.engine.startswith("aurora") else "DBInstanceIdentifiers"
        rds.register_db_proxy_targets(DBProxyName=proxy.name, **{key: [database.id]})
        port = {"POSTGRESQL": 5432, "MYSQL": 3306}[proxy.engine_family]
        world.endpoints[("proxy", proxy.name)] = (answer["Endpoint"], port)
        ids[f"proxy:{proxy.name}"] = proxy.name
        for endpoint in proxy.endpoints:
            made = rds.create_db_proxy_endpoint(
                DBProxyName=proxy.name, DBProxyEndpointName=endpoint.name, TargetRole=endpoint.target_role,
                VpcSubnetIds=[ids[f"subnet:{s}"] for s in endpoint.subnets],
                VpcSecurityGroupIds=[ids[f"sg:{g}"] for g in endpoint.security_groups],
            )["DBProxyEndpoint"]
            world.endpoints[("proxy", endpoint.name)] = (made["Endpoint"], port)
            ids[f"proxy:{endpoint.name}"] = endpoint.name


def _standalone_cache(scenario: Scenario, cache: Any, elasticache: Any, world: World, made_groups: set[str]) -> None:
    """A cache cluster of one node outside any replication group, or a serverless cache."""
    ids = world.ids
    groups = [ids[f"sg:{g}"] for g in cache.security_groups]
    if cache.mode == "serverless":
        answer = elasticache.create_serverless_cache(
            ServerlessCacheName=cache.id, Engine=cache.engine, SubnetIds=[ids[f"subnet:{s}"] for s in cache.subnets],
            SecurityGroupIds=groups,
        )["ServerlessCache"]
        endpoint = answer["Endpoint"]
    else:
        if cache.subnet_group not in made_groups:
            elasticache.create_cache_subnet_group(
                CacheSubnetGroupName=cache.subnet_group, CacheSubnetGroupDescription=f"subnets of {cache.id}",
                SubnetIds=[ids[f"subnet:{s}"] for s in cache.subnets],
            )
            made_groups.add(cache.subnet_group)
        kwargs: dict[str, Any] = dict(
            CacheClusterId=cache.id, Engine=cache.engine, CacheNodeType=cache.node_type, NumCacheNodes=1,
            CacheSubnetGroupName=cache.subnet_group, SecurityGroupIds=groups, Port=cache.port,
            TransitEncryptionEnabled=cache.transit_encryption,
            PreferredAvailabilityZone=scenario.subnet(cache.subnets[0]).az,
        )
        if cache.auth_token:
            kwargs["AuthToken"] = cache.auth_token
        elasticache.create_cache_cluster(**kwargs)
        described = elasticache.describe_cache_clusters(CacheClusterId=cache.id, ShowCacheNodeInfo=True)["CacheClusters"][0]
        endpoint = described["CacheNodes"][0]["Endpoint"]
    world.endpoints[("cache", cache.id)] = (endpoint["Address"], int(endpoint["Port"]))
    ids[f"cache:{cache.id}"] = cache.id


def _permission(rule: SgRule, ids: dict[str, str], vpc: str | None = None, scenario: Scenario | None = None) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.from_port is not None:
        perm["FromPort"] = rule.from_port
        perm["ToPort"] = rule.to_port
    extra = {"Description": rule.description} if rule.description else {}
    if rule.cidr:
        perm["IpRanges"] = [{"CidrIp": rule.cidr, **extra}]
    elif rule.cidr_ipv6:
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr_ipv6, **extra}]
    elif rule.prefix_list:
        perm["PrefixListIds"] = [{"PrefixListId": ids[f"pl:{rule.prefix_list}"], **extra}]
    elif rule.foreign_prefix_list:
        perm["PrefixListIds"] = [{"PrefixListId": rule.foreign_prefix_list, **extra}]
    elif rule.foreign_group:
        account, group_id = rule.foreign_group.split("/")
        perm["UserIdGroupPairs"] = [{"GroupId": group_id, "UserId": account, **extra}]
    elif rule.peer_group:
        assert scenario is not None
        peer_vpc = scenario.security_group(rule.peer_group).vpc
        peering = next(p for p in scenario.peerings if set(p.vpcs) == {vpc, peer_vpc})
        perm["UserIdGroupPairs"] = [{"GroupId": ids[f"sg:{rule.peer_group}"], "VpcId": ids[f"vpc:{peer_vpc}"],
                                     "VpcPeeringConnectionId": ids[f"pcx:{peering.name}"], **extra}]
    else:
        perm["UserIdGroupPairs"] = [{"GroupId": ids[f"sg:{rule.group}"], **extra}]
    return perm


def _name_tag(resource_type: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]
