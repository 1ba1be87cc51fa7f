"""What every emulator's wire needs, whatever service it speaks: its error, the region of an ARN and
of a request's signature, the loopback server (quiet when a client hangs up mid-answer), and the
JSON-protocol request handler that lets the sandbox's faults act on each call."""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar

from runbook_sandbox.envoy import QuietServer
from runbook_sandbox.faults import Call, TrackedConnections

if TYPE_CHECKING:
    from runbook_sandbox.faults import Endpoint


class ApiError(Exception):
    """An error answer: the exception name (`__type`), its message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def signed_region(authorization: str) -> str | None:
    """The region of a SigV4 credential scope (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``)."""
    if "Credential=" not in authorization:
        return None
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 and scope[2] else None


class Server(QuietServer):
    request_queue_size = 128  # like werkzeug's: a burst of concurrent clients is not refused


class Listening:
    """An emulator's listener (`self._endpoint`, a faults.Endpoint) taken down and brought back on its port,
    while its state and timers live on."""

    _endpoint: "Endpoint | None"

    @property
    def up(self) -> bool:
        return self._endpoint is not None and self._endpoint.up

    def stop_listener(self, *, spare_thread: int | None = None) -> None:
        """Refuse connections from now on (and drop the open ones)."""
        if self._endpoint is not None:
            self._endpoint.stop(spare_thread=spare_thread)

    def start_listener(self) -> None:
        """Listen again, on the same port."""
        if self._endpoint is not None:
            self._endpoint.start()


class JsonApiHandler(TrackedConnections, BaseHTTPRequestHandler):
    """``POST /`` with ``X-Amz-Target: <target_prefix><Operation>``, answered by ``emulator.call``.

    The faults (``emulator.faults``, a :class:`~runbook_sandbox.faults.Faults` or None) see every
    call first, as ``<service>:<Operation>``: latency holds it, a throttle or a denial answers it
    unapplied. A call that was applied is counted (``stop_aws_after`` may close the listener before
    its answer goes out, which then says ``Connection: close``), and its answer may be lost
    (``lose_answers``). A subclass names its service's wire: the signing name, the target prefix,
    the content type, the key of an error's message and the name of its server error.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    emulator: Any  # has .faults and .call(operation, params, region)
    service: ClassVar[str]
    target_prefix: ClassVar[str]
    content_type: ClassVar[str]
    message_key: ClassVar[str]
    server_error: ClassVar[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        faults = self.emulator.faults
        try:
            if not target.startswith(self.target_prefix):
                raise ApiError("UnknownOperationException", f"Unknown target {target!r}")
            call = Call(self.service, target[len(self.target_prefix):], "json")
            answer = faults.before(call) if faults is not None else None
            if answer is not None:
                self._send(answer.status, answer.headers, answer.body)
                return
            try:
                params = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise ApiError("SerializationException", "the request body is not JSON") from None
            body = self.emulator.call(call.action, params, signed_region(self.headers.get("Authorization", "")))
            if faults is not None:
                faults.after_success(call)  # may stop the listeners before this answer goes out
                if faults.answer_lost(call):
                    self.close_connection = True  # applied, and no answer: the socket closes unanswered
                    return
            self._reply(200, body)
        except ApiError as err:
            self._reply(err.status, {"__type": err.code, self.message_key: err.message})
        except Exception as exc:  # noqa: BLE001 - answered as AWS would, as a 500
            self._reply(500, {"__type": self.server_error,
                              self.message_key: f"emulator error: {type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._reply(404, {"__type": "UnknownOperationException", self.message_key: "use POST /"})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self._send(status, (("Content-Type", self.content_type), ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))), data)

    def _send(self, status: int, headers: tuple[tuple[str, str], ...], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        endpoint = getattr(self.server, "endpoint", None)
        if endpoint is not None and not endpoint.up:
            # The listener was closed meanwhile (stop_aws_after fired on this very call): tell
            # the client not to reuse this connection, so its next call is refused, not cut.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
