"""A client that hangs up mid-answer is none of the emulators' business: nothing reaches stderr."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from urllib.parse import urlparse

from runbook_sandbox.envoy import EnvoyServer, Upstream


def _reset(sock: socket.socket) -> None:
    """Close with a RST, not a FIN: the server's next write fails at once (ECONNRESET, then EPIPE)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _request_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def test_envoy_says_nothing_when_the_client_hangs_up_mid_answer(capfd):
    asked, hung_up, handlers = threading.Event(), threading.Event(), []

    def health_status() -> int:
        handlers.append(threading.current_thread())
        asked.set()
        hung_up.wait(10)
        return 200

    # A body larger than any socket buffer: some write is sure to meet the reset.
    envoy = EnvoyServer(lambda: Upstream("/healthz"), health_status, lambda: (200, b"x" * 4_000_000, ()))
    envoy.start()
    try:
        host, port = envoy.address.split(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert asked.wait(10), "envoy never read the request"
        _reset(sock)
        hung_up.set()
        handlers[0].join(10)
        assert not handlers[0].is_alive()
    finally:
        envoy.stop()
    assert capfd.readouterr().err == ""


def test_the_app_runner_emulator_says_nothing_when_the_client_hangs_up_mid_answer(load, capfd):
    sb = load("field-report")
    url = urlparse(sb.env["AWS_ENDPOINT_URL_APPRUNNER"])
    sb.faults.latency(0.5, "apprunner:ListServices")  # the answer is written after the client has gone
    body = json.dumps({}).encode()
    before = _request_threads()
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AppRunner.ListServices\r\n"
                     b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 10
        while not (new := _request_threads() - before):
            assert time.monotonic() < deadline, "the emulator never took the connection"
            time.sleep(0.01)
        time.sleep(0.1)  # the request is read, the latency has begun
    finally:
        _reset(sock)
    (handler,) = new
    handler.join(10)
    assert not handler.is_alive()
    sb.faults.clear()
    assert capfd.readouterr().err == ""
