"""What the repository's two hand-written validators share: the runbook loader
(:mod:`runbook.runbook`) and the sandbox's scenario parser (``runbook_sandbox.scenario``).

A problem in a file is one line, ``WHAT SOURCE: PATH: message``, raised as
:class:`~runbook.errors.UsageError` (exit 2). PATH names the field as the file
spells it (``steps[0].with.target``, ``services[0].env.DEBUG``).

A value's type is named in one of two registers, from one table: YAML's word
(``got list``), which scenario messages use, or a phrase (``got a list``), which
runbook messages use. Both are what users and tests read, so both stay.
"""

from __future__ import annotations

from typing import Any

from runbook.errors import UsageError

# type -> (YAML's word, the phrase). Looked up along the value's MRO, so that True is a boolean, not a number.
_KINDS: dict[type, tuple[str, str]] = {
    type(None): ("null", "nothing"),
    bool: ("boolean", "a boolean"),
    int: ("integer", "a number"),
    float: ("number", "a number"),
    str: ("string", "a string"),
    list: ("list", "a list"),
    dict: ("mapping", "a mapping"),
}


def _kinds(value: Any) -> tuple[str, str]:
    for cls in type(value).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    name = type(value).__name__
    return name, name


def kind(value: Any) -> str:
    """YAML's word for the value's type: null, boolean, integer, number, string, list, mapping."""
    return _kinds(value)[0]


def a_kind(value: Any) -> str:
    """The value's type as a phrase: nothing, a boolean, a number, a string, a list, a mapping."""
    return _kinds(value)[1]


def join(path: str, key: str | int) -> str:
    """The path of a member: ``steps`` + 0 is ``steps[0]``, ``steps[0]`` + ``id`` is ``steps[0].id``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def shorten(text: str, limit: int = 80) -> str:
    """A name as an error line quotes it: at most ``limit`` characters (a path can be any length)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Document:
    """The file a validator reads, as its errors name it: ``Document("runbook", path).fail("name", "missing")``."""

    def __init__(self, what: str, source: str) -> None:
        self.what = what
        self.source = source

    def fail(self, path: str, message: str) -> UsageError:
        """The error for a problem at ``path`` (empty: the document as a whole), to raise."""
        where = f"{path}: " if path else ""
        return UsageError(f"{self.what} {self.source}: {where}{message}")
