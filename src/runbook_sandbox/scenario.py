"""Scenario files: a whole AWS world described by symbolic names, validated.

A scenario is YAML (format in docs/scenarios.md). :func:`load_scenario` reads
a bundled name or a path, checks every field and every cross-reference, and
returns a frozen :class:`Scenario`. Any problem is one line:
``scenario FILE: FIELD.PATH: what is wrong`` raised as
:class:`runbook.errors.UsageError`, never a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbook import yamlfile
from runbook.errors import UsageError

SCENARIO_DIR = Path(__file__).with_name("scenarios")

SERVICE_STATUSES = ("RUNNING", "OPERATION_IN_PROGRESS", "CREATE_FAILED", "PAUSED", "DELETE_FAILED")
OPERATION_TYPES = (
    "CREATE_SERVICE",
    "START_DEPLOYMENT",
    "UPDATE_SERVICE",
    "PAUSE_SERVICE",
    "RESUME_SERVICE",
    "DELETE_SERVICE",
)
# App Runner's CodeConfigurationValues.Runtime (botocore model apprunner/2020-05-15).
CODE_RUNTIMES = ("PYTHON_3", "NODEJS_12", "NODEJS_14", "CORRETTO_8", "CORRETTO_11", "NODEJS_16", "GO_1", "DOTNET_6",
                 "PHP_81", "RUBY_31", "PYTHON_311", "NODEJS_18", "NODEJS_22")
SECRET_STORES = ("secretsmanager", "ssm")
OPERATION_STATUSES = (
    "PENDING",
    "IN_PROGRESS",
    "FAILED",
    "SUCCEEDED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_SUCCEEDED",
)
IN_FLIGHT = ("PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
# aurora-* engines make an Aurora cluster (the database's id) with one writer instance, <id>-1.
DB_ENGINES = {"postgres": 5432, "mysql": 3306, "mariadb": 3306, "aurora-postgresql": 5432, "aurora-mysql": 3306}
CACHE_ENGINES = ("redis", "valkey")
# replication-group: a Redis OSS/Valkey replication group; cluster: a standalone cache cluster
# (one node, no replication group); serverless: an ElastiCache Serverless cache (TLS only).
CACHE_MODES = ("replication-group", "cluster", "serverless")
PROXY_ENGINE_FAMILIES = {"POSTGRESQL": ("postgres", "aurora-postgresql"), "MYSQL": ("mysql", "mariadb", "aurora-mysql")}
FOREIGN_GROUP = re.compile(r"^(\d{12})/(sg-[0-9a-f]{8,17})$")
FOREIGN_PREFIX_LIST = re.compile(r"^pl-[0-9a-f]{8,17}$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
PLACEHOLDER_BODY = re.compile(r"^(database|cache|proxy)\.([A-Za-z0-9-]+)\.(address|port)$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{3,39}$")
RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Subnet:
    name: str
    vpc: str
    cidr: str
    az: str
    route_table: str | None


@dataclass(frozen=True)
class Route:
    destination: str
    nat_gateway: str | None = None
    internet_gateway: str | None = None


@dataclass(frozen=True)
class NatGateway:
    name: str
    subnet: str
    connectivity: str = "public"  # public | private (ConnectivityType)
    state: str = "available"  # available | deleted: what moto can serve (deleted: DeleteNatGateway after the routes)


@dataclass(frozen=True)
class RouteTable:
    name: str
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class NaclEntry:
    rule: int
    action: str  # allow | deny
    egress: bool
    protocol: str  # "-1" or an IANA number as a string ("6" tcp, "17" udp, "1" icmp)
    from_port: int | None
    to_port: int | None
    cidr: str  # an IPv4 block (CidrBlock) or an IPv6 one (Ipv6CidrBlock)


@dataclass(frozen=True)
class NetworkAcl:
    name: str  # "default" = the VPC's default ACL
    subnets: tuple[str, ...]
    entries: tuple[NaclEntry, ...]


@dataclass(frozen=True)
class Vpc:
    name: str
    cidr: str
    dns_support: bool
    dns_hostnames: bool
    subnets: tuple[Subnet, ...]
    route_tables: tuple[RouteTable, ...]
    internet_gateway: str | None
    nat_gateways: tuple[NatGateway, ...]
    network_acls: tuple[NetworkAcl, ...]


@dataclass(frozen=True)
class SgRule:
    protocol: str  # "-1", "tcp", "udp", "icmp" or a number
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    cidr_ipv6: str | None = None
    group: str | None = None  # symbolic security group name
    description: str | None = None
    prefix_list: str | None = None  # symbolic managed prefix list name
    peer_group: str | None = None  # symbolic name of a group in a peered VPC
    foreign_group: str | None = None  # "<account>/<sg-id>": a group of another account
    foreign_prefix_list: str | None = None  # "pl-…": a prefix list this account cannot read


@dataclass(frozen=True)
class SecurityGroup:
    name: str  # symbolic
    vpc: str
    group_name: str  # real GroupName; "default" = the VPC's default group
    description: str
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...] | None  # None = keep AWS's default allow-all egress

    @property
    def is_default(self) -> bool:
        return self.group_name == "default"


@dataclass(frozen=True)
class Database:
    id: str
    engine: str
    port: int
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    publicly_accessible: bool
    master_username: str
    master_password: str
    db_name: str | None
    instance_class: str
    subnet_group: str


@dataclass(frozen=True)
class Cache:
    id: str
    engine: str
    port: int
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    transit_encryption: bool
    auth_token: str | None
    node_type: str
    subnet_group: str
    replicas: int
    mode: str = "replication-group"  # one of CACHE_MODES


@dataclass(frozen=True)
class PrefixList:
    name: str
    address_family: str  # IPv4 | IPv6
    entries: tuple[str, ...]
    max_entries: int


@dataclass(frozen=True)
class VpcPeering:
    name: str
    vpcs: tuple[str, str]  # requester, accepter (active)


@dataclass(frozen=True)
class ProxyEndpoint:
    """A custom endpoint of an RDS Proxy: its own subnets (one VPC) and groups."""

    name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    target_role: str  # READ_WRITE | READ_ONLY


@dataclass(frozen=True)
class Proxy:
    """An RDS Proxy in front of one database of the scenario."""

    name: str
    engine_family: str
    database: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    endpoints: tuple[ProxyEndpoint, ...] = ()


@dataclass(frozen=True)
class Connector:
    name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    status: str = "ACTIVE"  # INACTIVE: deleted, it can't be used


@dataclass(frozen=True)
class Secret:
    """A Secrets Manager secret or an SSM Parameter Store SecureString parameter."""

    name: str
    store: str  # secretsmanager | ssm
    value: str  # may hold ${...} placeholders; a JSON document when the scenario gave a mapping


@dataclass(frozen=True)
class SecretRef:
    """One RuntimeEnvironmentSecrets entry: a defined secret, by ARN (a Secrets Manager one
    optionally with a JSON key) or, for a parameter, by name; or a literal reference."""

    secret: str | None  # the Secret's name; None for a literal
    json_key: str | None = None
    by_name: bool = False
    literal: str | None = None


@dataclass(frozen=True)
class CodeSource:
    """A service built from a source code repository (CodeRepository)."""

    url: str
    branch: str
    runtime: str
    configuration_source: str  # API (CodeConfigurationValues) | REPOSITORY (apprunner.yaml)
    build_command: str | None
    start_command: str | None


@dataclass(frozen=True)
class Operation:
    type: str
    status: str


@dataclass(frozen=True)
class HealthCheck:
    protocol: str = "TCP"
    path: str = "/"
    interval: int = 5
    timeout: int = 2
    healthy_threshold: int = 1
    unhealthy_threshold: int = 5


@dataclass(frozen=True)
class App:
    """The simulated container: what it listens on, serves and needs to start."""

    health_path: str
    port: str
    needs: tuple[tuple[str, str], ...]  # (label, env var name)
    startup_error: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    connector: str | None
    image: str
    port: str
    status: str
    operations: tuple[Operation, ...]  # oldest first
    env: tuple[tuple[str, str], ...]  # may hold ${...} placeholders
    health_check: HealthCheck
    app: App
    deploy_seconds: float
    service_logs: tuple[str, ...]
    application_logs: tuple[str, ...]
    cpu: str
    memory: str
    public: bool
    egress: str = "DEFAULT"  # EgressType; VPC needs a connector, DEFAULT may still name one
    secrets: tuple[tuple[str, SecretRef], ...] = ()  # RuntimeEnvironmentSecrets
    code: CodeSource | None = None  # None: an image service


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    region: str
    vpcs: tuple[Vpc, ...]
    security_groups: tuple[SecurityGroup, ...]
    databases: tuple[Database, ...] = ()
    caches: tuple[Cache, ...] = ()
    connectors: tuple[Connector, ...] = ()
    services: tuple[Service, ...] = ()
    secrets: tuple[Secret, ...] = ()
    source: str = field(default="", compare=False)
    prefix_lists: tuple[PrefixList, ...] = ()
    peerings: tuple[VpcPeering, ...] = ()
    proxies: tuple[Proxy, ...] = ()

    def subnet(self, name: str) -> Subnet:
        return _named((s for vpc in self.vpcs for s in vpc.subnets), name)

    def security_group(self, name: str) -> SecurityGroup:
        return _named(self.security_groups, name)

    def service(self, name: str) -> Service:
        return _named(self.services, name)

    def connector(self, name: str) -> Connector:
        return _named(self.connectors, name)


# ----------------------------------------------------------------------------- loading


def _named(items, name: str):
    """The item called `name`; KeyError when there is none."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package, sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load and validate a bundled scenario (by name) or a YAML file (by path)."""
    label = str(name_or_path)
    path = Path(name_or_path)
    try:
        is_file, exists = path.is_file(), path.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        shown = label if len(label) <= 80 else label[:77] + "..."
        raise UsageError(f"scenario {shown}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if str(name_or_path) in bundled_scenarios() and not is_file:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    elif not is_file:
        known = ", ".join(bundled_scenarios()) or "none"
        if exists:
            raise UsageError(f"scenario {label}: not a file")
        raise UsageError(f"scenario {label}: no such file or bundled scenario (bundled: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"scenario {label}: cannot read: {exc}") from None
    return parse_scenario(text, label=label, default_name=path.stem)


def parse_scenario(text: str, *, label: str = "<string>", default_name: str = "scenario") -> Scenario:
    """Validate scenario YAML text; ``label`` names the file in error messages."""
    try:
        data = yamlfile.parse(text)  # no duplicate keys, bounded nesting
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise UsageError(f"scenario {label}: not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"scenario {label}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return scenario_from_data(data, label=label, default_name=default_name)


def scenario_from_data(data: Any, *, label: str = "<data>", default_name: str = "scenario") -> Scenario:
    """Validate already-parsed YAML data (what :func:`parse_scenario` does after parsing)."""
    return _Parser(label).scenario(data, default_name)




# ----------------------------------------------------------------------------- validation


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Parser:
    def __init__(self, label: str) -> None:
        self.label = label

    # -- primitives ---------------------------------------------------------

    def fail(self, path: str, message: str) -> UsageError:
        where = f"{path}: " if path else ""
        return UsageError(f"scenario {self.label}: {where}{message}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None = None,
                required: tuple[str, ...] = ()) -> dict:
        if value is None and not required:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {_kind(key)} {key!r}")
        if allowed is not None:
            unknown = [k for k in value if k not in allowed]
            if unknown:
                raise self.fail(
                    _join(path, unknown[0]),
                    f"unknown key (expected one of: {', '.join(allowed)})",
                )
        for key in required:
            if key not in value or value[key] is None:
                raise self.fail(_join(path, key), "required")
        return value

    def seq(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def string(self, value: Any, path: str, *, default: str | None = None, allow_empty: bool = False) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        if not value.strip() and not allow_empty:
            raise self.fail(path, "must not be empty")
        return value

    def opt_string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        return self.string(value, path)

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, *, default: int | None = None,
                lo: int | None = None, hi: int | None = None) -> int:
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise self.fail(path, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, value: Any, path: str, default: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        if value <= 0:
            raise self.fail(path, f"must be greater than 0, got {value}")
        return float(value)

    def port_string(self, value: Any, path: str, default: str) -> str:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected a string or integer, got {_kind(value)}")
        text = str(value)
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise self.fail(path, f"must be a port number 1-65535, got {text!r}")
        return str(int(text))

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str | None = None,
               message: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or value not in options:
            shown = repr(value) if isinstance(value, str) else _kind(value)
            raise self.fail(path, message or f"must be one of {', '.join(options)}, got {shown}")
        return value

    def symbol(self, value: Any, path: str) -> str:
        text = self.string(value, path)
        if not SYMBOL.match(text):
            raise self.fail(path, f"{text!r} is not a valid name (letters, digits, '-', '_', '.')")
        return text

    def cidr(self, value: Any, path: str, *, v6: bool = False) -> str:
        text = self.string(value, path)
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise self.fail(path, f"not a valid CIDR block: {exc}") from None
        if v6 != (net.version == 6):
            raise self.fail(path, f"expected an IPv{6 if v6 else 4} CIDR block, got {text!r}")
        return str(net)

    def names(self, value: Any, path: str, *, minimum: int = 1) -> tuple[str, ...]:
        items = self.seq(value, path)
        if len(items) < minimum:
            raise self.fail(path, f"needs at least {minimum} entr{'y' if minimum == 1 else 'ies'}")
        out: list[str] = []
        for i, item in enumerate(items):
            name = self.symbol(item, _join(path, i))
            if name in out:
                raise self.fail(_join(path, i), f"{name!r} is listed twice")
            out.append(name)
        return tuple(out)

    # -- top level ------------------------------------------------------------

    def scenario(self, data: Any, default_name: str) -> Scenario:
        if data is None:
            raise self.fail("", "the file is empty")
        top = self.mapping(
            data,
            "",
            ("name", "description", "region", "vpcs", "security_groups", "databases", "caches",
             "connectors", "services", "secrets", "prefix_lists", "vpc_peerings", "proxies"),
            required=("vpcs",),
        )
        name = self.string(top.get("name"), "name", default=default_name)
        description = self.string(top.get("description"), "description", default="", allow_empty=True)
        region = self.string(top.get("region"), "region", default="us-east-1")
        if not REGION.match(region):
            raise self.fail("region", f"{region!r} is not an AWS region name like us-east-1")

        vpcs = self.vpcs(top["vpcs"], region)
        subnets = {s.name: s for v in vpcs for s in v.subnets}
        peerings = self.vpc_peerings(top.get("vpc_peerings"), vpcs)
        prefix_lists = self.prefix_lists(top.get("prefix_lists"))
        self.peered = {frozenset(p.vpcs) for p in peerings}
        self.prefix_list_names = {p.name for p in prefix_lists}
        groups = self.security_groups(top.get("security_groups"), vpcs)
        group_map = {g.name: g for g in groups}
        databases = self.databases(top.get("databases"), subnets, group_map)
        caches = self.caches(top.get("caches"), subnets, group_map)
        connectors = self.connectors(top.get("connectors"), subnets, group_map)
        proxies = self.proxies(top.get("proxies"), subnets, group_map, databases)
        self.proxy_names = {p.name for p in proxies} | {e.name for p in proxies for e in p.endpoints}
        secrets = self.secrets(top.get("secrets"), {d.id for d in databases}, {c.id for c in caches})
        services = self.services(top.get("services"), {c.name for c in connectors},
                                 {d.id for d in databases}, {c.id for c in caches}, {s.name: s for s in secrets})
        self.unique_store_ids(databases, caches)
        return Scenario(
            name=name,
            description=description,
            region=region,
            vpcs=vpcs,
            security_groups=groups,
            databases=databases,
            caches=caches,
            connectors=connectors,
            services=services,
            secrets=secrets,
            source=self.label,
            prefix_lists=prefix_lists,
            peerings=peerings,
            proxies=proxies,
        )

    # -- peerings, prefix lists, proxies ----------------------------------------------

    def vpc_peerings(self, value: Any, vpcs: tuple[Vpc, ...]) -> tuple[VpcPeering, ...]:
        names = {v.name: v for v in vpcs}
        out: list[VpcPeering] = []
        for i, item in enumerate(self.seq(value, "vpc_peerings")):
            path = _join("vpc_peerings", i)
            b = self.mapping(item, path, ("name", "vpcs"), required=("name", "vpcs"))
            name = self.symbol(b["name"], _join(path, "name"))
            if any(p.name == name for p in out):
                raise self.fail(_join(path, "name"), f"peering {name!r} is defined twice")
            pair = self.names(b["vpcs"], _join(path, "vpcs"), minimum=2)
            if len(pair) != 2:
                raise self.fail(_join(path, "vpcs"), "a peering joins exactly two VPCs")
            for j, vpc in enumerate(pair):
                if vpc not in names:
                    raise self.fail(_join(_join(path, "vpcs"), j), f"no vpc {vpc!r} (defined: {', '.join(names)})")
            a, b_ = (ipaddress.ip_network(names[v].cidr) for v in pair)
            if a.overlaps(b_):
                raise self.fail(_join(path, "vpcs"), f"{names[pair[0]].cidr} and {names[pair[1]].cidr} overlap: AWS peers only disjoint VPCs")
            if any(set(p.vpcs) == set(pair) for p in out):
                raise self.fail(_join(path, "vpcs"), f"vpcs {pair[0]!r} and {pair[1]!r} are already peered")
            out.append(VpcPeering(name, (pair[0], pair[1])))
        return tuple(out)

    def prefix_lists(self, value: Any) -> tuple[PrefixList, ...]:
        spec = self.mapping(value, "prefix_lists")
        out: list[PrefixList] = []
        for name, body in spec.items():
            path = _join("prefix_lists", name)
            self.symbol(name, path)
            b = self.mapping(body, path, ("address_family", "entries", "max_entries"), required=("entries",))
            family = self.choice(b.get("address_family"), _join(path, "address_family"), ("IPv4", "IPv6"), default="IPv4")
            entries = []
            for i, entry in enumerate(self.seq(b["entries"], _join(path, "entries"))):
                cidr = self.cidr(entry, _join(_join(path, "entries"), i), v6=family == "IPv6")
                if cidr in entries:
                    raise self.fail(_join(_join(path, "entries"), i), f"{cidr} is listed twice")
                entries.append(cidr)
            max_entries = self.integer(b.get("max_entries"), _join(path, "max_entries"), default=max(1, len(entries)), lo=1, hi=1000)
            if len(entries) > max_entries:
                raise self.fail(_join(path, "max_entries"), f"{len(entries)} entries do not fit in max_entries {max_entries}")
            out.append(PrefixList(name, family, tuple(entries), max_entries))
        return tuple(out)

    def proxies(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                databases: tuple[Database, ...]) -> tuple[Proxy, ...]:
        by_id = {d.id: d for d in databases}
        out: list[Proxy] = []
        for i, item in enumerate(self.seq(value, "proxies")):
            path = _join("proxies", i)
            b = self.mapping(item, path, ("name", "engine_family", "database", "subnets", "security_groups", "endpoints"),
                             required=("name", "database", "subnets", "security_groups"))
            name = self.string(b["name"], _join(path, "name"))
            if not RESOURCE_ID.match(name) or "--" in name or name.endswith("-"):
                raise self.fail(_join(path, "name"), f"{name!r} is not a valid DB proxy name")
            if any(p.name == name for p in out) or name in by_id:
                raise self.fail(_join(path, "name"), f"{name!r} is already used by a proxy or database")
            database = self.string(b["database"], _join(path, "database"))
            if database not in by_id:
                raise self.fail(_join(path, "database"), f"no database {database!r} (defined: {', '.join(by_id) or 'none'})")
            family = self.choice(b.get("engine_family"), _join(path, "engine_family"), tuple(PROXY_ENGINE_FAMILIES),
                                 default=next(f for f, engines in PROXY_ENGINE_FAMILIES.items() if by_id[database].engine in engines))
            if by_id[database].engine not in PROXY_ENGINE_FAMILIES[family]:
                raise self.fail(_join(path, "engine_family"), f"database {database!r} is {by_id[database].engine}, not {family}")
            names, sgs, _ = self.placement(b, path, subnets, groups, min_subnets=2)
            taken = {p.name for p in out} | {e.name for p in out for e in p.endpoints} | set(by_id) | {name}
            endpoints = self.proxy_endpoints(b.get("endpoints"), _join(path, "endpoints"), subnets, groups, taken)
            out.append(Proxy(name, family, database, names, sgs, endpoints))
        return tuple(out)

    def proxy_endpoints(self, value: Any, path: str, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                        taken: set[str]) -> tuple[ProxyEndpoint, ...]:
        out: list[ProxyEndpoint] = []
        for i, item in enumerate(self.seq(value, path)):
            ep = _join(path, i)
            b = self.mapping(item, ep, ("name", "subnets", "security_groups", "target_role"),
                             required=("name", "subnets", "security_groups"))
            name = self.string(b["name"], _join(ep, "name"))
            if not RESOURCE_ID.match(name) or "--" in name or name.endswith("-") or name == "default":
                raise self.fail(_join(ep, "name"), f"{name!r} is not a valid DB proxy endpoint name")
            if name in taken or any(e.name == name for e in out):
                raise self.fail(_join(ep, "name"), f"{name!r} is already used by a proxy, endpoint or database")
            names, sgs, _ = self.placement(b, ep, subnets, groups, min_subnets=2)
            role = self.choice(b.get("target_role"), _join(ep, "target_role"), ("READ_WRITE", "READ_ONLY"), default="READ_WRITE")
            out.append(ProxyEndpoint(name, names, sgs, role))
        return tuple(out)

    def unique_store_ids(self, databases: tuple[Database, ...], caches: tuple[Cache, ...]) -> None:
        db_ids = {d.id for d in databases}
        for i, cache in enumerate(caches):
            if cache.id in db_ids:
                raise self.fail(_join(_join("caches", i), "id"), f"{cache.id!r} is also a database id")

    # -- network ----------------------------------------------------------------

    def vpcs(self, value: Any, region: str) -> tuple[Vpc, ...]:
        spec = self.mapping(value, "vpcs")
        if not spec:
            raise self.fail("vpcs", "needs at least one VPC")
        vpcs: list[Vpc] = []
        seen_subnets: dict[str, str] = {}
        for vpc_name, body in spec.items():
            path = _join("vpcs", vpc_name)
            self.symbol(vpc_name, path)
            b = self.mapping(
                body, path,
                ("cidr", "dns_support", "dns_hostnames", "subnets", "route_tables", "internet_gateway",
                 "nat_gateways", "network_acls"),
                required=("cidr", "subnets"),
            )
            cidr = self.cidr(b["cidr"], _join(path, "cidr"))
            net = ipaddress.ip_network(cidr)
            if not 16 <= net.prefixlen <= 28:
                raise self.fail(_join(path, "cidr"), f"a VPC block must be /16 to /28, got /{net.prefixlen}")
            igw = b.get("internet_gateway")
            igw = self.symbol(igw, _join(path, "internet_gateway")) if igw is not None else None

            subnet_specs = self.mapping(b["subnets"], _join(path, "subnets"))
            if not subnet_specs:
                raise self.fail(_join(path, "subnets"), "needs at least one subnet")
            rt_specs = self.mapping(b.get("route_tables"), _join(path, "route_tables"))
            nat_specs = self.mapping(b.get("nat_gateways"), _join(path, "nat_gateways"))

            subnets: list[Subnet] = []
            for sn_name, sn_body in subnet_specs.items():
                sp = _join(_join(path, "subnets"), sn_name)
                self.symbol(sn_name, sp)
                if sn_name in seen_subnets:
                    raise self.fail(sp, f"subnet name {sn_name!r} is already used in vpc {seen_subnets[sn_name]!r}")
                seen_subnets[sn_name] = vpc_name
                sb = self.mapping(sn_body, sp, ("cidr", "az", "route_table"), required=("cidr",))
                sn_cidr = self.cidr(sb["cidr"], _join(sp, "cidr"))
                sn_net = ipaddress.ip_network(sn_cidr)
                if not sn_net.subnet_of(net):  # type: ignore[arg-type]
                    raise self.fail(_join(sp, "cidr"), f"{sn_cidr} is not inside the VPC block {cidr}")
                if not 16 <= sn_net.prefixlen <= 28:
                    raise self.fail(_join(sp, "cidr"), f"a subnet block must be /16 to /28, got /{sn_net.prefixlen}")
                for other in subnets:
                    if sn_net.overlaps(ipaddress.ip_network(other.cidr)):
                        raise self.fail(_join(sp, "cidr"), f"{sn_cidr} overlaps subnet {other.name!r} ({other.cidr})")
                az = self.string(sb.get("az"), _join(sp, "az"), default=f"{region}a")
                if not re.match(rf"^{re.escape(region)}[a-z]$", az):
                    raise self.fail(_join(sp, "az"), f"{az!r} is not an availability zone of {region}")
                rt = sb.get("route_table")
                if rt is not None:
                    rt = self.symbol(rt, _join(sp, "route_table"))
                    if rt not in rt_specs:
                        raise self.fail(_join(sp, "route_table"), f"no route table {rt!r} in vpc {vpc_name!r}")
                subnets.append(Subnet(sn_name, vpc_name, sn_cidr, az, rt))
            subnet_names = {s.name for s in subnets}

            nats: list[NatGateway] = []
            for nat_name, nat_body in nat_specs.items():
                np_ = _join(_join(path, "nat_gateways"), nat_name)
                self.symbol(nat_name, np_)
                nb = self.mapping(nat_body, np_, ("subnet", "connectivity", "state"), required=("subnet",))
                sn = self.symbol(nb["subnet"], _join(np_, "subnet"))
                if sn not in subnet_names:
                    raise self.fail(_join(np_, "subnet"), f"no subnet {sn!r} in vpc {vpc_name!r}")
                nats.append(NatGateway(
                    nat_name, sn,
                    self.choice(nb.get("connectivity"), _join(np_, "connectivity"), ("public", "private"), default="public"),
                    self.choice(nb.get("state"), _join(np_, "state"), ("available", "deleted"), default="available"),
                ))
            nat_names = {n.name for n in nats}

            tables: list[RouteTable] = []
            for rt_name, rt_body in rt_specs.items():
                rp = _join(_join(path, "route_tables"), rt_name)
                self.symbol(rt_name, rp)
                rb = self.mapping(rt_body, rp, ("routes",))
                routes: list[Route] = []
                for i, route in enumerate(self.seq(rb.get("routes"), _join(rp, "routes"))):
                    ip = _join(_join(rp, "routes"), i)
                    r = self.mapping(route, ip, ("destination", "nat_gateway", "internet_gateway"),
                                     required=("destination",))
                    dest = self.cidr(r["destination"], _join(ip, "destination"))
                    targets = [k for k in ("nat_gateway", "internet_gateway") if r.get(k) is not None]
                    if len(targets) != 1:
                        raise self.fail(ip, "needs exactly one target: nat_gateway or internet_gateway")
                    target = self.symbol(r[targets[0]], _join(ip, targets[0]))
                    if targets[0] == "nat_gateway" and target not in nat_names:
                        raise self.fail(_join(ip, "nat_gateway"), f"no NAT gateway {target!r} in vpc {vpc_name!r}")
                    if targets[0] == "internet_gateway" and target != igw:
                        raise self.fail(_join(ip, "internet_gateway"),
                                        f"vpc {vpc_name!r} has no internet gateway {target!r}")
                    if any(x.destination == dest for x in routes):
                        raise self.fail(_join(ip, "destination"), f"a route to {dest} is already listed")
                    routes.append(Route(dest, **{targets[0]: target}))
                tables.append(RouteTable(rt_name, tuple(routes)))

            acls = self.network_acls(b.get("network_acls"), _join(path, "network_acls"), vpc_name, subnet_names)
            vpcs.append(Vpc(
                name=vpc_name,
                cidr=cidr,
                dns_support=self.boolean(b.get("dns_support"), _join(path, "dns_support"), True),
                dns_hostnames=self.boolean(b.get("dns_hostnames"), _join(path, "dns_hostnames"), True),
                subnets=tuple(subnets),
                route_tables=tuple(tables),
                internet_gateway=igw,
                nat_gateways=tuple(nats),
                network_acls=acls,
            ))
        return tuple(vpcs)

    def network_acls(self, value: Any, path: str, vpc_name: str, subnet_names: set[str]) -> tuple[NetworkAcl, ...]:
        spec = self.mapping(value, path)
        acls: list[NetworkAcl] = []
        claimed: dict[str, str] = {}
        for acl_name, body in spec.items():
            ap = _join(path, acl_name)
            self.symbol(acl_name, ap)
            b = self.mapping(body, ap, ("subnets", "entries"))
            subnets = self.names(b.get("subnets"), _join(ap, "subnets"), minimum=0)
            for i, sn in enumerate(subnets):
                if sn not in subnet_names:
                    raise self.fail(_join(_join(ap, "subnets"), i), f"no subnet {sn!r} in vpc {vpc_name!r}")
                if sn in claimed:
                    raise self.fail(_join(_join(ap, "subnets"), i),
                                    f"subnet {sn!r} is already associated with network ACL {claimed[sn]!r}")
                claimed[sn] = acl_name
            if acl_name == "default" and subnets:
                raise self.fail(_join(ap, "subnets"),
                                "the default network ACL holds every subnet not listed elsewhere; list no subnets")
            entries: list[NaclEntry] = []
            for i, entry in enumerate(self.seq(b.get("entries"), _join(ap, "entries"))):
                ep = _join(_join(ap, "entries"), i)
                e = self.mapping(entry, ep, ("rule", "action", "egress", "protocol", "port", "from_port",
                                             "to_port", "cidr", "cidr_ipv6"), required=("rule", "action", "protocol"))
                rule = self.integer(e["rule"], _join(ep, "rule"), lo=1, hi=32766)
                action = self.choice(e["action"], _join(ep, "action"), ("allow", "deny"))
                egress = self.boolean(e.get("egress"), _join(ep, "egress"), False)
                protocol = self.nacl_protocol(e["protocol"], _join(ep, "protocol"))
                from_port, to_port = self.ports(e, ep, protocol in ("6", "17"))
                if e.get("cidr") is not None and e.get("cidr_ipv6") is not None:
                    raise self.fail(_join(ep, "cidr_ipv6"), "give either cidr or cidr_ipv6, not both")
                if e.get("cidr_ipv6") is not None:
                    cidr = self.cidr(e["cidr_ipv6"], _join(ep, "cidr_ipv6"), v6=True)
                else:
                    cidr = self.cidr(e.get("cidr", "0.0.0.0/0"), _join(ep, "cidr"))
                if acl_name == "default" and rule == 100:
                    raise self.fail(_join(ep, "rule"), "rule 100 of the default network ACL is AWS's allow-all entry")
                if any(x.rule == rule and x.egress == egress for x in entries):
                    raise self.fail(_join(ep, "rule"),
                                    f"rule {rule} is already used for {'egress' if egress else 'ingress'}")
                entries.append(NaclEntry(rule, action, egress, protocol, from_port, to_port, cidr))
            acls.append(NetworkAcl(acl_name, subnets, tuple(entries)))
        return tuple(acls)

    def nacl_protocol(self, value: Any, path: str) -> str:
        names = {"tcp": "6", "udp": "17", "icmp": "1", "-1": "-1", "all": "-1"}
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected tcp, udp, icmp, -1 or a protocol number, got {_kind(value)}")
        text = str(value).lower()
        if text in names:
            return names[text]
        if text.isdigit() and 0 <= int(text) <= 255:
            return str(int(text))
        raise self.fail(path, f"expected tcp, udp, icmp, -1 or a protocol number, got {value!r}")

    def ports(self, spec: dict, path: str, needs_ports: bool) -> tuple[int | None, int | None]:
        has_port = spec.get("port") is not None
        has_range = spec.get("from_port") is not None or spec.get("to_port") is not None
        if has_port and has_range:
            raise self.fail(_join(path, "port"), "give either port or from_port/to_port, not both")
        if not needs_ports:
            if has_port or has_range:
                key = "port" if has_port else "from_port"
                raise self.fail(_join(path, key), "ports apply only to tcp and udp")
            return None, None
        if has_port:
            p = self.integer(spec["port"], _join(path, "port"), lo=0, hi=65535)
            return p, p
        if not has_range:
            raise self.fail(path, "tcp and udp need port, or from_port and to_port")
        lo = self.integer(spec.get("from_port"), _join(path, "from_port"), lo=0, hi=65535)
        hi = self.integer(spec.get("to_port"), _join(path, "to_port"), lo=0, hi=65535)
        if lo > hi:
            raise self.fail(_join(path, "to_port"), f"to_port {hi} is below from_port {lo}")
        return lo, hi

    # -- security groups ----------------------------------------------------------

    def security_groups(self, value: Any, vpcs: tuple[Vpc, ...]) -> tuple[SecurityGroup, ...]:
        spec = dict(self.mapping(value, "security_groups"))
        vpc_names = [v.name for v in vpcs]
        # Pass 1: names, VPCs and real group names, so that rules may reference any group.
        heads: dict[str, tuple[str, str, str, dict]] = {}
        for name, body in spec.items():
            path = _join("security_groups", name)
            self.symbol(name, path)
            b = self.mapping(body, path, ("vpc", "group_name", "description", "ingress", "egress"))
            vpc = b.get("vpc")
            vpc = self.symbol(vpc, _join(path, "vpc")) if vpc is not None else vpc_names[0]
            if vpc not in vpc_names:
                raise self.fail(_join(path, "vpc"), f"no vpc {vpc!r} (defined: {', '.join(vpc_names)})")
            group_name = self.string(b.get("group_name"), _join(path, "group_name"),
                                     default="default" if name == "default" else name)
            for other, (ovpc, oname, _, _) in heads.items():
                if ovpc == vpc and oname == group_name:
                    raise self.fail(_join(path, "group_name"),
                                    f"group {other!r} already has the name {group_name!r} in vpc {vpc!r}")
            heads[name] = (vpc, group_name, "", b)
        if "default" not in heads:
            heads["default"] = (vpc_names[0], "default", "", {})

        groups: list[SecurityGroup] = []
        for name, (vpc, group_name, _, b) in heads.items():
            path = _join("security_groups", name)
            is_default = group_name == "default"
            if is_default and b.get("description") is not None:
                raise self.fail(_join(path, "description"), "the default group's description is AWS's own")
            description = self.string(b.get("description"), _join(path, "description"),
                                      default="default VPC security group" if is_default else group_name)
            ingress = self.sg_rules(b.get("ingress"), _join(path, "ingress"), vpc, heads, "source_group")
            egress = None
            if "egress" in b:
                egress = self.sg_rules(b.get("egress"), _join(path, "egress"), vpc, heads, "destination_group")
            groups.append(SecurityGroup(name, vpc, group_name, description, ingress, egress))
        return tuple(groups)

    def sg_rules(self, value: Any, path: str, vpc: str, heads: dict, alias: str) -> tuple[SgRule, ...]:
        rules: list[SgRule] = []
        for i, item in enumerate(self.seq(value, path)):
            rp = _join(path, i)
            r = self.mapping(item, rp, ("protocol", "port", "from_port", "to_port", "cidr", "cidr_ipv6",
                                        "group", alias, "prefix_list", "peer_group", "foreign_group",
                                        "foreign_prefix_list", "description"), required=("protocol",))
            protocol = self.sg_protocol(r["protocol"], _join(rp, "protocol"))
            from_port, to_port = self.ports(r, rp, protocol in ("tcp", "udp"))
            if protocol == "icmp":
                from_port, to_port = -1, -1
            sources = [k for k in ("cidr", "cidr_ipv6", "group", alias, "prefix_list", "peer_group", "foreign_group",
                                   "foreign_prefix_list") if r.get(k) is not None]
            if len(sources) != 1:
                raise self.fail(rp, f"needs exactly one of cidr, cidr_ipv6, {alias}, prefix_list, peer_group, "
                                    "foreign_group, foreign_prefix_list (one source type per rule)")
            key = sources[0]
            extra = self.sg_rule_source(r, rp, key, vpc, heads)
            cidr = self.cidr(r[key], _join(rp, key)) if key == "cidr" else None
            cidr6 = self.cidr(r[key], _join(rp, key), v6=True) if key == "cidr_ipv6" else None
            group = None
            if key in ("group", alias):
                group = self.symbol(r[key], _join(rp, key))
                if group not in heads:
                    known = ", ".join(sorted(heads))
                    raise self.fail(_join(rp, key), f"no security group {group!r} (defined: {known})")
                if heads[group][0] != vpc:
                    raise self.fail(_join(rp, key),
                                    f"security group {group!r} is in vpc {heads[group][0]!r}, not {vpc!r}")
            description = self.opt_string(r.get("description"), _join(rp, "description"))
            rule = SgRule(protocol, from_port, to_port, cidr, cidr6, group, description, **extra)
            if rule in rules:
                raise self.fail(rp, "the same rule is listed twice")
            rules.append(rule)
        return tuple(rules)

    def sg_rule_source(self, r: dict, rp: str, key: str, vpc: str, heads: dict) -> dict[str, str]:
        """The prefix-list, peered-group and foreign-group sources of a rule (SgRule's later fields)."""
        if key == "prefix_list":
            name = self.symbol(r[key], _join(rp, key))
            if name not in getattr(self, "prefix_list_names", set()):
                known = ", ".join(sorted(getattr(self, "prefix_list_names", set()))) or "none"
                raise self.fail(_join(rp, key), f"no prefix list {name!r} (defined: {known})")
            return {"prefix_list": name}
        if key == "peer_group":
            name = self.symbol(r[key], _join(rp, key))
            if name not in heads:
                raise self.fail(_join(rp, key), f"no security group {name!r} (defined: {', '.join(sorted(heads))})")
            if heads[name][0] == vpc:
                raise self.fail(_join(rp, key), f"security group {name!r} is in this rule's vpc {vpc!r}: name it with group")
            if frozenset((vpc, heads[name][0])) not in getattr(self, "peered", set()):
                raise self.fail(_join(rp, key), f"security group {name!r} is in vpc {heads[name][0]!r}, "
                                                f"which no vpc_peerings entry joins to {vpc!r}")
            return {"peer_group": name}
        if key == "foreign_group":
            text = self.string(r[key], _join(rp, key))
            if not FOREIGN_GROUP.match(text):
                raise self.fail(_join(rp, key), f"expected <12-digit account>/<sg-id>, got {text!r}")
            return {"foreign_group": text}
        if key == "foreign_prefix_list":
            text = self.string(r[key], _join(rp, key))
            if not FOREIGN_PREFIX_LIST.match(text):
                raise self.fail(_join(rp, key), f"expected a prefix list id pl-<8-17 hex digits>, got {text!r}")
            return {"foreign_prefix_list": text}
        return {}

    def sg_protocol(self, value: Any, path: str) -> str:
        names = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                 "-1": "-1", "all": "-1"}
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected tcp, udp, icmp or -1, got {_kind(value)}")
        text = str(value).lower()
        if text not in names:
            raise self.fail(path, f"expected tcp, udp, icmp or -1, got {value!r}")
        return names[text]

    # -- data stores ----------------------------------------------------------------

    def placement(self, b: dict, path: str, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                  *, min_subnets: int = 1) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        names = self.names(b.get("subnets"), _join(path, "subnets"), minimum=min_subnets)
        vpc = None
        for i, sn in enumerate(names):
            if sn not in subnets:
                raise self.fail(_join(_join(path, "subnets"), i),
                                f"no subnet {sn!r} (defined: {', '.join(sorted(subnets))})")
            if vpc is None:
                vpc = subnets[sn].vpc
            elif subnets[sn].vpc != vpc:
                raise self.fail(_join(_join(path, "subnets"), i),
                                f"subnet {sn!r} is in vpc {subnets[sn].vpc!r}, the others in {vpc!r}")
        sgs = self.names(b.get("security_groups"), _join(path, "security_groups"))
        for i, sg in enumerate(sgs):
            if sg not in groups:
                raise self.fail(_join(_join(path, "security_groups"), i),
                                f"no security group {sg!r} (defined: {', '.join(sorted(groups))})")
            if groups[sg].vpc != vpc:
                raise self.fail(_join(_join(path, "security_groups"), i),
                                f"security group {sg!r} is in vpc {groups[sg].vpc!r}, the subnets in {vpc!r}")
        assert vpc is not None
        return names, sgs, vpc

    def databases(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Database, ...]:
        out: list[Database] = []
        for i, item in enumerate(self.seq(value, "databases")):
            path = _join("databases", i)
            b = self.mapping(item, path, ("id", "engine", "port", "subnets", "security_groups",
                                          "publicly_accessible", "master_username", "master_password",
                                          "db_name", "instance_class", "subnet_group"),
                             required=("id", "subnets", "security_groups"))
            ident = self.string(b["id"], _join(path, "id"))
            if not RESOURCE_ID.match(ident) or "--" in ident or ident.endswith("-"):
                raise self.fail(_join(path, "id"), f"{ident!r} is not a valid DB instance identifier")
            if any(d.id == ident for d in out):
                raise self.fail(_join(path, "id"), f"database {ident!r} is defined twice")
            engine = self.choice(b.get("engine"), _join(path, "engine"), tuple(DB_ENGINES), default="postgres")
            port = self.integer(b.get("port"), _join(path, "port"), default=DB_ENGINES[engine], lo=1150, hi=65535)
            names, sgs, _ = self.placement(b, path, subnets, groups)
            password = self.string(b.get("master_password"), _join(path, "master_password"), default="sandbox-pass")
            if len(password) < 8:
                raise self.fail(_join(path, "master_password"), "must be at least 8 characters")
            out.append(Database(
                id=ident,
                engine=engine,
                port=port,
                subnets=names,
                security_groups=sgs,
                publicly_accessible=self.boolean(b.get("publicly_accessible"), _join(path, "publicly_accessible"), False),
                master_username=self.string(b.get("master_username"), _join(path, "master_username"), default="dbadmin"),
                master_password=password,
                db_name=self.opt_string(b.get("db_name"), _join(path, "db_name")),
                instance_class=self.string(b.get("instance_class"), _join(path, "instance_class"), default="db.t3.micro"),
                subnet_group=self.symbol(b.get("subnet_group", f"{ident}-subnets"), _join(path, "subnet_group")),
            ))
        return tuple(out)

    def caches(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Cache, ...]:
        out: list[Cache] = []
        for i, item in enumerate(self.seq(value, "caches")):
            path = _join("caches", i)
            b = self.mapping(item, path, ("id", "engine", "port", "subnets", "security_groups",
                                          "transit_encryption", "auth_token", "node_type", "subnet_group",
                                          "replicas", "mode"),
                             required=("id", "subnets", "security_groups"))
            mode = self.choice(b.get("mode"), _join(path, "mode"), CACHE_MODES, default="replication-group")
            self.cache_mode_fields(b, path, mode)
            ident = self.string(b["id"], _join(path, "id"))
            if not RESOURCE_ID.match(ident) or len(ident) > 40 or "--" in ident or ident.endswith("-"):
                raise self.fail(_join(path, "id"), f"{ident!r} is not a valid replication group id")
            if any(c.id == ident for c in out):
                raise self.fail(_join(path, "id"), f"cache {ident!r} is defined twice")
            names, sgs, _ = self.placement(b, path, subnets, groups)
            transit = self.boolean(b.get("transit_encryption"), _join(path, "transit_encryption"), mode == "serverless")
            token = self.opt_string(b.get("auth_token"), _join(path, "auth_token"))
            if token is not None and not transit:
                raise self.fail(_join(path, "auth_token"), "an AUTH token needs transit_encryption: true")
            if token is not None and not 16 <= len(token) <= 128:
                raise self.fail(_join(path, "auth_token"), "must be 16 to 128 characters")
            subnet_group = b.get("subnet_group", f"{ident}-subnets")
            subnet_group = self.symbol(subnet_group, _join(path, "subnet_group"))
            for other in out:
                if other.subnet_group == subnet_group and set(other.subnets) != set(names):
                    raise self.fail(_join(path, "subnet_group"),
                                    f"subnet group {subnet_group!r} is already defined with other subnets")
            out.append(Cache(
                id=ident,
                engine=self.choice(b.get("engine"), _join(path, "engine"), CACHE_ENGINES, default="redis"),
                port=self.integer(b.get("port"), _join(path, "port"), default=6379, lo=1, hi=65535),
                subnets=names,
                security_groups=sgs,
                transit_encryption=transit,
                auth_token=token,
                node_type=self.string(b.get("node_type"), _join(path, "node_type"), default="cache.t3.micro"),
                subnet_group=subnet_group,
                replicas=self.integer(b.get("replicas"), _join(path, "replicas"), default=0, lo=0, hi=5),
                mode=mode,
            ))
        return tuple(out)

    def cache_mode_fields(self, b: dict, path: str, mode: str) -> None:
        """What a standalone cluster or a serverless cache cannot have."""
        if mode != "replication-group" and b.get("replicas"):
            raise self.fail(_join(path, "replicas"), f"a {mode} cache has no read replicas")
        if mode == "serverless":
            for key in ("port", "node_type", "subnet_group", "auth_token"):
                if b.get(key) is not None:
                    raise self.fail(_join(path, key), f"a serverless cache has no {key} (port 6379, TLS, access by user group)")
            if b.get("transit_encryption") is False:
                raise self.fail(_join(path, "transit_encryption"), "a serverless cache accepts TLS connections only")

    def connectors(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Connector, ...]:
        out: list[Connector] = []
        for i, item in enumerate(self.seq(value, "connectors")):
            path = _join("connectors", i)
            b = self.mapping(item, path, ("name", "subnets", "security_groups", "status"),
                             required=("name", "subnets", "security_groups"))
            name = self.string(b["name"], _join(path, "name"))
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9-_]{3,39}$", name):
                raise self.fail(_join(path, "name"), f"{name!r} is not a valid VPC connector name (4-40 characters)")
            if any(c.name == name for c in out):
                raise self.fail(_join(path, "name"), f"connector {name!r} is defined twice")
            names, sgs, _ = self.placement(b, path, subnets, groups)
            status = self.choice(b.get("status"), _join(path, "status"), ("ACTIVE", "INACTIVE"), default="ACTIVE")
            out.append(Connector(name, names, sgs, status))
        return tuple(out)

    # -- secrets (Secrets Manager, SSM Parameter Store) -----------------------------

    def secrets(self, value: Any, databases: set[str], caches: set[str]) -> tuple[Secret, ...]:
        import json

        out: list[Secret] = []
        for i, item in enumerate(self.seq(value, "secrets")):
            path = _join("secrets", i)
            b = self.mapping(item, path, ("name", "store", "value"), required=("name", "value"))
            name = self.string(b["name"], _join(path, "name"))
            store = self.choice(b.get("store"), _join(path, "store"), SECRET_STORES, default="secretsmanager")
            pattern = r"^[A-Za-z0-9/_+=.@-]{1,512}$" if store == "secretsmanager" else r"^/?[A-Za-z0-9_.\-/]{1,1011}$"
            if not re.match(pattern, name):
                raise self.fail(_join(path, "name"), f"{name!r} is not a valid {store} name")
            if any(s.name == name for s in out):
                raise self.fail(_join(path, "name"), f"secret {name!r} is defined twice")
            raw = b["value"]
            vp = _join(path, "value")
            if isinstance(raw, dict):  # a JSON secret: {"url": "...", "password": "..."}
                fields = self.mapping(raw, vp)
                for key, text in fields.items():
                    self.string(text, _join(vp, key), allow_empty=True)
                    self.placeholders(text, _join(vp, key), databases, caches)
                text = json.dumps(fields)
            else:
                text = self.string(raw, vp)
                self.placeholders(text, vp, databases, caches)
            out.append(Secret(name, store, text))
        return tuple(out)

    def secret_refs(self, value: Any, path: str, secrets: dict[str, Secret]) -> tuple[tuple[str, SecretRef], ...]:
        spec = self.mapping(value, path)
        out: list[tuple[str, SecretRef]] = []
        for var, raw in spec.items():
            vp = _join(path, var)
            if not ENV_NAME.match(var):
                raise self.fail(vp, "not a valid environment variable name")
            if var.startswith("AWSAPPRUNNER"):
                raise self.fail(vp, "names starting with AWSAPPRUNNER are reserved by App Runner")
            if isinstance(raw, str) and raw.startswith("arn:"):
                out.append((var, SecretRef(None, literal=raw)))  # as written: it may name nothing
                continue
            ref = self.mapping({"secret": raw} if isinstance(raw, str) else raw, vp, ("secret", "json_key", "by"),
                               required=("secret",))
            name = self.string(ref["secret"], _join(vp, "secret"))
            if name not in secrets:
                known = ", ".join(sorted(secrets)) or "none"
                raise self.fail(_join(vp, "secret"), f"no secret {name!r} (defined: {known})")
            json_key = self.opt_string(ref.get("json_key"), _join(vp, "json_key"))
            by = self.choice(ref.get("by"), _join(vp, "by"), ("arn", "name"), default="arn")
            if json_key is not None and secrets[name].store != "secretsmanager":
                raise self.fail(_join(vp, "json_key"), "only a Secrets Manager secret has JSON keys")
            if by == "name" and secrets[name].store != "ssm":
                raise self.fail(_join(vp, "by"), "App Runner takes a Secrets Manager secret by full ARN only")
            out.append((var, SecretRef(name, json_key=json_key, by_name=by == "name")))
        return tuple(out)

    def code_source(self, value: Any, path: str) -> CodeSource:
        b = self.mapping(value, path, ("url", "branch", "runtime", "configuration_source", "build_command",
                                       "start_command"), required=("url",))
        url = self.string(b["url"], _join(path, "url"))
        if not url.startswith("https://"):
            raise self.fail(_join(path, "url"), f"{url!r} is not an https:// repository URL")
        return CodeSource(
            url=url,
            branch=self.string(b.get("branch"), _join(path, "branch"), default="main"),
            runtime=self.choice(b.get("runtime"), _join(path, "runtime"), CODE_RUNTIMES, default="PYTHON_311"),
            configuration_source=self.choice(b.get("configuration_source"), _join(path, "configuration_source"),
                                             ("API", "REPOSITORY"), default="API"),
            build_command=self.opt_string(b.get("build_command"), _join(path, "build_command")),
            start_command=self.opt_string(b.get("start_command"), _join(path, "start_command")),
        )

    # -- services -----------------------------------------------------------------

    def services(self, value: Any, connectors: set[str], databases: set[str], caches: set[str],
                 secrets: dict[str, Secret] | None = None) -> tuple[Service, ...]:
        out: list[Service] = []
        for i, item in enumerate(self.seq(value, "services")):
            path = _join("services", i)
            b = self.mapping(item, path, ("name", "connector", "egress", "image", "code_repository", "port", "status",
                                          "operations", "env", "secrets", "health_check", "app", "deploy_seconds",
                                          "logs", "cpu", "memory", "public"),
                             required=("name",))
            name = self.string(b["name"], _join(path, "name"))
            if not SERVICE_NAME.match(name):
                raise self.fail(_join(path, "name"), f"{name!r} is not a valid App Runner service name (4-40 characters)")
            if any(s.name == name for s in out):
                raise self.fail(_join(path, "name"), f"service {name!r} is defined twice")
            connector = b.get("connector")
            if connector is not None:
                connector = self.string(connector, _join(path, "connector"))
                if connector not in connectors:
                    known = ", ".join(sorted(connectors)) or "none"
                    raise self.fail(_join(path, "connector"), f"no connector {connector!r} (defined: {known})")
            egress = self.choice(b.get("egress"), _join(path, "egress"), ("DEFAULT", "VPC"),
                                 default="VPC" if connector else "DEFAULT")
            if egress == "VPC" and connector is None:
                raise self.fail(_join(path, "egress"), "VPC egress needs a connector")
            code = None
            if b.get("code_repository") is not None:
                if b.get("image") is not None:
                    raise self.fail(_join(path, "code_repository"), "a service runs an image or a code repository, not both")
                code = self.code_source(b["code_repository"], _join(path, "code_repository"))
                image = code.url
            else:
                image = self.string(b.get("image"), _join(path, "image"), default="public.ecr.aws/sandbox/app:latest")
                if not (image.startswith("public.ecr.aws/")
                        or re.match(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/", image)):
                    raise self.fail(_join(path, "image"), f"{image!r} is not an ECR or ECR Public image")
            secret_refs = self.secret_refs(b.get("secrets"), _join(path, "secrets"), secrets or {})
            env_names = {str(k) for k in self.mapping(b.get("env"), _join(path, "env"))}
            for var, _ in secret_refs:
                if var in env_names:
                    raise self.fail(_join(_join(path, "secrets"), var), "also set in env: a variable comes from one place")
            port = self.port_string(b.get("port"), _join(path, "port"), "8080")
            status, operations = self.operations(b, path)
            env = self.env(b.get("env"), _join(path, "env"), databases, caches)
            health = self.health_check(b.get("health_check"), _join(path, "health_check"))
            app = self.app(b.get("app"), _join(path, "app"), port)
            for other in out:
                if other.image == image and other.app != app:
                    raise self.fail(_join(path, "image"), f"service {other.name!r} runs the same image with a "
                                                          "different app; give each app its own image")
            logs = self.mapping(b.get("logs"), _join(path, "logs"), ("service", "application"))
            service_logs = self.lines(logs.get("service"), _join(_join(path, "logs"), "service"), databases, caches)
            app_logs = self.lines(logs.get("application"), _join(_join(path, "logs"), "application"), databases, caches)
            cpu = self.port_string(b.get("cpu"), _join(path, "cpu"), "1024")
            if cpu not in ("256", "512", "1024", "2048", "4096"):
                raise self.fail(_join(path, "cpu"), "must be one of 256, 512, 1024, 2048, 4096")
            memory = self.port_string(b.get("memory"), _join(path, "memory"), "2048")
            if memory not in ("512", "1024", "2048", "3072", "4096", "6144", "8192", "10240", "12288"):
                raise self.fail(_join(path, "memory"), "must be a valid App Runner memory size in MB, e.g. 2048")
            out.append(Service(
                name=name,
                connector=connector,
                image=image,
                port=port,
                status=status,
                operations=operations,
                env=env,
                health_check=health,
                app=app,
                deploy_seconds=self.number(b.get("deploy_seconds"), _join(path, "deploy_seconds"), 20.0),
                service_logs=service_logs,
                application_logs=app_logs,
                cpu=cpu,
                memory=memory,
                public=self.boolean(b.get("public"), _join(path, "public"), True),
                egress=egress,
                secrets=secret_refs,
                code=code,
            ))
        return tuple(out)

    def operations(self, b: dict, path: str) -> tuple[str, tuple[Operation, ...]]:
        status = b.get("status")
        if status is not None:
            status = self.choice(status, _join(path, "status"), SERVICE_STATUSES)
        ops: list[Operation] = []
        op_path = _join(path, "operations")
        for i, item in enumerate(self.seq(b.get("operations"), op_path)):
            ip = _join(op_path, i)
            o = self.mapping(item, ip, ("type", "status"), required=("type", "status"))
            ops.append(Operation(
                self.choice(o["type"], _join(ip, "type"), OPERATION_TYPES),
                self.choice(o["status"], _join(ip, "status"), OPERATION_STATUSES),
            ))
        if not ops:
            synth = {
                None: [("CREATE_SERVICE", "SUCCEEDED")],
                "RUNNING": [("CREATE_SERVICE", "SUCCEEDED")],
                "CREATE_FAILED": [("CREATE_SERVICE", "FAILED")],
                "OPERATION_IN_PROGRESS": [("CREATE_SERVICE", "IN_PROGRESS")],
                "PAUSED": [("CREATE_SERVICE", "SUCCEEDED"), ("PAUSE_SERVICE", "SUCCEEDED")],
                "DELETE_FAILED": [("CREATE_SERVICE", "SUCCEEDED"), ("DELETE_SERVICE", "FAILED")],
            }[status]
            ops = [Operation(t, s) for t, s in synth]
        if ops[0].type != "CREATE_SERVICE":
            raise self.fail(_join(_join(op_path, 0), "type"), "a service's first operation is CREATE_SERVICE (list oldest first)")
        for i, op in enumerate(ops[1:], start=1):
            if op.type == "CREATE_SERVICE":
                raise self.fail(_join(_join(op_path, i), "type"), "only the first operation can be CREATE_SERVICE")
        for i, op in enumerate(ops[:-1]):
            if op.status in IN_FLIGHT:
                raise self.fail(_join(_join(op_path, i), "status"),
                                f"{op.status}: only the newest (last) operation can still be in flight")
        for i, op in enumerate(ops):
            if op.type == "DELETE_SERVICE" and op.status == "SUCCEEDED":
                raise self.fail(_join(_join(op_path, i), "status"),
                                "a deleted service is gone (ListServices omits it): leave the service out")
            if op.type == "DELETE_SERVICE" and op.status not in ("FAILED", *IN_FLIGHT):
                raise self.fail(_join(_join(op_path, i), "status"), "a deletion either fails or is in flight")
            after_delete = [o for o in ops[i + 1:] if o.type != "DELETE_SERVICE"]
            if op.type == "DELETE_SERVICE" and after_delete:
                raise self.fail(_join(_join(op_path, i + 1), "type"),
                                "after a deletion only DELETE_SERVICE again (UpdateService is refused)")
        last = ops[-1]
        if last.status in IN_FLIGHT:
            if status is None:
                status = "OPERATION_IN_PROGRESS"
            elif status != "OPERATION_IN_PROGRESS":
                raise self.fail(_join(path, "status"),
                                f"must be OPERATION_IN_PROGRESS while operation {last.type} is {last.status}")
            if last.status == "ROLLBACK_IN_PROGRESS" and last.type not in ("START_DEPLOYMENT", "UPDATE_SERVICE"):
                raise self.fail(_join(_join(op_path, len(ops) - 1), "status"),
                                "only START_DEPLOYMENT and UPDATE_SERVICE roll back")
        else:
            derived = status_after(ops)
            if status is None:
                status = derived
            elif status != derived and status != "OPERATION_IN_PROGRESS":
                raise self.fail(_join(path, "status"),
                                f"{status} contradicts the operations, which leave the service {derived}")
        return status, tuple(ops)

    def env(self, value: Any, path: str, databases: set[str], caches: set[str]) -> tuple[tuple[str, str], ...]:
        spec = self.mapping(value, path)
        out: list[tuple[str, str]] = []
        for key, raw in spec.items():
            kp = _join(path, key)
            if not ENV_NAME.match(key):
                raise self.fail(kp, "not a valid environment variable name")
            if key.startswith("AWSAPPRUNNER"):
                raise self.fail(kp, "names starting with AWSAPPRUNNER are reserved by App Runner")
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise self.fail(kp, f"expected a string, got {_kind(raw)} (quote it)")
            text = str(raw)
            self.placeholders(text, kp, databases, caches)
            out.append((key, text))
        return tuple(out)

    def lines(self, value: Any, path: str, databases: set[str], caches: set[str]) -> tuple[str, ...]:
        out: list[str] = []
        for i, line in enumerate(self.seq(value, path)):
            text = self.string(line, _join(path, i))
            self.placeholders(text, _join(path, i), databases, caches)
            out.append(text)
        return tuple(out)

    def placeholders(self, text: str, path: str, databases: set[str], caches: set[str]) -> None:
        for match in PLACEHOLDER.finditer(text):
            body = match.group(1)
            m = PLACEHOLDER_BODY.match(body)
            if not m:
                raise self.fail(path, f"unknown placeholder ${{{body}}} (use ${{database.ID.address}}, "
                                      "${database.ID.port}, ${cache.ID.address}, ${cache.ID.port}, "
                                      "${proxy.NAME.address} or ${proxy.NAME.port})")
            kind, ident = m.group(1), m.group(2)
            pool = {"database": databases, "cache": caches, "proxy": getattr(self, "proxy_names", set())}[kind]
            if ident not in pool:
                known = ", ".join(sorted(pool)) or "none"
                raise self.fail(path, f"${{{body}}} names no {kind} {ident!r} (defined: {known})")
        if "${" in PLACEHOLDER.sub("", text):
            raise self.fail(path, "unterminated ${ placeholder")

    def health_check(self, value: Any, path: str) -> HealthCheck:
        b = self.mapping(value, path, ("protocol", "path", "interval", "timeout", "healthy_threshold",
                                       "unhealthy_threshold"))
        protocol = self.choice(b.get("protocol"), _join(path, "protocol"), ("TCP", "HTTP"), default="TCP",
                               message="must be TCP or HTTP")
        hc_path = self.string(b.get("path"), _join(path, "path"), default="/")
        if not hc_path.startswith("/"):
            raise self.fail(_join(path, "path"), f"must start with '/', got {hc_path!r}")
        return HealthCheck(
            protocol=protocol,
            path=hc_path,
            interval=self.integer(b.get("interval"), _join(path, "interval"), default=5, lo=1, hi=20),
            timeout=self.integer(b.get("timeout"), _join(path, "timeout"), default=2, lo=1, hi=20),
            healthy_threshold=self.integer(b.get("healthy_threshold"), _join(path, "healthy_threshold"),
                                           default=1, lo=1, hi=20),
            unhealthy_threshold=self.integer(b.get("unhealthy_threshold"), _join(path, "unhealthy_threshold"),
                                             default=5, lo=1, hi=20),
        )

    def app(self, value: Any, path: str, service_port: str) -> App:
        b = self.mapping(value, path, ("health_path", "port", "needs", "startup_error"))
        health_path = self.string(b.get("health_path"), _join(path, "health_path"), default="/")
        if not health_path.startswith("/"):
            raise self.fail(_join(path, "health_path"), f"must start with '/', got {health_path!r}")
        needs_spec = self.mapping(b.get("needs"), _join(path, "needs"))
        needs: list[tuple[str, str]] = []
        for label, var in needs_spec.items():
            np_ = _join(_join(path, "needs"), label)
            self.symbol(label, np_)
            var = self.string(var, np_)
            if not ENV_NAME.match(var):
                raise self.fail(np_, f"{var!r} is not an environment variable name")
            needs.append((label, var))
        return App(
            health_path=health_path,
            port=self.port_string(b.get("port"), _join(path, "port"), service_port),
            needs=tuple(needs),
            startup_error=self.opt_string(b.get("startup_error"), _join(path, "startup_error")),
        )


def status_after(ops: list[Operation] | tuple[Operation, ...]) -> str:
    """The service status that a finished history of operations leaves."""
    status = "RUNNING"
    for op in ops:
        if op.type == "CREATE_SERVICE":
            status = "RUNNING" if op.status == "SUCCEEDED" else "CREATE_FAILED"
        elif op.type in ("START_DEPLOYMENT", "UPDATE_SERVICE"):
            if status == "CREATE_FAILED" and op.status == "SUCCEEDED" and op.type == "UPDATE_SERVICE":
                status = "RUNNING"
        elif op.type == "PAUSE_SERVICE" and op.status == "SUCCEEDED":
            status = "PAUSED"
        elif op.type == "RESUME_SERVICE" and op.status == "SUCCEEDED":
            status = "RUNNING"
        elif op.type == "DELETE_SERVICE" and op.status == "FAILED":
            status = "DELETE_FAILED"
    return status
