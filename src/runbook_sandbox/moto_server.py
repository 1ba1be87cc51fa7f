"""moto's server on loopback, plus boto3 clients for it and a watch on mutating calls."""

from __future__ import annotations

import threading
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
    """moto's WSGI application served on a loopback listener at a free port.

    The public one (``url``) is what the tool talks to: ``faults`` act on it,
    :meth:`stop_public` / :meth:`start_public` take it down and bring it back
    on the same port, and ``on_mutation(service, action)`` is called after
    every successful non-read call to EC2, RDS, ElastiCache or ELBv2, in the thread
    that served it and before the client gets its answer, so the sandbox can
    record what each change did to the simulated app, in order. The sandbox's
    own calls (building worlds, judging deployments, writing logs) go through
    :meth:`clients`, in process: no fault, no watch, never stopped. Both reach
    the same resources (moto's state is process-wide).
    """

    def __init__(self, on_mutation: Mutation | None = None, faults: Faults | None = None) -> None:
        self._on_mutation = on_mutation
        self._faults = faults
        self._public: Endpoint | None = None
        self._clients: dict[str, Clients] = {}
        self._clients_lock = threading.Lock()
        self.url = ""

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

        public = Endpoint("moto", factory(front))
        public.start()
        self._public = public
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
        """Forget every resource (what moto's ``POST /moto-api/reset`` does)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    def stop(self) -> None:
        public, self._public = self._public, None
        if public is not None:
            public.stop()

    def clients(self, region: str) -> "Clients":
        """The sandbox's own clients for ``region`` (in process), made once
        per server and region (making one costs ~0.1 s)."""
        with self._clients_lock:
            if region not in self._clients:
                self._clients[region] = Clients(region)
            return self._clients[region]


class Clients:
    """boto3 clients that call moto in this process, made once and shared (clients are thread-safe).

    Each request goes straight to moto's response classes through a private
    :class:`moto.core.botocore_stubber.BotocoreStubber` hooked on these clients'
    ``before-send`` only: no socket, no HTTP parsing, no Flask. moto's global
    stubber stays off, so the tool's own clients keep talking HTTP to :attr:`MotoServer.url`.
    A request moto does not serve fails here; it never leaves the machine.
    """

    def __init__(self, region: str) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        self.region = region
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY, region_name=region
        )
        self._stubber = BotocoreStubber()
        self._stubber.enabled = True
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self._session.client(
                    service, config=Config(retries={"max_attempts": 2, "mode": "standard"})
                )
                client.meta.events.register_first("before-send", self._send)
                self._clients[service] = client
            return self._clients[service]

    def _send(self, request: Any, **kwargs: Any) -> Any:
        response = self._stubber(kwargs.get("event_name", "before-send"), request)
        if response is None:
            raise RuntimeError(f"moto does not serve {request.url}")
        return response


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

