"""ECS on Fargate: a service, its deployments and tasks, and the load balancer in front of it.

The one module that reads ECS's API (DescribeServices, DescribeTaskDefinition, the service
deployments, stopped tasks, Express Mode's DescribeExpressGatewayService) and the load balancer's
(ELBv2 target groups, their health, load balancers and listeners), for discovery, the drift guard's
re-read and the deployment wait alike. It knows ECS's shape: the environment is the essential
container's, the tasks' traffic leaves from the service's awsvpcConfiguration, the health path is
the target group's, the logs are the awslogs driver's group. An Express Mode service is an ordinary
ECS service (resourceManagementType ECS) whose load balancer Express provisioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from runbook.aws import ApiError, Aws
from runbook.errors import UsageError
from runbook.model import ApiCall
from runbook.probe import Front, service_url
from runbook.topology import DEFAULT_HEALTH_PATH, Topology, Workload

NAME = "ecs"
GROUPED_BY = "cluster"  # a service is named within its cluster (--cluster; "default" when omitted)
DEFAULT_CLUSTER = "default"
PERMISSIONS = (
    "ecs:DescribeServices",
    "ecs:ListServices",
    "ecs:DescribeTaskDefinition",
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceDeployments",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:DescribeExpressGatewayService",
    "ecs:DescribeServiceRevisions",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "ec2:DescribeVpcEndpoints",
    "logs:DescribeLogGroups",
)
REDEPLOYS_AT_ONCE = 1  # one deployment at a time: each update_service that deploys is waited out
SERVICES = ("ecs", "elbv2", "logs")
READ_BACK: Mapping[tuple[str, str, str], tuple[str, str, str]] = {}  # no call resends an environment

# ListServiceDeployments statuses: still moving, and ended without the target revision serving.
OPEN_DEPLOYMENT = frozenset({"PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"})
FAILED_DEPLOYMENT = frozenset({"ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED"})
MANAGED_TAG = "AmazonECSManaged"  # the group ECS adds to an Express service: rules to databases name the customer's
STOPPED_READ = 100  # DescribeTasks' largest batch: the most recent stopped tasks

# An ALB's own pages carry Server: awselb/2.0; a page without it came from a task.
FRONT = Front("the load balancer", own_server="awselb", own_pages={
    502: "a target closed the connection or sent a malformed answer",
    503: "no healthy target is registered",
    504: "the target did not answer in time",
    404: "no listener rule matches this host and path",
})


@dataclass(frozen=True)
class EcsService:
    """The answers ECS's own checks read: the Workload's payload."""

    cluster: str
    service: Mapping[str, Any]
    task_definition: Mapping[str, Any]
    deployments: list[dict[str, Any]] | None = None  # service deployments, newest first; None: the API did not answer
    stopped_tasks: list[dict[str, Any]] = field(default_factory=list)  # most recent first
    target_groups: list[dict[str, Any]] = field(default_factory=list)
    target_health: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # TargetGroupArn -> descriptions
    load_balancers: list[dict[str, Any]] = field(default_factory=list)
    listeners: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # LoadBalancerArn -> listeners
    express: Mapping[str, Any] | None = None  # DescribeExpressGatewayService, for an Express Mode service
    managed: Mapping[str, Any] | None = None  # its current revision's ecsManagedResources (DescribeServiceRevisions)
    groups: list[dict[str, Any]] = field(default_factory=list)  # the service's own security groups, described
    vpc_endpoints: list[dict[str, Any]] | None = None  # None: not read
    log_groups: dict[str, bool] = field(default_factory=dict)  # awslogs group -> exists
    reads_failed: dict[str, str] = field(default_factory=dict)  # what could not be read, and why

    @property
    def arn(self) -> str:
        return self.service["serviceArn"]

    @property
    def name(self) -> str:
        return self.service["serviceName"]

    @property
    def awsvpc(self) -> Mapping[str, Any]:
        return (self.service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}

    @property
    def container(self) -> Mapping[str, Any]:
        """The container the load balancer sends traffic to (loadBalancers[].containerName), else the first essential one."""
        named = next((lb.get("containerName") for lb in self.service.get("loadBalancers", []) if lb.get("containerName")), None)
        return essential_container(self.task_definition, named)

    @property
    def primary(self) -> Mapping[str, Any] | None:
        """The newest deployment in describe_services' deployments[] (PRIMARY)."""
        return next((d for d in self.service.get("deployments", []) if d.get("status") == "PRIMARY"), None)

    @property
    def is_express(self) -> bool:
        return self.service.get("resourceManagementType") == "ECS" or self.express is not None


def of(topology: Topology) -> EcsService:
    return topology.workload.payload


# The interface endpoints a task without a way out needs: the registry's two, and the awslogs driver's.
PULL_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")


def endpoint_service(endpoint: Mapping[str, Any]) -> str:
    """com.amazonaws.us-east-1.ecr.dkr -> ecr.dkr; ...s3 -> s3."""
    name = endpoint.get("ServiceName", "")
    for short in (*PULL_ENDPOINTS, "s3"):
        if name.endswith("." + short):
            return short
    return name.rsplit(".", 1)[-1]


def managed_resources(payload: EcsService) -> list[tuple[str, Mapping[str, Any]]]:
    """(what, resource) for each resource Express Mode manages for the service, with its status."""
    found: list[tuple[str, Mapping[str, Any]]] = []

    def add(what: str, item: Any) -> None:
        if isinstance(item, dict) and item.get("status"):
            found.append((what, item))

    managed = payload.managed or {}
    for ingress in managed.get("ingressPaths", []):
        for key in ("loadBalancer", "certificate", "listener", "rule"):
            add(key, ingress.get(key))
        for group in ingress.get("loadBalancerSecurityGroups", []) + ingress.get("targetGroups", []):
            add("targetGroup" if "healthCheckPath" in group else "loadBalancerSecurityGroup", group)
    for group in managed.get("serviceSecurityGroups", []):
        add("serviceSecurityGroup", group)
    for group in managed.get("logGroups", []):
        add("logGroup", group)
    return found


def essential_container(task_definition: Mapping[str, Any], name: str | None = None) -> Mapping[str, Any]:
    containers = task_definition.get("containerDefinitions") or [{}]
    if name is not None:
        found = next((c for c in containers if c.get("name") == name), None)
        if found is not None:
            return found
    return next((c for c in containers if c.get("essential", True)), containers[0])


# -- reading ECS ------------------------------------------------------------------------------------
def split_ref(ref: str) -> tuple[str, str]:
    """(cluster, service) from an ARN (arn:aws:ecs:R:A:service/CLUSTER/NAME, or the old
    service/NAME in the default cluster), CLUSTER/NAME, or NAME."""
    if ref.startswith("arn:"):
        resource = ref.split(":", 5)[-1]
        parts = resource.split("/")
        if parts[0] != "service" or len(parts) not in (2, 3) or not all(parts[1:]):
            raise UsageError(f"{ref} is not an ECS service ARN (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME)")
        return (parts[1], ref) if len(parts) == 3 else (DEFAULT_CLUSTER, ref)
    if ref.count("/") == 1 and all(ref.split("/")):
        cluster, name = ref.split("/")
        return cluster, name
    if "/" in ref or not ref:
        raise UsageError(f"{ref!r} is not an ECS service name (NAME, CLUSTER/NAME or the service's ARN)")
    return DEFAULT_CLUSTER, ref


def describe_service(aws: Aws, cluster: str, service: str) -> dict[str, Any] | None:
    answer = aws.call("ecs", "describe_services", cluster=cluster, services=[service])
    found = [s for s in answer.get("services", []) if s.get("status") != "INACTIVE"] or answer.get("services", [])
    return found[0] if found else None


def find(aws: Aws, ref: str) -> dict[str, Any]:
    """The service and the task definition its newest deployment runs."""
    cluster, name = split_ref(ref)
    try:
        service = describe_service(aws, cluster, name)
    except ApiError as exc:
        if exc.code == "ClusterNotFoundException":
            hint = "the ARN names it" if ref.startswith("arn:") else "pass --cluster NAME"
            raise UsageError(f"no ECS cluster {cluster!r} in {aws.region} ({hint})") from None
        raise
    if service is None or service.get("status") == "INACTIVE":
        existing = sorted(arn.rsplit("/", 1)[-1] for arn in aws.paginate("ecs", "list_services", "serviceArns",
                                                                          tokens=("nextToken", "nextToken"), cluster=cluster))
        gone = " (it is INACTIVE: deleted)" if service is not None else ""
        raise UsageError(f"no ECS service named {name!r} in cluster {cluster} ({aws.region}){gone}; "
                         f"services there: {', '.join(existing) or 'none'}")
    if not service.get("taskDefinition"):
        controller = (service.get("deploymentController") or {}).get("type", "?")
        raise UsageError(f"ECS service {name} names no task definition (deployment controller {controller}): its tasks are "
                         "deployed outside ECS, which this runbook does not read")
    task_definition = aws.call("ecs", "describe_task_definition", taskDefinition=service["taskDefinition"])["taskDefinition"]
    return {"cluster": cluster, "service": service, "taskDefinition": task_definition}


def service_deployments(aws: Aws, cluster: str, arn: str, count: int = 5) -> list[dict[str, Any]]:
    """The newest service deployments, described (newest first)."""
    briefs = aws.call("ecs", "list_service_deployments", cluster=cluster, service=arn, maxResults=count).get("serviceDeployments", [])
    briefs = sorted(briefs, key=lambda d: epoch(d.get("createdAt") or d.get("startedAt")), reverse=True)[:count]
    if not briefs:
        return []
    described = aws.call("ecs", "describe_service_deployments",
                         serviceDeploymentArns=[b["serviceDeploymentArn"] for b in briefs]).get("serviceDeployments", [])
    by_arn = {d["serviceDeploymentArn"]: d for d in described}
    return [by_arn.get(b["serviceDeploymentArn"], b) for b in briefs]


def stopped_tasks(aws: Aws, cluster: str, name: str) -> list[dict[str, Any]]:
    arns = aws.call("ecs", "list_tasks", cluster=cluster, serviceName=name, desiredStatus="STOPPED",
                    maxResults=STOPPED_READ).get("taskArns", [])
    if not arns:
        return []
    tasks = aws.call("ecs", "describe_tasks", cluster=cluster, tasks=arns[:STOPPED_READ]).get("tasks", [])
    return sorted(tasks, key=lambda t: epoch(t.get("stoppedAt") or t.get("createdAt")), reverse=True)


def load_balancing(aws: Aws, target_group_arns: list[str]) -> dict[str, Any]:
    """The target groups, the health of their targets, their load balancers and those's listeners."""
    groups = aws.paginate("elbv2", "describe_target_groups", "TargetGroups", tokens=("Marker", "NextMarker"),
                          TargetGroupArns=target_group_arns)
    health = {g["TargetGroupArn"]: aws.call("elbv2", "describe_target_health", TargetGroupArn=g["TargetGroupArn"])
              .get("TargetHealthDescriptions", []) for g in groups}
    lb_arns = sorted({arn for g in groups for arn in g.get("LoadBalancerArns", [])})
    balancers = aws.paginate("elbv2", "describe_load_balancers", "LoadBalancers", tokens=("Marker", "NextMarker"),
                             LoadBalancerArns=lb_arns) if lb_arns else []
    listeners = {lb["LoadBalancerArn"]: aws.paginate("elbv2", "describe_listeners", "Listeners", tokens=("Marker", "NextMarker"),
                                                     LoadBalancerArn=lb["LoadBalancerArn"]) for lb in balancers}
    return {"target_groups": groups, "target_health": health, "load_balancers": balancers, "listeners": listeners}


def log_group_exists(aws: Aws, group: str) -> bool:
    found = aws.paginate("logs", "describe_log_groups", "logGroups", tokens=("nextToken", "nextToken"), logGroupNamePrefix=group)
    return any(g.get("logGroupName") == group for g in found)


def epoch(value: Any) -> float:
    """Seconds since the epoch of an API timestamp (a datetime, or a number as JSON gives it); 0 when absent."""
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return float(value) if isinstance(value, (int, float)) else 0.0


def _best_effort(job: Callable[[], Any]) -> Callable[[], Any]:
    """A read whose failure leaves the others standing: (answer, None) or (None, why)."""
    def run() -> tuple[Any, str | None]:
        try:
            return job(), None
        except ApiError as exc:
            return None, f"{exc.code}: {exc}"
    return run


# -- what the description names ---------------------------------------------------------------------
def workload(found: Mapping[str, Any], params: Mapping[str, Any]) -> Workload:
    """What the service and its task definition name, before deployments, tasks and the load balancer are read."""
    service, task_definition = found["service"], found["taskDefinition"]
    payload = EcsService(found["cluster"], service, task_definition)
    container = payload.container
    env = {e["name"]: e.get("value", "") for e in container.get("environment", []) if "name" in e}
    env_secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets", []) if "name" in s and "valueFrom" in s}
    log = container.get("logConfiguration") or {}
    log_group = (log.get("options") or {}).get("awslogs-group") if log.get("logDriver") == "awslogs" else None
    awsvpc = payload.awsvpc
    name = service["serviceName"]
    hidden = [f.get("value", "?") for f in container.get("environmentFiles", [])]
    return Workload(
        platform=NAME,
        name=name,
        id=service["serviceArn"],
        status=service.get("status"),
        env=env,
        env_secrets=env_secrets,
        secrets_field=f"container {container.get('name', '?')} secrets",
        env_hidden=(f"environment files in S3 ({', '.join(hidden)}), which no ECS API returns" if hidden and not env else None),
        env_hidden_in="environmentFiles" if hidden and not env else "",
        health_path=params.get("health_path", DEFAULT_HEALTH_PATH),
        log_groups=(log_group,) if log_group else (),
        security_group_ids=tuple(awsvpc.get("securityGroups", ())),
        subnet_ids=tuple(awsvpc.get("subnets", ())),
        outside_vpc=None if awsvpc.get("subnets") else "the service has no awsvpc network configuration",
        noun="task",
        client=f"ECS service {name}",
        client_source="ecs describe_services",
        rule_label=f"ECS service {name} tasks",
        source="ecs describe_task_definition",
        network_config=f"networkConfiguration.awsvpcConfiguration={dict(awsvpc)}",
        front=FRONT,
        payload=payload,
    )


def reads(aws: Aws, workload: Workload) -> dict[str, Callable[[], Any]]:
    payload: EcsService = workload.payload
    cluster, arn = payload.cluster, payload.arn
    jobs: dict[str, Callable[[], Any]] = {
        "deployments": _best_effort(lambda: service_deployments(aws, cluster, arn)),
        "stopped": _best_effort(lambda: stopped_tasks(aws, cluster, payload.name)),
        "endpoints": _best_effort(lambda: aws.paginate("ec2", "describe_vpc_endpoints", "VpcEndpoints")),
    }
    target_groups = sorted({lb["targetGroupArn"] for lb in payload.service.get("loadBalancers", []) if lb.get("targetGroupArn")})
    if target_groups:
        jobs["load_balancing"] = _best_effort(lambda: load_balancing(aws, target_groups))
    if workload.security_group_ids:
        groups = list(workload.security_group_ids)
        jobs["groups"] = _best_effort(lambda: aws.paginate("ec2", "describe_security_groups", "SecurityGroups", GroupIds=groups))
    for group in workload.log_groups:
        jobs[f"log_group:{group}"] = _best_effort(lambda group=group: log_group_exists(aws, group))
    if payload.service.get("resourceManagementType") == "ECS":
        jobs["express"] = _best_effort(lambda: aws.call("ecs", "describe_express_gateway_service", serviceArn=arn)["service"])
        revisions = [r["arn"] for r in payload.service.get("currentServiceRevisions", []) if r.get("arn")][:1]
        if revisions:
            jobs["managed"] = _best_effort(lambda: (aws.call("ecs", "describe_service_revisions", serviceRevisionArns=revisions)
                                                    .get("serviceRevisions") or [{}])[0].get("ecsManagedResources"))
    return jobs


def completed(workload: Workload, got: Mapping[str, Any]) -> Workload:
    """The workload with what the reads found: the load balancer's URL and groups, the target
    group's health path, the customer's security groups first."""
    payload: EcsService = workload.payload
    answers = {k: v[0] for k, v in got.items()}
    failed = {k: v[1] for k, v in got.items() if v[1]}
    balancing = answers.get("load_balancing") or {}
    payload = replace(
        payload,
        deployments=answers.get("deployments"),
        stopped_tasks=answers.get("stopped") or [],
        target_groups=balancing.get("target_groups", []),
        target_health=balancing.get("target_health", {}),
        load_balancers=balancing.get("load_balancers", []),
        listeners=balancing.get("listeners", {}),
        express=answers.get("express"),
        managed=answers.get("managed"),
        groups=answers.get("groups") or [],
        vpc_endpoints=answers.get("endpoints"),
        log_groups={k.split(":", 1)[1]: bool(v) for k, v in answers.items() if k.startswith("log_group:") and v is not None},
        reads_failed=failed,
    )
    managed = {g["GroupId"] for g in payload.groups if any(t.get("Key") == MANAGED_TAG for t in g.get("Tags", []))}
    ordered = tuple(sorted(workload.security_group_ids, key=lambda g: g in managed))
    url, host, unprobed, health_path = _entry(payload, workload.health_path)
    instead, healthy = _target_health(payload) if url is None else (None, False)
    if url is None and instead is None and payload.service.get("loadBalancers"):
        instead = "nothing shows the tasks' health"  # a load balancer named but unread: never a pass
    return replace(
        workload,
        security_group_ids=ordered,
        # The load balancer's groups, and the interface endpoints' (the tasks reach those on 443).
        peer_security_group_ids=tuple(sorted({g for lb in payload.load_balancers for g in lb.get("SecurityGroups", [])}
                                             | {g["GroupId"] for e in payload.vpc_endpoints or [] for g in e.get("Groups", [])
                                                if e.get("VpcEndpointType") == "Interface" and g.get("GroupId")
                                                and endpoint_service(e) in PULL_ENDPOINTS})),
        peer_subnet_ids=tuple(sorted({z["SubnetId"] for lb in payload.load_balancers for z in lb.get("AvailabilityZones", [])
                                      if z.get("SubnetId")})),
        url=url,
        probe_host=host,
        tls_unchecked=_tls_unchecked(url, payload),
        unprobed=unprobed,
        health_instead=instead,
        healthy_instead=healthy,
        health_path=health_path,
        health_check={k: v for g in payload.target_groups[:1] for k, v in g.items() if k.startswith("HealthCheck") or k == "Matcher"},
        logs_since_ms=_since_ms(payload),
        payload=payload,
    )


def _target_health(payload: EcsService) -> tuple[str | None, bool]:
    """What the load balancer says of the tasks when its name cannot be probed: (the line, healthy)."""
    group = serving_target_group(payload)
    if group is None:
        return None, False
    states = [t.get("TargetHealth", {}).get("State") for t in payload.target_health.get(group["TargetGroupArn"], [])]
    healthy = states.count("healthy")
    line = (f"target group {group.get('TargetGroupName')} reports {healthy} of {len(states)} target(s) healthy on "
            f"{group.get('HealthCheckPath', '/')}")
    return line, healthy > 0 and healthy == len(states)


def _since_ms(payload: EcsService) -> float | None:
    primary = payload.primary
    created = primary.get("createdAt") if primary else None
    return epoch(created) * 1000 if created is not None else None


def serving_target_group(payload: EcsService) -> Mapping[str, Any] | None:
    """The target group of the service's container, the first that a load balancer uses."""
    for group in payload.target_groups:
        if group.get("LoadBalancerArns"):
            return group
    return payload.target_groups[0] if payload.target_groups else None


def _entry(payload: EcsService, default_path: str) -> tuple[str | None, str | None, str | None, str]:
    """(URL, Host header, why it cannot be probed, health path) of the service behind its load balancer."""
    group = serving_target_group(payload)
    if group is None and payload.service.get("loadBalancers"):
        why = payload.reads_failed.get("load_balancing", "not found")
        return None, None, f"its target groups could not be read ({why})", default_path
    if group is None:
        return None, None, "the service has no load balancer", default_path
    path = group.get("HealthCheckPath") or "/" if group.get("HealthCheckProtocol", "HTTP") in ("HTTP", "HTTPS") else default_path
    balancer = next((lb for lb in payload.load_balancers if lb["LoadBalancerArn"] in group.get("LoadBalancerArns", [])), None)
    if balancer is None:
        return None, None, f"target group {group.get('TargetGroupName')} is attached to no load balancer", path
    if balancer.get("Scheme") == "internal":
        return None, None, (f"load balancer {balancer.get('LoadBalancerName')} is internal: its name answers only inside "
                            "the VPC"), path
    listeners = payload.listeners.get(balancer["LoadBalancerArn"], [])
    listener = (next((li for li in listeners if li.get("Protocol") == "HTTPS"), None)
                or next((li for li in listeners if li.get("Protocol") == "HTTP"), None))
    if listener is None:
        return None, None, f"load balancer {balancer.get('LoadBalancerName')} has no HTTP or HTTPS listener", path
    dns = balancer.get("DNSName", "")
    endpoint = _express_endpoint(payload)
    scheme = "https" if listener["Protocol"] == "HTTPS" else "http"
    default_port = 443 if scheme == "https" else 80
    if endpoint and not _loopback(dns):
        return f"https://{endpoint}", None, None, path
    # A loopback name is a local stand-in for the load balancer (already with its port): plain HTTP, and
    # the Express endpoint as the Host header its rule routes on.
    if _loopback(dns):
        return service_url(dns, "/")[:-1], endpoint, None, path
    host = dns if listener.get("Port") == default_port else f"{dns}:{listener.get('Port')}"
    return f"{scheme}://{host}", None, None, path


def _tls_unchecked(url: str | None, payload: EcsService) -> str | None:
    """An HTTPS URL on the load balancer's own DNS name: its certificate names the customer's domain."""
    if not url or not url.startswith("https://"):
        return None
    names = {lb.get("DNSName") for lb in payload.load_balancers}
    if url.removeprefix("https://").split("/")[0].split(":")[0] in names:
        return "the load balancer's own DNS name is not on its certificate: its TLS identity is not checked"
    return None


def _loopback(dns: str) -> bool:
    return service_url(dns, "/").startswith("http://")


def _express_endpoint(payload: EcsService) -> str | None:
    express = payload.express or {}
    for config in express.get("activeConfigurations", [])[:1]:
        for ingress in config.get("ingressPaths", []):
            if ingress.get("endpoint"):
                return ingress["endpoint"].removeprefix("https://").rstrip("/")
    return None


# -- waits and re-reads -----------------------------------------------------------------------------
def deployment(aws: Aws, workload: Workload) -> tuple[bool, str]:
    """Finished once the newest service deployment is out of its open states (else, without that
    API, once the PRIMARY deployment's rolloutState is no longer IN_PROGRESS)."""
    payload: EcsService = workload.payload
    service = describe_service(aws, payload.cluster, payload.arn) or {}
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    try:
        newest = service_deployments(aws, payload.cluster, payload.arn)
    except ApiError:
        newest = None
    if newest:
        status = newest[0].get("status")
        # A deployment update_service just started may not be listed yet: the newest listed one is then
        # older than the PRIMARY deployment, and its end is not this deployment's.
        listed = epoch(newest[0].get("createdAt") or newest[0].get("startedAt"))
        if epoch(primary.get("createdAt")) > listed + 1:
            return False, f"deployment {primary.get('id', '?')} started, not yet listed among the service deployments"
        return status not in OPEN_DEPLOYMENT, f"service deployment {status}"
    state = primary.get("rolloutState", "?")
    return state != "IN_PROGRESS", f"deployment {primary.get('id', '?')} {state}, {service.get('runningCount', '?')}/{service.get('desiredCount', '?')} running"


def refresh(aws: Aws, topology: Topology, call: ApiCall) -> Topology | None:
    """Its own calls change what several reads show (a deployment, target health): a full re-read."""
    return None


# -- undo -------------------------------------------------------------------------------------------
def without_undo(call: ApiCall) -> bool:
    """A redeploy changes no configuration to put back."""
    return call.service == "ecs" and call.operation == "update_service" and call.params.get("forceNewDeployment") is True \
        and set(call.params) == {"cluster", "service", "forceNewDeployment"}


def _path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("/") and 0 < len(value) <= 1024 and value.isprintable()


def _seconds(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2_147_483_647


def undo(call: ApiCall, kept: Mapping[str, Any]) -> ApiCall:
    """The undo of one ECS, ELBv2 or Logs call fix sends, recomputed: from the call itself where it
    determines its inverse (assignPublicIp back to DISABLED), else from the value the journal recorded
    it replaced, of the shape this tool records."""
    from runbook.inverses import Refused, require

    params, what = dict(call.params), f"{call.service} {call.operation}"
    shape = f"{what} with {sorted(params)} is not one runbook sends"
    if (call.service, call.operation) == ("logs", "create_log_group"):
        require(set(params) == {"logGroupName"} and isinstance(params["logGroupName"], str), shape)
        return ApiCall("logs", "delete_log_group", {"logGroupName": params["logGroupName"]})
    if (call.service, call.operation) == ("ecs", "update_service"):
        require(isinstance(params.get("cluster"), str) and isinstance(params.get("service"), str), shape)
        ids = {"cluster": params["cluster"], "service": params["service"]}
        if set(params) == {"cluster", "service", "networkConfiguration"}:
            config = (params["networkConfiguration"] or {}).get("awsvpcConfiguration") if isinstance(params["networkConfiguration"], dict) else None
            require(isinstance(config, dict) and config.get("assignPublicIp") == "ENABLED"
                    and set(config) <= {"subnets", "securityGroups", "assignPublicIp"}
                    and all(isinstance(v, list) and all(isinstance(i, str) for i in v) for k, v in config.items() if k != "assignPublicIp"),
                    f"{what} is not the public-IP update runbook sends")
            return ApiCall("ecs", "update_service", {**ids, "networkConfiguration": {"awsvpcConfiguration": {**config, "assignPublicIp": "DISABLED"}}})
        if set(params) == {"cluster", "service", "healthCheckGracePeriodSeconds"}:
            previous = kept.get("healthCheckGracePeriodSeconds")
            require(_seconds(params["healthCheckGracePeriodSeconds"]) and _seconds(previous)
                    and {k: kept.get(k) for k in ids} == ids, "the recorded grace period is not the one this call replaced")
            return ApiCall("ecs", "update_service", {**ids, "healthCheckGracePeriodSeconds": previous})
        raise Refused(shape)
    # A health-check path move, on a target group or on Express Mode's setting: (its id, its path) parameters.
    keys = {("elbv2", "modify_target_group"): ("TargetGroupArn", "HealthCheckPath"),
            ("ecs", "update_express_gateway_service"): ("serviceArn", "healthCheckPath")}.get((call.service, call.operation))
    if keys is not None:
        id_key, path_key = keys
        require(set(params) == set(keys) and isinstance(params[id_key], str) and _path(params[path_key]), shape)
        previous = kept.get(path_key)
        require(_path(previous) and kept.get(id_key) == params[id_key] and set(kept) == set(params),
                "the recorded health check path is not the one this call replaced")
        return ApiCall(call.service, call.operation, {id_key: params[id_key], path_key: previous})
    raise Refused(f"{what} is not a call runbook sends, so it has no undo")
