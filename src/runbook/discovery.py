"""Read the world once into a Topology: the only reader of AWS.

Each level of the dependency chain is one round of concurrent calls:
  1. the service (by ARN; by name, ListServices comes first);
  2. its operations, its connector, the databases, caches and cache subnet
     groups its environment may name, and the health probe;
  3. the security groups, their rules and the subnets of all of them together,
     with the route tables, network ACLs and DNS attributes of the VPCs the
     database and cache name, and the logs since the last good deployment;
  4. only when the connector sits in a VPC neither names: that VPC's routes,
     ACLs and DNS attributes.
Checks then share this snapshot; nothing is described twice.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from runbook.aws import Aws
from runbook.errors import UsageError
from runbook.probe import ProbeResult, probe, service_url
from runbook.secrets import redact_url, secrets_in_env

# Runbook-level parameters (`params:` at the top of a runbook file): discovery reads them, so
# the checks that declare them must see the same value; a step cannot override them.
DEFAULTS = {
    "database_url_var": "DATABASE_URL",
    "redis_url_var": "REDIS_URL",
    "health_path": "/healthz",
    "log_window_seconds": 3600,
}
ALTERNATE_HEALTH_PATHS = ("/v1/healthz", "/health", "/")
LOG_PAGE_SIZE = 500
LOG_EVENTS = 2000  # per log group and discovery, oldest first; then the last LOG_TAIL_SECONDS
LOG_CALLS = 8
LOG_TAIL_SECONDS = 300
_DNS_ATTRIBUTES = {"enableDnsSupport": "EnableDnsSupport", "enableDnsHostnames": "EnableDnsHostnames"}  # request -> answer key

# What every discovery reads, whichever steps a runbook has: the IAM policy's floor.
PERMISSIONS = (
    "apprunner:ListServices",
    "apprunner:DescribeService",
    "apprunner:ListOperations",
    "apprunner:DescribeVpcConnector",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",  # only for an Aurora cluster endpoint
    "rds:DescribeDBSubnetGroups",  # only for an Aurora cluster endpoint
    "elasticache:DescribeReplicationGroups",
    "elasticache:DescribeCacheClusters",
    "elasticache:DescribeCacheSubnetGroups",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeVpcAttribute",
    "logs:FilterLogEvents",
)


@dataclass(frozen=True)
class Target:
    """A dependency named by an environment variable, followed to the AWS resource it points at."""

    kind: str  # "database" or "cache"
    env_var: str
    url: str  # redacted
    scheme: str
    host: str
    port: int | None
    resource_id: str | None = None  # DBInstanceIdentifier or ReplicationGroupId/CacheClusterId
    resource: Mapping[str, Any] | None = None
    endpoint_port: int | None = None
    security_group_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    vpc_id: str | None = None
    transit_encryption: bool | None = None
    cluster_subnet_group: str | None = None  # the member cache cluster's CacheSubnetGroupName
    source: str = ""  # the API call that found it


@dataclass
class Topology:
    region: str
    service: dict[str, Any]
    operations: list[dict[str, Any]]
    connector: dict[str, Any] | None
    env: dict[str, str]
    targets: dict[str, Target]
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    sg_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpcs: dict[str, dict[str, Any]] = field(default_factory=dict)  # VpcId -> {EnableDnsSupport, EnableDnsHostnames}
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    network_acls: list[dict[str, Any]] = field(default_factory=list)
    log_events: list[dict[str, Any]] = field(default_factory=list)  # {logGroupName, message, timestamp}
    logs_unread: tuple[str, ...] = ()  # log groups read only in part: their oldest events and the last minutes
    probe: ProbeResult | None = None
    alternate_probes: list[ProbeResult] = field(default_factory=list)  # other paths, tried when the app 404s
    secrets: frozenset[str] = frozenset()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def service_name(self) -> str:
        return self.service["ServiceName"]

    @property
    def service_arn(self) -> str:
        return self.service["ServiceArn"]

    @property
    def egress(self) -> dict[str, Any]:
        return self.service.get("NetworkConfiguration", {}).get("EgressConfiguration", {})

    @property
    def connector_sg_ids(self) -> tuple[str, ...]:
        return tuple((self.connector or {}).get("SecurityGroups", ()))

    @property
    def connector_subnet_ids(self) -> tuple[str, ...]:
        return tuple((self.connector or {}).get("Subnets", ()))

    def cidrs(self, subnet_ids) -> list[str]:
        """The CIDR blocks of those subnets that were described."""
        return [self.subnets[s]["CidrBlock"] for s in subnet_ids if s in self.subnets]

    @property
    def found_targets(self) -> list[Target]:
        """The targets whose URL led to a resource of this account."""
        return [t for t in self.targets.values() if t.resource_id]

    @property
    def connector_vpc_ids(self) -> set[str]:
        return {self.subnets[s]["VpcId"] for s in self.connector_subnet_ids if s in self.subnets}

    def route_table_for(self, subnet_id: str) -> dict[str, Any] | None:
        """The subnet's explicit route table, else its VPC's main one."""
        vpc = self.subnets.get(subnet_id, {}).get("VpcId")
        main = None
        for table in self.route_tables:
            for assoc in table.get("Associations", []):
                if assoc.get("SubnetId") == subnet_id:
                    return table
                if assoc.get("Main") and table.get("VpcId") == vpc:
                    main = table
        return main

    def network_acl_for(self, subnet_id: str) -> dict[str, Any] | None:
        for acl in self.network_acls:
            if any(a.get("SubnetId") == subnet_id for a in acl.get("Associations", [])):
                return acl
        return None


def runtime_env(service: Mapping[str, Any]) -> dict[str, str]:
    source = service.get("SourceConfiguration", {})
    image = source.get("ImageRepository", {}).get("ImageConfiguration", {})
    code = source.get("CodeRepository", {}).get("CodeConfiguration", {}).get("CodeConfigurationValues", {})
    return dict(image.get("RuntimeEnvironmentVariables") or code.get("RuntimeEnvironmentVariables") or {})


def find_service(aws: Aws, name_or_arn: str) -> dict[str, Any]:
    if name_or_arn.startswith("arn:"):
        from runbook.aws import ApiError

        try:
            return aws.call("apprunner", "describe_service", ServiceArn=name_or_arn)["Service"]
        except ApiError as exc:
            if exc.code in ("ResourceNotFoundException", "InvalidRequestException"):
                raise UsageError(f"no App Runner service {name_or_arn} in {aws.region}") from None
            raise
    summaries = aws.paginate("apprunner", "list_services", "ServiceSummaryList", MaxResults=20)
    for summary in summaries:
        if summary["ServiceName"] == name_or_arn:
            return aws.call("apprunner", "describe_service", ServiceArn=summary["ServiceArn"])["Service"]
    existing = ", ".join(sorted(s["ServiceName"] for s in summaries)) or "none"
    raise UsageError(f"no App Runner service named {name_or_arn!r} in {aws.region}; services there: {existing}")


def discover(aws: Aws, service_ref: str, params: Mapping[str, Any] | None = None) -> Topology:
    params = {**DEFAULTS, **(params or {})}
    timings: dict[str, float] = {}
    started = time.monotonic()
    service = find_service(aws, service_ref)
    timings["service"] = time.monotonic() - started

    env = runtime_env(service)
    arn = service["ServiceArn"]
    connector_arn = service.get("NetworkConfiguration", {}).get("EgressConfiguration", {}).get("VpcConnectorArn")
    db_url = env.get(params["database_url_var"])
    cache_url = env.get(params["redis_url_var"])

    level = time.monotonic()
    jobs: dict[str, Callable[[], Any]] = {
        "operations": lambda: aws.call("apprunner", "list_operations", ServiceArn=arn, MaxResults=20).get(
            "OperationSummaryList", []
        ),
        "probe": lambda: probe(service_url(service["ServiceUrl"], params["health_path"])) if service.get("ServiceUrl") else None,
    }
    if connector_arn:
        jobs["connector"] = lambda: aws.call("apprunner", "describe_vpc_connector", VpcConnectorArn=connector_arn)[
            "VpcConnector"
        ]
    if db_url:
        jobs["db_instances"] = lambda: aws.paginate("rds", "describe_db_instances", "DBInstances")
        if _is_aurora_cluster_endpoint(_parse("database", "", db_url).host):
            # A cluster names its subnet group only by name: read the groups in the same round.
            jobs["db_clusters"] = lambda: aws.paginate("rds", "describe_db_clusters", "DBClusters")
            jobs["db_subnet_groups"] = lambda: aws.paginate("rds", "describe_db_subnet_groups", "DBSubnetGroups")
    if cache_url:
        # All subnet groups, since which one the cache uses is only known from this round's answers.
        jobs["cache_subnet_groups"] = lambda: aws.paginate(
            "elasticache", "describe_cache_subnet_groups", "CacheSubnetGroups"
        )
        jobs["replication_groups"] = lambda: aws.paginate("elasticache", "describe_replication_groups", "ReplicationGroups")
        jobs["cache_clusters"] = lambda: aws.paginate(
            "elasticache", "describe_cache_clusters", "CacheClusters", ShowCacheNodeInfo=True
        )
    got = _concurrently(jobs)
    timings["resources"] = time.monotonic() - level

    targets: dict[str, Target] = {}
    if db_url:
        targets["database"] = _database_target(
            params["database_url_var"], db_url, got["db_instances"], got.get("db_clusters", []), got.get("db_subnet_groups", [])
        )
    if cache_url:
        targets["cache"] = _cache_target(params["redis_url_var"], cache_url, got["replication_groups"], got["cache_clusters"])

    connector = got.get("connector")
    cache = targets.get("cache")
    cache_subnet_group = _cache_subnet_group(cache, got.get("cache_subnet_groups", []))
    if cache_subnet_group is not None:
        targets["cache"] = _replace(
            cache,
            subnet_ids=tuple(s["SubnetIdentifier"] for s in cache_subnet_group.get("Subnets", [])),
            vpc_id=cache_subnet_group.get("VpcId"),
        )
    group_ids = sorted({*(connector or {}).get("SecurityGroups", ()), *(g for t in targets.values() for g in t.security_group_ids)})
    subnet_ids = sorted({*(connector or {}).get("Subnets", ()), *(s for t in targets.values() for s in t.subnet_ids)})
    # The database's and cache's subnet groups name their VPC, so what hangs off
    # the VPC is read in this same round; the connector names only subnets.
    known_vpcs = sorted({t.vpc_id for t in targets.values() if t.vpc_id})

    level = time.monotonic()
    jobs = _vpc_jobs(aws, known_vpcs)
    # Logs wait for this round to start where the running version's deployment did: older lines
    # are about a version that no longer runs, and a chatty app's window is then pages shorter.
    since = int((time.time() - float(params["log_window_seconds"])) * 1000)
    since = max(since, int(_running_since_ms(got["operations"]) or 0))
    for suffix in ("service", "application"):
        group = f"/aws/apprunner/{service['ServiceName']}/{service['ServiceId']}/{suffix}"
        jobs[f"logs:{suffix}"] = lambda group=group: _recent_log_events(aws, group, since)
    if group_ids:
        jobs["groups"] = lambda: aws.paginate("ec2", "describe_security_groups", "SecurityGroups", GroupIds=group_ids)
        jobs["rules"] = lambda: aws.paginate(
            "ec2",
            "describe_security_group_rules",
            "SecurityGroupRules",
            Filters=[{"Name": "group-id", "Values": group_ids}],
        )
    if subnet_ids:
        jobs["subnets"] = lambda: aws.paginate("ec2", "describe_subnets", "Subnets", SubnetIds=subnet_ids)
    got3 = _concurrently(jobs)
    subnets = {s["SubnetId"]: s for s in got3.get("subnets", [])}
    timings["network"] = time.monotonic() - level

    # A fourth round only when the connector sits in a VPC no target named.
    late_vpcs = sorted({s["VpcId"] for s in subnets.values()} - set(known_vpcs))
    got4: dict[str, Any] = {}
    if late_vpcs:
        level = time.monotonic()
        got4 = _concurrently(_vpc_jobs(aws, late_vpcs))
        timings["vpc"] = time.monotonic() - level
    vpcs = _vpc_attributes(known_vpcs, got3) | _vpc_attributes(late_vpcs, got4)

    alternates: list[ProbeResult] = []
    first = got["probe"]
    if first is not None and first.status == 404 and first.from_app:
        # The app runs but not on this path: ask where it does answer.
        paths = [p for p in ALTERNATE_HEALTH_PATHS if p != params["health_path"]]
        found = _concurrently({p: (lambda p=p: probe(service_url(service["ServiceUrl"], p))) for p in paths})
        alternates = [found[p] for p in paths]

    rules: dict[str, list[dict[str, Any]]] = {g: [] for g in group_ids}
    for rule in got3.get("rules", []):
        rules.setdefault(rule["GroupId"], []).append(rule)
    timings["total"] = time.monotonic() - started
    return Topology(
        region=aws.region,
        service=service,
        operations=got["operations"],
        connector=connector,
        env=env,
        targets=targets,
        security_groups={g["GroupId"]: g for g in got3.get("groups", [])},
        sg_rules=rules,
        subnets=subnets,
        vpcs=vpcs,
        route_tables=got3.get("route_tables", []) + got4.get("route_tables", []),
        network_acls=got3.get("network_acls", []) + got4.get("network_acls", []),
        log_events=[e for suffix in ("service", "application") for e in got3[f"logs:{suffix}"][0]],
        logs_unread=tuple(got3[f"logs:{suffix}"][1] for suffix in ("service", "application") if got3[f"logs:{suffix}"][1]),
        probe=got["probe"],
        alternate_probes=alternates,
        secrets=frozenset(secrets_in_env(env)),
        timings=timings,
    )


def _recent_log_events(aws: Aws, group: str, since: int) -> tuple[list[dict[str, Any]], str | None]:
    """A log group's events since `since` (epoch ms), oldest first, and the group's name if
    reading stopped short of the end. A group that does not exist (yet) is no events.

    Reading stops after LOG_EVENTS events or LOG_CALLS calls (AWS may answer a page partly
    full, or empty, with a nextToken); the newest lines, those of a crash loop going on
    now, are then read as well: one page from LOG_TAIL_SECONDS ago.
    """
    from runbook.aws import ApiError

    def read(**params: Any) -> dict[str, Any]:
        return aws.call("logs", "filter_log_events", logGroupName=group, limit=LOG_PAGE_SIZE, **params)

    events: dict[str, dict[str, Any]] = {}  # eventId -> event, in the order read

    def keep(page: dict[str, Any]) -> None:
        for e in page.get("events", []):
            key = e.get("eventId") or f"{e.get('logStreamName')}:{e.get('timestamp')}:{e.get('message')}"
            events.setdefault(key, {"logGroupName": group, "message": e.get("message", ""), "timestamp": e.get("timestamp")})

    try:
        page = read(startTime=since)
    except ApiError as exc:
        if exc.code == "ResourceNotFoundException":
            return [], None
        raise
    keep(page)
    calls = 1
    while page.get("nextToken"):
        if len(events) >= LOG_EVENTS or calls >= LOG_CALLS:
            tail = max(since, int((time.time() - LOG_TAIL_SECONDS) * 1000))
            keep(read(startTime=tail))
            return list(events.values()), group
        page = read(startTime=since, nextToken=page["nextToken"])
        keep(page)
        calls += 1
    return list(events.values()), None


def _running_since_ms(operations: list[dict[str, Any]]) -> float | None:
    """Epoch milliseconds when the deployment of the running version started: the newest
    SUCCEEDED operation (operations are listed newest first)."""
    for op in operations:
        if op.get("Status") == "SUCCEEDED" and hasattr(op.get("StartedAt"), "timestamp"):
            return op["StartedAt"].timestamp() * 1000
    return None


def _cache_subnet_group(cache: Target | None, groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    if cache is None or cache.resource is None:
        return None
    name = cache.resource.get("CacheSubnetGroupName") or cache.cluster_subnet_group
    return next((g for g in groups if g.get("CacheSubnetGroupName") == name), None)


def _vpc_jobs(aws: Aws, vpc_ids: list[str]) -> dict[str, Callable[[], Any]]:
    """Route tables, network ACLs and DNS attributes of these VPCs."""
    if not vpc_ids:
        return {}
    vpc_filter = [{"Name": "vpc-id", "Values": vpc_ids}]
    jobs: dict[str, Callable[[], Any]] = {
        "route_tables": lambda: aws.paginate("ec2", "describe_route_tables", "RouteTables", Filters=vpc_filter),
        "network_acls": lambda: aws.paginate("ec2", "describe_network_acls", "NetworkAcls", Filters=vpc_filter),
    }
    for vpc in vpc_ids:
        for attribute in _DNS_ATTRIBUTES:
            jobs[f"vpc:{vpc}:{attribute}"] = lambda vpc=vpc, attribute=attribute: aws.call(
                "ec2", "describe_vpc_attribute", VpcId=vpc, Attribute=attribute
            )
    return jobs


def _vpc_attributes(vpc_ids: list[str], got: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """VpcId -> {EnableDnsSupport, EnableDnsHostnames} from the answers of _vpc_jobs."""
    vpcs: dict[str, dict[str, Any]] = {}
    for vpc in vpc_ids:
        vpcs[vpc] = {}
        for attribute, flag in _DNS_ATTRIBUTES.items():
            answer = got.get(f"vpc:{vpc}:{attribute}", {})
            vpcs[vpc][flag] = answer.get(flag, {}).get("Value")
    return vpcs


def _concurrently(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    if not jobs:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(12, len(jobs)))
    try:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        # .result() re-raises the first AwsError in the caller's thread.
        results = {name: future.result() for name, future in futures.items()}
    except BaseException:
        # An error or a signal (Ctrl-C): the other reads are of no use now; do not wait for them.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _default_port(kind: str, scheme: str) -> int:
    if kind == "cache":
        return 6379
    return 3306 if scheme.split("+")[0] in ("mysql", "mariadb") else 5432


def _parse(kind: str, env_var: str, url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = urlsplit(""), None
    return Target(
        kind=kind,
        env_var=env_var,
        url=redact_url(url),
        scheme=parts.scheme,
        host=(parts.hostname or "").lower(),
        port=port or (_default_port(kind, parts.scheme) if parts.hostname else None),
    )


def _is_aurora_cluster_endpoint(host: str) -> bool:
    """Writer (.cluster-), reader (.cluster-ro-) and custom (.cluster-custom-) endpoints all say so."""
    return ".cluster-" in host


def _database_target(env_var: str, url: str, instances: list[dict[str, Any]], clusters: list[dict[str, Any]] = (),
                     subnet_groups: list[dict[str, Any]] = ()) -> Target:
    target = _parse("database", env_var, url)
    for cluster in clusters:
        addresses = [cluster.get("Endpoint"), cluster.get("ReaderEndpoint"), *cluster.get("CustomEndpoints", [])]
        if target.host not in (a.lower() for a in addresses if a):
            continue
        name = (cluster.get("DBSubnetGroup") or "").lower()  # AWS keeps DB subnet group names in lower case
        group = next((g for g in subnet_groups if g.get("DBSubnetGroupName", "").lower() == name), {})
        members = {m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])}
        # Aurora keeps PubliclyAccessible on the member instances.
        public = bool(cluster.get("PubliclyAccessible")) or any(
            db.get("PubliclyAccessible") for db in instances if db.get("DBInstanceIdentifier") in members
        )
        return _replace(
            target,
            resource_id=cluster["DBClusterIdentifier"],
            resource={**cluster, "PubliclyAccessible": public},
            endpoint_port=cluster.get("Port"),
            security_group_ids=tuple(g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])),
            subnet_ids=tuple(s["SubnetIdentifier"] for s in group.get("Subnets", [])),
            vpc_id=group.get("VpcId"),
            source="rds describe_db_clusters",
        )
    for db in instances:
        endpoint = db.get("Endpoint") or {}
        if endpoint.get("Address", "").lower() == target.host:
            group = db.get("DBSubnetGroup") or {}
            return _replace(
                target,
                resource_id=db["DBInstanceIdentifier"],
                resource=db,
                endpoint_port=endpoint.get("Port"),
                security_group_ids=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])),
                subnet_ids=tuple(s["SubnetIdentifier"] for s in group.get("Subnets", [])),
                vpc_id=group.get("VpcId"),
                source="rds describe_db_instances",
            )
    searched = "rds describe_db_clusters" if _is_aurora_cluster_endpoint(target.host) else "rds describe_db_instances"
    return _replace(target, source=searched)


def _cache_target(env_var: str, url: str, groups: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> Target:
    target = _parse("cache", env_var, url)
    by_id = {c["CacheClusterId"]: c for c in clusters}
    for group in groups:
        endpoints = [group.get("ConfigurationEndpoint") or {}]
        for node_group in group.get("NodeGroups", []):
            endpoints += [node_group.get("PrimaryEndpoint") or {}, node_group.get("ReaderEndpoint") or {}]
        match = next((e for e in endpoints if e.get("Address", "").lower() == target.host), None)
        if match:
            members = [by_id[m] for m in group.get("MemberClusters", []) if m in by_id]
            return _cache_resource(target, group["ReplicationGroupId"], group, match.get("Port"), members,
                                   group.get("TransitEncryptionEnabled"), "elasticache describe_replication_groups")
    for cluster in clusters:
        for node in cluster.get("CacheNodes", []):
            endpoint = node.get("Endpoint") or {}
            if endpoint.get("Address", "").lower() == target.host:
                return _cache_resource(target, cluster["CacheClusterId"], cluster, endpoint.get("Port"), [cluster],
                                       cluster.get("TransitEncryptionEnabled"), "elasticache describe_cache_clusters")
    return _replace(target, source="elasticache describe_replication_groups")


def _cache_resource(target, resource_id, resource, port, members, transit, source) -> Target:
    groups: list[str] = []
    subnet_group = next((m.get("CacheSubnetGroupName") for m in members if m.get("CacheSubnetGroupName")), None)
    for member in members:
        for sg in member.get("SecurityGroups", []):
            if sg["SecurityGroupId"] not in groups:
                groups.append(sg["SecurityGroupId"])
    return _replace(
        target,
        resource_id=resource_id,
        resource=resource,
        endpoint_port=port,
        security_group_ids=tuple(groups),
        transit_encryption=transit,
        cluster_subnet_group=subnet_group,
        source=source,
    )


def _replace(target: Target, **changes: Any) -> Target:
    from dataclasses import replace

    return replace(target, **changes)


def refresh(aws: Aws, topology: Topology, call) -> Topology:
    """A copy of the snapshot with what `call` touches read again (the drift guard's re-read).

    Security-group calls re-read that group's rules, VPC attribute calls that
    VPC's attribute, App Runner calls the service and its operations. Anything
    else gets a full discovery.
    """
    from dataclasses import replace

    params = call.params
    if call.service == "ec2" and "security_group" in call.operation:
        group = params["GroupId"]
        rules = aws.paginate(
            "ec2", "describe_security_group_rules", "SecurityGroupRules", Filters=[{"Name": "group-id", "Values": [group]}]
        )
        return replace(topology, sg_rules={**topology.sg_rules, group: rules})
    if call.service == "ec2" and call.operation == "modify_vpc_attribute":
        vpc = params["VpcId"]
        attrs = dict(topology.vpcs.get(vpc, {}))
        for attribute, flag in _DNS_ATTRIBUTES.items():
            answer = aws.call("ec2", "describe_vpc_attribute", VpcId=vpc, Attribute=attribute)
            attrs[flag] = answer.get(flag, {}).get("Value")
        return replace(topology, vpcs={**topology.vpcs, vpc: attrs})
    if call.service == "apprunner" and "ServiceArn" in params:
        arn = params["ServiceArn"]
        service = aws.call("apprunner", "describe_service", ServiceArn=arn)["Service"]
        operations = aws.call("apprunner", "list_operations", ServiceArn=arn, MaxResults=20).get("OperationSummaryList", [])
        return replace(topology, service=service, operations=operations)
    return discover(aws, topology.service_arn)
