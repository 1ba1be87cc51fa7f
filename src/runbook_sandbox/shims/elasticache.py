"""ElastiCache shims: where moto 5.2.5 keeps a cache's facts but does not return them.

- ``elasticache-member-clusters`` - ``CreateReplicationGroup`` fills
  ``MemberClusters`` (``<group>-001``...) but never creates those cache
  clusters, so ``DescribeCacheClusters(CacheClusterId=member)`` answers
  ``CacheClusterNotFound``. AWS creates one cache cluster per member. The
  shim creates them with the group's subnet group, security groups, port,
  node type, engine and transit-encryption setting.

- ``elasticache-cluster-security-groups`` - moto's ``CacheCluster`` keeps
  ``security_group_ids`` but ``DescribeCacheClusters`` omits
  ``SecurityGroups``. moto 5.2 serializes responses from the botocore model,
  picking each member off the model object by its snake_case name, so the
  shim adds a ``security_groups`` property returning
  ``[{"SecurityGroupId": id, "Status": "active"}]``.

- ``elasticache-cache-nodes`` - with ``ShowCacheNodeInfo=True`` AWS returns
  ``CacheNodes[]`` with each node's ``Endpoint{Address,Port}``; moto returns
  none. The shim wraps the clusters of that one response in a view that adds
  ``CacheNodes`` (the member's read endpoint for replication-group members).

- ``elasticache-subnet-az`` - moto stores a cache subnet group's subnet AZ as
  a bare string where the model wants ``SubnetAvailabilityZone{Name}``, so
  AWS's ``{"Name": "us-east-1a"}`` came back as ``{}``.

- ``elasticache-serverless-caches`` - moto 5.2 has no ElastiCache Serverless
  (``CreateServerlessCache`` and ``DescribeServerlessCaches`` answer "not
  implemented"). The shim serves both, with ``DeleteServerlessCache`` and the
  ``SecurityGroupIds`` of ``ModifyServerlessCache``, keeping each cache on its
  backend: ``Endpoint{Address,Port}`` (``<name>-<id>.serverless.<region
  code>.cache.amazonaws.com:6379``), ``ReaderEndpoint`` on 6380,
  ``SecurityGroupIds`` (the VPC's default group when none is given, as AWS
  does), ``SubnetIds``, engine ``redis``/``valkey``/``memcached``. Serverless
  caches accept TLS connections only; the API has no transit-encryption field.

Not shimmed, on purpose: moto names a replication group's primary endpoint
``master.<id>.<random>.use1.cache.amazonaws.com`` whatever the region; the
tool must match endpoints by the address the API returns, never parse them.
"""

from __future__ import annotations

from typing import Any

SHIMS = (
    "elasticache-member-clusters",
    "elasticache-cluster-security-groups",
    "elasticache-cache-nodes",
    "elasticache-subnet-az",
    "elasticache-serverless-caches",
)


def apply() -> None:
    _shim_elasticache()
    _shim_elasticache_serverless()


def _shim_elasticache() -> None:
    from moto.core.responses import PaginatedResult
    from moto.elasticache import models, responses

    cluster_cls = models.CacheCluster
    backend_cls = models.ElastiCacheBackend

    # elasticache-cluster-security-groups
    def security_groups(self: Any) -> list[dict[str, str]]:
        return [{"SecurityGroupId": sg, "Status": "active"} for sg in (self.security_group_ids or [])]

    cluster_cls.security_groups = property(security_groups)  # type: ignore[attr-defined]

    # elasticache-member-clusters
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

    # elasticache-cache-nodes: CacheNodes when ShowCacheNodeInfo=True
    def describe_cache_clusters(self: Any) -> Any:
        cache_cluster_id = self._get_param("CacheClusterId")
        show_nodes = self._get_bool_param("ShowCacheNodeInfo", False)
        clusters = self.elasticache_backend.describe_cache_clusters(cache_cluster_id=cache_cluster_id)
        if show_nodes:
            clusters = [_ClusterWithNodes(c) for c in clusters]
        return PaginatedResult({"CacheClusters": clusters})

    responses.ElastiCacheResponse.describe_cache_clusters = describe_cache_clusters

    # elasticache-subnet-az: SubnetAvailabilityZone{Name}
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

