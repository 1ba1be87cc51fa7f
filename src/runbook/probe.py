"""The HTTP health probe: one GET, everything it answered kept as evidence."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

BODY_LIMIT = 2048


@dataclass(frozen=True)
class ProbeResult:
    url: str
    status: int | None  # None: no HTTP answer at all
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def from_app(self) -> bool:
        """Envoy adds this header only to responses that came from the application."""
        return "x-envoy-upstream-service-time" in self.headers


def service_url(service_url_host: str, path: str) -> str:
    """`https://` + ServiceUrl, or `http://` when the host is a loopback address (the sandbox)."""
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


def probe(url: str, timeout: float = 5.0) -> ProbeResult:
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "runbook-probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _result(url, response.status, response.headers, response.read(BODY_LIMIT), started)
    except urllib.error.HTTPError as exc:
        body = exc.read(BODY_LIMIT) if exc.fp else b""
        return _result(url, exc.code, exc.headers, body, started)
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ProbeResult(url, None, error=f"{type(exc).__name__}: {reason}", elapsed_ms=_ms(started))


def _result(url, status, headers, body: bytes, started) -> ProbeResult:
    return ProbeResult(
        url,
        status,
        {k.lower(): v for k, v in headers.items()},
        body.decode("utf-8", "replace"),
        elapsed_ms=_ms(started),
    )


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
