"""Fault injection: what the sandbox does to the tool, through real HTTP, on demand.

Every fault acts on the wire the tool talks to (the moto endpoint, the App
Runner and ECS emulators, and the service URLs); the sandbox's own bookkeeping (building
a world, judging deployments, writing logs) goes through a private moto
listener that no fault touches. Every fault is lifted by ``Sandbox.load()``
and by :meth:`Faults.clear`. The faults:

1. **Endpoints down and back.** ``Sandbox.stop_aws(down_for=None)`` closes the
   moto, App Runner and ECS listeners (new connections are refused, so boto3 raises
   ``EndpointConnectionError``; idle keep-alive connections are dropped) and
   keeps every resource; ``Sandbox.start_aws()`` listens again on the same
   ports, so ``Sandbox.env`` stays valid. ``down_for`` brings them back by
   itself after that many seconds. :meth:`Faults.stop_aws_after` does the same
   right after the Nth successful call of an action: the call is applied and
   its answer still reaches the client, but the listeners are closed before it
   is sent, so the client's next call is refused. Deployments in flight keep
   running and end on time (App Runner keeps deploying while your network to
   its API is down); service URLs stay up.
2. **Throttling.** :meth:`Faults.throttle` answers the next ``n`` requests
   (optionally of some services only) with the throttling error of their
   protocol, without applying them: EC2 ``RequestLimitExceeded`` (HTTP 503,
   EC2 XML), RDS/ElastiCache/ELBv2/STS ``Throttling`` (HTTP 400 query
   ``ErrorResponse``), CloudWatch Logs and ECS ``ThrottlingException`` (HTTP 400
   JSON 1.1), App Runner ``ThrottlingException`` (HTTP 429 JSON 1.0). botocore's
   retry modes retry every one of them. :attr:`Faults.throttled` counts them.
3. **Access denied.** :meth:`Faults.deny` answers an action with an
   authorization error, without applying it: EC2 ``UnauthorizedOperation``
   (HTTP 403), RDS/ElastiCache/ELBv2/STS ``AccessDenied`` (HTTP 403), Logs, ECS
   and App Runner ``AccessDeniedException`` (HTTP 400 JSON; App Runner's botocore
   model declares no such error, and AWS's JSON services answer it with 400).
   :attr:`Faults.denied` counts them.
4. **Flapping health.** :meth:`Faults.flap` makes a serving app answer its
   health path per a repeating pattern of status codes; a non-200 comes from
   the app (``server: envoy`` with ``x-envoy-upstream-service-time``, body
   ``{"detail": "<reason>"}``, for 503 ``{"detail":"Service Unavailable"}``).
   App Runner's own verdict on deployments is not affected.
5. **Deployments that never finish.** :meth:`Faults.hang_deployments` keeps
   the in-flight operation of a service (or of every service), and every one
   started later, ``IN_PROGRESS`` until :meth:`Faults.clear` (which lets them
   finish ``deploy_seconds`` later) or ``Sandbox.load()``.
6. **Latency.** :meth:`Faults.latency` holds every API request that long
   before answering it, as a round trip to a real region would; service URLs
   are not slowed. Loopback answers in about a millisecond, which hides what
   a dependent round of calls costs against AWS: the benchmark uses this.

Actions are named as in IAM policies: ``"AuthorizeSecurityGroupIngress"``
(any service), ``"ec2:AuthorizeSecurityGroupIngress"``, or a pattern such as
``"apprunner:*"`` (case-insensitive, ``fnmatch`` wildcards). Services are the
signing names (IAM's prefixes) ``ec2``, ``rds``, ``elasticache``, ``logs``,
``sts``, ``apprunner``, ``ecs``, ``elasticloadbalancing`` (ELBv2 and classic
ELB), ``secretsmanager`` and ``ssm``. A name that matches no operation of those
services is a ``ValueError``, so a typo never silently injects nothing.
"""

from __future__ import annotations

import base64
import difflib
import errno
import fnmatch
import io
import json
import os
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import parse_qs

SERVICES = ("ec2", "rds", "elasticache", "logs", "sts", "apprunner", "ecs", "elasticloadbalancing",
            "secretsmanager", "ssm")
# A signing name whose operations live in more than one botocore model.
MODELS = {"elasticloadbalancing": ("elb", "elbv2")}
DEFAULT_PRINCIPAL = "arn:aws:iam::123456789012:user/oncall"
XML_NAMESPACES = {
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "elasticache": "http://elasticache.amazonaws.com/doc/2015-02-02/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
}
APPRUNNER_THROTTLING_STATUS = 429
APPRUNNER_ACCESS_DENIED_STATUS = 400


# ---------------------------------------------------------------------- calls and answers


@dataclass(frozen=True)
class Call:
    """One API request as the faults see it. ``protocol``: ``ec2``, ``query``, ``json`` or ``rest``."""

    service: str
    action: str
    protocol: str


@dataclass(frozen=True)
class Answer:
    """An error answer to send instead of applying the call."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Injected:
    """One fault that hit a request: ``fault`` is ``throttled`` or ``denied``."""

    time: float
    fault: str
    service: str
    action: str
    code: str


def classify_wsgi(environ: dict) -> Call | None:
    """The call a WSGI request to moto makes, or None for what is not a signed API call.
    Reads the body and puts it back, so the application still sees it."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return None
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    service = scope[3] if len(scope) > 3 else ""
    if not service:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return Call(service, target.rsplit(".", 1)[-1], "json")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    params = parse_qs(environ.get("QUERY_STRING", ""))
    params.update(parse_qs(body.decode("utf-8", "replace")))
    action = params.get("Action", [""])[0]
    if action:
        return Call(service, action, "ec2" if service == "ec2" else "query")
    return Call(service, "", "rest")


def error_answer(call: Call, code: str, message: str, status: int) -> Answer:
    """``code``/``message`` in the error format of the call's protocol."""
    request_id = str(uuid.uuid4())
    if call.protocol == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{code}</Code><Message>{_xml(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
        headers = (("Content-Type", "text/xml;charset=UTF-8"), ("Server", "AmazonEC2"))
    elif call.protocol == "query":
        xmlns = XML_NAMESPACES.get(call.service)
        open_tag = f'<ErrorResponse xmlns="{xmlns}">' if xmlns else "<ErrorResponse>"
        body = (f"{open_tag}<Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = (("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id))
    else:  # JSON protocols: App Runner says "Message", CloudWatch Logs "message"
        key = "Message" if call.service == "apprunner" else "message"
        body = json.dumps({"__type": code, key: message}).encode()
        content_type = "application/x-amz-json-1.0" if call.service == "apprunner" else "application/x-amz-json-1.1"
        headers = (("Content-Type", content_type), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code))
    return Answer(status, headers + (("Content-Length", str(len(body))),), body)


def throttling_answer(call: Call) -> Answer:
    if call.protocol == "ec2":
        return error_answer(call, "RequestLimitExceeded", "Request limit exceeded.", 503)
    if call.protocol == "query":
        return error_answer(call, "Throttling", "Rate exceeded", 400)
    if call.service == "apprunner":
        return error_answer(call, "ThrottlingException", "Rate exceeded", APPRUNNER_THROTTLING_STATUS)
    return error_answer(call, "ThrottlingException", "Rate exceeded", 400)


def denied_answer(call: Call, principal: str) -> Answer:
    what = f"{call.service}:{call.action}"
    iam = (f"User: {principal} is not authorized to perform: {what} "
           f"because no identity-based policy allows the {what} action")
    if call.protocol == "ec2":
        blob = base64.b64encode(os.urandom(48)).decode()
        return error_answer(call, "UnauthorizedOperation",
                            f"You are not authorized to perform this operation. {iam}. "
                            f"Encoded authorization failure message: {blob}", 403)
    if call.protocol == "query":
        return error_answer(call, "AccessDenied", iam, 403)
    status = APPRUNNER_ACCESS_DENIED_STATUS if call.service == "apprunner" else 400
    return error_answer(call, "AccessDeniedException", iam, status)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------- naming actions

_OPERATIONS: dict[str, frozenset[str]] = {}
_OPERATIONS_LOCK = threading.Lock()


def _operations(service: str) -> frozenset[str]:
    with _OPERATIONS_LOCK:
        if service not in _OPERATIONS:
            import botocore.session

            session = botocore.session.get_session()
            _OPERATIONS[service] = frozenset(
                name for model in MODELS.get(service, (service,))
                for name in session.get_service_model(model).operation_names)
        return _OPERATIONS[service]


def _check_action(pattern: str) -> str:
    """Validate an IAM-style action name or pattern; return it as given."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("an action must be a non-empty string such as 'ec2:AuthorizeSecurityGroupIngress'")
    service, _, action = pattern.rpartition(":")
    if service:
        _check_service(service)
    if any(c in action for c in "*?["):
        return pattern
    services = (service,) if service else SERVICES
    known = {op.lower(): op for svc in services for op in _operations(svc)}
    if action.lower() not in known:
        close = difflib.get_close_matches(action, sorted(set(known.values())), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        where = service or "/".join(SERVICES)
        raise ValueError(f"no operation {action!r} in {where}{hint}")
    return pattern


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r} (one of {', '.join(SERVICES)})")
    return service


def matches(pattern: str, call: Call) -> bool:
    service, _, action = pattern.rpartition(":")
    if service and service != call.service:
        return False
    return fnmatch.fnmatchcase(call.action.lower(), action.lower())


# ---------------------------------------------------------------------- the fault switchboard


@dataclass
class _Trigger:
    pattern: str
    remaining: int
    down_for: float | None


class Faults:
    """The faults of one :class:`~runbook_sandbox.Sandbox` (``sandbox.faults``); thread-safe.

    Set them after ``Sandbox.load()``, which clears them all.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._throttles: list[list[Any]] = []  # [services or None, remaining, action or None], consumed in order
        self._denied: dict[str, str] = {}  # action pattern -> principal
        self._triggers: list[_Trigger] = []
        self._flaps: dict[str, list[Any]] = {}  # service name -> [pattern, next index]
        self._answers: dict[str, tuple[int, bytes, tuple[tuple[str, str], ...]]] = {}  # service name -> answer
        self._hang_all = False
        self._hung: set[str] = set()
        self._injected: list[Injected] = []
        self._latency = 0.0
        self._latency_only: str | None = None  # an action pattern: hold only its requests
        self._lost: list[list[Any]] = []  # [action pattern, remaining]: answers to drop after applying
        # Wired by the Sandbox:
        self.services: Callable[[], list[str]] = lambda: []
        self.on_event: Callable[..., None] = lambda kind, **data: None
        self.on_trigger: Callable[[float | None, str], None] = lambda down_for, cause: None
        self.on_hang: Callable[[], None] = lambda: None
        self.on_release: Callable[[], None] = lambda: None

    # -- the API -----------------------------------------------------------------

    def throttle(self, n: int, service: str | Iterable[str] | None = None, *, action: str | None = None) -> None:
        """Answer the next ``n`` requests (to any service, or to ``service`` / any of
        ``services``, or of ``action`` only) with their protocol's throttling error, without
        applying them. Budgets add up: each call adds one, and a request uses the oldest that matches."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("throttle(n): n must be a non-negative integer")
        services: frozenset[str] | None = None
        if service is not None:
            names = [service] if isinstance(service, str) else list(service)
            services = frozenset(_check_service(s) for s in names)
        pattern = _check_action(action) if action is not None else None
        with self._lock:
            if n:
                self._throttles.append([services, n, pattern])

    def deny(self, action: str, *, principal: str = DEFAULT_PRINCIPAL) -> None:
        """Answer ``action`` (``"UpdateService"``, ``"ec2:AuthorizeSecurityGroupIngress"``,
        ``"rds:*"``) with an authorization error naming ``principal``, without applying it."""
        with self._lock:
            self._denied[_check_action(action)] = principal

    def allow(self, action: str) -> None:
        """Lift a :meth:`deny` (the same string)."""
        with self._lock:
            if self._denied.pop(action, None) is None:
                raise ValueError(f"{action!r} is not denied (denied: {', '.join(self._denied) or 'nothing'})")

    def stop_aws_after(self, action: str, count: int = 1, *, down_for: float | None = None) -> None:
        """Stop both endpoints right after the ``count``-th successful call of ``action``
        from now has been applied; its answer still reaches the client. ``down_for``:
        start them again that many seconds later (else call ``Sandbox.start_aws()``)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("stop_aws_after(count=): a positive integer")
        if down_for is not None and down_for <= 0:
            raise ValueError("down_for must be positive")
        with self._lock:
            self._triggers.append(_Trigger(_check_action(action), count, down_for))

    def flap(self, service_name: str, pattern: Sequence[int] | None = (200, 503)) -> None:
        """While ``service_name`` serves, its health path answers GET/HEAD with the
        status codes of ``pattern`` in turn, forever (``None``: stop flapping)."""
        self._check_service_name(service_name)
        with self._lock:
            if pattern is None:
                self._flaps.pop(service_name, None)
                return
            codes = list(pattern)
            if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and 200 <= c <= 599
                                    for c in codes):
                raise ValueError("flap(pattern=): a non-empty sequence of HTTP status codes (200-599)")
            self._flaps[service_name] = [tuple(codes), 0]

    def answer(self, service_name: str, status: int | None = 200, body: str | bytes = b"",
               headers: dict[str, str] | None = None) -> None:
        """While ``service_name`` serves, the app answers GET/HEAD on its health path with this
        status, body and extra headers (a redirect's ``location``, say), instead of
        ``200 {"status":"ok"}``; ``status=None`` lifts it. A flap takes precedence."""
        self._check_service_name(service_name)
        with self._lock:
            if status is None:
                self._answers.pop(service_name, None)
                return
            if not (isinstance(status, int) and 100 <= status <= 599):
                raise ValueError("answer(status=): an HTTP status code (100-599)")
            raw = body.encode() if isinstance(body, str) else bytes(body)
            self._answers[service_name] = (status, raw, tuple((headers or {}).items()))

    def health_answer(self, service_name: str) -> tuple[int, bytes, tuple[tuple[str, str], ...]] | None:
        with self._lock:
            if service_name in self._flaps:
                return None
            return self._answers.get(service_name)

    def hang_deployments(self, service_name: str | None = None) -> None:
        """Operations of ``service_name`` (``None``: every service, including ones created
        later) stay ``IN_PROGRESS``: the one in flight now and every one started later."""
        if service_name is not None:
            self._check_service_name(service_name)
        with self._lock:
            if service_name is None:
                self._hang_all = True
            else:
                self._hung.add(service_name)
        self.on_event("fault", fault="hang-deployments", service=service_name or "*")
        self.on_hang()

    def latency(self, seconds: float, action: str | None = None) -> None:
        """Hold every API request (or only those of ``action``) ``seconds`` before
        answering it (0: answer at once). The request is applied after the wait,
        even if the client has gone meanwhile, as AWS applies a request it received."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
            raise ValueError("latency(seconds): a number of seconds from 0 to 60")
        pattern = _check_action(action) if action is not None else None
        with self._lock:
            self._latency = float(seconds)
            self._latency_only = pattern

    def lose_answers(self, action: str, count: int = 1) -> None:
        """Apply the next ``count`` App Runner calls of ``action`` (``"apprunner:StartDeployment"``),
        then close the connection instead of answering: the call landed and the client never
        heard so (botocore retries it as a broken connection, and the retry meets its effect)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("lose_answers(count=): a positive integer")
        pattern = _check_action(action)
        if not pattern.startswith("apprunner:"):
            raise ValueError("lose_answers: App Runner actions only, such as 'apprunner:StartDeployment'")
        with self._lock:
            self._lost.append([pattern, count])

    def answer_lost(self, call: Call) -> bool:
        """Whether the answer to this applied ``call`` is to be lost (see :meth:`lose_answers`)."""
        with self._lock:
            for budget in self._lost:
                if budget[1] > 0 and matches(budget[0], call):
                    budget[1] -= 1
                    self._lost = [b for b in self._lost if b[1] > 0]
                    return True
        return False

    def clear(self) -> None:
        """Lift every fault and forget the counts. Hung operations finish ``deploy_seconds``
        from now. (Stopped endpoints stay stopped: that is ``Sandbox.start_aws()``.)"""
        with self._lock:
            released = self._hang_all or bool(self._hung)
            self._reset()
        if released:
            self.on_release()

    @property
    def throttled(self) -> int:
        """How many requests got a throttling error since the last clear/load."""
        with self._lock:
            return sum(1 for i in self._injected if i.fault == "throttled")

    @property
    def denied(self) -> int:
        """How many requests got an authorization error since the last clear/load."""
        with self._lock:
            return sum(1 for i in self._injected if i.fault == "denied")

    @property
    def injected(self) -> list[Injected]:
        """Every throttled or denied request, oldest first."""
        with self._lock:
            return list(self._injected)

    # -- what the servers ask ----------------------------------------------------------

    def before(self, call: Call) -> Answer | None:
        """An error to answer ``call`` with instead of applying it, or None (after any latency)."""
        with self._lock:
            delay = self._latency if self._latency_only is None or matches(self._latency_only, call) else 0.0
        if delay:
            time.sleep(delay)
        with self._lock:
            for budget in self._throttles:
                services, remaining, pattern = budget
                if remaining > 0 and (services is None or call.service in services) and (
                    pattern is None or matches(pattern, call)
                ):
                    budget[1] -= 1
                    self._throttles = [b for b in self._throttles if b[1] > 0]
                    answer, fault = throttling_answer(call), "throttled"
                    break
            else:
                principal = next((p for pattern, p in self._denied.items() if matches(pattern, call)), None)
                if principal is None:
                    return None
                answer, fault = denied_answer(call, principal), "denied"
            code = _code_of(answer)
            self._injected.append(Injected(time.time(), fault, call.service, call.action, code))
        self.on_event("fault", fault=fault, service=call.service, action=call.action, code=code)
        return answer

    def after_success(self, call: Call) -> bool:
        """Count a successful ``call``; True when it fires a :meth:`stop_aws_after`
        (the endpoints are then already stopped, but for the caller's connection)."""
        with self._lock:
            fired = None
            for trigger in self._triggers:
                if matches(trigger.pattern, call):
                    trigger.remaining -= 1
                    if trigger.remaining == 0 and fired is None:
                        fired = trigger
            self._triggers = [t for t in self._triggers if t.remaining > 0]
        if fired is None:
            return False
        try:
            self.on_trigger(fired.down_for, f"after {call.service}:{call.action} ({fired.pattern})")
        except Exception as exc:  # noqa: BLE001 - the call was applied: its answer must still go out
            self.on_event("error", where="stop_aws_after", error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    def health_status(self, service_name: str) -> int:
        with self._lock:
            flap = self._flaps.get(service_name)
            if flap is None:
                return 200
            pattern, index = flap
            flap[1] = (index + 1) % len(pattern)
            return pattern[index]

    def hangs(self, service_name: str) -> bool:
        with self._lock:
            return self._hang_all or service_name in self._hung

    # -- internals -----------------------------------------------------------------------

    def _reset(self) -> None:
        with self._lock:
            self._throttles = []
            self._denied = {}
            self._triggers = []
            self._flaps = {}
            self._answers = {}
            self._hang_all = False
            self._hung = set()
            self._injected = []
            self._latency = 0.0
            self._latency_only = None
            self._lost = []

    def _check_service_name(self, name: str) -> None:
        known = self.services()
        if name not in known:
            raise ValueError(f"no App Runner service {name!r} (services: {', '.join(known) or 'none'})")


def _code_of(answer: Answer) -> str:
    body = answer.body.decode()
    if body.startswith("{"):
        return json.loads(body)["__type"]
    return body.split("<Code>", 1)[1].split("</Code>", 1)[0]


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ---------------------------------------------------------------------- listeners that go down and come back


class TrackedConnections:
    """Mixin for a ``socketserver.StreamRequestHandler`` served by an :class:`Endpoint`:
    registers its connection, and answers nothing once the endpoint is down."""

    server: Any
    connection: socket.socket
    close_connection: bool

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        endpoint: Endpoint | None = getattr(self.server, "endpoint", None)
        if endpoint is not None:
            endpoint._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()  # type: ignore[misc]
        finally:
            endpoint: Endpoint | None = getattr(self.server, "endpoint", None)
            if endpoint is not None:
                endpoint._untrack(self.connection)

    def handle_one_request(self) -> None:
        endpoint: Endpoint | None = getattr(self.server, "endpoint", None)
        if endpoint is not None and not endpoint.up:
            self.close_connection = True
            return
        super().handle_one_request()  # type: ignore[misc]
        if endpoint is not None and not endpoint.up:
            self.close_connection = True  # answered; now go away like the rest


class Endpoint:
    """An HTTP server on 127.0.0.1 that can stop listening and start again on the same port.

    ``factory(port)`` builds the (threading) server, bound; its handler class
    should mix in :class:`TrackedConnections`.
    """

    def __init__(self, name: str, factory: Callable[[int], socketserver.BaseServer]) -> None:
        self.name = name
        self._factory = factory
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._connections: dict[socket.socket, int] = {}  # connection -> handler thread id
        self._lock = threading.Lock()
        self.port = 0
        self.up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port else ""

    def start(self) -> None:
        if self._server is not None:
            return
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server = self._factory(self.port)
                break
            except OSError as err:  # someone grabbed our port meanwhile: wait for it
                if err.errno != errno.EADDRINUSE or not self.port or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: cannot listen on 127.0.0.1:{self.port} again: {err}") from err
                time.sleep(0.05)
        server.endpoint = self
        self.port = server.server_address[1]
        self._server = server
        self.up = True
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()

    def stop(self, *, spare_thread: int | None = None) -> None:
        """Stop listening (connections are refused from now on) and drop every open
        connection, except the one served by thread ``spare_thread`` (it is closed
        once its current answer has gone out)."""
        with self._lock:
            server, self._server = self._server, None
            self.up = False
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        with self._lock:
            victims = [conn for conn, ident in self._connections.items() if ident != spare_thread]
        for conn in victims:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.get_ident()

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)


__all__ = ["Answer", "Call", "Endpoint", "Faults", "Injected", "TrackedConnections", "DEFAULT_PRINCIPAL"]
