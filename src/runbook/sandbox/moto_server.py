"""moto's server on loopback, plus boto3 clients for it and a watch on mutating calls."""

from __future__ import annotations

import io
import threading
import urllib.request
from typing import Any, Callable
from urllib.parse import parse_qs

import boto3
from botocore.config import Config

from runbook.sandbox import moto_shims

DUMMY_KEY = "testing"
WATCHED_SERVICES = ("ec2", "rds", "elasticache")
READ_PREFIXES = ("Describe", "List", "Get")

Mutation = Callable[[str, str], None]  # (service, action) -> None


class MotoServer:
    """``moto.server.ThreadedMotoServer`` on 127.0.0.1 at a free port.

    ``on_mutation(service, action)`` is called after every successful
    non-read call to EC2, RDS or ElastiCache, in the thread that served it and
    before the client gets its answer, so the sandbox can record what each
    change did to the simulated app, in order.
    """

    def __init__(self, on_mutation: Mutation | None = None) -> None:
        self._on_mutation = on_mutation
        self._server: Any = None
        self._clients: dict[tuple[str, str], Clients] = {}
        self._clients_lock = threading.Lock()
        self.url = ""

    def start(self) -> None:
        if self._server is not None:
            return
        moto_shims.apply()
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        wsgi = server._server  # werkzeug's BaseWSGIServer, built by start()

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        wsgi.RequestHandlerClass = QuietHandler
        wsgi.app = _Watch(wsgi.app, self._notify)
        self._server = server
        self.url = f"http://{host}:{port}"

    def _notify(self, service: str, action: str) -> None:
        if self._on_mutation is not None:
            self._on_mutation(service, action)

    def reset(self) -> None:
        """Forget every resource (moto's ``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            response.read()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            server._server.server_close()

    def clients(self, region: str) -> "Clients":
        """Clients for ``region``, made once per server and region (making one costs ~0.1 s)."""
        with self._clients_lock:
            key = (self.url, region)
            if key not in self._clients:
                self._clients[key] = Clients(self.url, region)
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


class _Watch:
    """WSGI middleware: after a successful mutating EC2/RDS/ElastiCache call, report it."""

    def __init__(self, app: Any, notify: Mutation) -> None:
        self.app = app
        self.notify = notify

    def __call__(self, environ: dict, start_response: Any) -> Any:
        found = _action(environ)
        if found is None:
            return self.app(environ, start_response)
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
            try:
                self.notify(*found)
            except Exception:  # noqa: BLE001 - a watcher must never break the AWS call
                pass
        return [body]


def _action(environ: dict) -> tuple[str, str] | None:
    """(service, action) of a mutating query-protocol call, else None. Restores the body."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO", "/") != "/":
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        service = scope[3] if len(scope) > 3 else ""
    if service not in WATCHED_SERVICES:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    if not action or action.startswith(READ_PREFIXES):
        return None
    return service, action
