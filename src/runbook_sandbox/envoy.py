"""A service's public URL, answering like App Runner's envoy front proxy.

One stdlib ``ThreadingHTTPServer`` per service on 127.0.0.1 at a free port.

* No healthy deployment serving: every method and path gets ``404`` with
  ``server: envoy``, an empty body and no ``x-envoy-upstream-service-time``
  (the request never reached a container).
* Serving: the request reaches the app (``x-envoy-upstream-service-time``
  is set). The app, a FastAPI service, answers its health path with ``200
  {"status":"ok"}`` and any other path with ``404 {"detail":"Not Found"}``.
* Set answers (``Faults.answer``): the health path answers GET/HEAD with a
  given status, body and headers (a redirect, a page that echoes the config).
* Flapping (``Faults.flap``): the health path answers GET/HEAD with the
  fault's next status code; anything but 200 comes from the app, as
  ``{"detail": "<reason phrase>"}`` (503: ``{"detail":"Service Unavailable"}``).
"""

from __future__ import annotations

import json
import random
import sys
import threading
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from runbook_sandbox.faults import reason


@dataclass(frozen=True)
class Upstream:
    """What envoy can reach right now: None, or the app's health path."""

    health_path: str


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer (a timeout, Ctrl-C) is no error of the server's: no traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackFront:
    """A front's server on 127.0.0.1 at a free port, served in a thread of its own (``address``
    once started); envoy's and the load balancers' fronts differ only in their handler."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.address = ""

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        server = QuietServer(("127.0.0.1", 0), handler)
        self._server = server
        self.address = f"127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{name}-{self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class EnvoyServer(LoopbackFront):
    def __init__(self, upstream: Callable[[], Upstream | None],
                 health_status: Callable[[], int] | None = None,
                 health_answer: Callable[[], tuple[int, bytes, tuple[tuple[str, str], ...]] | None] | None = None) -> None:
        super().__init__()
        self._upstream = upstream
        self._health_status = health_status or (lambda: 200)
        self._health_answer = health_answer or (lambda: None)

    def start(self) -> None:
        class Handler(_EnvoyHandler):
            pass

        Handler.upstream = staticmethod(self._upstream)  # type: ignore[assignment]
        Handler.health_status = staticmethod(self._health_status)  # type: ignore[assignment]
        Handler.health_answer = staticmethod(self._health_answer)  # type: ignore[assignment]
        self._serve(Handler, "envoy")


class _EnvoyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "envoy"
    sys_version = ""
    upstream: Callable[[], Upstream | None]
    health_status: Callable[[], int]
    health_answer: Callable[[], tuple[int, bytes, tuple[tuple[str, str], ...]] | None]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def version_string(self) -> str:
        return "envoy"

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _answer(self) -> None:
        self._drain()
        target = type(self).upstream()
        if target is None:
            self._send(404, b"", None, upstream=False)
            return
        path = self.path.split("?", 1)[0]
        if path == target.health_path:
            if self.command in ("GET", "HEAD"):
                code = type(self).health_status()
                answer = type(self).health_answer()
                if answer is not None:
                    status, body, extra = answer
                    self._send(status, body, "application/json", upstream=True, extra=extra)
                elif code == 200:
                    self._send(200, b'{"status":"ok"}', "application/json", upstream=True)
                else:
                    body = json.dumps({"detail": reason(code)}, separators=(",", ":")).encode()
                    self._send(code, body, "application/json", upstream=True)
            else:
                self._send(405, b'{"detail":"Method Not Allowed"}', "application/json", upstream=True)
            return
        self._send(404, b'{"detail":"Not Found"}', "application/json", upstream=True)

    def _send(self, code: int, body: bytes, content_type: str | None, *, upstream: bool, extra=()) -> None:
        self.send_response_only(code)
        self.send_header("server", "envoy")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("date", formatdate(usegmt=True))
        if content_type:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        if upstream:
            self.send_header("x-envoy-upstream-service-time", str(random.randint(1, 9)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


__all__ = ["EnvoyServer", "Upstream"]
