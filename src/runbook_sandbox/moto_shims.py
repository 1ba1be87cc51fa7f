"""Every place where the sandbox makes moto 5.2 answer more like AWS.

The sandbox builds its world only through boto3 calls against the moto server;
this module is the one exception. It patches moto's in-process models where
moto stores a fact but does not return it, or never creates something AWS
creates on its own. :func:`apply` installs all shims once, before the server
starts (the server runs in-process, in a thread, so the patches reach it).
Each shim is small, keyed on moto's own attribute names, and checked by
``tests/sandbox/test_sandbox_moto.py``.

Shims (moto 5.2.5):

1. ``elasticache-member-clusters`` - ``CreateReplicationGroup`` fills
   ``MemberClusters`` (``<group>-001``...) but never creates those cache
   clusters, so ``DescribeCacheClusters(CacheClusterId=member)`` answers
   ``CacheClusterNotFound``. AWS creates one cache cluster per member. The
   shim creates them with the group's subnet group, security groups, port,
   node type, engine and transit-encryption setting.

2. ``elasticache-cluster-security-groups`` - moto's ``CacheCluster`` keeps
   ``security_group_ids`` but ``DescribeCacheClusters`` omits
   ``SecurityGroups``. moto 5.2 serializes responses from the botocore model,
   picking each member off the model object by its snake_case name, so the
   shim adds a ``security_groups`` property returning
   ``[{"SecurityGroupId": id, "Status": "active"}]``.

3. ``elasticache-cache-nodes`` - with ``ShowCacheNodeInfo=True`` AWS returns
   ``CacheNodes[]`` with each node's ``Endpoint{Address,Port}``; moto returns
   none. The shim wraps the clusters of that one response in a view that adds
   ``CacheNodes`` (the member's read endpoint for replication-group members).

4. ``elasticache-subnet-az`` - moto stores a cache subnet group's subnet AZ as
   a bare string where the model wants ``SubnetAvailabilityZone{Name}``, so
   AWS's ``{"Name": "us-east-1a"}`` came back as ``{}``.

5. ``ec2-default-sg-self-rule`` - a new VPC's default security group in AWS
   has one ingress rule: all traffic from the group itself. moto creates the
   group with no ingress at all. The shim authorizes that rule (through
   moto's own backend method, so it gets a ``SecurityGroupRuleId``).

6. ``ec2-custom-nacl-default-deny`` - AWS gives every custom network ACL the
   two ``*`` entries (rule 32767, deny all, ingress and egress) that
   ``DescribeNetworkAcls`` shows; moto adds them only to a VPC's default ACL.

7. ``ec2-route-blackhole`` - a route whose NAT gateway was deleted shows
   ``State: blackhole`` in AWS's ``DescribeRouteTables``; moto's routes are
   always ``active``. The shim answers ``blackhole`` for a route to a NAT
   gateway whose state is ``deleted``.

8. ``elasticache-serverless-caches`` - moto 5.2 has no ElastiCache Serverless
   (``CreateServerlessCache`` and ``DescribeServerlessCaches`` answer "not
   implemented"). The shim serves both, with ``DeleteServerlessCache`` and the
   ``SecurityGroupIds`` of ``ModifyServerlessCache``, keeping each cache on its
   backend: ``Endpoint{Address,Port}`` (``<name>-<id>.serverless.<region
   code>.cache.amazonaws.com:6379``), ``ReaderEndpoint`` on 6380,
   ``SecurityGroupIds`` (the VPC's default group when none is given, as AWS
   does), ``SubnetIds``, engine ``redis``/``valkey``/``memcached``. Serverless
   caches accept TLS connections only; the API has no transit-encryption field.

9. ``ec2-foreign-group-reference`` - a rule may name a group of another
   account (``UserIdGroupPairs[{UserId, GroupId}]``); AWS checks it in that
   account. moto looks every GroupId up in the caller's own account and
   answers ``InvalidGroup.NotFound``. The sandbox has no second account, so the
   shim accepts a pair whose ``UserId`` is not the caller's without looking the
   group up, and keeps the ``UserId`` (``ReferencedGroupInfo.UserId``).

10. ``ec2-unknown-prefix-list`` - ``GetManagedPrefixListEntries`` for a prefix
   list this account cannot see (never created, or another account's that is
   no longer shared) answers ``InvalidPrefixListID.NotFound`` in AWS; moto
   answers an empty list, which reads as "holds nothing". moto still accepts a
   rule naming such a list, as AWS keeps a rule whose list was unshared.

11. ``rds-proxy-endpoints`` - moto 5.2 has no ``CreateDBProxyEndpoint`` nor
    ``DescribeDBProxyEndpoints``. The shim serves both (and
    ``DeleteDBProxyEndpoint``): a custom endpoint of a proxy, in subnets of one
    VPC (not necessarily the proxy's) with its own ``VpcSecurityGroupIds`` (the
    VPC's default group when none is given), ``TargetRole``, and the address
    ``<name>.endpoint.proxy-<id>.<region>.rds.amazonaws.com``; the describe also
    lists each proxy's default endpoint (``IsDefault``), as AWS does.

Not shimmed, on purpose: moto names a replication group's primary endpoint
``master.<id>.<random>.use1.cache.amazonaws.com`` whatever the region; the
tool must match endpoints by the address the API returns, never parse them.
"""

from __future__ import annotations

import threading
from typing import Any

SHIMS = (
    "elasticache-member-clusters",
    "elasticache-cluster-security-groups",
    "elasticache-cache-nodes",
    "elasticache-subnet-az",
    "ec2-default-sg-self-rule",
    "ec2-custom-nacl-default-deny",
    "ec2-route-blackhole",
    "elasticache-serverless-caches",
    "ec2-foreign-group-reference",
    "ec2-unknown-prefix-list",
    "rds-proxy-endpoints",
)

_lock = threading.Lock()
_applied = False


def apply() -> None:
    """Install every shim (idempotent, thread-safe)."""
    global _applied
    with _lock:
        if _applied:
            return
        _shim_elasticache()
        _shim_elasticache_serverless()
        _shim_ec2()
        _shim_ec2_foreign_groups()
        _shim_ec2_unknown_prefix_list()
        _shim_rds_proxy_endpoints()
        _applied = True


# --------------------------------------------------------------------- ElastiCache


def _shim_elasticache() -> None:
    from moto.core.responses import PaginatedResult
    from moto.elasticache import models, responses

    cluster_cls = models.CacheCluster
    backend_cls = models.ElastiCacheBackend

    # 2. SecurityGroups on a cache cluster.
    def security_groups(self: Any) -> list[dict[str, str]]:
        return [{"SecurityGroupId": sg, "Status": "active"} for sg in (self.security_group_ids or [])]

    cluster_cls.security_groups = property(security_groups)  # type: ignore[attr-defined]

    # 1. Member clusters of a replication group.
    original_create_rg = backend_cls.create_replication_group

    def create_replication_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        group = original_create_rg(self, *args, **kwargs)
        for node_group in group.node_groups:
            for member in node_group.get("node_group_members", []):
                cluster_id = member["cache_cluster_id"]
                if cluster_id in self.cache_clusters:
                    continue
                cluster = cluster_cls(
                    account_id=self.account_id,
                    region_name=self.region_name,
                    cache_cluster_id=cluster_id,
                    cache_node_type=group.cache_node_type,
                    replication_group_id=group.replication_group_id,
                    az_mode="single-az",
                    preferred_availability_zone=member.get("preferred_availability_zone"),
                    num_cache_nodes=1,
                    engine=group.engine,
                    engine_version=group.engine_version,
                    cache_parameter_group_name=group.cache_parameter_group_name,
                    cache_subnet_group_name=group.cache_subnet_group_name,
                    transit_encryption_enabled=group.transit_encryption_enabled,
                    network_type=group.network_type,
                    ip_discovery=group.ip_discovery,
                    snapshot_name=None,
                    preferred_maintenance_window=group.preferred_maintenance_window,
                    port=group.port,
                    notification_topic_arn=group.notification_topic_arn,
                    auto_minor_version_upgrade=group.auto_minor_version_upgrade,
                    snapshot_retention_limit=group.snapshot_retention_limit,
                    snapshot_window=group.snapshot_window,
                    auth_token=None,
                    outpost_mode=None,
                    preferred_outpost_arn=None,
                    preferred_availability_zones=None,
                    cache_security_group_names=group.cache_security_group_names,
                    security_group_ids=list(group.security_group_ids or []),
                    tags=None,
                    snapshot_arns=None,
                    preferred_outpost_arns=None,
                    log_delivery_configurations=[],
                    cache_node_ids_to_remove=None,
                    cache_node_ids_to_reboot=None,
                )
                # A member of a group inherits the group's AUTH setting.
                cluster.auth_token_enabled = group.auth_token_enabled
                cluster.replication_group_log_delivery_enabled = False
                read_endpoint = member.get("read_endpoint") or {}
                cluster._shim_endpoint = {
                    "Address": read_endpoint.get("address", group.node_groups[0].get("primary_endpoint_address", "")),
                    "Port": read_endpoint.get("port", group.port),
                }
                cluster._shim_node_id = member.get("cache_node_id", "0001")
                self.cache_clusters[cluster_id] = cluster
        return group

    backend_cls.create_replication_group = create_replication_group

    # 3. CacheNodes when ShowCacheNodeInfo=True.
    def describe_cache_clusters(self: Any) -> Any:
        cache_cluster_id = self._get_param("CacheClusterId")
        show_nodes = self._get_bool_param("ShowCacheNodeInfo", False)
        clusters = self.elasticache_backend.describe_cache_clusters(cache_cluster_id=cache_cluster_id)
        if show_nodes:
            clusters = [_ClusterWithNodes(c) for c in clusters]
        return PaginatedResult({"CacheClusters": clusters})

    responses.ElastiCacheResponse.describe_cache_clusters = describe_cache_clusters

    # 4. SubnetAvailabilityZone{Name}.
    subnet_group_cls = models.CacheSubnetGroup
    original_sg_init = subnet_group_cls.__init__

    def subnet_group_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_sg_init(self, *args, **kwargs)
        for subnet in self.subnets:
            for key in ("subnet_availability_zone", "Subnet_availability_zone"):
                az = subnet.get(key)
                if isinstance(az, str):
                    subnet[key] = {"Name": az}
            if "Subnet_availability_zone" in subnet:
                subnet["subnet_availability_zone"] = subnet.pop("Subnet_availability_zone")

    subnet_group_cls.__init__ = subnet_group_init


class _ClusterWithNodes:
    """A cache cluster seen through ``ShowCacheNodeInfo=True``: adds ``CacheNodes``."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    @property
    def cache_nodes(self) -> list[dict[str, Any]]:
        c = self._cluster
        endpoint = getattr(c, "_shim_endpoint", None) or {
            "Address": f"{c.cache_cluster_id}.cache.amazonaws.com",
            "Port": c.port,
        }
        return [
            {
                "CacheNodeId": getattr(c, "_shim_node_id", "0001"),
                "CacheNodeStatus": "available",
                "CacheNodeCreateTime": c.cache_cluster_create_time,
                "Endpoint": dict(endpoint),
                "ParameterGroupStatus": "in-sync",
                "CustomerAvailabilityZone": c.preferred_availability_zone or "us-east-1a",
            }
        ]


# --------------------------------------------------------------------- EC2


def _shim_ec2() -> None:
    from moto.ec2.models import network_acls, route_tables, vpcs

    # 5. The default security group admits itself.
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

    # 6. Custom network ACLs carry the '*' deny entries.
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

    # 7. A route to a deleted NAT gateway is a blackhole.
    def route_state(self: Any) -> str:
        nat = getattr(self, "nat_gateway", None)
        return "blackhole" if nat is not None and getattr(nat, "state", None) == "deleted" else "active"

    route_tables.Route.state = property(route_state)


# --------------------------------------------------------------------- 8. ElastiCache Serverless


_SERVERLESS_ENGINES = {"redis": "7", "valkey": "8", "memcached": "1.6"}


def _shim_elasticache_serverless() -> None:
    import random
    import string

    from moto.core.responses import ActionResult, PaginatedResult
    from moto.core.utils import utcnow
    from moto.ec2.models import ec2_backends
    from moto.elasticache import exceptions, responses

    class ServerlessCacheNotFoundFault(exceptions.ElastiCacheException):
        code = "ServerlessCacheNotFoundFault"

    class ServerlessCacheAlreadyExistsFault(exceptions.ElastiCacheException):
        code = "ServerlessCacheAlreadyExistsFault"

    def store(self: Any) -> dict[str, dict[str, Any]]:
        backend = self.elasticache_backend
        if not hasattr(backend, "_shim_serverless"):
            backend._shim_serverless = {}
        return backend._shim_serverless

    def found(self: Any, name: str) -> dict[str, Any]:
        cache = store(self).get(name)
        if cache is None:
            raise ServerlessCacheNotFoundFault(f"Serverless cache {name} not found.")
        return cache

    def create_serverless_cache(self: Any) -> ActionResult:
        name = self._get_param("ServerlessCacheName")
        engine = self._get_param("Engine")
        if engine not in _SERVERLESS_ENGINES:
            raise exceptions.InvalidParameterValueException(f"Invalid engine {engine!r}: use redis, valkey or memcached.")
        if name in store(self):
            raise ServerlessCacheAlreadyExistsFault(f"Serverless cache {name} already exists.")
        backend = self.elasticache_backend
        ec2 = ec2_backends[backend.account_id][backend.region_name]
        subnet_ids = list(self._get_param("SubnetIds") or [])
        subnets = ec2.describe_subnets(subnet_ids=subnet_ids) if subnet_ids else []
        if not subnets or len({s.vpc_id for s in subnets}) != 1:
            raise exceptions.InvalidSubnet(",".join(subnet_ids or ["(none)"]))
        groups = (list(self._get_param("SecurityGroupIds") or [])
                  or [ec2.get_default_security_group(subnets[0].vpc_id).id])
        region_code = "".join(part[0] if not part.isdigit() else part for part in backend.region_name.split("-"))
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        address = f"{name}-{suffix}.serverless.{region_code}.cache.amazonaws.com"
        cache = {
            "ServerlessCacheName": name,
            "Description": self._get_param("Description") or "",
            "CreateTime": utcnow(),
            "Status": "available",
            "Engine": engine,
            "MajorEngineVersion": self._get_param("MajorEngineVersion") or _SERVERLESS_ENGINES[engine],
            "FullEngineVersion": self._get_param("MajorEngineVersion") or _SERVERLESS_ENGINES[engine],
            "SecurityGroupIds": groups,
            "Endpoint": {"Address": address, "Port": 6379 if engine != "memcached" else 11211},
            "ReaderEndpoint": {"Address": address, "Port": 6380 if engine != "memcached" else 11212},
            "ARN": f"arn:aws:elasticache:{backend.region_name}:{backend.account_id}:serverlesscache:{name}",
            "SubnetIds": [s.id for s in subnets],
            "SnapshotRetentionLimit": 0,
        }
        store(self)[name] = cache
        return ActionResult({"ServerlessCache": cache})

    def describe_serverless_caches(self: Any) -> ActionResult:
        name = self._get_param("ServerlessCacheName")
        caches = [found(self, name)] if name else list(store(self).values())
        return PaginatedResult({"ServerlessCaches": caches})

    def modify_serverless_cache(self: Any) -> ActionResult:
        cache = found(self, self._get_param("ServerlessCacheName"))
        groups = list(self._get_param("SecurityGroupIds") or [])
        if groups:
            cache["SecurityGroupIds"] = groups
        return ActionResult({"ServerlessCache": cache})

    def delete_serverless_cache(self: Any) -> ActionResult:
        name = self._get_param("ServerlessCacheName")
        cache = found(self, name)
        del store(self)[name]
        return ActionResult({"ServerlessCache": {**cache, "Status": "deleting"}})

    for method in (create_serverless_cache, describe_serverless_caches, modify_serverless_cache, delete_serverless_cache):
        setattr(responses.ElastiCacheResponse, method.__name__, method)


# --------------------------------------------------------------------- 9. groups of other accounts


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


# --------------------------------------------------------------------- 10. prefix lists this account cannot see


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


# --------------------------------------------------------------------- 11. RDS Proxy custom endpoints


def _shim_rds_proxy_endpoints() -> None:
    import random
    import string

    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.models import ec2_backends
    from moto.rds import exceptions, responses

    class DBProxyEndpointNotFoundFault(exceptions.RDSClientError):
        def __init__(self, name: str) -> None:
            super().__init__("DBProxyEndpointNotFoundFault", f"The DB proxy endpoint {name} doesn't exist.")

    class DBProxyEndpointAlreadyExistsFault(exceptions.RDSClientError):
        def __init__(self, name: str) -> None:
            super().__init__("DBProxyEndpointAlreadyExistsFault", f"The DB proxy endpoint {name} already exists.")

    def store(self: Any) -> dict[str, dict[str, Any]]:
        if not hasattr(self.backend, "_shim_proxy_endpoints"):
            self.backend._shim_proxy_endpoints = {}
        return self.backend._shim_proxy_endpoints

    def proxy_of(self: Any, name: str) -> Any:
        proxy = self.backend.db_proxies.get(name)
        if proxy is None:
            raise exceptions.DBProxyNotFoundFault(name)
        return proxy

    def default_endpoint(proxy: Any) -> dict[str, Any]:
        return {
            "DBProxyEndpointName": "default", "DBProxyEndpointArn": proxy.arn, "DBProxyName": proxy.db_proxy_name,
            "Status": "available", "VpcId": proxy.vpc_id, "VpcSecurityGroupIds": list(proxy.vpc_security_group_ids),
            "VpcSubnetIds": list(proxy.vpc_subnet_ids), "Endpoint": proxy.endpoint, "CreatedDate": proxy.created_date,
            "TargetRole": "READ_WRITE", "IsDefault": True,
        }

    def create_db_proxy_endpoint(self: Any) -> ActionResult:
        params = self.params
        proxy = proxy_of(self, params["DBProxyName"])
        name = params["DBProxyEndpointName"]
        if name in store(self):
            raise DBProxyEndpointAlreadyExistsFault(name)
        ec2 = ec2_backends[self.backend.account_id][self.backend.region_name]
        subnets = ec2.describe_subnets(subnet_ids=params["VpcSubnetIds"])
        if len({s.vpc_id for s in subnets}) != 1:
            raise exceptions.InvalidSubnet(params["VpcSubnetIds"][0])
        groups = params.get("VpcSecurityGroupIds") or [ec2.get_default_security_group(subnets[0].vpc_id).id]
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        endpoint = {
            "DBProxyEndpointName": name,
            "DBProxyEndpointArn": f"arn:aws:rds:{self.backend.region_name}:{self.backend.account_id}:db-proxy-endpoint:prx-endpoint-{suffix}",
            "DBProxyName": proxy.db_proxy_name, "Status": "available", "VpcId": subnets[0].vpc_id,
            "VpcSecurityGroupIds": list(groups), "VpcSubnetIds": [s.id for s in subnets],
            "Endpoint": f"{name}.endpoint.proxy-{suffix}.{self.backend.region_name}.rds.amazonaws.com",
            "CreatedDate": utcnow(), "TargetRole": params.get("TargetRole") or "READ_WRITE", "IsDefault": False,
        }
        store(self)[name] = endpoint
        return ActionResult({"DBProxyEndpoint": endpoint})

    def describe_db_proxy_endpoints(self: Any) -> ActionResult:
        params = self.params
        name, proxy_name = params.get("DBProxyEndpointName"), params.get("DBProxyName")
        if proxy_name:
            proxy_of(self, proxy_name)
        endpoints = [default_endpoint(p) for p in self.backend.db_proxies.values()] + list(store(self).values())
        endpoints = [e for e in endpoints if (not proxy_name or e["DBProxyName"] == proxy_name)
                     and (not name or e["DBProxyEndpointName"] == name)]
        if name and not endpoints:
            raise DBProxyEndpointNotFoundFault(name)
        return ActionResult({"DBProxyEndpoints": endpoints})

    def delete_db_proxy_endpoint(self: Any) -> ActionResult:
        name = self.params["DBProxyEndpointName"]
        if name not in store(self):
            raise DBProxyEndpointNotFoundFault(name)
        return ActionResult({"DBProxyEndpoint": {**store(self).pop(name), "Status": "deleting"}})

    for method in (create_db_proxy_endpoint, describe_db_proxy_endpoints, delete_db_proxy_endpoint):
        setattr(responses.RDSResponse, method.__name__, method)
