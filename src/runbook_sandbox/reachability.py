"""Ground truth: could the simulated app reach its database and cache right now?

This is the sandbox's own model of the network, written apart from the tool's
checks on purpose: the tool is tested against it, so it must not share their
logic. Every evaluation reads the live state from the moto server through
boto3 (:class:`AwsSnapshot`), so a rule that the tool (or a test) adds or
revokes counts from the next evaluation on.

A dependency is an environment variable holding a URL (``postgresql://``,
``redis://``, ``rediss://``...). It is reachable when all of these hold:

* the variable is set and its URL has a host;
* the host is the address that moto returns for an RDS instance
  (``Endpoint.Address``), an Aurora cluster, an RDS Proxy (``Endpoint``, or
  a custom endpoint's; it listens on its engine family's port), an ElastiCache replication group
  (primary, reader or member endpoint), a standalone cache cluster (its node's
  endpoint) or a serverless cache (``Endpoint``/``ReaderEndpoint``), else the
  name does not resolve;
* the URL's port is the one that endpoint listens on;
* with VPC egress: the connector's VPC has ``enableDnsSupport`` on, the
  connector's subnets are in the target's VPC, the connector's security groups
  allow the port out to the target (a CIDR or prefix-list entry holding the
  target's address, one of the target's groups, or protocol ``-1``), the
  target's groups admit it in (a pair naming a connector group by id, whatever
  account or peered VPC the pair names; or IPv4 CIDRs and prefix-list entries
  of all the target's groups that together cover every connector subnet;
  ``-1``, or tcp/``6`` with ``FromPort <= port <= ToPort``), and the
  network ACLs of every connector subnet and of the target's subnet allow the
  request and the return traffic to the client's ephemeral ports (Linux's
  32768-60999; entries in rule-number order, first match wins, no match =
  deny; the traffic is IPv4, so IPv6 entries never match it);
* with DEFAULT egress: only a publicly accessible RDS instance, in a subnet
  routed to an internet gateway, whose groups admit ``0.0.0.0/0`` on the port;
* a cache with transit encryption is reached with ``rediss://`` (and a cache
  without it with ``redis://``); a cache with an AUTH token needs a password
  in the URL; a database URL carries the master user name and password.

Each failure yields a reason (no secrets in it) and the line the app would
print in its application log.

For ECS tasks (whose subnet and groups stand in for a connector's) two more paths:
:func:`load_balancer_path` (the load balancer's health checks reaching a task) and
:func:`image_pull_path` (the task reaching its image registry). :class:`NetworkSnapshot`
reads the network alone, for judges that need no database or cache.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

# Return traffic goes to the client's ephemeral port, picked from Linux's default
# ip_local_port_range. (AWS's advice to allow 1024-65535 covers it; a single-port
# deny such as 5432 inside 1024-65535 does not break a client using this range.)
EPHEMERAL = (32768, 60999)
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379, "rediss": 6379}


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Egress:
    """How the service's outbound traffic leaves: DEFAULT (internet) or VPC, from the subnets and
    security groups of a connector (App Runner) or of the task's own interface (``source="task"``)."""

    type: str  # "DEFAULT" | "VPC"
    connector: str | None = None  # the connector's (or the task's service's) name, for messages
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    source: str = "connector"  # what holds the subnets and groups, for messages: "connector" | "task"


@dataclass(frozen=True)
class Verdict:
    """Whether one dependency of the app is reachable, and why not."""

    label: str  # e.g. "database"
    env_var: str
    target: str  # "database nerava-db:5432", "cache nerava-redis:6379" or "HOST:PORT"
    reachable: bool
    reasons: tuple[str, ...] = ()
    app_log: str | None = None  # what the app prints when it cannot connect

    def describe(self) -> str:
        if self.reachable:
            return f"{self.target} reachable ({self.env_var})"
        return f"{self.target} unreachable: {'; '.join(self.reasons)}"


@dataclass
class _Target:
    kind: str  # "database" | "cache"
    ident: str
    address: str
    port: int
    vpc_id: str | None
    subnet_ids: list[str]
    security_group_ids: list[str]
    ip: str | None = None
    subnet_id: str | None = None
    public: bool = False
    transit_encryption: bool = False
    auth_token_enabled: bool = False
    master_username: str | None = None
    extra_addresses: list[str] = field(default_factory=list)
    credentials_of: str | None = None  # the database whose master password a proxy passes on
    backend: "_Target | None" = None  # the database a proxy opens its own connections to
    via: "_Target | None" = None  # for a proxy's custom endpoint: the proxy, whose groups face the database


# ----------------------------------------------------------------------------- snapshot


class NetworkSnapshot:
    """The network alone, read from moto through boto3 when first asked for: subnets, security groups,
    network ACLs, route tables, VPC endpoints, prefix lists, DNS attributes. ``group_ids`` /
    ``subnet_ids``: read only those (a judge that knows what it looks at reads less)."""

    def __init__(self, clients: Any, *, group_ids: list[str] | None = None, subnet_ids: list[str] | None = None) -> None:
        self._ec2 = clients.client("ec2")
        self._group_ids, self._subnet_ids = group_ids, subnet_ids
        self._subnets: dict[str, dict] | None = None
        self._groups: dict[str, dict] | None = None
        self._acls: list[dict] | None = None
        self._route_tables: list[dict] | None = None
        self._endpoints: list[dict] | None = None
        self._vpc_dns: dict[str, bool] = {}
        self._prefix_lists: dict[str, list[str]] = {}

    @property
    def subnets(self) -> dict[str, dict]:
        if self._subnets is None:
            found = self._read(self._ec2.describe_subnets, "Subnets", "SubnetIds", self._subnet_ids)
            self._subnets = {s["SubnetId"]: s for s in found}
        return self._subnets

    @property
    def groups(self) -> dict[str, dict]:
        if self._groups is None:
            found = self._read(self._ec2.describe_security_groups, "SecurityGroups", "GroupIds", self._group_ids)
            self._groups = {g["GroupId"]: g for g in found}
        return self._groups

    @staticmethod
    def _read(method: Any, key: str, ids_param: str, ids: list[str] | None) -> list[dict]:
        from botocore.exceptions import ClientError

        if ids is not None:
            try:
                return _all(lambda **kw: method(**{ids_param: list(ids)}, **kw), key)
            except ClientError:  # one of them is gone: read them all
                pass
        return _all(method, key)

    @property
    def acls(self) -> list[dict]:
        if self._acls is None:
            self._acls = _all(self._ec2.describe_network_acls, "NetworkAcls")
        return self._acls

    @property
    def vpc_endpoints(self) -> list[dict]:
        if self._endpoints is None:
            self._endpoints = _all(self._ec2.describe_vpc_endpoints, "VpcEndpoints")
        return self._endpoints

    def prefix_list_cidrs(self, prefix_list_id: str) -> list[str]:
        """A prefix list's blocks; one this account cannot see (another account's, no longer shared)
        holds nothing the sandbox knows, so it admits nothing here."""
        from botocore.exceptions import ClientError

        if prefix_list_id not in self._prefix_lists:
            try:
                entries = _all(lambda **kw: self._ec2.get_managed_prefix_list_entries(PrefixListId=prefix_list_id, **kw), "Entries")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidPrefixListID.NotFound":
                    raise
                entries = []
            self._prefix_lists[prefix_list_id] = [e["Cidr"] for e in entries]
        return self._prefix_lists[prefix_list_id]

    @property
    def route_tables(self) -> list[dict]:
        if self._route_tables is None:
            self._route_tables = _all(self._ec2.describe_route_tables, "RouteTables")
        return self._route_tables

    def dns_support(self, vpc_id: str) -> bool:
        if vpc_id not in self._vpc_dns:
            attr = self._ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")
            self._vpc_dns[vpc_id] = bool(attr["EnableDnsSupport"]["Value"])
        return self._vpc_dns[vpc_id]

    def acl_for(self, subnet_id: str) -> dict | None:
        for acl in self.acls:
            for assoc in acl.get("Associations", []):
                if assoc.get("SubnetId") == subnet_id:
                    return acl
        vpc = self.subnets.get(subnet_id, {}).get("VpcId")
        return next((a for a in self.acls if a.get("VpcId") == vpc and a.get("IsDefault")), None)

    def route_table_for(self, subnet_id: str) -> dict | None:
        """The subnet's route table: the one associated with it, else its VPC's main table."""
        for table in self.route_tables:
            for assoc in table.get("Associations", []):
                if assoc.get("SubnetId") == subnet_id:
                    return table
        vpc = self.subnets.get(subnet_id, {}).get("VpcId")
        for table in self.route_tables:
            if table.get("VpcId") == vpc and any(a.get("Main") for a in table.get("Associations", [])):
                return table
        return None

    def routes_for(self, subnet_id: str) -> list[dict]:
        table = self.route_table_for(subnet_id)
        return table.get("Routes", []) if table else []


class AwsSnapshot(NetworkSnapshot):
    """Everything the evaluation needs, read once from moto through boto3."""

    def __init__(self, clients: Any) -> None:
        super().__init__(clients)
        rds = clients.client("rds")
        elasticache = clients.client("elasticache")
        self.targets: list[_Target] = []
        instances = _all(rds.describe_db_instances, "DBInstances", token="Marker")
        for db in instances:
            endpoint = db.get("Endpoint") or {}
            if not endpoint.get("Address"):
                continue
            subnet_group = db.get("DBSubnetGroup") or {}
            subnet_ids = [s["SubnetIdentifier"] for s in subnet_group.get("Subnets", [])]
            t = _Target(
                kind="database",
                ident=db["DBInstanceIdentifier"],
                address=endpoint["Address"],
                port=int(endpoint.get("Port") or db.get("DbInstancePort") or 0),
                vpc_id=subnet_group.get("VpcId"),
                subnet_ids=subnet_ids,
                security_group_ids=[g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])],
                public=bool(db.get("PubliclyAccessible")),
                master_username=db.get("MasterUsername"),
            )
            self._place(t, db.get("AvailabilityZone"))
            self.targets.append(t)
        self._aurora_clusters(rds, instances)
        clusters = {c["CacheClusterId"]: c for c in _all(elasticache.describe_cache_clusters, "CacheClusters",
                                                           token="Marker")}
        cache_subnet_groups = {g["CacheSubnetGroupName"]: g for g in
                               _all(elasticache.describe_cache_subnet_groups, "CacheSubnetGroups", token="Marker")}
        for group in _all(elasticache.describe_replication_groups, "ReplicationGroups", token="Marker"):
            for node_group in group.get("NodeGroups", []):
                primary = node_group.get("PrimaryEndpoint") or group.get("ConfigurationEndpoint") or {}
                if not primary.get("Address"):
                    continue
                members = node_group.get("NodeGroupMembers", [])
                primary_member = next((m for m in members if m.get("CurrentRole") == "primary"),
                                      members[0] if members else {})
                cluster = clusters.get(primary_member.get("CacheClusterId", ""), {})
                subnet_group = cache_subnet_groups.get(cluster.get("CacheSubnetGroupName", ""), {})
                t = _Target(
                    kind="cache",
                    ident=group["ReplicationGroupId"],
                    address=primary["Address"],
                    port=int(primary.get("Port") or 0),
                    vpc_id=subnet_group.get("VpcId"),
                    subnet_ids=[s["SubnetIdentifier"] for s in subnet_group.get("Subnets", [])],
                    security_group_ids=[g["SecurityGroupId"] for g in cluster.get("SecurityGroups", [])],
                    transit_encryption=bool(group.get("TransitEncryptionEnabled")),
                    auth_token_enabled=bool(group.get("AuthTokenEnabled")),
                )
                reader = node_group.get("ReaderEndpoint") or {}
                t.extra_addresses = [a for a in [reader.get("Address")] +
                                     [(m.get("ReadEndpoint") or {}).get("Address") for m in members] if a]
                self._place(t, primary_member.get("PreferredAvailabilityZone"))
                self.targets.append(t)
        self._standalone_caches(elasticache, clusters, cache_subnet_groups)
        self._proxies(rds, instances)

    def _standalone_caches(self, elasticache: Any, clusters: dict[str, dict], subnet_groups: dict[str, dict]) -> None:
        """Cache clusters outside any replication group, reached at their node's endpoint; serverless caches."""
        nodes = {c["CacheClusterId"]: c for c in _all(lambda **kw: elasticache.describe_cache_clusters(ShowCacheNodeInfo=True, **kw),
                                                       "CacheClusters", token="Marker")}
        for cluster in clusters.values():
            if cluster.get("ReplicationGroupId"):
                continue
            node = next(iter(nodes.get(cluster["CacheClusterId"], {}).get("CacheNodes", [])), {})
            endpoint = node.get("Endpoint") or {}
            if not endpoint.get("Address"):
                continue
            subnet_group = subnet_groups.get(cluster.get("CacheSubnetGroupName", ""), {})
            t = _Target(
                kind="cache", ident=cluster["CacheClusterId"], address=endpoint["Address"], port=int(endpoint.get("Port") or 0),
                vpc_id=subnet_group.get("VpcId"),
                subnet_ids=[s["SubnetIdentifier"] for s in subnet_group.get("Subnets", [])],
                security_group_ids=[g["SecurityGroupId"] for g in cluster.get("SecurityGroups", [])],
                transit_encryption=bool(cluster.get("TransitEncryptionEnabled")),
                auth_token_enabled=bool(cluster.get("AuthTokenEnabled")),
            )
            self._place(t, cluster.get("PreferredAvailabilityZone"))
            self.targets.append(t)
        for cache in _all(elasticache.describe_serverless_caches, "ServerlessCaches"):
            endpoint = cache.get("Endpoint") or {}
            subnet_ids = list(cache.get("SubnetIds", []))
            t = _Target(
                kind="cache", ident=cache["ServerlessCacheName"], address=endpoint.get("Address", ""),
                port=int(endpoint.get("Port") or 0),
                vpc_id=next((self.subnets[s]["VpcId"] for s in subnet_ids if s in self.subnets), None),
                subnet_ids=subnet_ids, security_group_ids=list(cache.get("SecurityGroupIds", [])),
                transit_encryption=True,  # serverless caches accept TLS only
            )
            self._place(t, None)
            self.targets.append(t)

    def _proxies(self, rds: Any, instances: list[dict]) -> None:
        """RDS Proxies: reached at their endpoint on the engine family's port, inside their own subnets and
        groups; the proxy then connects to its target database, whose groups must admit the proxy's."""
        users = {db["DBInstanceIdentifier"]: db.get("MasterUsername") for db in instances}
        proxies: dict[str, _Target] = {}
        for proxy in _all(rds.describe_db_proxies, "DBProxies", token="Marker"):
            targets = rds.describe_db_proxy_targets(DBProxyName=proxy["DBProxyName"]).get("Targets", [])
            backend = next((t.get("RdsResourceId") for t in targets), None)
            t = _Target(
                kind="database", ident=proxy["DBProxyName"], address=proxy.get("Endpoint", ""),
                port={"POSTGRESQL": 5432, "MYSQL": 3306, "SQLSERVER": 1433}.get(proxy.get("EngineFamily", ""), 0),
                vpc_id=proxy.get("VpcId"), subnet_ids=list(proxy.get("VpcSubnetIds", [])),
                security_group_ids=list(proxy.get("VpcSecurityGroupIds", [])),
                master_username=users.get(backend or ""), credentials_of=backend,
                backend=next((x for x in self.targets if x.kind == "database" and x.ident == backend), None),
            )
            self._place(t, None)
            self.targets.append(t)
            proxies[t.ident] = t
        if not proxies:
            return
        for endpoint in _all(rds.describe_db_proxy_endpoints, "DBProxyEndpoints", token="Marker"):
            proxy = proxies.get(endpoint.get("DBProxyName", ""))
            if endpoint.get("IsDefault") or proxy is None:
                continue
            t = _Target(
                kind="database", ident=endpoint["DBProxyEndpointName"], address=endpoint.get("Endpoint", ""), port=proxy.port,
                vpc_id=endpoint.get("VpcId"), subnet_ids=list(endpoint.get("VpcSubnetIds", [])),
                security_group_ids=list(endpoint.get("VpcSecurityGroupIds", [])), master_username=proxy.master_username,
                credentials_of=proxy.credentials_of, backend=proxy.backend, via=proxy,
            )
            self._place(t, None)
            self.targets.append(t)

    def _aurora_clusters(self, rds: Any, instances: list[dict]) -> None:
        """Aurora clusters: reached at the cluster (and reader) endpoint, inside the cluster's subnet group."""
        clusters = _all(rds.describe_db_clusters, "DBClusters", token="Marker")
        if not clusters:
            return
        subnet_groups = {g["DBSubnetGroupName"].lower(): g for g in _all(rds.describe_db_subnet_groups, "DBSubnetGroups",
                                                                         token="Marker")}
        public_members = {db["DBInstanceIdentifier"] for db in instances if db.get("PubliclyAccessible")}
        zones = {db["DBInstanceIdentifier"]: db.get("AvailabilityZone") for db in instances}
        for cluster in clusters:
            if not cluster.get("Endpoint"):
                continue
            subnet_group = subnet_groups.get((cluster.get("DBSubnetGroup") or "").lower(), {})
            members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
            writer = next((m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])
                           if m.get("IsClusterWriter")), None)
            t = _Target(
                kind="database",
                ident=cluster["DBClusterIdentifier"],
                address=cluster["Endpoint"],
                port=int(cluster.get("Port") or 0),
                vpc_id=subnet_group.get("VpcId"),
                subnet_ids=[s["SubnetIdentifier"] for s in subnet_group.get("Subnets", [])],
                security_group_ids=[g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])],
                public=bool(cluster.get("PubliclyAccessible")) or any(m in public_members for m in members),
                master_username=cluster.get("MasterUsername"),
                extra_addresses=[a for a in [cluster.get("ReaderEndpoint")] if a],
            )
            self._place(t, zones.get(writer or ""))  # the writer answers the cluster endpoint
            self.targets.append(t)

    def _place(self, target: _Target, az: str | None) -> None:
        """Give the target an address inside one of its subnets (the one in its AZ if any)."""
        known = [s for s in target.subnet_ids if s in self.subnets]
        if not known:
            return
        chosen = next((s for s in known if self.subnets[s].get("AvailabilityZone") == az), known[0])
        net = ipaddress.ip_network(self.subnets[chosen]["CidrBlock"])
        offset = 4 + zlib.crc32(f"{target.kind}:{target.ident}".encode()) % max(1, net.num_addresses - 5)
        target.subnet_id = chosen
        target.ip = str(net.network_address + offset)

    def find(self, host: str) -> _Target | None:
        host = host.lower().rstrip(".")
        for t in self.targets:
            if host == t.address.lower() or host in (a.lower() for a in t.extra_addresses):
                return t
        return None


def _all(method: Any, key: str, token: str = "NextToken") -> list[dict]:
    items: list[dict] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = method(**kwargs)
        items.extend(page.get(key, []))
        nxt = page.get(token)
        if not nxt:
            return items
        kwargs[token] = nxt


# ----------------------------------------------------------------------------- rules


def _port_covered(protocol: str | None, from_port: int | None, to_port: int | None, port: int) -> bool:
    if protocol == "-1":
        return True
    if protocol in ("tcp", "6"):
        return from_port is not None and to_port is not None and from_port <= port <= to_port
    return False


def _cidr_contains(cidr: str, network: str) -> bool:
    outer = ipaddress.ip_network(cidr, strict=False)
    inner = ipaddress.ip_network(network, strict=False)
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _ipv4_blocks(snapshot: "NetworkSnapshot", perm: dict) -> list[str]:
    """The IPv4 blocks a permission names: its ranges and the entries of its prefix lists."""
    blocks = [r["CidrIp"] for r in perm.get("IpRanges", [])]
    for entry in perm.get("PrefixListIds", []):
        blocks += [c for c in snapshot.prefix_list_cidrs(entry["PrefixListId"]) if ":" not in c]
    return blocks


def _sg_egress_allows(snapshot: "NetworkSnapshot", group: dict, port: int, dest_ip: str, dest_groups: list[str]) -> bool:
    for perm in group.get("IpPermissionsEgress", []):
        if not _port_covered(perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"), port):
            continue
        if any(_cidr_contains(block, dest_ip) for block in _ipv4_blocks(snapshot, perm)):
            return True
        if any(p.get("GroupId") in dest_groups for p in perm.get("UserIdGroupPairs", [])):
            return True
    return False


def _sg_ingress_admits(snapshot: "NetworkSnapshot", groups: list[dict], port: int, source_groups: list[str],
                       source_cidrs: list[str]) -> bool:
    """The rules of all the groups on the target's interfaces add up: a pair naming a source group by id,
    or address blocks (ranges, prefix-list entries) that leave no address of any source network out."""
    perms = [p for g in groups for p in g.get("IpPermissions", [])
             if _port_covered(p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), port)]
    if any(pair.get("GroupId") in source_groups for p in perms for pair in p.get("UserIdGroupPairs", [])):
        return True
    if not source_cidrs:
        return False
    blocks = [ipaddress.ip_network(b, strict=False) for p in perms for b in _ipv4_blocks(snapshot, p)]
    for source in source_cidrs:
        left = [ipaddress.ip_network(source)]
        for block in blocks:
            pieces = []
            for part in left:
                if part.subnet_of(block):  # type: ignore[arg-type]
                    continue
                pieces += list(part.address_exclude(block)) if block.subnet_of(part) else [part]  # type: ignore[arg-type]
            left = pieces
        if left:
            return False
    return True


def _acl_allows(acl: dict | None, *, egress: bool, ports: tuple[int, int], peer: str) -> str | None:
    """None if the ACL lets tcp traffic on every port in ``ports`` to/from all of ``peer``,
    else a description of the entry that stops it."""
    if acl is None:
        return None
    entries = sorted((e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress),
                     key=lambda e: e["RuleNumber"])
    remaining = [ports]  # port intervals not yet decided
    for entry in entries:
        if not remaining:
            return None
        cidr = entry.get("CidrBlock")
        if not cidr:
            continue  # IPv6 entries do not apply to IPv4 traffic
        proto = str(entry.get("Protocol"))
        if proto == "-1":
            lo, hi = 0, 65535
        elif proto == "6":
            rng = entry.get("PortRange") or {}
            lo, hi = int(rng.get("From", 0)), int(rng.get("To", 65535))
        else:
            continue
        outer = ipaddress.ip_network(cidr, strict=False)
        inner = ipaddress.ip_network(peer, strict=False)
        allow = entry.get("RuleAction") == "allow"
        # An allow entry decides only for a peer wholly inside it; a deny entry
        # stops any traffic it overlaps.
        applies = inner.subnet_of(outer) if allow else inner.overlaps(outer)  # type: ignore[arg-type]
        if not applies:
            continue
        hit = [(max(a, lo), min(b, hi)) for a, b in remaining if max(a, lo) <= min(b, hi)]
        if not hit:
            continue
        if not allow:
            direction = "outbound" if egress else "inbound"
            a, b = hit[0]
            span = str(a) if a == b else f"{a}-{b}"
            if entry["RuleNumber"] == 32767:  # the '*' entry: nothing allowed it
                return f"network ACL {acl['NetworkAclId']} has no entry allowing {direction} tcp/{span} ({peer})"
            return f"network ACL {acl['NetworkAclId']} rule {entry['RuleNumber']} denies {direction} tcp/{span} ({cidr})"
        remaining = [piece for a, b in remaining for piece in _subtract((a, b), (lo, hi))]
    if remaining:
        direction = "outbound" if egress else "inbound"
        a, b = remaining[0]
        span = str(a) if a == b else f"{a}-{b}"
        return f"network ACL {acl['NetworkAclId']} has no entry allowing {direction} tcp/{span} ({peer})"
    return None


def _subtract(span: tuple[int, int], cut: tuple[int, int]) -> list[tuple[int, int]]:
    a, b = span
    lo, hi = cut
    out = []
    if a < lo:
        out.append((a, min(b, lo - 1)))
    if b > hi:
        out.append((max(a, hi + 1), b))
    return [(x, y) for x, y in out if x <= y]


# ----------------------------------------------------------------------------- evaluation


def evaluate(snapshot: AwsSnapshot, egress: Egress, label: str, env_var: str, value: str | None,
             passwords: dict[str, str] | None = None) -> Verdict:
    """Decide whether the dependency in ``env_var`` (holding ``value``) is reachable."""
    if value is None:
        return Verdict(label, env_var, env_var, False, (f"environment variable {env_var} is not set",),
                       f"KeyError: '{env_var}'")
    try:
        url = urlsplit(value)
        host = url.hostname
        scheme = url.scheme.split("+")[0].lower()
        port = url.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        host, scheme, port = None, "", None
    if not host or not port:
        return Verdict(label, env_var, env_var, False, (f"{env_var} does not hold a URL with a host and port",),
                       f"ValueError: invalid URL in {env_var}")
    is_redis = scheme in ("redis", "rediss")
    shown = f"{host}:{port}"
    target = snapshot.find(host)
    if target is None:
        if is_redis:
            log = f"redis.exceptions.ConnectionError: Error -2 connecting to {host}:{port}. Name or service not known."
        else:
            log = (f'psycopg2.OperationalError: could not translate host name "{host}" to address: '
                   "Name or service not known")
        return Verdict(label, env_var, shown, False,
                       (f"could not translate host name {host}: no RDS instance, cluster or proxy, nor ElastiCache "
                        "cache has that address",),
                       log)
    name = f"{target.kind} {target.ident}:{port}"
    timeout_log = (f"redis.exceptions.ConnectionError: Error 110 connecting to {host}:{port}. Connection timed out."
                   if is_redis else
                   f'psycopg2.OperationalError: connection to server at "{host}" ({target.ip or "10.0.0.10"}), '
                   f"port {port} failed: Connection timed out")
    reasons: list[str] = []

    if port != target.port:
        reasons.append(f"{target.kind} {target.ident} listens on {target.port}, the URL says {port}")
    if egress.type == "VPC":
        reasons += _vpc_path(snapshot, egress, target, port)
        if any(r.startswith("could not translate") for r in reasons):
            timeout_log = (f"redis.exceptions.ConnectionError: Error -3 connecting to {host}:{port}. "
                           "Temporary failure in name resolution." if is_redis else
                           f'psycopg2.OperationalError: could not translate host name "{host}" to address: '
                           "Temporary failure in name resolution")
    else:
        reasons += _internet_path(snapshot, target, port)
    if reasons:
        return Verdict(label, env_var, name, False, tuple(reasons), timeout_log)

    # The network lets the packets through; now the protocol has its say.
    if target.kind == "cache":
        if target.transit_encryption and scheme != "rediss":
            return Verdict(label, env_var, name, False,
                           (f"{target.ident} has transit encryption: the URL must use rediss://, not {scheme}://",),
                           "redis.exceptions.ConnectionError: Connection closed by server.")
        if not target.transit_encryption and scheme == "rediss":
            return Verdict(label, env_var, name, False,
                           (f"{target.ident} has no transit encryption: rediss:// cannot complete a TLS handshake",),
                           f"redis.exceptions.ConnectionError: Error 1 connecting to {host}:{port}. "
                           "[SSL: WRONG_VERSION_NUMBER] wrong version number.")
        if target.auth_token_enabled and not url.password:
            return Verdict(label, env_var, name, False,
                           (f"{target.ident} requires an AUTH token and the URL carries none",),
                           "redis.exceptions.AuthenticationError: Authentication required.")
    elif target.kind == "database" and not is_redis:
        user = unquote(url.username or "")
        expected = (passwords or {}).get(target.credentials_of or target.ident)
        if target.master_username and user != target.master_username:
            reasons.append(f"user {user or '(none)'} is not the master user {target.master_username}")
        elif not url.password:
            reasons.append("the URL carries no password")
        elif expected is not None and unquote(url.password) != expected:
            reasons.append(f"the password for {user} is not the database's")
        if reasons:
            return Verdict(label, env_var, name, False, tuple(reasons),
                           f'psycopg2.OperationalError: connection to server at "{host}" ({target.ip}), port {port} '
                           f'failed: FATAL:  password authentication failed for user "{user}"')
    return Verdict(label, env_var, name, True)


def _vpc_path(snapshot: AwsSnapshot, egress: Egress, target: _Target, port: int) -> list[str]:
    reasons: list[str] = []
    if not egress.subnet_ids:
        if egress.source != "connector":
            return [f"{egress.source} {egress.connector or '(unknown)'} has no subnets"]
        return [f"VPC connector {egress.connector or '(unknown)'} does not exist or has no subnets"]
    subnets = [snapshot.subnets.get(s) for s in egress.subnet_ids]
    missing = [s for s, d in zip(egress.subnet_ids, subnets, strict=True) if d is None]
    if missing:
        return [f"{egress.source} {egress.connector} subnet {missing[0]} does not exist"]
    vpcs = {s["VpcId"] for s in subnets if s}
    connector_vpc = next(iter(vpcs)) if len(vpcs) == 1 else None
    if connector_vpc is None:
        return [f"{egress.source} {egress.connector} subnets span several VPCs"]
    if not snapshot.dns_support(connector_vpc):
        return [f"could not translate host name {target.address}: enableDnsSupport is off in {connector_vpc}"]
    if target.vpc_id != connector_vpc:
        return [f"{target.kind} {target.ident} is in {target.vpc_id}, {egress.source} {egress.connector} in {connector_vpc}"]
    if target.ip is None or target.subnet_id is None:
        return [f"{target.kind} {target.ident} has no subnet in {connector_vpc}"]

    connector_groups = [snapshot.groups[g] for g in egress.security_group_ids if g in snapshot.groups]
    if not connector_groups:
        reasons.append(f"{egress.source} {egress.connector} has no existing security group")
    elif not any(_sg_egress_allows(snapshot, g, port, target.ip, target.security_group_ids) for g in connector_groups):
        ids = ", ".join(g["GroupId"] for g in connector_groups)
        reasons.append(f"no egress rule on {ids} ({egress.source}) allows tcp/{port} to {target.ip}")

    target_groups = [snapshot.groups[g] for g in target.security_group_ids if g in snapshot.groups]
    source_cidrs = [s["CidrBlock"] for s in subnets if s]
    if not target_groups:
        reasons.append(f"{target.kind} {target.ident} has no existing security group")
    elif not _sg_ingress_admits(snapshot, target_groups, port, list(egress.security_group_ids), source_cidrs):
        ids = ", ".join(g["GroupId"] for g in target_groups)
        conn = ", ".join(egress.security_group_ids) or "(none)"
        reasons.append(f"no ingress on {ids} admits {conn} or the {egress.source} subnets "
                       f"({', '.join(source_cidrs)}) on tcp/{port}")

    if target.backend is not None:
        reasons += _proxy_leg(snapshot, target.via or target, target.backend)

    target_acl = snapshot.acl_for(target.subnet_id)
    for subnet in subnets:
        assert subnet is not None
        acl = snapshot.acl_for(subnet["SubnetId"])
        cidr = subnet["CidrBlock"]
        for problem in (
            _acl_allows(acl, egress=True, ports=(port, port), peer=f"{target.ip}/32"),
            _acl_allows(target_acl, egress=False, ports=(port, port), peer=cidr),
            _acl_allows(target_acl, egress=True, ports=EPHEMERAL, peer=cidr),
            _acl_allows(acl, egress=False, ports=EPHEMERAL, peer=f"{target.ip}/32"),
        ):
            if problem and problem not in reasons:
                reasons.append(problem)
    return reasons


def _proxy_leg(snapshot: AwsSnapshot, proxy: _Target, database: _Target) -> list[str]:
    """The proxy's own connection to its database: egress from the proxy's groups, ingress on the database's."""
    if database.ip is None or database.vpc_id != proxy.vpc_id:
        return [f"proxy {proxy.ident} cannot reach database {database.ident} in {database.vpc_id}"]
    reasons = []
    proxy_groups = [snapshot.groups[g] for g in proxy.security_group_ids if g in snapshot.groups]
    if not any(_sg_egress_allows(snapshot, g, database.port, database.ip, database.security_group_ids) for g in proxy_groups):
        reasons.append(f"no egress rule on {', '.join(proxy.security_group_ids)} (proxy {proxy.ident}) allows tcp/{database.port} "
                       f"to database {database.ident}")
    database_groups = [snapshot.groups[g] for g in database.security_group_ids if g in snapshot.groups]
    proxy_cidrs = [snapshot.subnets[s]["CidrBlock"] for s in proxy.subnet_ids if s in snapshot.subnets]
    if not _sg_ingress_admits(snapshot, database_groups, database.port, list(proxy.security_group_ids), proxy_cidrs):
        reasons.append(f"no ingress on {', '.join(database.security_group_ids)} (database {database.ident}) admits proxy "
                       f"{proxy.ident} on tcp/{database.port}")
    return reasons


def _internet_path(snapshot: AwsSnapshot, target: _Target, port: int) -> list[str]:
    if target.kind != "database" or not target.public:
        return [f"egress is DEFAULT (internet): {target.kind} {target.ident} has only a private address in "
                f"{target.vpc_id}; the service needs a VPC connector"]
    reasons = []
    routes = snapshot.routes_for(target.subnet_id or "")
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and str(r.get("GatewayId", "")).startswith("igw-")
               for r in routes):
        reasons.append(f"{target.ident} is publicly accessible but subnet {target.subnet_id} has no route to an "
                       "internet gateway")
    groups = [snapshot.groups[g] for g in target.security_group_ids if g in snapshot.groups]
    if not _sg_ingress_admits(snapshot, groups, port, [], ["0.0.0.0/0"]):
        reasons.append(f"no ingress on {', '.join(target.security_group_ids)} admits the internet (0.0.0.0/0) "
                       f"on tcp/{port}")
    acl = snapshot.acl_for(target.subnet_id or "")
    for problem in (_acl_allows(acl, egress=False, ports=(port, port), peer="0.0.0.0/0"),
                    _acl_allows(acl, egress=True, ports=EPHEMERAL, peer="0.0.0.0/0")):
        if problem:
            reasons.append(problem)
    return reasons


# ----------------------------------------------------------------------------- ECS tasks: load balancer, image pull


def load_balancer_path(snapshot: NetworkSnapshot, lb_groups: list[str], lb_subnets: list[str], task_groups: list[str],
                       task_ip: str, port: int) -> list[str]:
    """Why the load balancer's health checks cannot reach a task on ``port`` (empty: they can): the
    task's groups must admit one of the load balancer's groups (a pair) or address blocks covering
    every load balancer subnet, and one of the load balancer's groups must let ``port`` out to the task."""
    reasons = []
    groups = [snapshot.groups[g] for g in task_groups if g in snapshot.groups]
    if not _sg_ingress_admits(snapshot, groups, port, list(lb_groups), []) and not _sg_ingress_admits(
            snapshot, groups, port, list(lb_groups),
            cidrs := [snapshot.subnets[s]["CidrBlock"] for s in lb_subnets if s in snapshot.subnets]):
        reasons.append(f"no ingress on {', '.join(task_groups) or '(none)'} (task) admits {', '.join(lb_groups) or '(none)'} "
                       f"or the load balancer subnets ({', '.join(cidrs)}) on tcp/{port}")
    outbound = [snapshot.groups[g] for g in lb_groups if g in snapshot.groups]
    if not any(_sg_egress_allows(snapshot, g, port, task_ip, list(task_groups)) for g in outbound):
        reasons.append(f"no egress rule on {', '.join(lb_groups) or '(none)'} (load balancer) allows tcp/{port} to {task_ip}")
    return reasons


def image_pull_path(snapshot: NetworkSnapshot, subnet_id: str, task_groups: list[str], public_ip: bool,
                    image: str, region: str) -> str | None:
    """Why a task in ``subnet_id`` cannot reach its image registry (None: it can). A way out: the
    subnet's route table sends ``0.0.0.0/0`` to a NAT gateway (an active route), or to an internet
    gateway with a public IP on the task. Else, for an ECR image of the region only: interface
    endpoints for ``ecr.api`` and ``ecr.dkr`` in the VPC with private DNS, whose groups admit the task on
    tcp/443, and the ``s3`` gateway endpoint on the subnet's route table (image layers live in S3)."""
    routes = [r for r in snapshot.routes_for(subnet_id)
              if r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("State", "active") == "active"]
    if any(str(r.get("NatGatewayId", "")).startswith("nat-") for r in routes):
        return None
    igw = any(str(r.get("GatewayId", "")).startswith("igw-") for r in routes)
    if igw and public_ip:
        return None
    way = ("its subnet routes 0.0.0.0/0 to an internet gateway but the task has no public IP (assignPublicIp DISABLED)"
           if igw else "its subnet has no route 0.0.0.0/0 to a NAT gateway or an internet gateway")
    host = image.split("/", 1)[0]
    if not (host.endswith(f".dkr.ecr.{region}.amazonaws.com") and "/" in image):
        return f"{way}, and {host} is reached only through the internet"
    subnet = snapshot.subnets.get(subnet_id) or {}
    vpc, table = subnet.get("VpcId"), snapshot.route_table_for(subnet_id) or {}
    endpoints = [e for e in snapshot.vpc_endpoints if e.get("VpcId") == vpc
                 and str(e.get("State", "available")).lower() == "available"]
    missing = []
    for name in ("ecr.api", "ecr.dkr"):
        found = [e for e in endpoints if e.get("ServiceName") == f"com.amazonaws.{region}.{name}"
                 and e.get("VpcEndpointType") == "Interface" and e.get("PrivateDnsEnabled")]
        admitting = [e for e in found if _sg_ingress_admits(
            snapshot, [snapshot.groups[g["GroupId"]] for g in e.get("Groups", []) if g.get("GroupId") in snapshot.groups],
            443, list(task_groups), [subnet.get("CidrBlock", "0.0.0.0/0")])]
        if not found:
            missing.append(f"no {name} interface endpoint with private DNS")
        elif not admitting:
            missing.append(f"the {name} endpoint's groups do not admit the task on tcp/443")
    if not any(e.get("ServiceName") == f"com.amazonaws.{region}.s3" and e.get("VpcEndpointType") == "Gateway"
               and table.get("RouteTableId") in e.get("RouteTableIds", []) for e in endpoints):
        missing.append(f"no s3 gateway endpoint on route table {table.get('RouteTableId', '(none)')}")
    return f"{way}, and {'; '.join(missing)}" if missing else None
