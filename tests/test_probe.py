"""The health probe proves the app answered: no redirect followed, bounded reads, credential headers masked."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import run, step
from runbook import probe as probe_module
from runbook.checks.http import classify, probe_evidence
from runbook.probe import BODY_LIMIT, HEADER_LIMIT, HEADER_VALUE_LIMIT, probe


class _App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body=b"", headers=()):
        self.send_response(code)
        self.send_header("x-envoy-upstream-service-time", "2")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path == "/healthz":  # the app sends its health path to a login page on another "host"
            self._send(302, b"", [("location", f"http://127.0.0.1:{port}/login?next=/healthz&token=t0k3n-abc")])
        elif self.path.startswith("/login"):
            self._send(200, b'{"page":"login"}')
        elif self.path == "/big":
            self._send(200, b"x" * 1_000_000, [(f"x-h{i}", "v" * 5000) for i in range(60)] + [("set-cookie", "session=s3ss10n")])
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("content-length", "100000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass


@pytest.fixture(scope="module")
def app_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_never_followed_and_never_healthy(app_url):
    result = probe(f"{app_url}/healthz")
    assert result.status == 302 and not result.healthy
    assert result.redirect == f"{app_url}/login?next=/healthz&token=t0k3n-abc"
    assert classify(result).startswith(f"not healthy: redirects to {app_url}/login")
    assert "login" not in result.body  # the page redirected to was never fetched


def test_reads_are_bounded_and_credential_headers_masked(app_url, monkeypatch):
    result = probe(f"{app_url}/big")
    assert len(result.body) == BODY_LIMIT
    assert len(result.headers) <= HEADER_LIMIT and all(len(v) <= HEADER_VALUE_LIMIT for v in result.headers.values())
    assert "s3ss10n" not in str(result) and "s3ss10n" not in str(probe_evidence(result))
    monkeypatch.setattr(probe_module, "READ_SECONDS", 0.5)
    started = time.monotonic()
    dripped = probe(f"{app_url}/drip")
    assert time.monotonic() - started < 2.5 and dripped.status == 200 and 0 < len(dripped.body) < 30


def test_healthz_that_redirects_fails_at_once_instead_of_waiting(world):
    box = world("healthy")
    box.faults.answer("nerava-backend", 302, headers={"location": "https://login.example.com/sso?return=/healthz&token=abc123def"})
    # fix has nothing to change and nothing to wait for: it ends now, not healthy (not at the timeout)
    started = time.monotonic()
    report, _, _ = run(timeout=30)
    assert not report.healthy and report.exit_code == 1 and time.monotonic() - started < 15, report.stopped
    finding = step(report, "healthz").finding
    assert finding.status.value == "fail" and finding.waits_for is None
    assert "redirects to https://login.example.com/sso?return=***&token=***" in finding.summary
