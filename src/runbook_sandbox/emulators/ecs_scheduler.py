"""The ECS emulator's scheduler: services, their deployments and the tasks those run.

Time: a launched task is ``PROVISIONING`` for ``deploy_seconds``; then the
judge decides it: ``None`` means the task turns ``RUNNING``, a :class:`StopReason`
means it ends ``STOPPED`` with that reason (a ``TaskFailedToStart`` task never
ran; any other stop code ran and then stopped). Every settled task runs one
reconcile step of its service, under the lock:

* the ``PRIMARY`` deployment launches tasks until its running + pending tasks
  reach its desired count (one subnet after the other), unless it ``FAILED``;
* a failed task adds to the deployment's ``failedTasks`` (a running one resets
  it, as ECS does); at the circuit breaker's threshold the deployment's
  ``rolloutState`` turns ``FAILED`` ("ECS deployment circuit breaker: tasks
  failed to start."); with ``rollback`` the newest ``COMPLETED`` deployment is
  promoted back to ``PRIMARY`` (``IN_PROGRESS`` again), the failed one is
  ``ACTIVE`` with desired 0, and its service deployment is
  ``ROLLBACK_IN_PROGRESS`` until the restored one is steady, then
  ``ROLLBACK_SUCCESSFUL``. No completed deployment to go back to: the failed one
  stays ``PRIMARY`` and launches nothing more (``ROLLBACK_FAILED``, or
  ``STOPPED`` without rollback; both unverified against AWS);
* behind a load balancer (a :data:`TargetHealth` plugged in, and the task's
  revision names target groups), a ``RUNNING`` task counts only once its
  targets are ``healthy``, and only then resets ``failedTasks``. Its targets
  answer ``initial`` for ``health_check_seconds`` (half of ``deploy_seconds``:
  the sandbox's stand-in for AWS's healthy threshold times the interval); a
  target then ``unhealthy`` is ignored until the grace period has passed
  (``healthCheckGracePeriodSeconds`` scaled to the pace: ``deploy_seconds``
  stands for one minute of AWS time), then the task is stopped
  (``ServiceSchedulerInitiated``, "Task failed ELB health checks in
  (target-group ARN)", with the event "(service S) (task T) (port P) is
  unhealthy in (target-group ARN) due to (reason ...)") and counts as failed.
  Targets are asked again when :meth:`Scheduler.recheck_targets` is called (the
  sandbox does after each change to EC2 or ELBv2), so a healthy task whose
  load balancer loses its way in is replaced too;
* once the ``PRIMARY`` deployment runs its desired count with nothing pending,
  the tasks of every other deployment are stopped and those deployments
  dropped (minimumHealthyPercent 100: old tasks serve until then), and it
  is ``COMPLETED`` with the events "deployment completed" and "has reached a
  steady state".

The judge and the target health are called outside the lock (it may read moto over HTTP); its answer
is applied only if the task is still the one it judged (not reset meanwhile).
"""

from __future__ import annotations

import copy
import ipaddress
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    cidr: str
    availability_zone: str = "us-east-1a"
    vpc_id: str = ""


@dataclass(frozen=True)
class StopReason:
    """Why a task stopped, as ``DescribeTasks`` shows it.

    ``stop_code``: ``TaskFailedToStart`` (e.g. ``CannotPullContainerError``,
    ``ResourceInitializationError``), ``EssentialContainerExited`` (the app
    exited; ``exit_code`` 1), ``ServiceSchedulerInitiated`` (e.g. "Task failed
    ELB health checks in (target-group ...)")."""

    stop_code: str
    stopped_reason: str
    container_reason: str = ""
    exit_code: int | None = None


class Judge(Protocol):
    """Whether a task starts healthy: ``None``, or why it stops.

    ``service``: the service as ``DescribeServices`` shows it (its
    ``loadBalancers``, ``healthCheckGracePeriodSeconds``...); ``task_definition``:
    as ``DescribeTaskDefinition`` shows it (images, ``environment``, ``secrets``,
    ``logConfiguration``); ``subnet``: where the task's ENI is;
    ``assign_public_ip``: ``ENABLED`` or ``DISABLED``."""

    def __call__(self, service: dict, task_definition: dict, subnet: Subnet,
                 assign_public_ip: str) -> StopReason | None: ...


class TargetHealth(Protocol):
    """The health of a ``RUNNING`` task's targets, one entry per load balancer of its revision
    (``loadBalancers[{targetGroupArn, containerName, containerPort}]``): ``{"targetGroupArn",
    "state", "reason", "description"}`` as ``DescribeTargetHealth``'s ``TargetHealth`` says
    (``state`` ``initial`` | ``healthy`` | ``unhealthy`` | ``unused`` | ...), leaving out a
    target group it does not know (nothing to wait for). ``service`` and ``task`` as
    ``DescribeServices`` and ``DescribeTasks`` show them."""

    def __call__(self, service: dict, task: dict, load_balancers: list[dict]) -> list[dict]: ...


def healthy(service: dict, task_definition: dict, subnet: Subnet, assign_public_ip: str) -> StopReason | None:
    """The default judge: every task starts and stays healthy."""
    return None


Network = Callable[[str, str], "Subnet | None"]
"""``network(region, subnet_id)``: the subnet, or ``None`` if the region has no such subnet."""


def ec2_network(client_for: Callable[[str], Any]) -> Network:
    """A :data:`Network` reading subnets from EC2 (moto): ``client_for(region)`` gives a boto3 EC2 client."""

    def network(region: str, subnet_id: str) -> Subnet | None:
        client = client_for(region)
        try:
            found = client.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        except client.exceptions.ClientError:
            return None
        if not found:
            return None
        s = found[0]
        return Subnet(s["SubnetId"], s["CidrBlock"], s.get("AvailabilityZone", ""), s.get("VpcId", ""))

    return network


Observer = Callable[..., None]
"""``observer(kind, **data)``: ``task-running`` / ``task-stopped`` (``task``: its DescribeTasks view,
``service``: the service name, ``load_balancers``), ``changed`` (``why``), ``error`` (a timer's failure).
For the ELB shim (register and deregister task IPs) and the sandbox. It is called under the
emulator's lock: keep it short; its exceptions are swallowed."""


@dataclass
class TaskRecord:
    arn: str
    id: str
    region: str
    cluster_arn: str
    service_arn: str
    service_key: str
    service_name: str
    deployment_id: str
    task_definition: dict  # as DescribeTaskDefinition shows it
    subnet: Subnet
    ip: str
    eni: str
    assign_public_ip: str
    created_at: float
    security_groups: tuple[str, ...] = ()
    load_balancers: list[dict] = field(default_factory=list)  # its revision's, as DescribeServices shows them
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop: StopReason | None = None
    version: int = 1
    timer: threading.Timer | None = None
    checks_from: float = 0.0  # behind a load balancer: its targets have an answer from then on (before: initial)
    grace_until: float = math.inf  # set by settle(): the grace period is over (else: started_at + the service's)
    target_healthy: bool = False
    check_timer: threading.Timer | None = None


@dataclass
class DeploymentRecord:
    id: str
    task_definition: str  # ARN
    network: dict  # awsvpcConfiguration
    desired: int
    created_at: float
    updated_at: float
    threshold: int
    service_deployment_arn: str
    revision_arn: str
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    rollout_reason: str = ""
    failed_tasks: int = 0
    next_subnet: int = 0
    unstable_reported: bool = False
    not_before: float = 0.0  # a rolled-back-to deployment is steady no sooner than this


@dataclass
class ServiceRecord:
    arn: str
    name: str
    region: str
    cluster_arn: str
    created_at: float
    config: dict  # the Service members the caller controls, as DescribeServices shows them
    management: str = "CUSTOMER"  # resourceManagementType; ECS for Express Mode
    status: str = "ACTIVE"
    deployments: list[DeploymentRecord] = field(default_factory=list)  # PRIMARY first
    events: list[dict] = field(default_factory=list)  # newest first, at most 100
    service_deployments: list[dict] = field(default_factory=list)  # ServiceDeployment shapes, oldest first
    revisions: dict[str, dict] = field(default_factory=dict)  # ServiceRevision shapes by ARN
    targets: dict[str, str] = field(default_factory=dict)  # service deployment ARN -> its target revision ARN
    express: dict | None = None  # Express Mode's own state (ecs_express.py)
    deleted_at: float | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # a deleted service's ARN comes back with its name

    @property
    def primary(self) -> DeploymentRecord | None:
        return self.deployments[0] if self.deployments else None

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    def service_deployment(self, arn: str) -> dict | None:
        return next((sd for sd in self.service_deployments if sd["serviceDeploymentArn"] == arn), None)


def threshold_of(circuit_breaker: dict, desired: int) -> int:
    """The circuit breaker's failed-task threshold (BOUNDED_PERCENT 50 by default: half the desired
    count, at least 3 and at most 200)."""
    conf = circuit_breaker.get("thresholdConfiguration") or {"type": "BOUNDED_PERCENT", "value": 50}
    value = int(conf.get("value", 50))
    if conf.get("type") == "COUNT":
        return max(1, value)
    share = math.ceil(desired * value / 100)
    return max(3, share) if conf.get("type") == "UNBOUNDED_PERCENT" else min(200, max(3, share))


def _hex(n: int) -> str:
    return (uuid.uuid4().hex * 2)[:n]


class Scheduler:
    """Tasks, deployments and events of every service; all state is guarded by ``lock``."""

    def __init__(self, judge: Judge, network: Network, observer: Observer | None,
                 task_definition_view: Callable[[str], dict], service_view: Callable[[ServiceRecord], dict]) -> None:
        self.judge = judge
        self.target_health: TargetHealth | None = None  # None: tasks behind a load balancer count when RUNNING
        self.network = network
        self.observer = observer
        self.task_definition_view = task_definition_view
        self.service_view = service_view
        self.lock = threading.RLock()
        self.deploy_seconds = 10.0
        self.generation = 0
        self.services: dict[str, ServiceRecord] = {}  # key -> record, in creation order
        self.tasks: dict[str, TaskRecord] = {}  # ARN -> record, in launch order
        self._subnets: dict[tuple[str, str], Subnet] = {}  # a subnet's CIDR never changes: ask the network once

    @property
    def health_check_seconds(self) -> float:
        """How long a new target answers ``initial``."""
        return self.deploy_seconds / 2

    def grace_seconds(self, service_config: dict) -> float:
        """``healthCheckGracePeriodSeconds`` at the sandbox's pace (``deploy_seconds`` per AWS minute)."""
        return int(service_config.get("healthCheckGracePeriodSeconds") or 0) * self.deploy_seconds / 60

    def task_at(self, ip: str, vpc_id: str | None = None) -> TaskRecord | None:
        """The live (not ``STOPPED``) task holding ``ip`` (in ``vpc_id`` when given)."""
        with self.lock:
            return next((t for t in self.tasks.values() if t.ip == ip and t.last_status != "STOPPED"
                         and (not vpc_id or not t.subnet.vpc_id or t.subnet.vpc_id == vpc_id)), None)

    def subnet(self, region: str, subnet_id: str) -> Subnet | None:
        """The subnet from the network (moto, perhaps: called outside the lock where it can be)."""
        key = (region, subnet_id)
        if key not in self._subnets:
            found = self.network(region, subnet_id)
            if found is None:
                return None
            self._subnets[key] = found
        return self._subnets[key]

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            tasks = list(self.tasks.values())
            self.services.clear()
            self.tasks.clear()
            self._subnets.clear()
        for task in tasks:
            for timer in (task.timer, task.check_timer):
                if timer is not None:
                    timer.cancel()

    def settle(self, rounds: int = 100) -> bool:
        """Run the clock forward: judge every pending task now, end every rollback's wait and every
        target's initial checks and grace period, until nothing is pending (True) or ``rounds`` passed
        (False: tasks keep failing without a circuit breaker). For scenarios that build a history, and
        for tests that must not race a timer."""
        for _ in range(rounds):
            with self.lock:
                generation = self.generation
                now = time.time()
                checking = [t for t in self.tasks.values() if t.check_timer is not None]
                for task in checking:
                    task.check_timer.cancel()
                    task.check_timer = None
                    task.checks_from = min(task.checks_from, now)
                    task.grace_until = min(task.grace_until, now)
            for task in checking:
                self._check_target(generation, task.arn)
            with self.lock:
                pending = [t for t in self.tasks.values() if t.last_status == "PROVISIONING"]
                waiting = [s for s in self.services.values() if s.primary is not None
                           and s.primary.rollout_state == "IN_PROGRESS" and s.primary.not_before > time.time()]
                for record in waiting:
                    record.primary.not_before = 0.0
                    self._reconcile(record)
                if not pending and not waiting and not any(t.check_timer is not None for t in self.tasks.values()):
                    return True
            for task in pending:
                if task.timer is not None:
                    task.timer.cancel()
                self._settle(generation, task.arn)  # a timer that fired meanwhile wins; this one then does nothing
        return False

    # ------------------------------------------------------------------ deployments

    def deploy(self, record: ServiceRecord, *, reason: str) -> DeploymentRecord:
        """Under the lock: a new PRIMARY deployment of the record's current configuration.
        ``reason`` is the ``statusReason`` its service deployment opens with (unused by AWS; kept short)."""
        now = time.time()
        config = record.config
        breaker = (config.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
        desired = int(config.get("desiredCount", 0))
        cluster = record.cluster_arn.rsplit("/", 1)[1]
        sd_id = _hex(22)
        revision_arn = f"arn:aws:ecs:{record.region}:{ACCOUNT}:service-revision/{cluster}/{record.name}/{_hex(19)}"
        sd_arn = f"arn:aws:ecs:{record.region}:{ACCOUNT}:service-deployment/{cluster}/{record.name}/{sd_id}"
        network = copy.deepcopy((config.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {})
        deployment = DeploymentRecord(
            id=f"ecs-svc/{uuid.uuid4().int % 10**19:019d}", task_definition=config["taskDefinition"],
            network=network, desired=desired, created_at=now, updated_at=now,
            threshold=threshold_of(breaker, desired), service_deployment_arn=sd_arn, revision_arn=revision_arn)
        deployment.rollout_reason = f"ECS deployment {deployment.id} in progress."
        sources = []
        for old in record.deployments:
            old.status = "ACTIVE"
            old.updated_at = now
            if old.rollout_state == "IN_PROGRESS":  # superseded before it finished
                self._stop_pending(record, old, "Scaling activity initiated by (deployment %s)" % deployment.id)
                old.desired = self._counts(old)[0]
                sd = record.service_deployment(old.service_deployment_arn)
                if sd is not None and sd["status"] in ("PENDING", "IN_PROGRESS"):
                    self._finish_sd(sd, "STOPPED", "Stopped: a newer service deployment started.", now)
            sources.append({"arn": old.revision_arn, "requestedTaskCount": old.desired,
                            "runningTaskCount": self._counts(old)[0], "pendingTaskCount": self._counts(old)[1]})
        record.deployments.insert(0, deployment)
        record.targets[sd_arn] = revision_arn
        record.revisions[revision_arn] = {
            "serviceRevisionArn": revision_arn, "serviceArn": record.arn, "clusterArn": record.cluster_arn,
            "taskDefinition": deployment.task_definition, "launchType": config.get("launchType", "FARGATE"),
            "platformVersion": config.get("platformVersion", "LATEST"),
            "loadBalancers": copy.deepcopy(config.get("loadBalancers", [])),
            "networkConfiguration": {"awsvpcConfiguration": copy.deepcopy(network)},
            "containerImages": [{"containerName": c.get("name", ""), "image": c.get("image", "")}
                                for c in self.task_definition_view(deployment.task_definition)["containerDefinitions"]],
            "createdAt": now,
        }
        if config.get("loadBalancers"):  # which target groups serve this revision
            record.revisions[revision_arn]["resolvedConfiguration"] = {"loadBalancers": [
                {"targetGroupArn": lb["targetGroupArn"]} for lb in config["loadBalancers"] if lb.get("targetGroupArn")]}
        record.service_deployments.append({
            "serviceDeploymentArn": sd_arn, "serviceArn": record.arn, "clusterArn": record.cluster_arn,
            "createdAt": now, "startedAt": now, "updatedAt": now, "sourceServiceRevisions": sources,
            "status": "IN_PROGRESS", "statusReason": reason, "lifecycleStage": "SCALE_UP",
            "deploymentConfiguration": copy.deepcopy(config.get("deploymentConfiguration") or {}),
            "deploymentCircuitBreaker": {"status": "MONITORING" if breaker.get("enable") else "DISABLED",
                                         "failureCount": 0, "threshold": deployment.threshold},
            "alarms": {"status": "DISABLED"},
        })
        self._reconcile(record)
        return deployment

    def scale(self, record: ServiceRecord, desired: int) -> None:
        """Under the lock: a new desired count for the PRIMARY deployment (no new deployment)."""
        primary = record.primary
        if primary is None:
            return
        primary.desired = desired
        primary.updated_at = time.time()
        running = [t for t in self._tasks_of(primary) if t.desired_status == "RUNNING"]
        for task in running[desired:]:
            self._stop_task(record, task, StopReason("ServiceSchedulerInitiated",
                                                     f"Scaling activity initiated by (deployment {primary.id})"))
        self._reconcile(record)

    def drain(self, record: ServiceRecord) -> None:
        """Under the lock: DeleteService. Every task stops; the service is INACTIVE once none is left."""
        record.status = "DRAINING"
        for deployment in record.deployments:
            deployment.desired = 0
            for task in self._tasks_of(deployment):
                if task.desired_status == "RUNNING":
                    self._stop_task(record, task, StopReason("ServiceSchedulerInitiated", "Service deleted"))
        self._reconcile(record)

    # ------------------------------------------------------------------ tasks

    def _tasks_of(self, deployment: DeploymentRecord) -> list[TaskRecord]:
        return [t for t in self.tasks.values() if t.deployment_id == deployment.id and t.last_status != "STOPPED"]

    def _counts(self, deployment: DeploymentRecord) -> tuple[int, int]:
        """(running, pending) tasks of a deployment."""
        tasks = self._tasks_of(deployment)
        running = sum(1 for t in tasks if t.last_status == "RUNNING" and t.desired_status == "RUNNING")
        pending = sum(1 for t in tasks if t.last_status == "PROVISIONING")
        return running, pending

    def counts(self, deployment: DeploymentRecord) -> tuple[int, int]:
        with self.lock:
            return self._counts(deployment)

    def _launch(self, record: ServiceRecord, deployment: DeploymentRecord) -> TaskRecord:
        subnets = deployment.network.get("subnets") or []
        subnet_id = subnets[deployment.next_subnet % len(subnets)]
        deployment.next_subnet += 1
        subnet = self.subnet(record.region, subnet_id) or Subnet(subnet_id, "10.0.0.0/24")  # validated when given
        revision = record.revisions.get(deployment.revision_arn) or {}
        task_id = _hex(32)
        cluster = record.cluster_arn.rsplit("/", 1)[1]
        task = TaskRecord(
            arn=f"arn:aws:ecs:{record.region}:{ACCOUNT}:task/{cluster}/{task_id}", id=task_id, region=record.region,
            cluster_arn=record.cluster_arn, service_arn=record.arn, service_key=record.key, service_name=record.name,
            deployment_id=deployment.id, task_definition=self.task_definition_view(deployment.task_definition),
            subnet=subnet, ip=self._free_ip(subnet), eni=f"eni-{_hex(17)}",
            assign_public_ip=deployment.network.get("assignPublicIp", "DISABLED"), created_at=time.time(),
            security_groups=tuple(deployment.network.get("securityGroups") or ()),
            load_balancers=[lb for lb in copy.deepcopy(revision.get("loadBalancers", [])) if lb.get("targetGroupArn")])
        self.tasks[task.arn] = task
        timer = threading.Timer(self.deploy_seconds, self._settle, args=(self.generation, task.arn))
        timer.daemon = True
        timer.name = f"ecs-task-{record.name}-{task_id[:8]}"
        task.timer = timer
        timer.start()
        return task

    def _free_ip(self, subnet: Subnet) -> str:
        """The lowest address of the subnet that no live task holds (AWS keeps the first four and the last)."""
        network = ipaddress.ip_network(subnet.cidr, strict=False)
        taken = {t.ip for t in self.tasks.values() if t.subnet.subnet_id == subnet.subnet_id and t.last_status != "STOPPED"}
        for offset in range(4, network.num_addresses - 1):
            candidate = str(network.network_address + offset)
            if candidate not in taken:
                return candidate
        raise RuntimeError(f"subnet {subnet.subnet_id} ({subnet.cidr}) has no free address")

    def _settle(self, generation: int, task_arn: str) -> None:
        try:
            with self.lock:
                task = self.tasks.get(task_arn)
                if generation != self.generation or task is None or task.last_status != "PROVISIONING":
                    return
                record = self.services[task.service_key]
                service = self.service_view(record)
                task_definition = copy.deepcopy(task.task_definition)
            verdict = self.judge(service, task_definition, task.subnet, task.assign_public_ip)
            with self.lock:
                if generation != self.generation or self.tasks.get(task_arn) is not task \
                        or task.last_status != "PROVISIONING":
                    return
                self._settled(record, task, verdict)
        except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
            self._timer_failed(generation, "ecs task timer", exc)

    def _settled(self, record: ServiceRecord, task: TaskRecord, verdict: StopReason | None) -> None:
        now = time.time()
        deployment = record.deployment(task.deployment_id)
        task.version += 1
        if verdict is None:
            task.last_status = "RUNNING"
            task.started_at = now
            behind = self._behind_load_balancer(task)
            if deployment is not None and not behind:
                deployment.failed_tasks = 0
            self._event(record, f"(service {record.name}) has started 1 tasks: (task {task.id}).")
            for lb in task.load_balancers:
                self._event(record, f"(service {record.name}) registered 1 targets in "
                                    f"(target-group {lb['targetGroupArn']})")
            self._notify("task-running", task=self.task_view(task), service=record.name,
                         load_balancers=copy.deepcopy(task.load_balancers))
            if behind:
                task.checks_from = now + self.health_check_seconds
                self._check_later(task, self.health_check_seconds)
        else:
            if verdict.stop_code != "TaskFailedToStart":
                task.started_at = now
            self._stop_task(record, task, verdict)
            self._count_failure(record, deployment)
        self._reconcile(record)

    def _count_failure(self, record: ServiceRecord, deployment: DeploymentRecord | None) -> None:
        if deployment is not None:
            deployment.failed_tasks += 1
            deployment.updated_at = time.time()
            sd = record.service_deployment(deployment.service_deployment_arn)
            if sd is not None:
                sd["deploymentCircuitBreaker"]["failureCount"] += 1

    # ------------------------------------------------------------------ load balancer target health

    def _behind_load_balancer(self, task: TaskRecord) -> bool:
        return self.target_health is not None and bool(task.load_balancers)

    def _ready(self, task: TaskRecord) -> bool:
        """A task that counts toward its deployment's steady state."""
        return task.last_status == "RUNNING" and task.desired_status == "RUNNING" \
            and (task.target_healthy or not self._behind_load_balancer(task))

    def _check_later(self, task: TaskRecord, seconds: float) -> None:
        if task.check_timer is not None:
            task.check_timer.cancel()
        timer = threading.Timer(max(0.0, seconds) + 0.01, self._check_target, args=(self.generation, task.arn))
        timer.daemon = True
        timer.name = f"ecs-targets-{task.service_name}-{task.id[:8]}"
        task.check_timer = timer
        timer.start()

    def recheck_targets(self) -> None:
        """Ask again for the targets of every running task behind a load balancer whose initial checks are
        over (after a change to the network or the target group: it may have healed, or broken, them)."""
        now = time.time()
        with self.lock:
            generation = self.generation
            arns = [t.arn for t in self.tasks.values() if t.last_status == "RUNNING" and t.desired_status == "RUNNING"
                    and self._behind_load_balancer(t) and t.checks_from <= now]
        for arn in arns:
            self._check_target(generation, arn)

    def _check_target(self, generation: int, task_arn: str) -> None:
        try:
            with self.lock:
                task = self.tasks.get(task_arn)
                if generation != self.generation or task is None or not self._behind_load_balancer(task) \
                        or task.last_status != "RUNNING" or task.desired_status != "RUNNING":
                    return
                if task.check_timer is not None and task.check_timer is not threading.current_thread():
                    task.check_timer.cancel()
                task.check_timer = None
                record = self.services[task.service_key]
                service, view = self.service_view(record), self.task_view(task)
                load_balancers = copy.deepcopy(task.load_balancers)
            health = self.target_health
            states = health(service, view, load_balancers) if health is not None else []
            with self.lock:
                if generation != self.generation or self.tasks.get(task_arn) is not task \
                        or task.last_status != "RUNNING" or task.desired_status != "RUNNING":
                    return
                self._judged_targets(record, task, states)
        except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
            self._timer_failed(generation, "ecs target health", exc)

    def _timer_failed(self, generation: int, where: str, exc: Exception) -> None:
        """Record a timer's failure, unless the world it judged was replaced while it ran: a
        judge reading moto across a reset fails on resources (VPCs, groups) of the old world."""
        with self.lock:
            if generation != self.generation:
                return
        self._notify("error", where=where, error=f"{type(exc).__name__}: {exc}")

    def _judged_targets(self, record: ServiceRecord, task: TaskRecord, states: list[dict]) -> None:
        now = time.time()
        deployment = record.deployment(task.deployment_id)
        if all(s.get("state") == "healthy" for s in states):  # none: no target group to wait for
            if not task.target_healthy:
                task.target_healthy = True
                if deployment is not None:
                    deployment.failed_tasks = 0
                self._reconcile(record)
            return
        task.target_healthy = False
        bad = next((s for s in states if s.get("state") == "unhealthy"), None)
        if bad is None:
            if any(s.get("state") == "initial" for s in states):  # at the end of its initial checks, or a while on
                self._check_later(task, task.checks_from - now if task.checks_from > now else self.health_check_seconds)
            return  # unused, unavailable: nothing checks it until something changes (recheck_targets)
        # The grace period in force now (UpdateService may change it without a deployment).
        grace_end = min(task.grace_until, (task.started_at or now) + self.grace_seconds(record.config))
        if now < grace_end:
            self._check_later(task, grace_end - now)
            return
        lb = next((lb for lb in task.load_balancers if lb["targetGroupArn"] == bad["targetGroupArn"]), {})
        self._event(record, f"(service {record.name}) (task {task.id}) (port {lb.get('containerPort')}) is unhealthy in "
                            f"(target-group {bad['targetGroupArn']}) due to (reason {bad.get('description') or bad.get('reason')}).")
        self._stop_task(record, task, StopReason(
            "ServiceSchedulerInitiated", f"Task failed ELB health checks in (target-group {bad['targetGroupArn']})"))
        self._count_failure(record, deployment)
        self._reconcile(record)

    def _stop_task(self, record: ServiceRecord, task: TaskRecord, reason: StopReason) -> None:
        now = time.time()
        was_running = task.last_status == "RUNNING"
        for timer in (task.timer, task.check_timer):
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
        task.timer = task.check_timer = None
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopping_at = task.stopped_at = now
        task.stop = reason
        task.version += 1
        if was_running:
            self._event(record, f"(service {record.name}) has stopped 1 running tasks: (task {task.id}).")
            for lb in task.load_balancers:
                self._event(record, f"(service {record.name}) deregistered 1 targets in "
                                    f"(target-group {lb['targetGroupArn']})")
        self._notify("task-stopped", task=self.task_view(task), service=record.name,
                     load_balancers=copy.deepcopy(task.load_balancers) if was_running else [])

    def _stop_pending(self, record: ServiceRecord, deployment: DeploymentRecord, why: str) -> None:
        for task in self._tasks_of(deployment):
            if task.last_status == "PROVISIONING":
                self._stop_task(record, task, StopReason("ServiceSchedulerInitiated", why))

    # ------------------------------------------------------------------ the reconcile step

    def _reconcile(self, record: ServiceRecord) -> None:
        primary = record.primary
        if primary is None:
            return
        breaker = (record.config.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
        if primary.rollout_state == "IN_PROGRESS" and primary.failed_tasks >= primary.threshold:
            if not primary.unstable_reported:
                primary.unstable_reported = True
                self._event(record, f"(service {record.name}) is unable to consistently start tasks successfully. "
                                    "For more information, see the Troubleshooting section of the Amazon ECS "
                                    "Developer Guide.")
            if breaker.get("enable"):
                self._trip(record, primary, rollback=bool(breaker.get("rollback")))
                primary = record.primary
                assert primary is not None
        if record.status == "ACTIVE" and primary.rollout_state != "FAILED":
            running, pending = self._counts(primary)
            for _ in range(max(0, primary.desired - running - pending)):
                self._launch(record, primary)
        _, pending = self._counts(primary)
        ready = sum(1 for t in self._tasks_of(primary) if self._ready(t))
        if record.status == "ACTIVE" and ready >= primary.desired and pending == 0 \
                and primary.rollout_state == "IN_PROGRESS" and time.time() >= primary.not_before:
            self._steady(record, primary)
        if record.status == "DRAINING" and not any(self._tasks_of(d) for d in record.deployments):
            record.status = "INACTIVE"
            record.deleted_at = time.time()
        self._notify("changed", why=f"ecs:{record.name}")

    def _trip(self, record: ServiceRecord, failed: DeploymentRecord, *, rollback: bool) -> None:
        now = time.time()
        failed.rollout_state = "FAILED"
        failed.rollout_reason = "ECS deployment circuit breaker: tasks failed to start."
        failed.updated_at = now
        self._event(record, f"(service {record.name}) (deployment {failed.id}) deployment failed: tasks failed to start.")
        sd = record.service_deployment(failed.service_deployment_arn)
        if sd is not None and "finishedAt" in sd:
            # A deployment restored by a rollback failed in its turn: the rollback failed.
            sd = next((s for s in record.service_deployments if s["status"] == "ROLLBACK_IN_PROGRESS"
                       and s.get("rollback", {}).get("serviceRevisionArn") == failed.revision_arn), None)
            if sd is not None:
                self._finish_sd(sd, "ROLLBACK_FAILED", "The deployment rolled back to failed in its turn.", now)
            return
        if sd is not None:
            sd["deploymentCircuitBreaker"]["status"] = "TRIGGERED"
            sd["updatedAt"] = now
        previous = next((d for d in record.deployments[1:] if d.rollout_state == "COMPLETED"), None)
        if not rollback or previous is None:
            if sd is not None:
                self._finish_sd(sd, "ROLLBACK_FAILED" if rollback else "STOPPED",
                                "Service deployment failed: the circuit breaker threshold was exceeded"
                                + ("; no earlier completed deployment to roll back to." if rollback else "."), now)
            return
        self._stop_pending(record, failed, "Scaling activity initiated by (deployment %s)" % previous.id)
        failed.status, failed.desired = "ACTIVE", 0
        record.deployments.remove(previous)
        record.deployments.insert(0, previous)
        previous.status, previous.desired = "PRIMARY", int(record.config.get("desiredCount", 0))
        previous.rollout_state, previous.updated_at = "IN_PROGRESS", now
        previous.rollout_reason = f"ECS deployment circuit breaker: rolling back to deploymentId {previous.id}."
        previous.failed_tasks = 0
        previous.not_before = now + self.deploy_seconds / 2
        self._later(record, self.deploy_seconds / 2)
        record.config["taskDefinition"] = previous.task_definition
        record.config["networkConfiguration"] = {"awsvpcConfiguration": copy.deepcopy(previous.network)}
        self._event(record, f"(service {record.name}) rolling back to deployment {previous.id}.")
        if sd is not None:
            sd["status"] = "ROLLBACK_IN_PROGRESS"
            sd["statusReason"] = "Service deployment rolled back because the circuit breaker threshold was exceeded."
            sd["rollback"] = {"reason": "Service deployment rolled back because the circuit breaker threshold "
                                        "was exceeded.", "startedAt": now, "serviceRevisionArn": previous.revision_arn}

    def _later(self, record: ServiceRecord, seconds: float) -> None:
        """Run a reconcile step of the service ``seconds`` from now."""
        generation = self.generation

        def step() -> None:
            with self.lock:
                if generation == self.generation and self.services.get(record.key) is record:
                    self._reconcile(record)

        timer = threading.Timer(seconds + 0.01, step)
        timer.daemon = True
        timer.name = f"ecs-reconcile-{record.name}"
        timer.start()

    def _steady(self, record: ServiceRecord, primary: DeploymentRecord) -> None:
        now = time.time()
        for old in record.deployments[1:]:
            for task in self._tasks_of(old):
                self._stop_task(record, task, StopReason(
                    "ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {primary.id})"))
            sd = record.service_deployment(old.service_deployment_arn)
            if sd is not None and sd["status"] == "ROLLBACK_IN_PROGRESS":
                self._finish_sd(sd, "ROLLBACK_SUCCESSFUL", "Service deployment rolled back successfully.", now)
        del record.deployments[1:]
        primary.rollout_state = "COMPLETED"
        primary.rollout_reason = f"ECS deployment {primary.id} completed."
        primary.updated_at = now
        sd = record.service_deployment(primary.service_deployment_arn)
        if sd is not None and sd["status"] == "IN_PROGRESS":
            self._finish_sd(sd, "SUCCESSFUL", "", now)
        self._event(record, f"(service {record.name}) (deployment {primary.id}) deployment completed.")
        self._event(record, f"(service {record.name}) has reached a steady state.")

    def _finish_sd(self, sd: dict, status: str, reason: str, now: float) -> None:
        sd["status"] = status
        if reason:
            sd["statusReason"] = reason
        else:
            sd.pop("statusReason", None)
        sd["updatedAt"] = sd["finishedAt"] = now
        sd["lifecycleStage"] = "CLEAN_UP"
        if sd["deploymentCircuitBreaker"]["status"] == "MONITORING":
            sd["deploymentCircuitBreaker"]["status"] = "MONITORING_COMPLETE"

    def _event(self, record: ServiceRecord, message: str) -> None:
        record.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": time.time(), "message": message})
        del record.events[100:]

    def _notify(self, kind: str, **data: Any) -> None:
        if self.observer is not None:
            try:
                self.observer(kind, **data)
            except Exception:  # noqa: BLE001, S110 - an observer's failure is not the emulator's
                pass

    # ------------------------------------------------------------------ views

    def task_view(self, task: TaskRecord) -> dict:
        """A task as ``DescribeTasks`` shows it."""
        td = task.task_definition
        stopped = task.last_status == "STOPPED"
        containers = []
        for c in td["containerDefinitions"]:
            container: dict[str, Any] = {
                "containerArn": f"arn:aws:ecs:{task.region}:{ACCOUNT}:container/{task.cluster_arn.rsplit('/', 1)[1]}/"
                                f"{task.id}/{uuid.uuid5(uuid.NAMESPACE_URL, task.id + c.get('name', ''))}",
                "taskArn": task.arn, "name": c.get("name", ""), "image": c.get("image", ""),
                "lastStatus": task.last_status if task.last_status != "PROVISIONING" else "PENDING",
                "networkInterfaces": [{"attachmentId": task.eni.replace("eni-", ""), "privateIpv4Address": task.ip}],
                "healthStatus": "UNKNOWN",
            }
            if stopped and task.stop is not None:
                if task.stop.container_reason:
                    container["reason"] = task.stop.container_reason
                if task.stop.exit_code is not None:
                    container["exitCode"] = task.stop.exit_code
            if task.last_status == "RUNNING" and "healthCheck" in c:
                container["healthStatus"] = "HEALTHY"
            containers.append(container)
        attachment_status = {"PROVISIONING": "PRECREATED", "RUNNING": "ATTACHED", "STOPPED": "DELETED"}[task.last_status]
        view: dict[str, Any] = {
            "attachments": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, task.eni)), "type": "ElasticNetworkInterface",
                             "status": attachment_status, "details": [
                                 {"name": "subnetId", "value": task.subnet.subnet_id},
                                 {"name": "networkInterfaceId", "value": task.eni},
                                 {"name": "macAddress", "value": "0e:" + ":".join(task.eni[4 + 2 * i:6 + 2 * i]
                                                                               for i in range(5))},
                                 {"name": "privateDnsName", "value": f"ip-{task.ip.replace('.', '-')}.ec2.internal"},
                                 {"name": "privateIPv4Address", "value": task.ip}]}],
            "availabilityZone": task.subnet.availability_zone, "clusterArn": task.cluster_arn,
            "containers": containers, "cpu": td.get("cpu", "256"), "memory": td.get("memory", "512"),
            "createdAt": task.created_at, "desiredStatus": task.desired_status, "group": f"service:{task.service_name}",
            "healthStatus": "HEALTHY" if task.last_status == "RUNNING" and any(
                "healthCheck" in c for c in td["containerDefinitions"]) else "UNKNOWN",
            "lastStatus": task.last_status, "launchType": "FARGATE", "platformVersion": "1.4.0",
            "platformFamily": "Linux", "startedBy": task.deployment_id, "taskArn": task.arn,
            "taskDefinitionArn": td["taskDefinitionArn"], "version": task.version,
            "connectivity": "CONNECTED" if task.last_status != "PROVISIONING" else "DISCONNECTED",
        }
        if task.started_at is not None:
            view["startedAt"] = view["pullStartedAt"] = task.started_at
            view["pullStoppedAt"] = view["connectivityAt"] = task.started_at
        if stopped and task.stop is not None:
            view.update(stopCode=task.stop.stop_code, stoppedReason=task.stop.stopped_reason,
                        stoppingAt=task.stopping_at, stoppedAt=task.stopped_at, executionStoppedAt=task.stopped_at)
        return view
