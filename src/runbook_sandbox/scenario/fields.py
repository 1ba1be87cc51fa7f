"""Reading one field of a scenario file: its type, its range, its shape, or one line saying what is wrong."""

from __future__ import annotations

import ipaddress
from typing import Any

from runbook.errors import UsageError
from runbook.validation import Document, join
from runbook.validation import kind as _kind
from runbook_sandbox.scenario.vocabulary import SYMBOL


class Fields:
    """The typed readers every section of the parser builds on; ``label`` names the file in errors."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._document = Document("scenario", label)

    def fail(self, path: str, message: str) -> UsageError:
        return self._document.fail(path, message)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None = None,
                required: tuple[str, ...] = ()) -> dict:
        if value is None and not required:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {_kind(key)} {key!r}")
        if allowed is not None:
            unknown = [k for k in value if k not in allowed]
            if unknown:
                raise self.fail(
                    join(path, unknown[0]),
                    f"unknown key (expected one of: {', '.join(allowed)})",
                )
        for key in required:
            if key not in value or value[key] is None:
                raise self.fail(join(path, key), "required")
        return value

    def seq(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def string(self, value: Any, path: str, *, default: str | None = None, allow_empty: bool = False) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        if not value.strip() and not allow_empty:
            raise self.fail(path, "must not be empty")
        return value

    def opt_string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        return self.string(value, path)

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, *, default: int | None = None,
                lo: int | None = None, hi: int | None = None) -> int:
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise self.fail(path, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, value: Any, path: str, default: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        if value <= 0:
            raise self.fail(path, f"must be greater than 0, got {value}")
        return float(value)

    def port_string(self, value: Any, path: str, default: str) -> str:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, f"expected a string or integer, got {_kind(value)}")
        text = str(value)
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise self.fail(path, f"must be a port number 1-65535, got {text!r}")
        return str(int(text))

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str | None = None,
               message: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or value not in options:
            shown = repr(value) if isinstance(value, str) else _kind(value)
            raise self.fail(path, message or f"must be one of {', '.join(options)}, got {shown}")
        return value

    def symbol(self, value: Any, path: str) -> str:
        text = self.string(value, path)
        if not SYMBOL.match(text):
            raise self.fail(path, f"{text!r} is not a valid name (letters, digits, '-', '_', '.')")
        return text

    def cidr(self, value: Any, path: str, *, v6: bool = False) -> str:
        text = self.string(value, path)
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise self.fail(path, f"not a valid CIDR block: {exc}") from None
        if v6 != (net.version == 6):
            raise self.fail(path, f"expected an IPv{6 if v6 else 4} CIDR block, got {text!r}")
        return str(net)

    def names(self, value: Any, path: str, *, minimum: int = 1) -> tuple[str, ...]:
        items = self.seq(value, path)
        if len(items) < minimum:
            raise self.fail(path, f"needs at least {minimum} entr{'y' if minimum == 1 else 'ies'}")
        out: list[str] = []
        for i, item in enumerate(items):
            name = self.symbol(item, join(path, i))
            if name in out:
                raise self.fail(join(path, i), f"{name!r} is listed twice")
            out.append(name)
        return tuple(out)
