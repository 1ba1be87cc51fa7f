"""moto's server on loopback, plus boto3 clients for it and a watch on mutating calls."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any, Callable

import boto3
from botocore.config import Config

from runbook_sandbox import shims
from runbook_sandbox.faults import Call, Endpoint, Faults, TrackedConnections, classify_wsgi, reason

DUMMY_KEY = "testing"
WATCHED_SERVICES = ("ec2", "rds", "elasticache", "elasticloadbalancing")  # elasticloadbalancing: ELBv2
READ_PREFIXES = ("Describe", "List", "Get")

Mutation = Callable[[str, str], None]  # (service, action) -> None


class MotoServer:
    """moto's WSGI application served on two loopback listeners at free ports.

    The public one (``url``) is what the tool talks to: ``faults`` act on it,
    :meth:`stop_public` / :meth:`start_public` take it down and bring it back
    on the same port, and ``on_mutation(service, action)`` is called after
    every successful non-read call to EC2, RDS, ElastiCache or ELBv2, in the thread
    that served it and before the client gets its answer, so the sandbox can
    record what each change did to the simulated app, in order. The internal
    one (``internal_url``) serves the sandbox's own calls (building worlds,
    judging deployments, writing logs): no fault, no watch, never stopped.
    Both serve the same resources (moto's state is process-wide).
    """

    def __init__(self, on_mutation: Mutation | None = None, faults: Faults | None = None) -> None:
        self._on_mutation = on_mutation
        self._faults = faults
        self._public: Endpoint | None = None
        self._internal: Endpoint | None = None
        self._clients: dict[tuple[str, str], Clients] = {}
        self._clients_lock = threading.Lock()
        self.url = ""
        self.internal_url = ""

    def start(self) -> None:
        if self._public is not None:
            return
        shims.apply()
        _lighten_moto()
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(TrackedConnections, MotoRequestHandler):  # type: ignore[misc, valid-type]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = DomainDispatcherApplication(create_backend_app)
        front = _Front(app, self._notify, self._faults)

        def factory(wsgi: Any) -> Callable[[int], Any]:
            return lambda port: make_server("127.0.0.1", port, wsgi, threaded=True, request_handler=QuietHandler)

        internal = Endpoint("moto-internal", factory(app))
        public = Endpoint("moto", factory(front))
        internal.start()
        try:
            public.start()
        except BaseException:
            internal.stop()
            raise
        self._internal, self._public = internal, public
        self.internal_url = internal.url
        self.url = public.url

    @property
    def up(self) -> bool:
        return self._public is not None and self._public.up

    def stop_public(self, *, spare_thread: int | None = None) -> None:
        """Close the public listener (connections refused); resources are kept."""
        if self._public is not None:
            self._public.stop(spare_thread=spare_thread)

    def start_public(self) -> None:
        """Listen again on the same port."""
        if self._public is not None:
            self._public.start()

    def _notify(self, service: str, action: str) -> None:
        if self._on_mutation is not None:
            self._on_mutation(service, action)

    def reset(self) -> None:
        """Forget every resource (moto's ``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.internal_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            response.read()

    def stop(self) -> None:
        public, internal = self._public, self._internal
        self._public = self._internal = None
        for endpoint in (public, internal):
            if endpoint is not None:
                endpoint.stop()

    def clients(self, region: str) -> "Clients":
        """The sandbox's own clients for ``region`` (on the internal listener), made once
        per server and region (making one costs ~0.1 s)."""
        with self._clients_lock:
            key = (self.internal_url, region)
            if key not in self._clients:
                self._clients[key] = Clients(self.internal_url, region)
            return self._clients[key]


class Clients:
    """boto3 clients against one endpoint, made once and shared (clients are thread-safe)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY, region_name=region
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=20),
                )
            return self._clients[service]


def _lighten_moto() -> None:
    """Three costs moto pays on every reset or every request that the sandbox has no use for:
    loading the default AMI catalogue into each new EC2 backend (no scenario runs an AMI),
    listing moto's package directory to route each request, and listing a response class's
    methods with inspect to dispatch each action (neither list ever changes)."""
    import functools

    import moto.backends
    import moto.core.responses
    import moto.settings

    moto.settings.ec2_load_default_amis = lambda: False
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    names = functools.lru_cache(maxsize=None)(moto.core.responses.method_names_from_class)
    moto.core.responses.method_names_from_class = lambda clazz: list(names(clazz))


class _Front:
    """WSGI middleware of the public listener: faults first, then moto, then the watch.

    A throttled or denied call gets its error and never reaches moto. After a
    successful mutating EC2/RDS/ElastiCache/ELBv2 call, the watcher is told; after
    any successful call, the faults count it (and may stop the endpoints
    before the answer goes out).
    """

    def __init__(self, app: Any, notify: Mutation, faults: Faults | None) -> None:
        self.app = app
        self.notify = notify
        self.faults = faults

    def __call__(self, environ: dict, start_response: Any) -> Any:
        call = classify_wsgi(environ)
        if call is None:
            return self.app(environ, start_response)
        if self.faults is not None:
            answer = self.faults.before(call)
            if answer is not None:
                status = f"{answer.status} {reason(answer.status)}"
                start_response(status, list(answer.headers))
                return [answer.body]
        status: list[str] = []

        def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        if status and status[0][:1] == "2":
            if _mutating(call):
                try:
                    self.notify(call.service, call.action)
                except Exception:  # noqa: BLE001 - a watcher must never break the AWS call
                    pass
            if self.faults is not None:
                self.faults.after_success(call)
        return [body]


def _mutating(call: Call) -> bool:
    return (call.service in WATCHED_SERVICES and call.protocol in ("ec2", "query")
            and not call.action.startswith(READ_PREFIXES))

