"""Keep secrets out of everything the tool writes: text, JSON, Markdown, journal.

Two layers: evidence redacts URL passwords where it is built, and every output
goes through a Scrubber that knows the secret values seen during discovery, so a
value that slipped into an API call's parameters (an `update_service` resends
the environment) is still masked.
"""

from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import urlsplit

MASK = "***"
# Names whose values are secrets. Not a bare "AUTH": AUTH_PROVIDER=aws would mask every "aws" printed.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|PASS|SECRET|TOKEN|API_?KEY|SECRET_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)$", re.I)
# scheme://user:password@host: the password is everything up to the last @ of the authority.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)", re.I)


def redact_url(value: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", value)


def secrets_in_env(env: dict[str, str]) -> set[str]:
    """Values that must never be printed: URL passwords, and variables named like secrets."""
    found: set[str] = set()
    for name, value in env.items():
        if not isinstance(value, str) or not value:
            continue
        if _SECRET_NAME.search(name):
            found.add(value)
        for match in _URL_PASSWORD.finditer(value):
            found.add(match["pw"])
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    return {s for s in found if len(s) >= 3}


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def text(self, value: str) -> str:
        value = redact_url(value)
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
