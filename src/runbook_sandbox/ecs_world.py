"""The sandbox's ECS side: a scenario's ``ecs_services`` and ``ecs_express_services`` built in the
ECS emulator (Express's own resources by :mod:`runbook_sandbox.ecs_express_world`), and the judge
that decides each task from the ground truth (:mod:`runbook_sandbox.reachability`).

A task is healthy when every dependency its app ``needs`` is reachable from the task's own
subnet and security groups (the service's ``awsvpcConfiguration``), with the environment its
task definition gives the container (``environment``, plus each of ``secrets`` read as the
execution role would). Otherwise:

* a secret it cannot read stops it before it runs: ``TaskFailedToStart``,
  ``ResourceInitializationError: unable to pull secrets or registry auth: ...``;
* an app that cannot reach a dependency (or has a ``startup_error``) exits 1:
  ``EssentialContainerExited``, "Essential container in task exited", and its log lines go to
  the task definition's ``awslogs-group`` (stream ``PREFIX/CONTAINER/TASK_ID``), as the
  awslogs driver writes them.

Before the app runs, two more ways to fail to start, both ``TaskFailedToStart``:

* no way to the image registry from the task's subnet
  (:func:`runbook_sandbox.reachability.image_pull_path`: a NAT route, an internet gateway with
  ``assignPublicIp`` ``ENABLED``, or for ECR the ``ecr.api``/``ecr.dkr``/``s3`` endpoints):
  ``CannotPullContainerError: pull image manifest has been retried 5 time(s): ... i/o timeout``;
* the task definition's ``awslogs-group`` missing: ``ResourceInitializationError: failed to
  validate logger args: ... The specified log group does not exist. : exit status 1``.

A service behind a load balancer: :func:`build_ecs` creates the ALB, its target group and HTTP
listener in moto and the ALB's front (:mod:`runbook_sandbox.alb`); :class:`EcsObserver` registers
each running task's IP in the target groups of its revision and deregisters it when it stops; its
health is :mod:`runbook_sandbox.target_health`'s.
"""

from __future__ import annotations

import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from runbook_sandbox.emulators.ecs import EcsEmulator
from runbook_sandbox.emulators.ecs_scheduler import ACCOUNT, StopReason, Subnet
from runbook_sandbox.reachability import AwsSnapshot, Egress, NetworkSnapshot, Verdict, evaluate, image_pull_path
from runbook_sandbox.scenario import App, EcsExpressService, EcsService, Scenario, SecretRef
from runbook_sandbox.target_health import task_ip

if TYPE_CHECKING:  # pragma: no cover
    from runbook_sandbox.alb import AlbFronts
    from runbook_sandbox.sandbox import Sandbox
    from runbook_sandbox.world import World

ESSENTIAL_EXITED = "Essential container in task exited"
NO_LOG_GROUP = ("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
                "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not "
                "exist. : exit status 1")


class TaskJudge:
    """The scheduler's judge for the sandbox; apps are known by their image, as App Runner's are."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.apps: dict[str, App] = {}
        self._lines: dict[int, list[str]] = {}  # thread -> the app's log lines of the task it just judged
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self.apps = {}
            self._lines = {}

    def app_of(self, task_definition: dict) -> App | None:
        return self.apps.get(_essential(task_definition).get("image", ""))

    def __call__(self, service: dict, task_definition: dict, subnet: Subnet, assign_public_ip: str) -> StopReason | None:
        with self._lock:  # lines a discarded verdict left behind in a thread whose id came back
            self._lines.pop(threading.get_ident(), None)
        container = _essential(task_definition)
        app = self.apps.get(container.get("image", ""))
        if app is None:
            return None  # an image the scenario does not know runs, as ECS's default judge has it
        env = {e["name"]: e["value"] for e in container.get("environment", []) if "name" in e and "value" in e}
        hooks = self.sandbox._hooks
        for secret in container.get("secrets", []):
            try:
                env[secret["name"]] = hooks._read_secret(secret["valueFrom"])
            except LookupError as exc:
                return StopReason(
                    "TaskFailedToStart",
                    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                    f"retrieval failed: unable to retrieve secret from {secret['valueFrom']}: {exc}")
        failure = self._before_start(service, container, subnet, assign_public_ip)
        if failure is not None:
            return failure
        lines = ["INFO:     Started server process [1]", "INFO:     Waiting for application startup."]
        if app.startup_error:
            self._keep(lines + [app.startup_error, "ERROR:    Application startup failed. Exiting."])
            return StopReason("EssentialContainerExited", ESSENTIAL_EXITED, exit_code=1)
        failed = [v for v in self.verdicts(service, subnet.subnet_id, env, app) if not v.reachable]
        if failed:
            self._keep(lines + ["ERROR:    Traceback (most recent call last):"]
                       + [v.app_log for v in failed if v.app_log] + ["ERROR:    Application startup failed. Exiting."])
            return StopReason("EssentialContainerExited", ESSENTIAL_EXITED, exit_code=1)
        self._keep(lines + ["INFO:     Application startup complete.",
                            f"INFO:     Uvicorn running on http://0.0.0.0:{app.port} (Press CTRL+C to quit)"])
        return None

    def _before_start(self, service: dict, container: dict, subnet: Subnet, assign_public_ip: str) -> StopReason | None:
        """The image pull and the log driver: what stops a task before its app runs."""
        clients = self.sandbox._clients
        assert clients is not None
        groups = ((service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}).get("securityGroups", [])
        image = container.get("image", "")
        if image_pull_path(NetworkSnapshot(clients), subnet.subnet_id, list(groups), assign_public_ip == "ENABLED",
                           image, clients.region) is not None:
            reason = _pull_timeout(image)
            return StopReason("TaskFailedToStart", reason, container_reason=reason)
        log = container.get("logConfiguration") or {}
        group = (log.get("options") or {}).get("awslogs-group")
        if log.get("logDriver") == "awslogs" and group:
            found = clients.client("logs").describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
            if not any(g.get("logGroupName") == group for g in found):
                return StopReason("TaskFailedToStart", NO_LOG_GROUP)
        return None

    def verdicts(self, service: dict, subnet_id: str, env: dict[str, str], app: App,
                 snapshot: AwsSnapshot | None = None) -> list[Verdict]:
        """One verdict per dependency, from the task's subnet and the service's security groups
        (``snapshot``: the world already read, for a caller judging several subnets at once)."""
        if not app.needs:
            return []
        clients = self.sandbox._clients
        assert clients is not None
        vpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        egress = Egress("VPC", service.get("serviceName"), (subnet_id,), tuple(vpc.get("securityGroups", [])),
                        source="task")
        snapshot = snapshot or AwsSnapshot(clients)
        passwords = self.sandbox._hooks.passwords
        return [evaluate(snapshot, egress, label, var, env.get(var), passwords) for label, var in app.needs]

    def _keep(self, lines: list[str]) -> None:
        with self._lock:
            self._lines[threading.get_ident()] = lines

    def take_lines(self) -> list[str]:
        """The log lines of the task judged last in this thread (the scheduler settles a task in the
        thread that judged it, then tells the observer)."""
        with self._lock:
            return self._lines.pop(threading.get_ident(), [])


def _pull_timeout(image: str) -> str:
    """What containerd says when the registry never answers."""
    host, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    n = zlib.crc32(host.encode())
    address = f"52.{46 + n % 10}.{n >> 8 & 255}.{n >> 16 & 255}"
    return (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {image}: "
            f'failed to do request: Head "https://{host}/v2/{repository or rest}/manifests/{tag or "latest"}": '
            f"dial tcp {address}:443: i/o timeout")


def _essential(task_definition: dict) -> dict:
    containers = task_definition.get("containerDefinitions") or [{}]
    return next((c for c in containers if c.get("essential", True)), containers[0])


class EcsObserver:
    """The scheduler's observer: task outcomes into the sandbox's history and the app's log lines
    into the task definition's log group."""

    def __init__(self, sandbox: "Sandbox", judge: TaskJudge) -> None:
        self.sandbox = sandbox
        self.judge = judge

    def __call__(self, kind: str, **data: Any) -> None:
        if kind == "error":
            self.sandbox._hooks.event("error", **data)
            return
        if kind not in ("task-running", "task-stopped"):
            return
        task = data["task"]
        self._targets(kind, task, data.get("load_balancers") or [])
        lines = self.judge.take_lines()
        self.sandbox._hooks.event("ecs-task", service=data.get("service"), task=task["taskArn"],
                                  status=task["lastStatus"], stop_code=task.get("stopCode"),
                                  reason=task.get("stoppedReason"))
        if lines:
            self._write(task, lines)

    def _targets(self, kind: str, task: dict, load_balancers: list[dict]) -> None:
        """Register a task that turned RUNNING in its target groups; deregister one that stopped."""
        clients, ip = self.sandbox._clients, task_ip(task)
        if clients is None or not ip:
            return
        elbv2 = clients.client("elbv2")
        for lb in load_balancers:
            targets = [{"Id": ip, "Port": int(lb["containerPort"])}]
            try:
                if kind == "task-running":
                    elbv2.register_targets(TargetGroupArn=lb["targetGroupArn"], Targets=targets)
                else:
                    elbv2.deregister_targets(TargetGroupArn=lb["targetGroupArn"], Targets=targets)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("TargetGroupNotFound", "InvalidTarget"):
                    self.sandbox._hooks.event("error", where="ecs targets", error=f"{type(exc).__name__}: {exc}")
                # else: an ARN the emulator fabricated, a group deleted meanwhile, a target deregistered by hand

    def _write(self, task: dict, lines: list[str]) -> None:
        emulator: EcsEmulator = self.sandbox._ecs
        with emulator.lock:
            td = emulator.task_definitions.get(task["taskDefinitionArn"]) or {}
        container = _essential(td) if td else {}
        log = container.get("logConfiguration") or {}
        options = log.get("options") or {}
        group = options.get("awslogs-group")
        clients = self.sandbox._clients
        if log.get("logDriver") != "awslogs" or not group or clients is None:
            return
        stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container.get('name', '')}/{task['taskArn'].rsplit('/', 1)[1]}"
        logs = clients.client("logs")
        try:
            try:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            now = int(time.time() * 1000)
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])
        except Exception as exc:  # noqa: BLE001 - a missing group is the task's problem, not the sandbox's
            self.sandbox._hooks.event("error", where="ecs task logs", error=f"{type(exc).__name__}: {exc}")


def build_ecs(scenario: Scenario, emulator: EcsEmulator, judge: TaskJudge, world: "World", ids: dict[str, str],
              clients: Any, fronts: "AlbFronts | None" = None) -> None:
    """Each ECS service of the scenario: its cluster, log group, task definition, load balancer and service
    (whose first deployment starts at once); ``ids`` gains ``ecs-cluster:NAME``, ``ecs-service:NAME``,
    ``task-definition:FAMILY``, and ``load-balancer:NAME``, ``target-group:NAME``, ``listener:NAME`` (the
    load balancer's name)."""
    for service in scenario.ecs_services:
        judge.apps[service.task_definition.image] = service.app
    for express in scenario.ecs_express_services:
        judge.apps[express.image] = express.app
    for service in scenario.ecs_services:
        if f"ecs-cluster:{service.cluster}" not in ids:
            ids[f"ecs-cluster:{service.cluster}"] = emulator.call(
                "CreateCluster", {"clusterName": service.cluster})["cluster"]["clusterArn"]
        td = service.task_definition
        if td.log_group and td.log_group_exists and f"log-group:{td.log_group}" not in ids:
            logs = clients.client("logs")
            try:
                logs.create_log_group(logGroupName=td.log_group)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            ids[f"log-group:{td.log_group}"] = td.log_group
        ids[f"task-definition:{td.family}"] = emulator.call(
            "RegisterTaskDefinition", _task_definition(service, world, ids, scenario.region))[
                "taskDefinition"]["taskDefinitionArn"]
        balancing: dict[str, Any] = {}
        if service.load_balancer is not None:
            target_group = _load_balancer(scenario, service, ids, clients, fronts)
            balancing = {"loadBalancers": [{"targetGroupArn": target_group, "containerName": td.container,
                                            "containerPort": td.port}],
                         "healthCheckGracePeriodSeconds": service.health_check_grace_period}
        ids[f"ecs-service:{service.name}"] = emulator.call("CreateService", {
            "cluster": service.cluster, "serviceName": service.name,
            "taskDefinition": ids[f"task-definition:{td.family}"], "desiredCount": service.desired_count,
            "launchType": "FARGATE", **balancing,
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": [ids[f"subnet:{s}"] for s in service.subnets],
                "securityGroups": [ids[f"sg:{g}"] for g in service.security_groups],
                "assignPublicIp": "ENABLED" if service.assign_public_ip else "DISABLED"}},
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": service.circuit_breaker,
                                                                     "rollback": service.rollback}},
        })["service"]["serviceArn"]
    for express in scenario.ecs_express_services:
        _build_express(express, emulator, world, ids, scenario.region)


def _build_express(service: EcsExpressService, emulator: EcsEmulator, world: "World", ids: dict[str, str],
                   region: str) -> None:
    """``ids`` gains ``ecs-service:NAME`` and the managed resources: ``express-endpoint:NAME``,
    ``load-balancer:NAME``, ``target-group:NAME``, ``express-lb-sg:NAME``, ``express-service-sg:NAME``."""
    container: dict[str, Any] = {
        "image": service.image, "containerPort": service.container_port,
        "environment": [{"name": k, "value": world.substitute(v)} for k, v in service.environment],
    }
    secrets = _secrets(service.secrets, ids)
    if secrets:
        container["secrets"] = secrets
    if service.log_group:
        container["awsLogsConfiguration"] = {"logGroup": service.log_group, "logStreamPrefix": "ecs"}
    arn = emulator.call("CreateExpressGatewayService", {
        "serviceName": service.name, "cluster": service.cluster,
        "infrastructureRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsInfrastructureRoleForExpressServices",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        "healthCheckPath": service.health_check_path, "primaryContainer": container,
        "networkConfiguration": {"subnets": [ids[f"subnet:{s}"] for s in service.subnets],
                                 "securityGroups": [ids[f"sg:{g}"] for g in service.security_groups]},
        "cpu": service.cpu, "memory": service.memory, "scalingTarget": {"minTaskCount": service.min_tasks},
    }, region)["service"]["serviceArn"]
    ids[f"ecs-service:{service.name}"] = arn
    with emulator.lock:
        r = emulator.find_service(arn).express["resources"]
        ids.update({f"express-endpoint:{service.name}": r.endpoint, f"load-balancer:{service.name}": r.load_balancer_arn,
                    f"target-group:{service.name}": r.target_group_arn,
                    f"express-lb-sg:{service.name}": r.load_balancer_security_groups[0],
                    f"express-service-sg:{service.name}": r.service_security_groups[0]})
    if f"ecs-cluster:{service.cluster}" not in ids:
        ids[f"ecs-cluster:{service.cluster}"] = f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{service.cluster}"


def _secrets(refs: tuple[tuple[str, SecretRef], ...], ids: dict[str, str]) -> list[dict]:
    secrets = []
    for var, ref in refs:
        if ref.literal is not None:
            value_from = ref.literal
        elif ref.by_name:
            value_from = ref.secret or ""
        else:
            arn = ids[f"secret:{ref.secret}"]
            value_from = f"{arn}:{ref.json_key}::" if ref.json_key else arn
        secrets.append({"name": var, "valueFrom": value_from})
    return secrets


def _load_balancer(scenario: Scenario, service: EcsService, ids: dict[str, str], clients: Any,
                   fronts: "AlbFronts | None") -> str:
    """The service's ALB, target group (ip targets, HTTP, AWS's default intervals and thresholds) and
    HTTP listener forwarding to it, in moto; its front. The target group's ARN."""
    lb = service.load_balancer
    assert lb is not None
    if f"target-group:{lb.target_group.name}" in ids:  # shared with a service built before
        return ids[f"target-group:{lb.target_group.name}"]
    elbv2 = clients.client("elbv2")
    arn = elbv2.create_load_balancer(
        Name=lb.name, Subnets=[ids[f"subnet:{s}"] for s in lb.subnets],
        SecurityGroups=[ids[f"sg:{g}"] for g in lb.security_groups], Scheme=lb.scheme, Type="application",
        IpAddressType="ipv4")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = lb.target_group
    group = elbv2.create_target_group(
        Name=tg.name, Protocol="HTTP", Port=tg.port, VpcId=ids[f"vpc:{scenario.subnet(service.subnets[0]).vpc}"],
        TargetType="ip", HealthCheckProtocol="HTTP", HealthCheckPort="traffic-port", HealthCheckPath=tg.health_path,
        HealthCheckIntervalSeconds=30, HealthCheckTimeoutSeconds=5, HealthyThresholdCount=5, UnhealthyThresholdCount=2,
        Matcher={"HttpCode": tg.matcher})["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=lb.listener_port,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]
    ids[f"load-balancer:{lb.name}"] = arn
    ids[f"target-group:{tg.name}"] = group
    ids[f"listener:{lb.name}"] = listener["ListenerArn"]
    if fronts is not None:
        fronts.open(arn, internal=lb.scheme == "internal", listener_port=lb.listener_port)
    return group


def _task_definition(service: EcsService, world: "World", ids: dict[str, str], region: str) -> dict:
    td = service.task_definition
    container: dict[str, Any] = {
        "name": td.container, "image": td.image, "essential": True,
        "portMappings": [{"containerPort": td.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": world.substitute(v)} for k, v in td.environment],
    }
    secrets = _secrets(td.secrets, ids)
    if secrets:
        container["secrets"] = secrets
    if td.log_group:
        container["logConfiguration"] = {"logDriver": "awslogs", "options": {
            "awslogs-group": td.log_group, "awslogs-region": region, "awslogs-stream-prefix": td.log_stream_prefix}}
    return {
        "family": td.family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": td.cpu, "memory": td.memory, "containerDefinitions": [container],
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
    }
