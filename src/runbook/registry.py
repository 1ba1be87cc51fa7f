"""Checks register here by name; runbook files refer to them by that name.

A check is a pure function `detect(topology, params) -> Finding`: it reads the
snapshot that discovery built and never calls AWS, so a dry run is exact and a
check is tested with a topology and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from runbook.topology import Topology
    from runbook.model import Finding

Detect = Callable[["Topology", Mapping[str, Any]], "Finding"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    detect: Detect
    # IAM actions the check reads beyond what discovery and the platform read (their own lists
    # declare those), and those its proposed changes need.
    permissions: tuple[str, ...]
    fix_permissions: tuple[str, ...]
    # Parameters a runbook step may pass with `with:`, and their defaults.
    params: Mapping[str, Any]
    doc: str
    # Its OK means the service's health URL answered 200: the engine then proves it N times in a row.
    proves_health: bool = False
    # It reads the log lines discovery gathered: once this run's fixes make the service healthy, it is
    # read again on the lines since the first fix, and earlier matches are history.
    reads_logs: bool = False


_CHECKS: dict[str, CheckSpec] = {}
_ALIASES: dict[str, str] = {}  # a name a runbook may still use -> the check's registered name


def check(
    name: str,
    *,
    permissions: tuple[str, ...] = (),
    fix_permissions: tuple[str, ...] = (),
    params: Mapping[str, Any] | None = None,
    proves_health: bool = False,
    reads_logs: bool = False,
) -> Callable[[Detect], Detect]:
    def register(fn: Detect) -> Detect:
        if name in _CHECKS or name in _ALIASES:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = CheckSpec(
            name, fn, permissions, fix_permissions, dict(params or {}), (fn.__doc__ or "").strip(),
            proves_health, reads_logs,
        )
        return fn

    return register


def alias(old: str, name: str) -> None:
    """Let runbooks name check `name` by `old` too (a platform's word for it): same spec, same results."""
    if old in _CHECKS or _ALIASES.get(old, name) != name:
        raise ValueError(f"check {old!r} registered twice")
    _ALIASES[old] = name


def _load_builtin() -> None:
    import runbook.checks  # noqa: F401  (registers every check module)
    import runbook.platforms  # noqa: F401  (and the platforms' aliases)


def get(name: str) -> CheckSpec | None:
    """The check a runbook names, by its registered name or an alias."""
    _load_builtin()
    return _CHECKS.get(_ALIASES.get(name, name))


def names() -> list[str]:
    """What a runbook may name: every registered name and alias."""
    _load_builtin()
    return sorted([*_CHECKS, *_ALIASES])
