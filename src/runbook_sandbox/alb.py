"""A load balancer's DNS name, answering like an Application Load Balancer's HTTP listener.

One stdlib HTTP server per internet-facing load balancer on 127.0.0.1 at a free port; the
``elbv2-loopback-dns-name`` shim makes ``DescribeLoadBalancers``' ``DNSName`` that address.

* Each request is routed by its ``Host`` header and path (the listener's rules, then its default
  action: :class:`runbook_sandbox.target_health.FrontRoutes`).
* No healthy target in the target group it is forwarded to (the route answers ``None``): ``503`` made by
  the load balancer itself, ``Server: awselb/2.0`` and AWS's HTML page "503 Service Temporarily
  Unavailable".
* A ``fixed-response`` action (the route answers a :class:`Fixed`): its status, content type and
  body, ``Server: awselb/2.0`` (Express Mode's listener answers a Host no rule names so).
* A healthy target: the request reaches the app (a FastAPI service under uvicorn: ``server:
  uvicorn``, never ``awselb``), which answers its health path with ``200 {"status":"ok"}`` and any
  other path with ``404 {"detail":"Not Found"}``.
* The route fails (a sandbox error): ``502`` from the load balancer, as a target that reset.

An internal load balancer cannot be reached from outside its VPC. Its DNS name is a loopback
address whose port is bound but never listened on: a connection is refused at once (rather than
a name that does not resolve, which an offline resolver may take seconds to say).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Callable

from runbook_sandbox.envoy import LoopbackFront

SERVER = "awselb/2.0"


@dataclass(frozen=True)
class Backend:
    """What a healthy target serves: the app's health path."""

    health_path: str


def _page(status: str) -> bytes:
    return (f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n"
            "</body>\r\n</html>\r\n").encode()


UNAVAILABLE = _page("503 Service Temporarily Unavailable")
BAD_GATEWAY = _page("502 Bad Gateway")

@dataclass(frozen=True)
class Fixed:
    """A ``fixed-response`` action: the load balancer answers by itself."""

    status: int
    content_type: str = "text/plain"
    body: bytes = b""


Route = Callable[[str, str], "Backend | Fixed | None"]  # (Host header, path) -> where the request goes


class AlbServer(LoopbackFront):
    """One load balancer's listener: ``route()`` says where each request goes, at that moment."""

    def __init__(self, route: Route) -> None:
        super().__init__()
        self._route = route

    def start(self) -> None:
        class Handler(_AlbHandler):
            pass

        Handler.route = staticmethod(self._route)  # type: ignore[assignment]
        self._serve(Handler, "alb")


class AlbFronts:
    """The fronts of a world's load balancers, by ARN. ``routes(arn, listener_port, host, path)`` is where
    a request to that listener goes (see :class:`runbook_sandbox.target_health.FrontRoutes`)."""

    def __init__(self, routes: Callable[[str, int, str, str], "Backend | Fixed | None"]) -> None:
        self._routes = routes
        self._servers: dict[str, AlbServer] = {}
        self._closed: dict[str, socket.socket] = {}
        self._lock = threading.Lock()

    def open(self, arn: str, *, internal: bool, listener_port: int) -> str:
        """Start the front of a load balancer; its address (``127.0.0.1:PORT``)."""
        with self._lock:
            if internal:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
                self._closed[arn] = sock
                return f"127.0.0.1:{sock.getsockname()[1]}"
            server = AlbServer(lambda host, path: self._routes(arn, listener_port, host, path))
            server.start()
            self._servers[arn] = server
            return server.address

    def close(self, arn: str) -> None:
        """Stop the front of a deleted load balancer."""
        with self._lock:
            server, sock = self._servers.pop(arn, None), self._closed.pop(arn, None)
        if server is not None:
            server.stop()
        if sock is not None:
            sock.close()

    def address(self, arn: str) -> str | None:
        with self._lock:
            if arn in self._servers:
                return self._servers[arn].address
            sock = self._closed.get(arn)
            return f"127.0.0.1:{sock.getsockname()[1]}" if sock is not None else None

    def close_all(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
            sockets, self._closed = list(self._closed.values()), {}
        for server in servers:
            server.stop()
        for sock in sockets:
            sock.close()


class _AlbHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    route: Route

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        try:
            backend = type(self).route(self.headers.get("Host") or "", path)
        except Exception:  # noqa: BLE001 - the load balancer answers for a target it could not reach
            self._send(502, BAD_GATEWAY, "text/html", SERVER)
            return
        if backend is None:
            self._send(503, UNAVAILABLE, "text/html", SERVER)
            return
        if isinstance(backend, Fixed):
            self._send(backend.status, backend.body, backend.content_type, SERVER)
            return
        if path != backend.health_path:
            self._send(404, b'{"detail":"Not Found"}', "application/json", "uvicorn")
        elif self.command in ("GET", "HEAD"):
            self._send(200, b'{"status":"ok"}', "application/json", "uvicorn")
        else:
            self._send(405, b'{"detail":"Method Not Allowed"}', "application/json", "uvicorn")

    def _send(self, code: int, body: bytes, content_type: str, server: str) -> None:
        self.send_response_only(code)
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.send_header("Server", server)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


__all__ = ["AlbFronts", "AlbServer", "Backend", "Fixed", "SERVER", "UNAVAILABLE"]
