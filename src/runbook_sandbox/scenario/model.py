"""The world a scenario describes, as frozen dataclasses: VPCs and their network, security
groups, data stores, App Runner connectors and services, secrets. Symbolic names throughout;
the sandbox turns them into AWS ids when it builds the world."""

from __future__ import annotations

from dataclasses import dataclass, field



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
class VpcEndpoint:
    """A VPC endpoint for an AWS service (``com.amazonaws.REGION.SERVICE``): an ``Interface`` one in
    subnets with groups and private DNS, or a ``Gateway`` one (s3, dynamodb) on route tables."""

    service: str  # ecr.api, ecr.dkr, s3, logs, secretsmanager...
    vpc: str
    type: str  # Interface | Gateway
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    route_tables: tuple[str, ...] = ()
    private_dns: bool = True


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
class EcsTaskDefinition:
    """One container on Fargate (awsvpc), as RegisterTaskDefinition takes it."""

    family: str
    container: str  # the container's name
    image: str
    port: int  # containerPort
    environment: tuple[tuple[str, str], ...]  # may hold ${...} placeholders
    secrets: tuple[tuple[str, SecretRef], ...]  # secrets[{name, valueFrom}]
    log_group: str | None  # awslogs-group; None: no log configuration
    log_stream_prefix: str
    cpu: str
    memory: str
    log_group_exists: bool = True  # false: the task definition names a group nobody created (tasks cannot start)


@dataclass(frozen=True)
class EcsTargetGroup:
    """The load balancer's target group (TargetType ip, HTTP): where its health check probes."""

    name: str
    port: int  # the targets' port (default: the container port)
    health_path: str  # HealthCheckPath (default "/", as ELBv2's)
    matcher: str  # Matcher.HttpCode (default "200")


@dataclass(frozen=True)
class EcsLoadBalancer:
    """An Application Load Balancer in front of an ECS service: one HTTP listener forwarding to one
    target group, in which ECS registers each running task's IP."""

    name: str
    scheme: str  # internet-facing | internal
    subnets: tuple[str, ...]  # at least two, in two availability zones
    security_groups: tuple[str, ...]
    listener_port: int
    target_group: EcsTargetGroup


@dataclass(frozen=True)
class EcsService:
    """An ECS service on Fargate: its task definition, placement, rollout and the simulated app."""

    name: str
    cluster: str
    task_definition: EcsTaskDefinition
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool
    desired_count: int
    circuit_breaker: bool
    rollback: bool
    app: App
    load_balancer: EcsLoadBalancer | None = None
    health_check_grace_period: int = 0  # healthCheckGracePeriodSeconds


@dataclass(frozen=True)
class EcsExpressService:
    """An ECS Express Mode service (CreateExpressGatewayService): its primary container, the
    target group's health path, the customer's placement (Express adds its own managed group)
    and the simulated app."""

    name: str
    cluster: str
    image: str
    container_port: int
    health_check_path: str  # the target group's (Express's default /ping), not the app's
    environment: tuple[tuple[str, str], ...]  # may hold ${...} placeholders
    secrets: tuple[tuple[str, SecretRef], ...]
    log_group: str | None  # None: Express's own /aws/ecs/<cluster>/<service>
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]  # the customer's
    min_tasks: int  # scalingTarget.minTaskCount
    cpu: str
    memory: str
    app: App


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
    ecs_services: tuple[EcsService, ...] = ()
    ecs_express_services: tuple[EcsExpressService, ...] = ()
    vpc_endpoints: tuple[VpcEndpoint, ...] = ()

    def subnet(self, name: str) -> Subnet:
        return _named((s for vpc in self.vpcs for s in vpc.subnets), name)

    def security_group(self, name: str) -> SecurityGroup:
        return _named(self.security_groups, name)

    def service(self, name: str) -> Service:
        return _named(self.services, name)

    def connector(self, name: str) -> Connector:
        return _named(self.connectors, name)

    def ecs_service(self, name: str) -> EcsService:
        return _named(self.ecs_services, name)

    def ecs_express_service(self, name: str) -> EcsExpressService:
        return _named(self.ecs_express_services, name)


def _named(items, name: str):
    """The item called `name`; KeyError when there is none."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


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
