"""Checks register here by name; runbook files refer to them by that name.

A check is a pure function `detect(topology, params) -> Finding`: it reads the
snapshot that discovery built and never calls AWS, so a dry run is exact and a
check is tested with a topology and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from runbook.discovery import Topology
    from runbook.model import Finding

Detect = Callable[["Topology", Mapping[str, Any]], "Finding"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    detect: Detect
    # IAM actions the check's discovery reads and its proposed changes need.
    permissions: tuple[str, ...]
    fix_permissions: tuple[str, ...]
    # Parameters a runbook step may pass with `with:`, and their defaults.
    params: Mapping[str, Any]
    doc: str


_CHECKS: dict[str, CheckSpec] = {}


def check(
    name: str,
    *,
    permissions: tuple[str, ...] = (),
    fix_permissions: tuple[str, ...] = (),
    params: Mapping[str, Any] | None = None,
) -> Callable[[Detect], Detect]:
    def register(fn: Detect) -> Detect:
        if name in _CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = CheckSpec(
            name, fn, permissions, fix_permissions, dict(params or {}), (fn.__doc__ or "").strip()
        )
        return fn

    return register


def _load_builtin() -> None:
    import runbook.checks  # noqa: F401  (registers every check module)


def get(name: str) -> CheckSpec | None:
    _load_builtin()
    return _CHECKS.get(name)


def names() -> list[str]:
    _load_builtin()
    return sorted(_CHECKS)
