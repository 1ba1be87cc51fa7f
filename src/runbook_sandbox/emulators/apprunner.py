"""An App Runner emulator speaking AWS's JSON 1.0 wire protocol on loopback.

``POST /`` with ``X-Amz-Target: AppRunner.<Operation>``; answers shaped
exactly like botocore's ``apprunner/2020-05-15`` model (checked by the tests
with a strict recursive shape checker), errors as
``{"__type": ..., "Message": ...}`` with HTTP 400 (500 for
``InternalServiceErrorException``). Signatures are not verified.

Operations: CreateService, DescribeService, ListServices, UpdateService,
StartDeployment, PauseService, ResumeService, DeleteService, ListOperations,
DescribeVpcConnector, ListVpcConnectors.

Semantics kept from AWS:

* Regions: every service and connector lives in the region of its ARN, and a
  request sees only those of the region it is signed for (the credential
  scope of its ``Authorization`` header; unsigned requests: the scenario's).
* A mutating call while an operation is in flight is ``InvalidStateException``;
  ``StartDeployment`` on a ``CREATE_FAILED`` service too (AWS wants
  ``UpdateService`` to rebuild it). ``UpdateService`` is accepted on a
  ``RUNNING``, ``PAUSED`` or ``CREATE_FAILED`` service, otherwise refused with
  App Runner's words: "Service status must be RUNNING or PAUSED to be updated".
  An update of a ``PAUSED`` service stores the configuration and leaves it
  ``PAUSED`` (nothing runs to be judged).
* ``UpdateService`` replaces each block it is given: an ``ImageConfiguration``
  (or ``CodeConfigurationValues``) holding only ``Port`` wipes the environment
  variables. A ``CodeRepository`` without ``CodeConfiguration`` keeps the
  current one (the model requires it only on ``CreateService``).
* Every change starts an operation (``IN_PROGRESS``, service
  ``OPERATION_IN_PROGRESS``) that ends ``deploy_seconds`` later, judged at that
  moment: it succeeds only if the simulated app would be healthy then (every
  dependency reachable, the health check matching what the app serves).
  Otherwise a new service ends ``CREATE_FAILED``, and a deployment of a running
  one turns ``ROLLBACK_IN_PROGRESS`` for half as long again (the previous
  version is redeployed; a poller sees it) before it ends ``ROLLBACK_SUCCEEDED``
  (service back to ``RUNNING`` on its previous configuration, still serving if
  it was). Log lines like App Runner's go to CloudWatch Logs in moto.
* ``DeleteService`` (any state but an operation in flight; the way out of
  ``CREATE_FAILED`` and ``DELETE_FAILED``) starts ``DELETE_SERVICE``; when it
  ends the service is ``DELETED`` (with ``DeletedAt``), its URL serves nothing,
  ``ListServices`` no longer lists it and further changes are
  ``InvalidStateException``.
* A service whose connector is not ``ACTIVE`` reaches nothing through it.

Faults (``runbook_sandbox.faults``) act on the HTTP listener (throttling,
access denied, stopping and restarting it on the same port: the state and
the deployment timers live on), on the timers (hung deployments) and on the
service URLs (flapping health).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

from runbook_sandbox.emulators.wire import ApiError, JsonApiHandler, Listening, Server, region_of
from runbook_sandbox.envoy import EnvoyServer, Upstream
from runbook_sandbox.faults import Endpoint, Faults
from runbook_sandbox.reachability import Verdict
from runbook_sandbox.scenario import App, Operation, status_after

ACCOUNT = "123456789012"  # moto's default account
IN_FLIGHT = ("PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
UPDATABLE = ("RUNNING", "PAUSED", "CREATE_FAILED")  # CREATE_FAILED: UpdateService is how it is rebuilt
RUNTIMES = ("PYTHON_3", "NODEJS_12", "NODEJS_14", "CORRETTO_8", "CORRETTO_11", "NODEJS_16", "GO_1", "DOTNET_6",
            "PHP_81", "RUBY_31", "PYTHON_311", "NODEJS_18", "NODEJS_22")
CPU = {"256": "256", "512": "512", "1024": "1024", "2048": "2048", "4096": "4096",
       "0.25 vCPU": "256", "0.5 vCPU": "512", "1 vCPU": "1024", "2 vCPU": "2048", "4 vCPU": "4096"}
MEMORY = {str(m): str(m) for m in (512, 1024, 2048, 3072, 4096, 6144, 8192, 10240, 12288)}
MEMORY.update({"0.5 GB": "512", "1 GB": "1024", "2 GB": "2048", "3 GB": "3072", "4 GB": "4096", "6 GB": "6144",
               "8 GB": "8192", "10 GB": "10240", "12 GB": "12288"})


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)


def runtime_values(config: dict, repositories: dict[str, dict] | None = None) -> dict:
    """What the container runs with: ``ImageConfiguration`` of an image service, or
    ``CodeConfigurationValues`` of a code repository service (Port, environment, secrets).
    A repository whose ``ConfigurationSource`` is REPOSITORY reads them from its
    apprunner.yaml, which the API never shows: ``repositories`` (URL -> values) holds them."""
    source = config["SourceConfiguration"]
    if "CodeRepository" in source:
        repository = source["CodeRepository"]
        code = repository.get("CodeConfiguration") or {}
        if code.get("ConfigurationSource") == "REPOSITORY":
            return dict((repositories or {}).get(repository["RepositoryUrl"]) or {"Port": "8080"})
        return code.get("CodeConfigurationValues") or {"Port": "8080"}
    return source["ImageRepository"]["ImageConfiguration"]


def source_identifier(config: dict) -> str:
    """The image, or the repository URL, that the app registered for the sandbox runs from."""
    source = config["SourceConfiguration"]
    if "CodeRepository" in source:
        return source["CodeRepository"]["RepositoryUrl"]
    return source["ImageRepository"]["ImageIdentifier"]


class Hooks(Protocol):
    """What the emulator needs from the sandbox around it."""

    def dependencies(self, config: dict, app: App) -> list[Verdict]: ...

    def write_logs(self, service: "ServiceRecord", kind: str, stream: str, lines: list[str]) -> None: ...

    def event(self, kind: str, **data: Any) -> None: ...

    def changed(self, why: str, service: str | None = None) -> None: ...


@dataclass
class Health:
    healthy: bool
    reasons: list[str]
    verdicts: list[Verdict]
    app_lines: list[str]
    service_lines: list[str]


@dataclass
class ServiceRecord:
    name: str
    id: str
    arn: str
    created_at: float
    updated_at: float
    status: str
    config: dict
    deploy_seconds: float
    operations: list[dict] = field(default_factory=list)  # oldest first
    serving_app: App | None = None  # the app version that envoy reaches, if any
    rollback_config: dict | None = None
    prior_status: str = "RUNNING"  # the status before the in-flight operation began
    deleted_at: float | None = None
    envoy: EnvoyServer | None = None
    timer: threading.Timer | None = None

    @property
    def in_flight(self) -> dict | None:
        if self.operations and self.operations[-1]["Status"] in IN_FLIGHT:
            return self.operations[-1]
        return None

    @property
    def url(self) -> str:
        return self.envoy.address if self.envoy else ""


class AppRunnerEmulator(Listening):
    def __init__(self, hooks: Hooks, faults: Faults | None = None) -> None:
        self.hooks = hooks
        self.faults = faults
        self.region = "us-east-1"
        self.lock = threading.RLock()
        # Held while an operation completes, hooks included, and by reset(): a
        # completion never writes into (or judges) the world of a later load.
        self._completing = threading.Lock()
        self.services: dict[str, ServiceRecord] = {}  # arn -> record, in creation order
        self.connectors: dict[str, dict] = {}  # arn -> VpcConnector shape
        self.images: dict[str, App] = {}  # image identifier or repository URL -> the app it runs
        self.repositories: dict[str, dict] = {}  # repository URL -> its apprunner.yaml's run values
        self.default_deploy_seconds = 20.0
        self.generation = 0
        self._endpoint: Endpoint | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._endpoint is not None:
            return
        emulator = self

        class Handler(_ApiHandler):
            pass

        Handler.emulator = emulator  # type: ignore[attr-defined]

        def factory(port: int) -> ThreadingHTTPServer:
            return Server(("127.0.0.1", port), Handler)

        endpoint = Endpoint("apprunner-emulator", factory)
        endpoint.start()
        self._endpoint = endpoint
        self.url = endpoint.url

    def stop(self) -> None:
        self.reset(self.region)
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.stop()

    def reset(self, region: str) -> None:
        """Cancel every timer, close every service URL, forget everything."""
        with self._completing, self.lock:
            self.generation += 1
            records = list(self.services.values())
            self.services.clear()
            self.connectors.clear()
            self.images.clear()
            self.repositories.clear()
            self.region = region
        for record in records:
            if record.timer is not None:
                record.timer.cancel()
            if record.envoy is not None:
                record.envoy.stop()

    # ------------------------------------------------------------------ scenario setup

    def add_connector(self, name: str, subnets: list[str], security_groups: list[str], status: str = "ACTIVE") -> str:
        """A connector as a scenario describes it; an INACTIVE one was deleted (it has DeletedAt) and can't be used."""
        arn = f"arn:aws:apprunner:{self.region}:{ACCOUNT}:vpcconnector/{name}/1/{uuid.uuid4().hex}"
        connector: dict[str, Any] = {
            "VpcConnectorName": name,
            "VpcConnectorArn": arn,
            "VpcConnectorRevision": 1,
            "Subnets": list(subnets),
            "SecurityGroups": list(security_groups),
            "Status": status,
            "CreatedAt": time.time() - 7200,
        }
        if status == "INACTIVE":
            connector["DeletedAt"] = time.time() - 3600
        with self.lock:
            self.connectors[arn] = connector
        return arn

    def register_image(self, identifier: str, app: App, repository_values: dict | None = None) -> None:
        """``identifier``: an image, or a repository URL (``repository_values``: its apprunner.yaml)."""
        with self.lock:
            self.images[identifier] = app
            if repository_values is not None:
                self.repositories[identifier] = copy.deepcopy(repository_values)

    def runtime(self, config: dict) -> dict:
        """:func:`runtime_values` of a configuration, apprunner.yaml files included."""
        with self.lock:
            return copy.deepcopy(runtime_values(config, self.repositories))

    def add_service(self, *, name: str, config: dict, status: str, operations: list[tuple[str, str]],
                    deploy_seconds: float, arm: bool = True, region: str | None = None) -> ServiceRecord:
        """Create a service as a scenario describes it (no operation is started here, except
        that an in-flight last operation gets its timer, now or at :meth:`arm`)."""
        now = time.time()
        service_id = uuid.uuid4().hex
        arn = f"arn:aws:apprunner:{region or self.region}:{ACCOUNT}:service/{name}/{service_id}"
        n = len(operations)
        ops = []
        for i, (op_type, op_status) in enumerate(operations):
            in_flight = op_status in IN_FLIGHT
            started = now if in_flight else now - (n - i) * 900
            op = {"Id": str(uuid.uuid4()), "Type": op_type, "Status": op_status, "TargetArn": arn,
                  "StartedAt": started, "UpdatedAt": started if in_flight else started + 300}
            if not in_flight:
                op["EndedAt"] = started + 300
            ops.append(op)
        record = ServiceRecord(
            name=name, id=service_id, arn=arn, created_at=ops[0]["StartedAt"] if ops else now,
            updated_at=ops[-1]["UpdatedAt"] if ops else now, status=status, config=copy.deepcopy(config),
            deploy_seconds=deploy_seconds, operations=ops,
        )
        serving = False
        for op in ops:
            if op["Status"] == "SUCCEEDED" and op["Type"] in ("CREATE_SERVICE", "START_DEPLOYMENT",
                                                             "UPDATE_SERVICE", "RESUME_SERVICE"):
                serving = True
            elif op["Type"] == "CREATE_SERVICE" and op["Status"] == "FAILED":
                serving = False
            elif op["Type"] == "PAUSE_SERVICE" and op["Status"] == "SUCCEEDED":
                serving = False
        if status in ("CREATE_FAILED", "PAUSED", "DELETE_FAILED"):
            serving = False
        record.serving_app = self.app_for(record.config) if serving else None
        record.prior_status = status_after([Operation(o["Type"], o["Status"]) for o in ops if o["Status"] not in IN_FLIGHT])
        self._open(record)
        with self.lock:
            self.services[arn] = record
            if record.in_flight is not None:
                record.rollback_config = copy.deepcopy(record.config)
        if arm:
            self.arm(record)
        return record

    def arm(self, record: ServiceRecord) -> None:
        """Start the timer of the record's in-flight operation, if any and not yet started."""
        with self.lock:
            if record.in_flight is not None and record.timer is None and self.services.get(record.arn) is record:
                self._arm(record)

    def app_for(self, config: dict) -> App:
        app = self.images.get(source_identifier(config))
        if app is None:  # an image the sandbox does not know: it serves "/" on its configured port
            app = App(health_path="/", port=self.runtime(config).get("Port", "8080"), needs=())
        return app

    def _open(self, record: ServiceRecord) -> None:
        faults = self.faults

        def upstream() -> Upstream | None:
            app = record.serving_app
            return Upstream(app.health_path) if app is not None else None

        def health_status() -> int:
            return faults.health_status(record.name) if faults is not None else 200

        def health_answer():
            return faults.health_answer(record.name) if faults is not None else None

        record.envoy = EnvoyServer(upstream, health_status, health_answer)
        record.envoy.start()

    # ------------------------------------------------------------------ queries for the sandbox

    def find(self, name_or_arn: str) -> ServiceRecord:
        with self.lock:
            if name_or_arn in self.services:
                return self.services[name_or_arn]
            for record in self.services.values():
                if record.name == name_or_arn:
                    return record
        raise KeyError(name_or_arn)

    def connector_of(self, config: dict) -> dict | None:
        """The connector the service's traffic goes through: with VPC egress, an ACTIVE one.
        (App Runner ignores a connector named with DEFAULT egress; an INACTIVE one can't be used.)"""
        egress = config["NetworkConfiguration"]["EgressConfiguration"]
        if egress.get("EgressType") != "VPC":
            return None
        with self.lock:
            connector = self.connectors.get(egress.get("VpcConnectorArn", ""))
            return copy.deepcopy(connector) if connector and connector["Status"] == "ACTIVE" else None

    def health(self, config: dict, app: App) -> Health:
        """Would ``app`` deployed with ``config`` pass App Runner's health check right now?"""
        reasons: list[str] = []
        verdicts = self.hooks.dependencies(config, app)
        hc = config["HealthCheckConfiguration"]
        port = self.runtime(config).get("Port", "8080")
        protocol, path = hc["Protocol"], hc.get("Path", "/")
        where = f"`HTTP`[Path: '{path}'], [Port: '{port}']" if protocol == "HTTP" else f"`TCP`[Port: '{port}']"
        app_lines = ["INFO:     Started server process [1]", "INFO:     Waiting for application startup."]
        service_lines: list[str] = []
        started = True
        if app.startup_error:
            reasons.append(f"the app fails to start: {app.startup_error}")
            app_lines += [app.startup_error, "ERROR:    Application startup failed. Exiting."]
            service_lines.append("[AppRunner] Your application stopped or failed to start. Container exit code: 1")
            started = False
        failed = [v for v in verdicts if not v.reachable]
        if failed:
            reasons += [v.describe() for v in failed]
            if started:
                app_lines.append("ERROR:    Traceback (most recent call last):")
                app_lines += [v.app_log for v in failed if v.app_log]
                app_lines.append("ERROR:    Application startup failed. Exiting.")
            started = False
        if started:
            app_lines += ["INFO:     Application startup complete.",
                          f"INFO:     Uvicorn running on http://0.0.0.0:{app.port} (Press CTRL+C to quit)"]
            if port != app.port:
                reasons.append(f"the health check probes port {port} but the app listens on {app.port}")
            elif protocol == "HTTP" and path != app.health_path:
                reasons.append(f"the HTTP health check asks for {path} but the app serves its health at "
                               f"{app.health_path}: 404")
                app_lines += [f'INFO:     10.0.0.1:43210 - "GET {path} HTTP/1.1" 404 Not Found'] * 2
        if reasons:
            service_lines.insert(0, f"[AppRunner] Health check failed on protocol {where}")
        else:
            service_lines.append(f"[AppRunner] Health check on protocol {where} is successful.")
        return Health(not reasons, reasons, verdicts, app_lines, service_lines)

    def state(self, name_or_arn: str) -> dict:
        record = self.find(name_or_arn)
        with self.lock:
            return {
                "name": record.name,
                "arn": record.arn,
                "id": record.id,
                "status": record.status,
                "serving": record.serving_app is not None,
                "url": record.url,
                "deploy_seconds": record.deploy_seconds,
                "operations": [dict(op) for op in reversed(record.operations)],  # newest first
                "in_flight": dict(record.in_flight) if record.in_flight else None,
                "env": dict(self.runtime(record.config).get("RuntimeEnvironmentVariables", {})),
                "secrets": dict(self.runtime(record.config).get("RuntimeEnvironmentSecrets", {})),
                "config": copy.deepcopy(record.config),
            }

    # ------------------------------------------------------------------ operations and timers

    def _start_operation(self, record: ServiceRecord, op_type: str) -> dict:
        """Under the lock: open a new in-flight operation and arm its timer."""
        now = time.time()
        record.prior_status = record.status
        op = {"Id": str(uuid.uuid4()), "Type": op_type, "Status": "IN_PROGRESS", "TargetArn": record.arn,
              "StartedAt": now, "UpdatedAt": now}
        record.operations.append(op)
        record.status = "OPERATION_IN_PROGRESS"
        record.updated_at = now
        self._arm(record)
        return op

    def _arm(self, record: ServiceRecord, seconds: float | None = None) -> None:
        op = record.in_flight
        assert op is not None
        if self.faults is not None and self.faults.hangs(record.name):
            record.timer = None  # hung: :meth:`release_hung` arms it when the fault is lifted
            return
        seconds = record.deploy_seconds if seconds is None else seconds
        timer = threading.Timer(seconds, self._finish, args=(self.generation, record.arn, op["Id"]))
        timer.daemon = True
        timer.name = f"deploy-{record.name}-{op['Type']}"
        record.timer = timer
        timer.start()

    def _finish(self, generation: int, arn: str, op_id: str) -> None:
        try:
            with self._completing:
                self._complete(generation, arn, op_id)
        except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
            if generation == self.generation:  # else it read moto across a reset, the old world's failure
                self.hooks.event("error", where="deployment timer", error=f"{type(exc).__name__}: {exc}")

    def _complete(self, generation: int, arn: str, op_id: str) -> None:
        """End the in-flight operation ``op_id``: judge the app now, write the logs,
        then flip the state (so that whoever sees the operation end finds its logs).
        A failed deployment of a running service does not end here: it turns
        ROLLBACK_IN_PROGRESS and ends ROLLBACK_SUCCEEDED when its timer fires again."""
        with self.lock:
            record = self.services.get(arn)
            if generation != self.generation or record is None:
                return
            op = record.in_flight
            if op is None or op["Id"] != op_id:
                return
            if self.faults is not None and self.faults.hangs(record.name):
                record.timer = None  # hung while its timer was firing
                return
            config = copy.deepcopy(record.config)
            op_type, op_status, prior = op["Type"], op["Status"], record.prior_status
        app = self.app_for(config)
        health: Health | None = None
        rolling_back = False
        if op_type == "PAUSE_SERVICE" or (op_type == "UPDATE_SERVICE" and prior == "PAUSED"):
            final, status = "SUCCEEDED", "PAUSED"  # nothing runs: nothing to judge
        elif op_type == "DELETE_SERVICE":
            final, status = "SUCCEEDED", "DELETED"
        elif op_status == "ROLLBACK_IN_PROGRESS":
            final, status = "ROLLBACK_SUCCEEDED", "RUNNING"
        else:
            health = self.health(config, app)
            if health.healthy:
                final, status = "SUCCEEDED", "RUNNING"
            elif op_type == "CREATE_SERVICE" or (op_type == "UPDATE_SERVICE" and prior == "CREATE_FAILED"):
                final, status = "FAILED", "CREATE_FAILED"
            elif op_type == "RESUME_SERVICE":
                final, status = "FAILED", "PAUSED"
            else:  # START_DEPLOYMENT / UPDATE_SERVICE of a running service: the previous version comes back
                final, status, rolling_back = "ROLLBACK_IN_PROGRESS", "OPERATION_IN_PROGRESS", True

        stream = f"deployment/{op_id}"
        if health is not None:
            if health.healthy:
                lines = health.service_lines + ["[AppRunner] Deployment completed successfully."]
            else:
                lines = health.service_lines + ["[AppRunner] Deployment failed. Failure reason: Health check failed."]
                if rolling_back:
                    lines.append("[AppRunner] Rolling back to the previous version.")
                elif final == "FAILED" and op_type == "CREATE_SERVICE":
                    lines.append("[AppRunner] Service creation failed.")
            self.hooks.write_logs(record, "application", f"instance/{uuid.uuid4().hex}", health.app_lines)
            self.hooks.write_logs(record, "service", stream, lines)
        elif final == "ROLLBACK_SUCCEEDED":
            self.hooks.write_logs(record, "service", stream,
                                  ["[AppRunner] Rollback to the previous version completed successfully."])
        if not rolling_back:
            self.hooks.write_logs(record, "service", "events",
                                  [f"[AppRunner] Operation {op_type} with ID : {op_id} ended: {final}."])

        with self.lock:
            if generation != self.generation or record.in_flight is None or record.in_flight["Id"] != op_id:
                return
            now = time.time()
            before = record.status
            op["Status"] = final
            op["UpdatedAt"] = now
            record.updated_at = now
            record.timer = None
            if rolling_back:
                self._arm(record, record.deploy_seconds / 2)
            else:
                record.status = status
                if op_type in ("PAUSE_SERVICE", "DELETE_SERVICE") or final == "FAILED" and status == "CREATE_FAILED":
                    record.serving_app = None
                elif final == "SUCCEEDED" and status == "RUNNING":
                    record.serving_app = app
                if final == "ROLLBACK_SUCCEEDED" and record.rollback_config is not None:
                    record.config = record.rollback_config
                if status == "DELETED":
                    record.deleted_at = now
                record.rollback_config = None
                op["EndedAt"] = now
        self.hooks.event(
            "operation-finished" if not rolling_back else "operation-rolling-back",
            service=record.name, operation=op_type, id=op_id, result=final,
            status_before=before, status=record.status,
            reasons=list(health.reasons) if health else [],
            dependencies=[{"label": v.label, "env_var": v.env_var, "target": v.target, "reachable": v.reachable,
                           "reasons": list(v.reasons)} for v in (health.verdicts if health else [])],
        )
        self.hooks.changed(f"apprunner:{op_type} {final}", record.name)

    def suspend_hung(self) -> None:
        """Cancel the timers of in-flight operations that the faults now hang."""
        if self.faults is None:
            return
        with self.lock:
            for record in self.services.values():
                if record.timer is not None and self.faults.hangs(record.name):
                    record.timer.cancel()
                    record.timer = None

    def release_hung(self) -> None:
        """Arm every in-flight operation left without a timer (the hang was lifted):
        it ends ``deploy_seconds`` from now."""
        with self.lock:
            for record in self.services.values():
                if record.in_flight is not None and record.timer is None:
                    self._arm(record)

    # ------------------------------------------------------------------ the API

    def call(self, operation: str, params: dict, region: str | None = None) -> dict:
        """Answer one request; ``region``: the one it is signed for (default: the scenario's)."""
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise ApiError("UnknownOperationException", f"Unknown operation {operation}")
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        return handler(params, region or self.region)

    def _service(self, params: dict, region: str) -> ServiceRecord:
        arn = _string(params, "ServiceArn", required=True)
        with self.lock:
            record = self.services.get(arn)
        if record is None or region_of(arn) != region:
            raise ApiError("ResourceNotFoundException", f"Service {arn} doesn't exist")
        return record

    def _service_view(self, record: ServiceRecord) -> dict:
        view = self._summary(record)
        if record.deleted_at is not None:
            view["DeletedAt"] = record.deleted_at
        view.update(copy.deepcopy(record.config))
        return view

    def _summary(self, record: ServiceRecord) -> dict:
        return {
            "ServiceName": record.name,
            "ServiceId": record.id,
            "ServiceArn": record.arn,
            "ServiceUrl": record.url,
            "CreatedAt": record.created_at,
            "UpdatedAt": record.updated_at,
            "Status": record.status,
        }

    def _op_DescribeService(self, params: dict, region: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            return {"Service": self._service_view(record)}

    def _op_ListServices(self, params: dict, region: str) -> dict:
        with self.lock:
            items = [self._summary(r) for r in self.services.values()
                     if region_of(r.arn) == region and r.status != "DELETED"]
        return _page(items, params, "ServiceSummaryList", maximum=20)

    def _op_ListOperations(self, params: dict, region: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            items = [dict(op) for op in reversed(record.operations)]
        return _page(items, params, "OperationSummaryList", maximum=20)

    def _op_DescribeVpcConnector(self, params: dict, region: str) -> dict:
        arn = _string(params, "VpcConnectorArn", required=True)
        with self.lock:
            connector = self.connectors.get(arn)
            if connector is None or region_of(arn) != region:
                raise ApiError("ResourceNotFoundException", f"VPC connector {arn} doesn't exist")
            return {"VpcConnector": copy.deepcopy(connector)}

    def _op_ListVpcConnectors(self, params: dict, region: str) -> dict:
        with self.lock:
            items = [copy.deepcopy(c) for arn, c in self.connectors.items() if region_of(arn) == region]
        return _page(items, params, "VpcConnectors", maximum=100)

    def _op_CreateService(self, params: dict, region: str) -> dict:
        name = _string(params, "ServiceName", required=True)
        if not 4 <= len(name) <= 40 or not (name[0].isalnum() and all(c.isalnum() or c in "-_" for c in name)):
            raise _invalid(f"ServiceName {name!r} must be 4-40 letters, digits, '-' or '_'")
        if "SourceConfiguration" not in params:
            raise _invalid("SourceConfiguration is required")
        config = self._config(params, base=None, region=region)
        with self.lock:
            if any(r.name == name and region_of(r.arn) == region and r.status != "DELETED"
                   for r in self.services.values()):
                raise _invalid(f"Service with name {name} already exists")
        record = self.add_service(name=name, config=config, status="OPERATION_IN_PROGRESS", operations=[],
                                  deploy_seconds=self.default_deploy_seconds, region=region)
        with self.lock:
            op = self._start_operation(record, "CREATE_SERVICE")
            record.created_at = op["StartedAt"]
            view = self._service_view(record)
        self._after_call("CreateService", record, op)
        return {"Service": view, "OperationId": op["Id"]}

    def _op_UpdateService(self, params: dict, region: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            new_config = self._config(params, base=record.config, region=region)  # a bad request is refused first
            if record.in_flight is not None or record.status not in UPDATABLE:
                # App Runner's own words, though it also rebuilds a CREATE_FAILED service this way.
                raise ApiError("InvalidStateException", "Service status must be RUNNING or PAUSED to be updated")
            record.rollback_config = copy.deepcopy(record.config)
            record.config = new_config
            op = self._start_operation(record, "UPDATE_SERVICE")
            view = self._service_view(record)
        self._after_call("UpdateService", record, op, given=sorted(k for k in params if k != "ServiceArn"))
        return {"Service": view, "OperationId": op["Id"]}

    def _op_StartDeployment(self, params: dict, region: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            self._require_idle(record, "deployed")
            if record.status != "RUNNING":
                hint = " Use UpdateService to rebuild a service that failed to create." \
                    if record.status == "CREATE_FAILED" else ""
                raise ApiError("InvalidStateException",
                               f"Service {record.name} cannot be deployed in the current state: {record.status}.{hint}")
            record.rollback_config = copy.deepcopy(record.config)
            op = self._start_operation(record, "START_DEPLOYMENT")
        self._after_call("StartDeployment", record, op)
        return {"OperationId": op["Id"]}

    def _op_PauseService(self, params: dict, region: str) -> dict:
        return self._pause_or_resume(params, region, "PauseService", "PAUSE_SERVICE", "paused", requires="RUNNING")

    def _op_ResumeService(self, params: dict, region: str) -> dict:
        return self._pause_or_resume(params, region, "ResumeService", "RESUME_SERVICE", "resumed", requires="PAUSED")

    def _op_DeleteService(self, params: dict, region: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            self._require_idle(record, "deleted")
            if record.status == "DELETED":
                raise ApiError("InvalidStateException", f"Service {record.name} is already deleted.")
            op = self._start_operation(record, "DELETE_SERVICE")
            view = self._service_view(record)
        self._after_call("DeleteService", record, op)
        return {"Service": view, "OperationId": op["Id"]}

    def _pause_or_resume(self, params: dict, region: str, action: str, op_type: str, verb: str, *,
                         requires: str) -> dict:
        record = self._service(params, region)
        with self.lock:
            self._require_idle(record, verb)
            if record.status != requires:
                raise ApiError("InvalidStateException",
                               f"Service {record.name} cannot be {verb} in the current state: {record.status}.")
            op = self._start_operation(record, op_type)
            view = self._service_view(record)
        self._after_call(action, record, op)
        return {"Service": view, "OperationId": op["Id"]}

    def _require_idle(self, record: ServiceRecord, verb: str) -> None:
        if record.in_flight is not None or record.status == "OPERATION_IN_PROGRESS":
            raise ApiError("InvalidStateException",
                           f"Service {record.name} cannot be {verb} in the current state: OPERATION_IN_PROGRESS.")

    def _after_call(self, operation: str, record: ServiceRecord, op: dict, **extra: Any) -> None:
        self.hooks.event("apprunner-call", operation=operation, service=record.name, operation_id=op["Id"], **extra)
        self.hooks.write_logs(record, "service", "events",
                              [f"[AppRunner] Deployment with ID : {op['Id']} started. Triggering event : {op['Type']}"])
        self.hooks.changed(f"apprunner:{operation}", record.name)

    # ------------------------------------------------------------------ request blocks -> stored config

    def _config(self, params: dict, base: dict | None, region: str | None = None) -> dict:
        config = copy.deepcopy(base) if base is not None else {
            "SourceConfiguration": None,
            "InstanceConfiguration": {"Cpu": "1024", "Memory": "2048"},
            "HealthCheckConfiguration": _health({}),
            "AutoScalingConfigurationSummary": self.autoscaling_summary(region),
            "NetworkConfiguration": self._network({}, region),
            "ObservabilityConfiguration": {"ObservabilityEnabled": False},
        }
        if "SourceConfiguration" in params:
            config["SourceConfiguration"] = _source(_block(params, "SourceConfiguration"),
                                                    (base or {}).get("SourceConfiguration"))
        if "InstanceConfiguration" in params:
            config["InstanceConfiguration"] = _instance(_block(params, "InstanceConfiguration"))
        if "HealthCheckConfiguration" in params:
            config["HealthCheckConfiguration"] = _health(_block(params, "HealthCheckConfiguration"))
        if "NetworkConfiguration" in params:
            config["NetworkConfiguration"] = self._network(_block(params, "NetworkConfiguration"), region)
        if "ObservabilityConfiguration" in params:
            obs = _block(params, "ObservabilityConfiguration")
            enabled = obs.get("ObservabilityEnabled")
            if not isinstance(enabled, bool):
                raise _invalid("ObservabilityConfiguration.ObservabilityEnabled is required")
            config["ObservabilityConfiguration"] = {"ObservabilityEnabled": enabled}
            if enabled and isinstance(obs.get("ObservabilityConfigurationArn"), str):
                config["ObservabilityConfiguration"]["ObservabilityConfigurationArn"] = obs["ObservabilityConfigurationArn"]
        if "AutoScalingConfigurationArn" in params:
            _string(params, "AutoScalingConfigurationArn", required=True)
        return config

    def autoscaling_summary(self, region: str | None = None) -> dict:
        return {
            "AutoScalingConfigurationArn": f"arn:aws:apprunner:{region or self.region}:{ACCOUNT}:autoscalingconfiguration/"
                                           "DefaultConfiguration/1/00000000000000000000000000000001",
            "AutoScalingConfigurationName": "DefaultConfiguration",
            "AutoScalingConfigurationRevision": 1,
            "Status": "ACTIVE",
            "CreatedAt": 1600000000.0,
            "HasAssociatedService": True,
            "IsDefault": True,
        }

    def _network(self, net: dict, region: str | None = None) -> dict:
        egress = net.get("EgressConfiguration") or {}
        ingress = net.get("IngressConfiguration") or {}
        if not isinstance(egress, dict) or not isinstance(ingress, dict):
            raise _invalid("NetworkConfiguration blocks must be objects")
        egress_type = egress.get("EgressType", "DEFAULT")
        if egress_type not in ("DEFAULT", "VPC"):
            raise _invalid(f"EgressType must be DEFAULT or VPC, not {egress_type!r}")
        out_egress: dict[str, Any] = {"EgressType": egress_type}
        if egress_type == "VPC":
            arn = egress.get("VpcConnectorArn")
            if not isinstance(arn, str) or not arn:
                raise _invalid("VpcConnectorArn is required when EgressType is VPC")
            with self.lock:
                connector = self.connectors.get(arn)
            if connector is None or connector["Status"] != "ACTIVE" or region_of(arn) != (region or self.region):
                raise _invalid(f"VPC connector {arn} doesn't exist or isn't ACTIVE")
            out_egress["VpcConnectorArn"] = arn
        public = ingress.get("IsPubliclyAccessible", True)
        if not isinstance(public, bool):
            raise _invalid("IsPubliclyAccessible must be a boolean")
        ip_type = net.get("IpAddressType", "IPV4")
        if ip_type not in ("IPV4", "DUAL_STACK"):
            raise _invalid(f"IpAddressType must be IPV4 or DUAL_STACK, not {ip_type!r}")
        return {"EgressConfiguration": out_egress, "IngressConfiguration": {"IsPubliclyAccessible": public},
                "IpAddressType": ip_type}


# ---------------------------------------------------------------------- request validation helpers


def _string(params: dict, key: str, *, required: bool = False) -> str:
    value = params.get(key)
    if value is None:
        if required:
            raise _invalid(f"{key} is required")
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _invalid(f"{key} must be a non-empty string")
    return value


def _block(params: dict, key: str) -> dict:
    value = params.get(key)
    if not isinstance(value, dict):
        raise _invalid(f"{key} must be an object")
    return value


def _source(src: dict, base: dict | None = None) -> dict:
    """A SourceConfiguration as App Runner stores it: an image or a code repository (not both)."""
    if ("CodeRepository" in src) == ("ImageRepository" in src):
        raise _invalid("SourceConfiguration needs exactly one of ImageRepository and CodeRepository")
    if "CodeRepository" in src:
        out = {"CodeRepository": _code_repository(src["CodeRepository"], base),
               "AutoDeploymentsEnabled": bool(src.get("AutoDeploymentsEnabled", False))}
        auth = src.get("AuthenticationConfiguration")
        connection = auth.get("ConnectionArn") if isinstance(auth, dict) else None
        if not isinstance(connection, str) or not connection:
            raise _invalid("AuthenticationConfiguration.ConnectionArn is required for a source code repository")
        out["AuthenticationConfiguration"] = {"ConnectionArn": connection}
        return out
    image = src.get("ImageRepository")
    if not isinstance(image, dict):
        raise _invalid("SourceConfiguration.ImageRepository is required")
    identifier = image.get("ImageIdentifier")
    if not isinstance(identifier, str) or not identifier:
        raise _invalid("ImageRepository.ImageIdentifier is required")
    repo_type = image.get("ImageRepositoryType")
    if repo_type not in ("ECR", "ECR_PUBLIC"):
        raise _invalid("ImageRepository.ImageRepositoryType must be ECR or ECR_PUBLIC")
    conf = image.get("ImageConfiguration") or {}
    if not isinstance(conf, dict):
        raise _invalid("ImageConfiguration must be an object")
    out: dict[str, Any] = {
        "ImageRepository": {"ImageIdentifier": identifier, "ImageConfiguration": _run_values(conf, "ImageConfiguration"),
                            "ImageRepositoryType": repo_type},
        "AutoDeploymentsEnabled": bool(src.get("AutoDeploymentsEnabled", False)),
    }
    auth = src.get("AuthenticationConfiguration")
    if isinstance(auth, dict) and auth:
        out["AuthenticationConfiguration"] = {k: v for k, v in auth.items()
                                              if k in ("ConnectionArn", "AccessRoleArn") and isinstance(v, str)}
    return out


def _code_repository(repo: Any, base: dict | None) -> dict:
    if not isinstance(repo, dict):
        raise _invalid("CodeRepository must be an object")
    url = repo.get("RepositoryUrl")
    if not isinstance(url, str) or not url:
        raise _invalid("CodeRepository.RepositoryUrl is required")
    version = repo.get("SourceCodeVersion")
    if not isinstance(version, dict) or version.get("Type") != "BRANCH" \
            or not isinstance(version.get("Value"), str) or not version["Value"]:
        raise _invalid("CodeRepository.SourceCodeVersion needs Type BRANCH and a Value")
    out: dict[str, Any] = {"RepositoryUrl": url, "SourceCodeVersion": {"Type": "BRANCH", "Value": version["Value"]}}
    code = repo.get("CodeConfiguration")
    if code is None:
        # Required only by CreateService: an update without it keeps the current one.
        kept = ((base or {}).get("CodeRepository") or {}).get("CodeConfiguration")
        if kept is None:
            raise _invalid("CodeRepository.CodeConfiguration is required")
        out["CodeConfiguration"] = copy.deepcopy(kept)
    else:
        if not isinstance(code, dict) or code.get("ConfigurationSource") not in ("REPOSITORY", "API"):
            raise _invalid("CodeConfiguration.ConfigurationSource must be REPOSITORY or API")
        out_code: dict[str, Any] = {"ConfigurationSource": code["ConfigurationSource"]}
        values = code.get("CodeConfigurationValues")
        if code["ConfigurationSource"] == "API" and not isinstance(values, dict):
            raise _invalid("CodeConfigurationValues is required when ConfigurationSource is API")
        if isinstance(values, dict):
            if values.get("Runtime") not in RUNTIMES:
                raise _invalid(f"CodeConfigurationValues.Runtime must be one of {', '.join(RUNTIMES)}")
            run = _run_values(values, "CodeConfigurationValues")
            out_values: dict[str, Any] = {"Runtime": values["Runtime"]}
            if isinstance(values.get("BuildCommand"), str) and values["BuildCommand"]:
                out_values["BuildCommand"] = values["BuildCommand"]
            out_values.update(run)
            out_code["CodeConfigurationValues"] = out_values
        out["CodeConfiguration"] = out_code
    directory = repo.get("SourceDirectory")
    if directory is not None:
        if not isinstance(directory, str) or not directory:
            raise _invalid("CodeRepository.SourceDirectory must be a non-empty string")
        out["SourceDirectory"] = directory
    return out


def _run_values(conf: dict, where: str) -> dict:
    """Port, StartCommand, RuntimeEnvironmentVariables/Secrets of an ImageConfiguration or
    CodeConfigurationValues: only what is given (so a block with only Port wipes the rest)."""
    port = conf.get("Port", "8080")
    if not isinstance(port, str) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _invalid(f"{where}.Port must be a port number as a string, not {port!r}")
    out: dict[str, Any] = {"Port": port}
    for key in ("RuntimeEnvironmentVariables", "RuntimeEnvironmentSecrets"):
        values = conf.get(key)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                   for k, v in values.items()):
            raise _invalid(f"{where}.{key} must map names to strings")
        if key == "RuntimeEnvironmentSecrets" and not all(values.values()):
            raise _invalid(f"{where}.{key}: every secret needs an ARN (or a parameter name)")
        if any(k.startswith("AWSAPPRUNNER") for k in values):
            raise _invalid(f"{key}: names starting with AWSAPPRUNNER are reserved")
        if values:
            out[key] = dict(values)
    if isinstance(conf.get("StartCommand"), str) and conf["StartCommand"]:
        out["StartCommand"] = conf["StartCommand"]
    return out


def _instance(conf: dict) -> dict:
    cpu = str(conf.get("Cpu", "1024"))
    memory = str(conf.get("Memory", "2048"))
    if cpu not in CPU:
        raise _invalid(f"Cpu {cpu!r} is not a valid App Runner CPU size")
    if memory not in MEMORY:
        raise _invalid(f"Memory {memory!r} is not a valid App Runner memory size")
    out = {"Cpu": CPU[cpu], "Memory": MEMORY[memory]}
    if isinstance(conf.get("InstanceRoleArn"), str):
        out["InstanceRoleArn"] = conf["InstanceRoleArn"]
    return out


def _health(conf: dict) -> dict:
    protocol = conf.get("Protocol", "TCP")
    if protocol not in ("TCP", "HTTP"):
        raise _invalid(f"HealthCheckConfiguration.Protocol must be TCP or HTTP, not {protocol!r}")
    path = conf.get("Path", "/")
    if not isinstance(path, str) or not path:
        raise _invalid("HealthCheckConfiguration.Path must be a non-empty string")
    out: dict[str, Any] = {"Protocol": protocol, "Path": path}
    for key, default in (("Interval", 5), ("Timeout", 2), ("HealthyThreshold", 1), ("UnhealthyThreshold", 5)):
        value = conf.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
            raise _invalid(f"HealthCheckConfiguration.{key} must be an integer from 1 to 20")
        out[key] = value
    return out


def _page(items: list[dict], params: dict, key: str, *, maximum: int) -> dict[str, Any]:
    """A List* answer: one page of `items` under `key`, and a NextToken when more remain."""
    page, token = _paginate(items, params, maximum=maximum)
    return {key: page, "NextToken": token} if token else {key: page}


def _paginate(items: list[dict], params: dict, *, maximum: int) -> tuple[list[dict], str | None]:
    limit = params.get("MaxResults")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum):
        raise _invalid(f"MaxResults must be an integer from 1 to {maximum}")
    start = 0
    token = params.get("NextToken")
    if token is not None:
        try:
            if not isinstance(token, str):
                raise ValueError
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            if start < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise _invalid("NextToken is not valid") from None
    if limit is None:
        return items[start:], None
    page = items[start:start + limit]
    end = start + len(page)
    if end < len(items):
        return page, base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
    return page, None


# ---------------------------------------------------------------------- HTTP


class _ApiHandler(JsonApiHandler):
    service = "apprunner"
    target_prefix = "AppRunner."
    content_type = "application/x-amz-json-1.0"
    message_key = "Message"
    server_error = "InternalServiceErrorException"
    emulator: AppRunnerEmulator
