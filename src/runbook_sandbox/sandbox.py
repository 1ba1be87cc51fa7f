"""The sandbox: moto + the App Runner and ECS emulators + per-service URLs, loaded from a scenario."""

from __future__ import annotations

import copy
import shlex
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from runbook.errors import UsageError
from runbook_sandbox.alb import AlbFronts
from runbook_sandbox.ecs_express_world import MotoExpress
from runbook_sandbox.ecs_world import EcsObserver, TaskJudge, build_ecs
from runbook_sandbox.emulators.apprunner import ACCOUNT, AppRunnerEmulator, ServiceRecord
from runbook_sandbox.emulators.ecs import EcsEmulator
from runbook_sandbox.emulators.ecs_params import ApiError as EcsApiError
from runbook_sandbox.emulators.ecs_scheduler import ec2_network
from runbook_sandbox.faults import Faults
from runbook_sandbox.moto_server import DUMMY_KEY, Clients, MotoServer
from runbook_sandbox.reachability import AwsSnapshot, Egress, Verdict, evaluate
from runbook_sandbox.scenario import App, Scenario, Secret, Service
from runbook_sandbox.shims import elbv2 as elbv2_shims
from runbook_sandbox.target_health import FrontRoutes, SchedulerTargets, TargetJudge
from runbook_sandbox.world import World, build

# moto keeps its backends in process-wide state: every moto server in a process
# serves the same resources, and a reset through one resets them all. So when
# one Sandbox loads a world, any other started Sandbox in the process has lost
# its own: its deployment timers and service URLs are stopped at that moment,
# lest a late timer judge, or write logs into, a world that is not its own.
_STARTED: "weakref.WeakSet[Sandbox]" = weakref.WeakSet()
_STARTED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Event:
    """One entry of :meth:`Sandbox.history`.

    kinds: ``load``; ``aws-call`` (a mutating EC2/RDS/ElastiCache/ELBv2 call:
    service, action); ``apprunner-call`` (operation, service, operation_id);
    ``operation-rolling-back`` (a failed deployment of a running service turned
    ROLLBACK_IN_PROGRESS; same fields); ``operation-finished`` (service,
    operation, id, result, status, reasons, dependencies); ``reachability`` (service, label, env_var, target,
    reachable, reasons, cause: what changed it; first entry per dependency at
    load); ``fault`` (fault: ``throttled`` / ``denied`` with service, action,
    code; ``aws-down`` / ``aws-up`` with cause; ``hang-deployments`` with
    service); ``ecs-task`` (an ECS task ran or stopped: service, task, status,
    stop_code, reason); ``error`` (a failure inside a timer or watcher).
    """

    time: float
    kind: str
    data: dict = field(default_factory=dict)

    def __str__(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.data.items())
        return f"{self.time:.3f} {self.kind}: {details}"


class Sandbox:
    """A local twin of an AWS deployment, loaded from a :class:`Scenario`.

    ``deploy_seconds`` overrides how long every operation (deployments,
    service creation, pause/resume) takes, for every scenario; for ECS it is how
    long a task takes to start (default 10 s).

    Use one Sandbox per process where you can: moto's state is process-wide,
    so loading a scenario in one Sandbox wipes the world of any other (whose
    timers and service URLs are then stopped).

    ``faults`` (:class:`runbook_sandbox.faults.Faults`) injects throttling,
    access denied, flapping health and hung deployments;
    :meth:`stop_aws` / :meth:`start_aws` take the AWS endpoints down and back.
    ``load()`` lifts every fault.
    """

    def __init__(self, *, deploy_seconds: float | None = None) -> None:
        if deploy_seconds is not None and deploy_seconds <= 0:
            raise ValueError("deploy_seconds must be positive")
        self.deploy_seconds = deploy_seconds
        self.scenario: Scenario | None = None
        self.ids: dict[str, str] = {}
        self._hooks = _Hooks(self)
        self.faults = Faults()
        self._moto = MotoServer(on_mutation=self._hooks.aws_call, faults=self.faults)
        self._emulator = AppRunnerEmulator(self._hooks, self.faults)
        self._ecs_judge = TaskJudge(self)
        self._fronts = AlbFronts(FrontRoutes(self))
        self._ecs = EcsEmulator(judge=self._ecs_judge,
                                network=ec2_network(lambda region: self._moto.clients(region).client("ec2")),
                                observer=EcsObserver(self, self._ecs_judge), deploy_seconds=deploy_seconds or 10.0,
                                express=MotoExpress(self._moto.clients, self._fronts),
                                target_health=SchedulerTargets(self), faults=self.faults)
        self.faults.services = self._service_names
        self.faults.on_event = self._hooks.event
        self.faults.on_trigger = self._triggered
        self.faults.on_hang = self._emulator.suspend_hung
        self.faults.on_release = self._emulator.release_hung
        self._aws_lock = threading.RLock()
        self._restart_timer: threading.Timer | None = None
        self._clients: Clients | None = None
        self._region = "us-east-1"
        self._started = False
        self._stopped = False
        self._history: list[Event] = []
        self._history_lock = threading.Lock()
        self._load_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped Sandbox cannot be started again; make a new one")
        self._moto.start()
        try:
            self._emulator.start()
            try:
                self._ecs.start()
            except BaseException:
                self._emulator.stop()
                raise
        except BaseException:
            self._moto.stop()
            raise
        self._clients = self._moto.clients(self._region)
        self._started = True
        with _STARTED_LOCK:
            _STARTED.add(self)

    def stop(self) -> None:
        if not self._started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        with _STARTED_LOCK:
            _STARTED.discard(self)
        with self._aws_lock:
            self._cancel_restart()
        self._ecs.stop()
        self._fronts.close_all()
        self._emulator.stop()
        self._moto.stop()

    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def load(self, scenario: Scenario) -> None:
        """Forget the previous world and build ``scenario``'s. A scenario that
        moto refuses (say, an availability zone it does not know) raises
        :class:`runbook.errors.UsageError`; the sandbox stays usable."""
        if not self._started or self._stopped:
            raise RuntimeError("start() the Sandbox before load()")
        with self._load_lock:
            self._hooks.loading = True
            records: list[tuple[Service, ServiceRecord]] = []
            try:
                with _STARTED_LOCK:
                    others = [box for box in _STARTED if box is not self]
                for other in others:  # their worlds go with the moto reset below
                    other._emulator.reset(other._region)
                    other._ecs.reset(other._region)
                    other._fronts.close_all()
                    other.scenario = None
                self._emulator.reset(scenario.region)
                self._ecs.reset(scenario.region)
                self._fronts.close_all()
                elbv2_shims.install(target_health=TargetJudge(self), dns_names=self._fronts.address)
                self._ecs_judge.forget()
                self.faults._reset()
                with self._aws_lock:
                    self._cancel_restart()
                    self._start_endpoints()
                self._moto.reset()
                self._region = scenario.region
                self._clients = self._moto.clients(scenario.region)
                with self._history_lock:
                    self._history = []
                self._hooks.forget()
                self.scenario = None
                self.ids = {}
                try:
                    world = build(scenario, self._clients)
                except ClientError as err:  # valid on paper, refused by (moto's) AWS
                    text = str(err) if len(str(err)) <= 300 else str(err)[:300] + "..."
                    raise UsageError(f"scenario {scenario.source or scenario.name}: cannot be built: {text}") from None
                self.scenario = scenario
                ids = dict(world.ids)
                self._hooks.passwords = {db.id: db.master_password for db in scenario.databases}
                self._emulator.default_deploy_seconds = self.deploy_seconds or 20.0
                for secret in scenario.secrets:
                    try:
                        ids[f"secret:{secret.name}"] = self._create_secret(secret, world)
                    except ClientError as err:  # valid on paper, refused by moto
                        raise UsageError(f"scenario {scenario.source or scenario.name}: secrets: {secret.name}: "
                                         f"cannot be built: {str(err)[:300]}") from None
                for connector in scenario.connectors:
                    ids[f"connector:{connector.name}"] = self._emulator.add_connector(
                        connector.name,
                        [ids[f"subnet:{s}"] for s in connector.subnets],
                        [ids[f"sg:{g}"] for g in connector.security_groups],
                        connector.status,
                    )
                for service in scenario.services:
                    hidden = None
                    if service.code is not None and service.code.configuration_source == "REPOSITORY":
                        hidden = self._run_values(service, world, ids)  # its apprunner.yaml
                    self._emulator.register_image(service.image, service.app, hidden)
                for service in scenario.services:
                    record = self._emulator.add_service(
                        name=service.name,
                        config=self._config(service, world, ids),
                        status=service.status,
                        operations=[(op.type, op.status) for op in service.operations],
                        deploy_seconds=self.deploy_seconds or service.deploy_seconds,
                        arm=False,
                    )
                    ids[f"service:{service.name}"] = record.arn
                    ids[f"service-id:{service.name}"] = record.id
                    for kind in ("service", "application"):
                        ids[f"log-group:{service.name}/{kind}"] = self._hooks.log_group(record, kind)
                    records.append((service, record))
                try:
                    build_ecs(scenario, self._ecs, self._ecs_judge, world, ids, self._clients, self._fronts)
                except (ClientError, EcsApiError) as err:  # valid on paper, refused by moto or the emulator
                    raise UsageError(f"scenario {scenario.source or scenario.name}: ecs_services: "
                                     f"cannot be built: {str(err)[:300]}") from None
                self.ids = ids
                for service, record in records:
                    newest = record.operations[-1]["Id"] if record.operations else None
                    if service.service_logs:
                        stream = f"deployment/{newest}" if newest else "events"
                        self._hooks.write_logs(record, "service", stream,
                                               [world.substitute(line) for line in service.service_logs])
                    if service.application_logs:
                        self._hooks.write_logs(record, "application", f"instance/{record.id[:16]}",
                                               [world.substitute(line) for line in service.application_logs])
            finally:
                self._hooks.loading = False
            self._hooks.event("load", scenario=scenario.name, source=scenario.source)
            self._hooks.changed("load")
            for _, record in records:
                self._emulator.arm(record)

    # ------------------------------------------------------------------ endpoints down and back

    def stop_aws(self, *, down_for: float | None = None) -> None:
        """Take the AWS endpoints down: the moto listener and the App Runner and ECS emulators'
        stop listening (boto3 gets ``EndpointConnectionError``) and drop their open
        connections. Every resource stays; deployments in flight go on and end on
        time; service URLs stay up. ``down_for``: come back by themselves that many
        seconds later (else :meth:`start_aws`)."""
        if down_for is not None and down_for <= 0:
            raise ValueError("down_for must be positive")
        self._stop_endpoints(down_for, "stop_aws()")

    def start_aws(self) -> None:
        """Listen again on the same ports: :attr:`env` is still right, the world unchanged."""
        with self._aws_lock:
            self._cancel_restart()
            if self._start_endpoints():
                self._hooks.event("fault", fault="aws-up", cause="start_aws()")

    @property
    def aws_up(self) -> bool:
        """Whether the AWS endpoints are listening."""
        return self._moto.up and self._emulator.up and self._ecs.up

    # ------------------------------------------------------------------ what tests and the CLI read

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self._moto.url,
            "AWS_ENDPOINT_URL_APPRUNNER": self._emulator.url,
            "AWS_ENDPOINT_URL_ECS": self._ecs.url,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_DEFAULT_REGION": self._region,
        }

    def export_lines(self) -> list[str]:
        return [f"export {key}={shlex.quote(value)}" for key, value in self.env.items()]

    def client(self, service: str) -> Any:
        """A boto3 client for this sandbox (App Runner and ECS go to their emulators, the rest to moto),
        on the public endpoints: faults apply to it as to the tool."""
        import boto3

        endpoint = {"apprunner": self._emulator.url, "ecs": self._ecs.url}.get(service, self._moto.url)
        return boto3.client(service, endpoint_url=endpoint, region_name=self._region,
                            aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)

    def app_health(self, service_name: str) -> tuple[bool, list[str]]:
        """Ground truth now: would the service's app, deployed with its current
        configuration, start and pass its health check? And if not, why not."""
        record = self._emulator.find(service_name)
        with self._emulator.lock:
            config = copy.deepcopy(record.config)
        health = self._emulator.health(config, self._emulator.app_for(config))
        return health.healthy, list(health.reasons)

    def dependencies(self, service_name: str) -> list[Verdict]:
        """One reachability verdict per dependency the service's app needs."""
        record = self._emulator.find(service_name)
        with self._emulator.lock:
            config = copy.deepcopy(record.config)
        return self._hooks.dependencies(config, self._emulator.app_for(config))

    def service_state(self, service_name: str) -> dict:
        """The emulator's view: status, serving, url, operations (newest first), in_flight, env, config."""
        return self._emulator.state(service_name)

    def wait_idle(self, service_name: str, timeout: float = 30.0) -> dict:
        """Block until the service has no operation in flight; return its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.service_state(service_name)
            if state["in_flight"] is None:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service_name}: {state['in_flight']['Type']} still in flight after {timeout}s")
            time.sleep(0.05)

    def history(self) -> list[Event]:
        with self._history_lock:
            return list(self._history)

    # ------------------------------------------------------------------ internals

    def _service_names(self) -> list[str]:
        with self._emulator.lock:
            return [record.name for record in self._emulator.services.values()]

    def _triggered(self, down_for: float | None, cause: str) -> None:
        """A ``stop_aws_after`` fired, in the thread about to answer the call: spare its connection."""
        self._stop_endpoints(down_for, cause, spare_thread=threading.get_ident())

    def _stop_endpoints(self, down_for: float | None, cause: str, spare_thread: int | None = None) -> None:
        if not self._started or self._stopped:
            raise RuntimeError("the Sandbox is not running")
        with self._aws_lock:
            self._cancel_restart()
            was_up = self._moto.up or self._emulator.up or self._ecs.up
            self._moto.stop_public(spare_thread=spare_thread)
            self._emulator.stop_listener(spare_thread=spare_thread)
            self._ecs.stop_listener(spare_thread=spare_thread)
            if was_up:
                self._hooks.event("fault", fault="aws-down", cause=cause, down_for=down_for)
            if down_for is not None:
                timer = threading.Timer(down_for, self._restart_later)
                timer.daemon = True
                timer.name = "sandbox-aws-restart"
                self._restart_timer = timer
                timer.start()

    def _restart_later(self) -> None:
        with self._aws_lock:
            if self._restart_timer is not threading.current_thread() or self._stopped:
                return
            self._restart_timer = None
            try:
                if self._start_endpoints():
                    self._hooks.event("fault", fault="aws-up", cause="down_for elapsed")
            except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
                self._hooks.event("error", where="restarting the AWS endpoints", error=f"{type(exc).__name__}: {exc}")

    def _start_endpoints(self) -> bool:
        """Under ``_aws_lock``: listen again where not listening; True if anything was down."""
        was_down = not (self._moto.up and self._emulator.up and self._ecs.up)
        self._moto.start_public()
        self._emulator.start_listener()
        self._ecs.start_listener()
        return was_down

    def _cancel_restart(self) -> None:
        timer, self._restart_timer = self._restart_timer, None
        if timer is not None:
            timer.cancel()

    def _record(self, event: Event) -> None:
        with self._history_lock:
            self._history.append(event)

    def _create_secret(self, secret: Secret, world: World) -> str:
        """The secret in moto (Secrets Manager, or an SSM SecureString parameter); its ARN."""
        value = world.substitute(secret.value)
        assert self._clients is not None
        if secret.store == "secretsmanager":
            return self._clients.client("secretsmanager").create_secret(Name=secret.name, SecretString=value)["ARN"]
        self._clients.client("ssm").put_parameter(Name=secret.name, Value=value, Type="SecureString")
        return f"arn:aws:ssm:{self._region}:{ACCOUNT}:parameter/{secret.name.lstrip('/')}"

    def _run_values(self, service: Service, world: World, ids: dict[str, str]) -> dict[str, Any]:
        """Port, RuntimeEnvironmentVariables and RuntimeEnvironmentSecrets as App Runner holds them."""
        values: dict[str, Any] = {"Port": service.port}
        env = {key: world.substitute(value) for key, value in service.env}
        if env:
            values["RuntimeEnvironmentVariables"] = env
        secrets: dict[str, str] = {}
        for var, ref in service.secrets:
            if ref.literal is not None:
                secrets[var] = ref.literal
            elif ref.by_name:
                secrets[var] = ref.secret or ""
            else:
                arn = ids[f"secret:{ref.secret}"]
                secrets[var] = f"{arn}:{ref.json_key}::" if ref.json_key else arn
        if secrets:
            values["RuntimeEnvironmentSecrets"] = secrets
        return values

    def _config(self, service: Service, world: World, ids: dict[str, str]) -> dict:
        run = self._run_values(service, world, ids)
        source: dict[str, Any]
        if service.code is not None:
            code = service.code
            code_conf: dict[str, Any] = {"ConfigurationSource": code.configuration_source}
            if code.configuration_source == "API":
                values: dict[str, Any] = {"Runtime": code.runtime}
                if code.build_command:
                    values["BuildCommand"] = code.build_command
                values.update(run)
                if code.start_command:
                    values["StartCommand"] = code.start_command
                code_conf["CodeConfigurationValues"] = values
            source = {
                "CodeRepository": {"RepositoryUrl": code.url,
                                   "SourceCodeVersion": {"Type": "BRANCH", "Value": code.branch},
                                   "CodeConfiguration": code_conf},
                "AutoDeploymentsEnabled": False,
                "AuthenticationConfiguration": {
                    "ConnectionArn": f"arn:aws:apprunner:{self._region}:{ACCOUNT}:connection/github/"
                                     "0123456789abcdef0123456789abcdef"},
            }
        else:
            public_image = service.image.startswith("public.ecr.aws/")
            source = {
                "ImageRepository": {
                    "ImageIdentifier": service.image,
                    "ImageConfiguration": run,
                    "ImageRepositoryType": "ECR_PUBLIC" if public_image else "ECR",
                },
                "AutoDeploymentsEnabled": False,
            }
            if not public_image:
                source["AuthenticationConfiguration"] = {
                    "AccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/service-role/AppRunnerECRAccessRole"
                }
        hc = service.health_check
        egress: dict[str, Any] = {"EgressType": service.egress}
        if service.connector:  # with DEFAULT egress the ARN is still named, and App Runner ignores it
            egress["VpcConnectorArn"] = ids[f"connector:{service.connector}"]
        instance: dict[str, Any] = {"Cpu": service.cpu, "Memory": service.memory}
        if service.secrets:  # App Runner reads secrets with the instance role
            instance["InstanceRoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/{service.name}-instance-role"
        return {
            "SourceConfiguration": source,
            "InstanceConfiguration": instance,
            "HealthCheckConfiguration": {
                "Protocol": hc.protocol, "Path": hc.path, "Interval": hc.interval, "Timeout": hc.timeout,
                "HealthyThreshold": hc.healthy_threshold, "UnhealthyThreshold": hc.unhealthy_threshold,
            },
            "AutoScalingConfigurationSummary": self._emulator.autoscaling_summary(),
            "NetworkConfiguration": {
                "EgressConfiguration": egress,
                "IngressConfiguration": {"IsPubliclyAccessible": service.public},
                "IpAddressType": "IPV4",
            },
            "ObservabilityConfiguration": {"ObservabilityEnabled": False},
        }


class _Hooks:
    """The sandbox side of the emulator (dependencies, logs, history) and the moto watcher."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.loading = False
        self.passwords: dict[str, str] = {}
        self._monitor_lock = threading.Lock()
        self._last: dict[tuple[str, str], tuple[bool, tuple[str, ...]]] = {}
        self._log_groups: set[str] = set()
        self._log_streams: set[tuple[str, str]] = set()
        self._log_lock = threading.Lock()

    def forget(self) -> None:
        with self._monitor_lock:
            self._last = {}
        with self._log_lock:
            self._log_groups = set()
            self._log_streams = set()

    # -- emulator hooks ----------------------------------------------------------

    def dependencies(self, config: dict, app: App, snapshot: AwsSnapshot | None = None) -> list[Verdict]:
        if not app.needs:
            return []
        if snapshot is None:
            clients = self.sandbox._clients
            assert clients is not None
            snapshot = AwsSnapshot(clients)
        connector = self.sandbox._emulator.connector_of(config)
        egress_type = config["NetworkConfiguration"]["EgressConfiguration"]["EgressType"]
        if egress_type == "VPC":
            if connector is None:  # gone, or INACTIVE: named for the reason, no way through
                named = self.sandbox._emulator.connectors.get(
                    config["NetworkConfiguration"]["EgressConfiguration"].get("VpcConnectorArn", ""))
                name = f"{named['VpcConnectorName']} ({named['Status']})" if named else None
                egress = Egress("VPC", name)
            else:
                egress = Egress("VPC", connector["VpcConnectorName"],
                                tuple(connector["Subnets"]), tuple(connector["SecurityGroups"]))
        else:
            egress = Egress("DEFAULT")
        env, unreadable = self.runtime_env(config)
        verdicts = []
        for label, var in app.needs:
            if var in unreadable:
                verdicts.append(Verdict(label, var, var, False, (unreadable[var],), app_log=None))
            else:
                verdicts.append(evaluate(snapshot, egress, label, var, env.get(var), self.passwords))
        return verdicts

    def runtime_env(self, config: dict) -> tuple[dict[str, str], dict[str, str]]:
        """The environment App Runner gives the container: plain variables plus each secret read
        (as its instance role would), and for each secret it cannot read, why not."""
        emulator = self.sandbox._emulator
        run = emulator.runtime(config)
        env = dict(run.get("RuntimeEnvironmentVariables") or {})
        unreadable: dict[str, str] = {}
        for var, reference in (run.get("RuntimeEnvironmentSecrets") or {}).items():
            try:
                env[var] = self._read_secret(reference)
            except LookupError as exc:
                unreadable[var] = f"{var}: App Runner cannot read {reference}: {exc}"
        return env, unreadable

    def _read_secret(self, reference: str) -> str:
        import json

        clients = self.sandbox._clients
        assert clients is not None
        parts = reference.split(":")
        try:
            if reference.startswith("arn:") and len(parts) >= 7 and parts[2] == "secretsmanager":
                if parts[3] != clients.region:
                    raise LookupError(f"the secret is in {parts[3]}, the sandbox in {clients.region}")
                extra = parts[7:] + ["", "", ""]
                json_key, stage, version = extra[0], extra[1], extra[2]
                request: dict[str, Any] = {"SecretId": ":".join(parts[:7])}
                if stage:
                    request["VersionStage"] = stage
                if version:
                    request["VersionId"] = version
                value = clients.client("secretsmanager").get_secret_value(**request)["SecretString"]
                if json_key:
                    try:
                        document = json.loads(value)
                    except ValueError:
                        raise LookupError("its value is not JSON, so it has no key " + json_key) from None
                    if not isinstance(document, dict) or not isinstance(document.get(json_key), str):
                        raise LookupError(f"its JSON has no string key {json_key}")
                    value = document[json_key]
                return value
            if reference.startswith("arn:") and (len(parts) < 6 or parts[2] != "ssm"):
                raise LookupError("not a Secrets Manager secret or SSM parameter ARN")
            if reference.startswith("arn:") and parts[3] != clients.region:
                raise LookupError(f"the parameter is in {parts[3]}, the sandbox in {clients.region}")
            return clients.client("ssm").get_parameter(Name=reference, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as err:
            raise LookupError(err.response.get("Error", {}).get("Code", "error")) from None

    def log_group(self, record: ServiceRecord, kind: str) -> str:
        name = f"/aws/apprunner/{record.name}/{record.id}/{kind}"
        with self._log_lock:
            if name in self._log_groups:
                return name
            logs = self.sandbox._clients.client("logs")  # type: ignore[union-attr]
            try:
                logs.create_log_group(logGroupName=name)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            self._log_groups.add(name)
        return name

    def write_logs(self, record: ServiceRecord, kind: str, stream: str, lines: list[str]) -> None:
        if not lines or self.sandbox._clients is None:
            return
        try:
            group = self.log_group(record, kind)
            logs = self.sandbox._clients.client("logs")
            with self._log_lock:
                if (group, stream) not in self._log_streams:
                    try:
                        logs.create_log_stream(logGroupName=group, logStreamName=stream)
                    except logs.exceptions.ResourceAlreadyExistsException:
                        pass
                    self._log_streams.add((group, stream))
                now = int(time.time() * 1000)
                logs.put_log_events(
                    logGroupName=group, logStreamName=stream,
                    logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
                )
        except Exception as exc:  # noqa: BLE001 - logs must not break a deployment
            self.event("error", where="write_logs", error=f"{type(exc).__name__}: {exc}")

    def event(self, kind: str, **data: Any) -> None:
        self.sandbox._record(Event(time.time(), kind, data))

    def changed(self, why: str, service: str | None = None) -> None:
        """Re-judge every dependency of every service (or of ``service`` only, when
        only its configuration changed); record each that flipped."""
        if self.loading:
            return
        emulator = self.sandbox._emulator
        with self._monitor_lock:
            try:
                with emulator.lock:
                    records = [(r.name, copy.deepcopy(r.config)) for r in emulator.services.values()
                               if service is None or r.name == service]
                apps = [(name, config, emulator.app_for(config)) for name, config in records]
                verdicts: list[tuple[tuple, str, Any]] = []  # (key, service, verdict)
                if any(app.needs for _, _, app in apps):
                    snapshot = AwsSnapshot(self.sandbox._clients)
                    verdicts += [((name, v.label), name, v) for name, config, app in apps
                                 for v in self.dependencies(config, app, snapshot)]
                if service is None:
                    verdicts += self._ecs_verdicts()
                for key, name, verdict in verdicts:
                    now = (verdict.reachable, verdict.reasons)
                    if self._last.get(key) == now:
                        continue
                    self._last[key] = now
                    self.event("reachability", service=name, label=verdict.label, env_var=verdict.env_var,
                               target=verdict.target, reachable=verdict.reachable,
                               reasons=list(verdict.reasons), cause=why, **({"subnet": key[2]} if len(key) > 2 else {}))
            except Exception as exc:  # noqa: BLE001 - the watcher must never break a call
                self.event("error", where="reachability monitor", error=f"{type(exc).__name__}: {exc}")

    def _ecs_verdicts(self) -> list[tuple[tuple, str, Any]]:
        """Each dependency of each ECS service's app, judged from each of its task subnets with the
        environment its task definition gives (as the task judge decides a task)."""
        ecs, judge = self.sandbox._ecs, self.sandbox._ecs_judge
        with ecs.lock:
            records = [(r.name, copy.deepcopy(r.config)) for r in ecs.scheduler.services.values() if r.status == "ACTIVE"]
            definitions = {name: copy.deepcopy(ecs.task_definitions.get(config.get("taskDefinition"), {}))
                           for name, config in records}
        out: list[tuple[tuple, str, Any]] = []
        snapshot: AwsSnapshot | None = None  # read once for every service and subnet
        for name, config in records:
            container = next((c for c in definitions[name].get("containerDefinitions", []) if c.get("essential", True)), {})
            app = judge.apps.get(container.get("image", ""))
            if app is None or not app.needs:
                continue
            env = {e["name"]: e["value"] for e in container.get("environment", []) if "name" in e and "value" in e}
            for secret in container.get("secrets", []):
                try:
                    env[secret["name"]] = self._read_secret(secret["valueFrom"])
                except LookupError:
                    pass
            subnets = ((config.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}).get("subnets", [])
            snapshot = snapshot or AwsSnapshot(self.sandbox._clients)
            for subnet in subnets:
                out += [((name, v.label, subnet), name, v)
                        for v in judge.verdicts({**config, "serviceName": name}, subnet, env, app, snapshot)]
        return out

    # -- moto watcher --------------------------------------------------------------

    def aws_call(self, service: str, action: str) -> None:
        if self.loading:
            return
        self.event("aws-call", service=service, action=action)
        if service != "elasticloadbalancing":  # a load balancer changes no dependency's reachability
            self.changed(f"{service}:{action}")
        if service in ("ec2", "elasticloadbalancing"):  # a rule or a health check may have changed a target's health
            try:
                self.sandbox._ecs.recheck_targets()
            except Exception as exc:  # noqa: BLE001 - the watcher must never break a call
                self.event("error", where="ecs target recheck", error=f"{type(exc).__name__}: {exc}")


__all__ = ["Event", "Sandbox"]
