"""The snapshot checks read: a platform-neutral Workload beside the shared network around it.

A platform (runbook.platforms) says what its service names: the Workload. Discovery follows
the Workload's environment to its targets and reads the network between them. Shared checks
read only these; a platform's own checks read its `payload` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from runbook.probe import ENVOY, Front, ProbeResult

if TYPE_CHECKING:
    from runbook.model import Step

# The runbook-level health path when the runbook names none.
DEFAULT_HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Target:
    """A dependency named by an environment variable, followed to the AWS resource it points at."""

    kind: str  # "database" or "cache"
    env_var: str
    url: str  # redacted
    scheme: str
    host: str
    port: int | None
    resource_id: str | None = None  # DBInstanceIdentifier, DBClusterIdentifier, DBProxyName, ReplicationGroupId, CacheClusterId or ServerlessCacheName
    resource: Mapping[str, Any] | None = None
    endpoint_port: int | None = None
    security_group_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    vpc_id: str | None = None
    transit_encryption: bool | None = None
    cluster_subnet_group: str | None = None  # the member cache cluster's CacheSubnetGroupName
    source: str = ""  # the API call that found it
    secret_ref: str | None = None  # the RuntimeEnvironmentSecrets reference the URL came from
    unread: str | None = None  # why the URL could not be followed (a secret not read, an environment no API returns)
    dangling: bool = False  # the secret it names leads to no value: the platform cannot start the app either
    backend: Target | None = None  # for an RDS Proxy: the database it forwards to (describe_db_proxy_targets)
    # The availability zones its addresses are in, a standby's or replica's included (a failover moves the
    # address there); empty when any of its subnets may hold them (Aurora, proxies, serverless caches).
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogSignature:
    """A log line that names a known failure, and the check kind that shows its cause (a check's
    registered name, with the params that pick the step: {"target": "cache"})."""

    pattern: re.Pattern[str]
    meaning: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """What a platform names about the service it runs: where its traffic to the targets leaves
    from, its environment, where it answers health probes, where it logs. Shared checks read this,
    never a platform's own resources."""

    platform: str  # its name in runbook.platforms.PLATFORMS
    name: str  # the service's name, as reported
    id: str  # what the platform's own calls name it by (an ARN)
    status: str | None = None  # the platform's word for its state, as reported
    env: Mapping[str, str] = field(default_factory=dict)
    env_secrets: Mapping[str, str] = field(default_factory=dict)  # variable -> secret ARN (or name)
    secrets_field: str = "its secrets"  # where the platform keeps those references, as messages name it
    # Where an environment is configured that no API returns, and its short name: nothing can be followed.
    env_hidden: str | None = None
    env_hidden_in: str = ""
    url: str | None = None  # scheme://host the service answers on
    front: Front = ENVOY  # what answers that URL in front of the app
    probe_host: str | None = None  # the Host header a probe sends instead of the URL's (a host-header rule)
    # Why the URL's TLS certificate is not checked (a name its certificate cannot carry); None: it is.
    tls_unchecked: str | None = None
    # Why its URL cannot be probed from here (an internal load balancer), when it cannot; `url` is then None.
    unprobed: str | None = None
    # What the platform shows of its health instead (a load balancer's target health), and whether that is healthy.
    health_instead: str | None = None
    healthy_instead: bool = False
    health_path: str = DEFAULT_HEALTH_PATH  # what the platform's own health check asks for, else the runbook's
    health_check: Mapping[str, Any] = field(default_factory=dict)  # the platform's health-check configuration
    log_groups: tuple[str, ...] = ()
    logs_since_ms: float | None = None  # when the running version's deployment started: older lines are another version's
    log_signatures: tuple[LogSignature, ...] = ()  # the platform's own log lines (after the shared ones)
    # The client side: the network interfaces whose traffic reaches the targets.
    security_group_ids: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    outside_vpc: str | None = None  # why its traffic does not leave from inside a VPC; None when it does
    # Security groups beside its own whose rules its platform's checks read (a load balancer's).
    peer_security_group_ids: tuple[str, ...] = ()
    peer_subnet_ids: tuple[str, ...] = ()  # and the subnets it sits in
    # How checks speak of the client side, so that each platform's wording is its own.
    noun: str = "service"  # "the {noun}'s security group", "{noun} subnets"
    client: str = "the service"  # the client side by name, e.g. "service nerava-backend"
    client_source: str = ""  # the call that described the client side (evidence)
    rule_label: str = ""  # how a security-group rule's Description names the client side
    source: str = ""  # the call that read the service and its environment (evidence)
    network_config: str = ""  # how its egress is configured, one line (evidence from `source`)
    payload: Any = None  # the platform's own answers, for its own checks

    def url_for(self, path: str) -> str | None:
        if not self.url:
            return None
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def health_url(self) -> str | None:
        return self.url_for(self.health_path)

    def probe(self, path: str) -> ProbeResult:
        """One GET of `path` on the service's URL, through its front (the URL must be known)."""
        from runbook.probe import probe

        return probe(self.url_for(path), front=self.front, host=self.probe_host, verify_tls=self.tls_unchecked is None)


@dataclass
class Topology:
    region: str
    workload: Workload
    targets: dict[str, Target]
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    sg_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpcs: dict[str, dict[str, Any]] = field(default_factory=dict)  # VpcId -> {EnableDnsSupport, EnableDnsHostnames}
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: dict[str, dict[str, Any]] = field(default_factory=dict)  # NatGatewayId -> describe_nat_gateways entry
    network_acls: list[dict[str, Any]] = field(default_factory=list)
    # PrefixListId -> {"cidrs": [...]} or {"error": why it could not be read}, for the lists rules name.
    prefix_lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_events: list[dict[str, Any]] = field(default_factory=list)  # {logGroupName, message, timestamp}
    logs_unread: tuple[str, ...] = ()  # log groups read only in part: their oldest events and the last minutes
    probe: ProbeResult | None = None
    # The path `probe` asked for: the service's own HTTP health check path, else the runbook's health_path.
    health_path: str = DEFAULT_HEALTH_PATH
    alternate_probes: list[ProbeResult] = field(default_factory=list)  # other paths, tried when the app 404s
    secrets: frozenset[str] = frozenset()
    timings: dict[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # the runbook-level params discovery read with
    # Not read from AWS (the engine sets them): of the steps the evaluated one waits on (`after`), those
    # this run has seen fail, fixed since or failing now, so that a check can tell a failure with a
    # cause found from one nothing explains; and the runbook's steps, so that a check can name the
    # step that shows a kind of failure.
    broken_this_run: frozenset[str] = frozenset()
    steps: tuple[Step, ...] = ()

    @property
    def env(self) -> Mapping[str, str]:
        return self.workload.env

    @property
    def client_sg_ids(self) -> tuple[str, ...]:
        return self.workload.security_group_ids

    @property
    def client_subnet_ids(self) -> tuple[str, ...]:
        return self.workload.subnet_ids

    @property
    def client_vpc_ids(self) -> set[str]:
        return {self.subnets[s]["VpcId"] for s in self.client_subnet_ids if s in self.subnets}

    def cidrs(self, subnet_ids) -> list[str]:
        """The CIDR blocks of those subnets that were described."""
        return [self.subnets[s]["CidrBlock"] for s in subnet_ids if s in self.subnets]

    def address_subnets(self, target: Target) -> tuple[str, ...]:
        """The target's subnets its addresses can be in: those of its zones when known (a failover's
        included), else all of them."""
        placed = [s for s in target.subnet_ids if s in self.subnets and self.subnets[s].get("AvailabilityZone") in target.zones]
        return tuple(placed) or target.subnet_ids

    def address_cidrs(self, target: Target) -> list[str]:
        return self.cidrs(self.address_subnets(target))

    @property
    def found_targets(self) -> list[Target]:
        """The targets whose URL led to a resource of this account."""
        return [t for t in self.targets.values() if t.resource_id]

    def step_for(self, kind: str, params: Mapping[str, Any] | None = None) -> str | None:
        """The id of the first runbook step whose check is `kind` (its registered name or an alias of
        it) with these params; None when the runbook has none."""
        from runbook import registry

        for step in self.steps:
            spec = registry.get(step.check)
            if spec is not None and spec.name == kind and all(step.params.get(k) == v for k, v in (params or {}).items()):
                return step.id
        return None

    def route_table_for(self, subnet_id: str, vpc_id: str | None = None) -> dict[str, Any] | None:
        """The subnet's explicit route table, else its VPC's main one (`vpc_id` for a subnet not described)."""
        vpc = self.subnets.get(subnet_id, {}).get("VpcId", vpc_id)
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
