"""Read the world once into a Topology: the only reader of AWS, with the platform's own module.

The platform (runbook.platforms) finds the service and says what it names: the Workload. Each
level of the dependency chain is then one round of concurrent calls:
  1. the service, through its platform; then, only with read_secrets and a URL held in a
     secret, that secret;
  2. the platform's own reads (a service's operations, say), the databases, caches
     and cache subnet groups the environment may name, and the health probe;
  3. the security groups, their rules and the subnets of all of them together, with the route
     tables, network ACLs, DNS attributes (and, for a workload inside a VPC, NAT gateways) of the
     VPCs the database and cache name, and the logs since the running version's deployment;
  4. only when the workload's subnets sit in a VPC neither names: that VPC's routes, ACLs and
     DNS attributes.
Checks then share this snapshot; nothing is described twice.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from runbook.aws import Aws
from runbook.platforms.base import Platform
from runbook.probe import ProbeResult
from runbook.secrets import Scrubber, redact_url, secrets_in_env
from runbook.topology import Target, Topology, Workload

__all__ = ["DEFAULTS", "PERMISSIONS", "SECRET_PERMISSIONS", "Target", "Topology", "discover", "refresh"]

# Runbook-level parameters (`params:` at the top of a runbook file): discovery reads them, so
# the checks that declare them must see the same value; a step cannot override them.
DEFAULTS = {
    "database_url_var": "DATABASE_URL",
    "redis_url_var": "REDIS_URL",
    "health_path": "/healthz",
    "log_window_seconds": 3600,
    # Follow a URL held in the service's secret references by reading the secret (GetSecretValue /
    # GetParameter): off unless asked for, since it reads secret values (never printed).
    "read_secrets": False,
}
# What reading secrets adds to the IAM policy (only with read_secrets).
SECRET_PERMISSIONS = ("secretsmanager:GetSecretValue", "ssm:GetParameter")
ALTERNATE_HEALTH_PATHS = ("/v1/healthz", "/health", "/")
LOG_PAGE_SIZE = 500
LOG_EVENTS = 2000  # per log group and discovery, oldest first; then the last LOG_TAIL_SECONDS
LOG_CALLS = 8
LOG_TAIL_SECONDS = 300
LOG_LINE_LIMIT = 4096  # characters of one log event kept (CloudWatch allows 256 KB)
_DNS_ATTRIBUTES = {"enableDnsSupport": "EnableDnsSupport", "enableDnsHostnames": "EnableDnsHostnames"}  # request -> answer key

# What every discovery reads, whichever steps a runbook has: with the platform's own, the IAM policy's floor.
PERMISSIONS = (
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",  # only for an Aurora cluster endpoint
    "rds:DescribeDBSubnetGroups",  # only for an Aurora cluster endpoint
    "rds:DescribeDBProxies",  # only for an RDS Proxy endpoint (.proxy-)
    "rds:DescribeDBProxyEndpoints",  # only for an RDS Proxy custom endpoint (.endpoint.proxy-)
    "rds:DescribeDBProxyTargets",  # only for a matched RDS Proxy: the database behind it
    "elasticache:DescribeServerlessCaches",  # only for a serverless cache endpoint (.serverless.)
    "elasticache:DescribeReplicationGroups",
    "elasticache:DescribeCacheClusters",
    "elasticache:DescribeCacheSubnetGroups",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNatGateways",  # only for a workload inside a VPC
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeVpcAttribute",
    "ec2:GetManagedPrefixListEntries",  # only for the prefix lists that security-group rules name
    "logs:FilterLogEvents",
)
# Engine families of RDS Proxy: a proxy listens on its engine's default port (the API returns none).
PROXY_PORTS = {"POSTGRESQL": 5432, "MYSQL": 3306, "SQLSERVER": 1433}
# A prefix list that cannot be read (deleted, or no longer shared with this account) is reported, not fatal.
_UNREADABLE_PREFIX_LIST = ("InvalidPrefixListID.NotFound", "InvalidPrefixListId.NotFound", "InvalidPrefixListID.Malformed")


def read_secret(aws: Aws, reference: str) -> str:
    """The value the platform would put in the variable. Raises SecretUnreadable for what the
    reference cannot lead to (gone, another region, no such JSON key); access denied propagates."""
    import json

    from runbook.aws import ApiError

    parts = reference.split(":")
    is_arn = reference.startswith("arn:")
    service = parts[2] if is_arn and len(parts) > 2 else "ssm"
    if is_arn and len(parts) > 3 and parts[3] != aws.region:
        raise SecretUnreadable(f"it is in {parts[3]}, not {aws.region}")
    try:
        if service == "secretsmanager" and len(parts) >= 7:
            json_key, stage, version = (parts[7:] + ["", "", ""])[:3]
            request: dict[str, Any] = {"SecretId": ":".join(parts[:7])}
            if stage:
                request["VersionStage"] = stage
            if version:
                request["VersionId"] = version
            value = aws.call("secretsmanager", "get_secret_value", **request).get("SecretString")
            if value is None:
                raise SecretUnreadable("it holds binary data, not a string")
            if not json_key:
                return value
            try:
                document = json.loads(value)
            except ValueError:
                raise SecretUnreadable(f"it names JSON key {json_key} but the secret is not JSON", missing=True) from None
            if not isinstance(document, dict) or not isinstance(document.get(json_key), str):
                raise SecretUnreadable(f"its JSON has no string key {json_key}", missing=True)
            return document[json_key]
        if service != "ssm":
            raise SecretUnreadable("it is neither a Secrets Manager secret nor an SSM parameter ARN")
        return aws.call("ssm", "get_parameter", Name=reference, WithDecryption=True)["Parameter"]["Value"]
    except ApiError as exc:
        if exc.code in ("ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"):
            raise SecretUnreadable(f"{exc.code}: it does not exist", missing=True) from None
        raise


class SecretUnreadable(Exception):
    """A secret reference that leads to no value. ``missing``: the platform cannot resolve it
    either (the secret, parameter or JSON key is not there)."""

    def __init__(self, message: str, *, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def discover(aws: Aws, service_ref: str, params: Mapping[str, Any] | None = None, *, platform: Platform) -> Topology:
    params = {**DEFAULTS, **(params or {})}
    timings: dict[str, float] = {}
    started = time.monotonic()
    workload = platform.workload(platform.find(aws, service_ref), params)
    timings["service"] = time.monotonic() - started

    urls, unread, dangling, secrets = _urls(aws, workload, params)
    db_url = urls.get(params["database_url_var"])
    cache_url = urls.get(params["redis_url_var"])
    health_path = workload.health_path

    level = time.monotonic()
    jobs: dict[str, Callable[[], Any]] = {
        f"platform:{name}": job for name, job in platform.reads(aws, workload).items()
    }
    jobs["probe"] = lambda: workload.probe(health_path) if workload.url else None
    if db_url:
        jobs["db_instances"] = lambda: aws.paginate("rds", "describe_db_instances", "DBInstances")
        db_host = _parse("database", "", db_url).host
        if _is_aurora_cluster_endpoint(db_host):
            # A cluster names its subnet group only by name: read the groups in the same round.
            jobs["db_clusters"] = lambda: aws.paginate("rds", "describe_db_clusters", "DBClusters")
            jobs["db_subnet_groups"] = lambda: aws.paginate("rds", "describe_db_subnet_groups", "DBSubnetGroups")
        if _is_proxy_endpoint(db_host):
            jobs["db_proxies"] = lambda: aws.paginate("rds", "describe_db_proxies", "DBProxies")
            if _is_proxy_custom_endpoint(db_host):
                jobs["db_proxy_endpoints"] = lambda: aws.paginate("rds", "describe_db_proxy_endpoints", "DBProxyEndpoints")
    if cache_url:
        # All subnet groups, since which one the cache uses is only known from this round's answers.
        jobs["cache_subnet_groups"] = lambda: aws.paginate(
            "elasticache", "describe_cache_subnet_groups", "CacheSubnetGroups"
        )
        jobs["replication_groups"] = lambda: aws.paginate("elasticache", "describe_replication_groups", "ReplicationGroups")
        jobs["cache_clusters"] = lambda: aws.paginate(
            "elasticache", "describe_cache_clusters", "CacheClusters", ShowCacheNodeInfo=True
        )
        if _is_serverless_endpoint(_parse("cache", "", cache_url).host):
            jobs["serverless_caches"] = lambda: _serverless_caches(aws)
    got = _concurrently(jobs)
    timings["resources"] = time.monotonic() - level
    workload = platform.completed(workload, {k.split(":", 1)[1]: v for k, v in got.items() if k.startswith("platform:")})
    env_secrets = workload.env_secrets
    # A URL or health path only the platform's reads named (a load balancer's) is probed in the next round.
    late_probe = got["probe"] is None and workload.url is not None
    health_path = workload.health_path

    targets: dict[str, Target] = {}
    if db_url:
        targets["database"] = _database_target(
            params["database_url_var"], db_url, got["db_instances"], got.get("db_clusters", []), got.get("db_subnet_groups", []),
            got.get("db_proxies", []), got.get("db_proxy_endpoints", []),
        )
    if cache_url:
        targets["cache"] = _cache_target(params["redis_url_var"], cache_url, got["replication_groups"], got["cache_clusters"],
                                         got.get("serverless_caches", []))
    for kind, var in (("database", params["database_url_var"]), ("cache", params["redis_url_var"])):
        if var in unread:
            targets[kind] = Target(kind=kind, env_var=var, url=f"<{env_secrets[var]}>" if var in env_secrets else f"<{workload.env_hidden_in}>",
                                   scheme="", host="", port=None, secret_ref=env_secrets.get(var), unread=unread[var],
                                   dangling=var in dangling,
                                   source=_secret_source(env_secrets.get(var), workload) if params["read_secrets"] else workload.source)
        elif var in env_secrets and kind in targets:  # read from the secret: shown by reference, never by value
            targets[kind] = _replace(targets[kind], url=f"<{env_secrets[var]}>", secret_ref=env_secrets[var])

    inside = workload.outside_vpc is None
    client_groups = workload.security_group_ids if inside else ()
    client_subnets = workload.subnet_ids if inside else ()
    cache = targets.get("cache")
    cache_subnet_group = _cache_subnet_group(cache, got.get("cache_subnet_groups", []))
    if cache_subnet_group is not None:
        targets["cache"] = _replace(
            cache,
            subnet_ids=tuple(s["SubnetIdentifier"] for s in cache_subnet_group.get("Subnets", [])),
            vpc_id=cache_subnet_group.get("VpcId"),
        )
    group_ids = sorted({*client_groups, *workload.peer_security_group_ids,
                        *(g for t in targets.values() for g in t.security_group_ids)})
    # A proxy's custom endpoint has subnets of its own; the proxy's are where it connects to its database from.
    proxy_subnets = [s for t in targets.values() for s in ((t.resource or {}).get("Proxy") or {}).get("VpcSubnetIds", ())]
    subnet_ids = sorted({*client_subnets, *workload.peer_subnet_ids, *(s for t in targets.values() for s in t.subnet_ids),
                         *proxy_subnets})
    # The database's and cache's subnet groups name their VPC, so what hangs off
    # the VPC is read in this same round; the workload names only subnets.
    known_vpcs = sorted({t.vpc_id for t in targets.values() if t.vpc_id})

    level = time.monotonic()
    # NAT gateways matter only where the workload's egress leaves the VPC from.
    nat = inside
    jobs = _vpc_jobs(aws, known_vpcs, nat)
    # Logs wait for this round to start where the running version's deployment did: older lines
    # are about a version that no longer runs, and a chatty app's window is then pages shorter.
    since = int((time.time() - float(params["log_window_seconds"])) * 1000)
    since = max(since, int(workload.logs_since_ms or 0))
    for group in workload.log_groups:
        jobs[f"logs:{group}"] = lambda group=group: _recent_log_events(aws, group, since)
    if late_probe:
        jobs["probe"] = lambda: workload.probe(health_path)
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
    proxy = targets.get("database")
    if proxy is not None and proxy.resource_id and proxy.source in ("rds describe_db_proxies", "rds describe_db_proxy_endpoints"):
        proxy_name = proxy.resource["DBProxyName"]
        jobs["proxy_targets"] = lambda: aws.paginate("rds", "describe_db_proxy_targets", "Targets", DBProxyName=proxy_name)
    got3 = _concurrently(jobs)
    subnets = {s["SubnetId"]: s for s in got3.get("subnets", [])}
    timings["network"] = time.monotonic() - level
    for kind, target in list(targets.items()):
        if target.resource_id and target.vpc_id is None and target.subnet_ids:
            # A serverless cache names only its subnets: its VPC is theirs.
            vpc = next((subnets[s]["VpcId"] for s in target.subnet_ids if s in subnets), None)
            targets[kind] = _replace(target, vpc_id=vpc)

    backend = _proxy_backend(got3.get("proxy_targets"), got.get("db_instances", []))
    if backend is not None:
        targets["database"] = _replace(targets["database"], backend=backend)
    backend_groups = sorted(set(backend.security_group_ids) - set(group_ids)) if backend else []

    # A fourth round only when the workload sits in a VPC no target named, a rule names a prefix
    # list, or a proxy's database sits in groups not read yet.
    late_vpcs = sorted({s["VpcId"] for s in subnets.values()} - set(known_vpcs))
    named_lists = sorted({r["PrefixListId"] for r in got3.get("rules", []) if r.get("PrefixListId")})
    got4: dict[str, Any] = {}
    if late_vpcs or named_lists or backend_groups:
        level = time.monotonic()
        jobs = _vpc_jobs(aws, late_vpcs, nat)
        for pl in named_lists:
            jobs[f"prefix_list:{pl}"] = lambda pl=pl: _prefix_list(aws, pl)
        if backend_groups:
            jobs["backend_groups"] = lambda: aws.paginate("ec2", "describe_security_groups", "SecurityGroups", GroupIds=backend_groups)
            jobs["backend_rules"] = lambda: aws.paginate("ec2", "describe_security_group_rules", "SecurityGroupRules",
                                                          Filters=[{"Name": "group-id", "Values": backend_groups}])
        got4 = _concurrently(jobs)
        timings["vpc" if late_vpcs else "late"] = time.monotonic() - level
        named_lists += sorted({r["PrefixListId"] for r in got4.get("backend_rules", []) if r.get("PrefixListId")} - set(named_lists))
        for pl in named_lists:
            if f"prefix_list:{pl}" not in got4:  # named only by the proxy database's rules
                got4[f"prefix_list:{pl}"] = _prefix_list(aws, pl)
    vpcs = _vpc_attributes(known_vpcs, got3) | _vpc_attributes(late_vpcs, got4)

    alternates: list[ProbeResult] = []
    first = got3["probe"] if late_probe else got["probe"]
    if first is not None and first.status == 404 and first.from_app:
        # The app runs but not on this path: ask where it does answer, the runbook's health path first.
        paths = [p for p in dict.fromkeys((params["health_path"], *ALTERNATE_HEALTH_PATHS)) if p != health_path]
        found = _concurrently({p: (lambda p=p: workload.probe(p)) for p in paths})
        alternates = [found[p] for p in paths]

    # What the app wrote (log lines, the probe's answer) is scrubbed as it is read: a check that
    # quotes part of it can never cut a secret in two and show half.
    secrets = secrets_in_env(dict(workload.env)) | secrets  # and the values read from secrets
    scrub = Scrubber(secrets)
    rules: dict[str, list[dict[str, Any]]] = {g: [] for g in [*group_ids, *backend_groups]}
    for rule in got3.get("rules", []) + got4.get("backend_rules", []):
        rules.setdefault(rule["GroupId"], []).append(rule)
    timings["total"] = time.monotonic() - started
    return Topology(
        region=aws.region,
        workload=workload,
        targets=targets,
        security_groups={g["GroupId"]: g for g in got3.get("groups", []) + got4.get("backend_groups", [])},
        sg_rules=rules,
        subnets=subnets,
        vpcs=vpcs,
        route_tables=got3.get("route_tables", []) + got4.get("route_tables", []),
        nat_gateways={n["NatGatewayId"]: n for n in got3.get("nat_gateways", []) + got4.get("nat_gateways", [])},
        network_acls=got3.get("network_acls", []) + got4.get("network_acls", []),
        prefix_lists={pl: got4[f"prefix_list:{pl}"] for pl in named_lists},
        log_events=[{**e, "message": scrub.text(e["message"])} for group in workload.log_groups for e in got3[f"logs:{group}"][0]],
        logs_unread=tuple(got3[f"logs:{group}"][1] for group in workload.log_groups if got3[f"logs:{group}"][1]),
        probe=first.scrubbed(scrub) if first else None,
        health_path=health_path,
        alternate_probes=[alt.scrubbed(scrub) for alt in alternates],
        secrets=frozenset(secrets),
        timings=timings,
        params=params,
    )


def _urls(aws: Aws, workload: Workload, params: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str], set[str], set[str]]:
    """The database and cache URLs, with a plain variable first and a secret second (read only
    with read_secrets); why each one that cannot be followed cannot (and which of those name a
    secret that is not there); and every value read from a secret, for the scrubber."""
    import json

    env, env_secrets = workload.env, workload.env_secrets
    urls: dict[str, str] = {}
    unread: dict[str, str] = {}
    to_read: dict[str, str] = {}
    for var in (params["database_url_var"], params["redis_url_var"]):
        if var in env:
            urls[var] = env[var]
        elif var in env_secrets:
            if params["read_secrets"]:
                to_read[var] = env_secrets[var]
            else:
                unread[var] = (f"{var} is held in {workload.secrets_field} ({env_secrets[var]}): the endpoint cannot be "
                               "followed without reading the secret (set the runbook's params.read_secrets: true, or "
                               "pass --read-secrets)")
        elif workload.env_hidden:
            unread[var] = f"the environment is configured in {workload.env_hidden}: whether {var} is set cannot be seen"

    def read(var: str, reference: str) -> tuple[str | None, SecretUnreadable | None]:
        try:
            return read_secret(aws, reference), None
        except SecretUnreadable as exc:
            return None, exc

    secrets: set[str] = set()
    dangling: set[str] = set()
    for var, (value, problem) in _concurrently({v: (lambda v=v, r=r: read(v, r)) for v, r in to_read.items()}).items():
        if value is None:
            unread[var] = f"{var} is held in {workload.secrets_field} ({to_read[var]}), which cannot be read: {problem}"
            if problem is not None and problem.missing:
                dangling.add(var)
            continue
        urls[var] = value
        secrets.add(value)
        secrets |= secrets_in_env({var: value})
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        if isinstance(document, dict):
            secrets |= secrets_in_env({k: v for k, v in document.items() if isinstance(v, str)})
    return urls, unread, dangling, {s for s in secrets if len(s) >= 3}


def _secret_source(reference: str | None, workload: Workload) -> str:
    """The API call that reads the reference, for evidence."""
    if reference is None:
        return workload.source
    if reference.startswith("arn:") and reference.split(":")[2:3] == ["secretsmanager"]:
        return "secretsmanager get_secret_value"
    return "ssm get_parameter"


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
            events.setdefault(key, {"logGroupName": group, "message": str(e.get("message", ""))[:LOG_LINE_LIMIT],
                                    "timestamp": e.get("timestamp")})

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


def _prefix_list(aws: Aws, prefix_list_id: str) -> dict[str, Any]:
    """The CIDR blocks a managed prefix list holds (AWS-managed lists too), or why they cannot be read."""
    from runbook.aws import ApiError

    try:
        entries = aws.paginate("ec2", "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list_id)
    except ApiError as exc:
        if exc.code in _UNREADABLE_PREFIX_LIST:
            return {"error": f"{exc.code}: it does not exist or is not shared with this account"}
        raise
    return {"cidrs": [e["Cidr"] for e in entries if e.get("Cidr")]}


def _proxy_backend(proxy_targets: list[dict[str, Any]] | None, instances: list[dict[str, Any]]) -> Target | None:
    """The database an RDS Proxy forwards to: its RDS_INSTANCE target, or the writer of its TRACKED_CLUSTER
    (cluster members carry the cluster's groups and subnet group)."""
    if not proxy_targets:
        return None
    by_id = {db["DBInstanceIdentifier"]: db for db in instances}
    for entry in proxy_targets:
        resource = entry.get("RdsResourceId")
        if entry.get("Type") == "RDS_INSTANCE" and resource in by_id:
            db = by_id[resource]
        elif entry.get("Type") == "TRACKED_CLUSTER":
            db = next((d for d in instances if d.get("DBClusterIdentifier") == resource), None)
        else:
            db = None
        if db is None:
            continue
        group = db.get("DBSubnetGroup") or {}
        return Target(
            kind="database", env_var="", url="", scheme="", host=(db.get("Endpoint") or {}).get("Address", "").lower(),
            port=(db.get("Endpoint") or {}).get("Port") or entry.get("Port"),
            resource_id=resource, resource=db, endpoint_port=(db.get("Endpoint") or {}).get("Port") or entry.get("Port"),
            security_group_ids=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])),
            subnet_ids=tuple(s["SubnetIdentifier"] for s in group.get("Subnets", [])), vpc_id=group.get("VpcId"),
            source="rds describe_db_proxy_targets",
        )
    return None


def _serverless_caches(aws: Aws) -> list[dict[str, Any]]:
    """describe_serverless_caches pages by NextToken (not Marker, as the rest of ElastiCache does)."""
    caches: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        page = aws.call("elasticache", "describe_serverless_caches", **params)
        caches.extend(page.get("ServerlessCaches", []))
        if not page.get("NextToken"):
            return caches
        params = {"NextToken": page["NextToken"]}


def _cache_subnet_group(cache: Target | None, groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    if cache is None or cache.resource is None:
        return None
    name = cache.resource.get("CacheSubnetGroupName") or cache.cluster_subnet_group
    return next((g for g in groups if g.get("CacheSubnetGroupName") == name), None)


def _vpc_jobs(aws: Aws, vpc_ids: list[str], nat_gateways: bool = False) -> dict[str, Callable[[], Any]]:
    """Route tables, network ACLs and DNS attributes of these VPCs, and their NAT gateways if asked."""
    if not vpc_ids:
        return {}
    vpc_filter = [{"Name": "vpc-id", "Values": vpc_ids}]
    jobs: dict[str, Callable[[], Any]] = {
        "route_tables": lambda: aws.paginate("ec2", "describe_route_tables", "RouteTables", Filters=vpc_filter),
        "network_acls": lambda: aws.paginate("ec2", "describe_network_acls", "NetworkAcls", Filters=vpc_filter),
    }
    if nat_gateways:
        # The one EC2 describe whose filter parameter is singular.
        jobs["nat_gateways"] = lambda: aws.paginate("ec2", "describe_nat_gateways", "NatGateways", Filter=vpc_filter)
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


def _unencoded_userinfo(url: str) -> bool:
    """A `/`, `?` or `#` in the user or password ends the authority early: Python's urllib (redis-py,
    SQLAlchemy) and libpq alike then read part of the password as the host. It must be percent-encoded."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    userinfo, at, after = rest.rpartition("@")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    # Only when what follows the last '@' reads as the authority (a dotted host, a port, then the path):
    # an '@' in a query value (`?user=a@b`) is no userinfo.
    host = r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?"
    authority = re.match(host + r"([/?#]|$)", after)
    # ...and the authority urllib would take instead is no host of its own (`user:pa` of `user:pa/ss@host`).
    return bool(at) and bool(authority) and not re.fullmatch(host, netloc) and "@" not in netloc \
        and any(c in userinfo for c in "/?#")


def _parse(kind: str, env_var: str, url: str) -> Target:
    if _unencoded_userinfo(url):
        return Target(
            kind=kind, env_var=env_var, url=redact_url(url), scheme=url.split("://", 1)[0].lower(), host="", port=None,
            unread=f"{env_var or 'the URL'} cannot be parsed: its user or password holds a '/', '?' or '#' that is not "
                   "percent-encoded (%2F, %3F, %23), so clients read part of it as the host",
            dangling=True,
        )
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


def _is_proxy_endpoint(host: str) -> bool:
    """RDS Proxy endpoints: <proxy>.proxy-<id>.<region>.rds.amazonaws.com, custom ones <name>.endpoint.proxy-<id>....
    (moto says .db-proxy-<id>). Only decides whether describe_db_proxies is read: the match is by the address it returns."""
    return ".proxy-" in host or ".db-proxy-" in host


def _is_proxy_custom_endpoint(host: str) -> bool:
    return ".endpoint.proxy-" in host


def _is_serverless_endpoint(host: str) -> bool:
    """ElastiCache Serverless endpoints: <cache>-<id>.serverless.<region code>.cache.amazonaws.com."""
    return ".serverless." in host


def _database_target(env_var: str, url: str, instances: list[dict[str, Any]], clusters: list[dict[str, Any]] = (),
                     subnet_groups: list[dict[str, Any]] = (), proxies: list[dict[str, Any]] = (),
                     proxy_endpoints: list[dict[str, Any]] = ()) -> Target:
    target = _parse("database", env_var, url)
    for endpoint in proxy_endpoints:
        if endpoint.get("IsDefault") or (endpoint.get("Endpoint") or "").lower() != target.host:
            continue
        proxy = next((p for p in proxies if p.get("DBProxyName") == endpoint.get("DBProxyName")), {})
        return _replace(
            target,
            resource_id=endpoint["DBProxyEndpointName"],
            # The endpoint's own groups and subnets face the client; the proxy's face its database.
            resource={**endpoint, "PubliclyAccessible": False, "Proxy": proxy},
            endpoint_port=PROXY_PORTS.get(proxy.get("EngineFamily", "")),
            security_group_ids=tuple(endpoint.get("VpcSecurityGroupIds", [])),
            subnet_ids=tuple(endpoint.get("VpcSubnetIds", [])),
            vpc_id=endpoint.get("VpcId"),
            source="rds describe_db_proxy_endpoints",
        )
    for proxy in proxies:
        if (proxy.get("Endpoint") or "").lower() != target.host:
            continue
        return _replace(
            target,
            resource_id=proxy["DBProxyName"],
            # A proxy has no public address of its own.
            resource={**proxy, "PubliclyAccessible": False},
            endpoint_port=PROXY_PORTS.get(proxy.get("EngineFamily", "")),
            security_group_ids=tuple(proxy.get("VpcSecurityGroupIds", [])),
            subnet_ids=tuple(proxy.get("VpcSubnetIds", [])),
            vpc_id=proxy.get("VpcId"),
            source="rds describe_db_proxies",
        )
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
            zones = [db.get("AvailabilityZone")] + ([db.get("SecondaryAvailabilityZone")] if db.get("MultiAZ") else [])
            return _replace(
                target,
                resource_id=db["DBInstanceIdentifier"],
                resource=db,
                endpoint_port=endpoint.get("Port"),
                security_group_ids=tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])),
                subnet_ids=tuple(s["SubnetIdentifier"] for s in group.get("Subnets", [])),
                vpc_id=group.get("VpcId"),
                source="rds describe_db_instances",
                # A Multi-AZ instance without a SecondaryAvailabilityZone may fail over to any of its subnets.
                zones=tuple(z for z in zones if z) if all(zones) else (),
            )
    searched = "rds describe_db_clusters" if _is_aurora_cluster_endpoint(target.host) else "rds describe_db_instances"
    if _is_proxy_endpoint(target.host):
        searched = "rds describe_db_proxy_endpoints" if _is_proxy_custom_endpoint(target.host) else "rds describe_db_proxies"
    return _replace(target, source=searched)


def _cache_target(env_var: str, url: str, groups: list[dict[str, Any]], clusters: list[dict[str, Any]],
                  serverless: list[dict[str, Any]] = ()) -> Target:
    target = _parse("cache", env_var, url)
    for cache in serverless:
        endpoints = [cache.get("Endpoint") or {}, cache.get("ReaderEndpoint") or {}]
        match = next((e for e in endpoints if (e.get("Address") or "").lower() == target.host), None)
        if match:
            return _replace(
                target,
                resource_id=cache["ServerlessCacheName"],
                resource=cache,
                endpoint_port=match.get("Port"),
                security_group_ids=tuple(cache.get("SecurityGroupIds", [])),
                subnet_ids=tuple(cache.get("SubnetIds", [])),
                transit_encryption=True,  # a serverless cache accepts TLS connections only
                source="elasticache describe_serverless_caches",
            )
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
    searched = "elasticache describe_serverless_caches" if _is_serverless_endpoint(target.host) else "elasticache describe_replication_groups"
    return _replace(target, source=searched)


def _cache_resource(target, resource_id, resource, port, members, transit, source) -> Target:
    groups: list[str] = []
    subnet_group = next((m.get("CacheSubnetGroupName") for m in members if m.get("CacheSubnetGroupName")), None)
    # Every member's zone: a replica can be promoted to primary. A member of unknown zone: any subnet.
    zones = [m.get("PreferredAvailabilityZone") for m in members]
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
        zones=tuple(dict.fromkeys(zones)) if zones and all(zones) else (),
    )


def _replace(target: Target, **changes: Any) -> Target:
    from dataclasses import replace

    return replace(target, **changes)


def refresh(aws: Aws, topology: Topology, call, platform: Platform | None = None) -> Topology:
    """A copy of the snapshot with what `call` touches read again (the drift guard's re-read).

    Security-group calls re-read that group's rules, VPC attribute calls that VPC's attribute,
    the platform's own calls what the platform re-reads. Anything else gets a full discovery,
    with the runbook's params the snapshot was read with.
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
    if platform is None:
        from runbook import platforms

        platform = platforms.get(topology.workload.platform)
    reread = platform.refresh(aws, topology, call)
    if reread is not None:
        return reread
    fresh = discover(aws, topology.workload.id, topology.params, platform=platform)
    return replace(fresh, broken_this_run=topology.broken_this_run, steps=topology.steps)
