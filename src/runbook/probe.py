"""The HTTP health probe: one GET, never a redirect followed, what it answered kept as bounded evidence."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Mapping

from runbook.secrets import MASK, Scrubber

BODY_LIMIT = 2048  # bytes of body read
HEADER_LIMIT = 40  # headers kept
HEADER_VALUE_LIMIT = 512  # characters of each header value kept
READ_SECONDS = 10.0  # the whole answer, however slowly it drips
# Headers whose values are credentials whatever the app put in them.
_CREDENTIAL_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization", "www-authenticate",
                                 "proxy-authenticate", "x-api-key", "x-amz-security-token"})


@dataclass(frozen=True)
class Front:
    """What answers a service's URL in front of the app (a platform's proxy, a load balancer), and
    how its own answers are told from the app's: by a header it adds only to what the app answered
    (envoy's), or by the Server header it puts on the pages it makes itself (a load balancer's own Server name)."""

    name: str  # how messages name it: "the proxy", "the load balancer"
    app_header: str | None = None
    own_server: str | None = None  # a prefix of its own pages' Server header, lower case
    # What a page it made itself means, by status code ("no healthy target" for an ALB's 503).
    own_pages: Mapping[int, str] = field(default_factory=dict)

    def sign(self, headers: Mapping[str, str]) -> str:
        """What in the headers shows who answered, for a message."""
        if self.app_header is not None:
            return f"no {self.app_header}" if self.app_header not in headers else self.app_header
        return f"server: {headers.get('server', '(none)')}"

    def from_app(self, headers: Mapping[str, str]) -> bool:
        if self.app_header is not None:
            return self.app_header in headers
        if self.own_server is not None:
            return not headers.get("server", "").lower().startswith(self.own_server)
        return True

    @property
    def shown_headers(self) -> tuple[str, ...]:
        return (self.app_header,) if self.app_header else ()


# Envoy adds x-envoy-upstream-service-time only to responses that came from the application.
ENVOY = Front("the proxy", app_header="x-envoy-upstream-service-time", own_pages={404: "no healthy instance"})


@dataclass(frozen=True)
class ProbeResult:
    url: str
    status: int | None  # None: no HTTP answer at all
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None
    elapsed_ms: float = 0.0
    front: Front = ENVOY  # what stood before the app

    @property
    def from_app(self) -> bool:
        return self.front.from_app(self.headers)

    @property
    def healthy(self) -> bool:
        """200 from the application itself: not a redirect's target, not a proxy's page."""
        return self.status == 200 and self.from_app

    @property
    def redirect(self) -> str | None:
        """Where a 3xx points (its Location), or None when it is no redirect."""
        if self.status is not None and 300 <= self.status < 400:
            return self.headers.get("location", "(no Location header)")
        return None

    @property
    def headline(self) -> str:
        """One line for a progress display."""
        if self.status is None:
            return self.error or "no answer"
        if self.redirect:
            return f"HTTP {self.status}, redirects to {self.redirect}"
        if self.status == 200 and not self.from_app:
            return "HTTP 200 but not from the application"
        return f"HTTP {self.status}"

    def scrubbed(self, scrubber: Scrubber) -> ProbeResult:
        """This answer with the secrets in its headers, body and error masked."""
        return replace(
            self,
            url=scrubber.text(self.url),
            headers={k: scrubber.text(v) for k, v in self.headers.items()},
            body=scrubber.text(self.body, multiline=True),
            error=scrubber.text(self.error) if self.error else None,
        )


def service_url(service_url_host: str, path: str) -> str:
    """`https://` + the service's host, or `http://` when the host is a loopback address (the sandbox)."""
    host = service_url_host.split("/")[0]
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    scheme = "https"
    try:
        if ipaddress.ip_address(hostname.strip("[]")).is_loopback:
            scheme = "http"
    except ValueError:
        if hostname == "localhost":
            scheme = "http"
    return f"{scheme}://{host}{path if path.startswith('/') else '/' + path}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer: following it would report another page's (or host's) 200 as this one's."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# Proxies from the environment still apply (an engineer behind one must reach the service).
_OPENER = urllib.request.build_opener(_NoRedirects)
# For a name that is not on the certificate the server presents (a load balancer's own DNS name, whose
# certificate names the customer's domain): the answer is still the service's, its identity unchecked.
# Built on first use: a default context loads the system's CA store (about 0.1 s) that it never reads.
@functools.cache
def _opener_unverified() -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(_NoRedirects, urllib.request.HTTPSHandler(context=context))


def probe(url: str, timeout: float = 5.0, *, front: Front = ENVOY, host: str | None = None,
          verify_tls: bool = True) -> ProbeResult:
    """One GET of `url`; `host`: the Host header to send instead of the URL's (a load balancer's
    host-header rule routes on it); `verify_tls=False` for a name its certificate cannot carry."""
    started = time.monotonic()
    headers = {"User-Agent": "runbook-probe", **({"Host": host} if host else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        with (_OPENER if verify_tls else _opener_unverified()).open(request, timeout=timeout) as response:
            return _result(url, response.status, response.headers, _read(response, started), started, front)
    except urllib.error.HTTPError as exc:
        body = _read(exc, started) if exc.fp else b""
        return _result(url, exc.code, exc.headers, body, started, front)
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return ProbeResult(url, None, error=f"{type(exc).__name__}: {reason}"[:HEADER_VALUE_LIMIT], elapsed_ms=_ms(started),
                           front=front)


def _read(response, started: float) -> bytes:
    """At most BODY_LIMIT bytes, within READ_SECONDS however slowly they come."""
    chunks, size = [], 0
    read = getattr(response, "read1", response.read)
    try:
        while size < BODY_LIMIT and time.monotonic() - started < READ_SECONDS:
            chunk = read(BODY_LIMIT - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (socket.timeout, ConnectionError, http.client.HTTPException, OSError):
        pass  # what came before the stall is the body seen
    return b"".join(chunks)


def _result(url, status, headers, body: bytes, started, front: Front) -> ProbeResult:
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:HEADER_LIMIT]:
        name = name.lower()[:64]
        kept[name] = MASK if name in _CREDENTIAL_HEADERS else str(value)[:HEADER_VALUE_LIMIT]
    return ProbeResult(url, status, kept, body.decode("utf-8", "replace"), elapsed_ms=_ms(started), front=front)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
