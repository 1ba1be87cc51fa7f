"""What every emulator's wire needs, whatever service it speaks: its error, the region of an ARN and
of a request's signature, and the loopback server (quiet when a client hangs up mid-answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_sandbox.envoy import QuietServer

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
