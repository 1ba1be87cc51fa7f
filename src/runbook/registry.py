"""Checks register here by name; runbook files refer to them by that name.

A check is a pure function `detect(topology, params) -> Finding`: it reads the
snapshot that discovery built and never calls AWS, so a dry run is exact and a
check is tested with a topology and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from runbook.topology import Topology
    from runbook.model import Finding

Detect = Callable[["Topology", Mapping[str, Any]], "Finding"]


@dataclass(frozen=True)
class Param:
    """A parameter a check takes from a step's `with:` (or the runbook's `params:`).

    `allowed` lists the only values it takes (Cloud Custodian's `enum`); otherwise its value is
    of `type`, or of its default's type. A `required` parameter has no default: every step names it.
    """

    default: Any = None
    allowed: tuple[Any, ...] = ()
    type: type | None = None
    required: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be this parameter's, in words for one error line; None when it can."""
        if self.allowed:
            if any(type(value) is type(a) and value == a for a in self.allowed):
                return None
            return f"expected one of {', '.join(map(str, self.allowed))}, got {value!r}"
        if self.type is not None and not isinstance(self.default, self.type):
            return _wrong_type(self.type(), value)  # a type's zero value stands for the default it lacks
        return _wrong_type(self.default, value)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    detect: Detect
    # IAM actions the check reads beyond what discovery and the platform read (their own lists
    # declare those), and those its proposed changes need.
    permissions: tuple[str, ...]
    fix_permissions: tuple[str, ...]
    # Parameters a runbook step may pass with `with:`, and their defaults (None for a required one).
    params: Mapping[str, Any]
    doc: str
    schema: Mapping[str, Param] = field(default_factory=dict)  # the same parameters, with what each accepts
    # Its OK means the service's health URL answered 200: the engine then proves it N times in a row.
    proves_health: bool = False
    # It reads the log lines discovery gathered: once this run's fixes make the service healthy, it is
    # read again on the lines since the first fix, and earlier matches are history.
    reads_logs: bool = False


class ParamProblem(ValueError):
    """A step's parameters do not fit its check: `key` is where (None: the `with:` as a whole)."""

    def __init__(self, key: str | None, message: str):
        super().__init__(message)
        self.key = key


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
    """Register `detect` as check `name`. `params`: name -> Param, or name -> a plain default
    (the value must then be of the default's type)."""
    schema = {key: value if isinstance(value, Param) else Param(value) for key, value in (params or {}).items()}

    def register(fn: Detect) -> Detect:
        if name in _CHECKS or name in _ALIASES:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = CheckSpec(
            name, fn, permissions, fix_permissions, {k: p.default for k, p in schema.items()}, (fn.__doc__ or "").strip(),
            schema, proves_health, reads_logs,
        )
        return fn

    return register


def step_params(spec: CheckSpec, given: Mapping[str, Any], inherited: Mapping[str, Any] = {}) -> dict[str, Any]:
    """The parameters a step's check runs with: its defaults, then the runbook's `params:` that the
    check takes (`inherited`, validated with the runbook), then the step's own `with:` (`given`).
    ParamProblem names the first parameter that is unknown, has a value it does not take, or is missing."""
    for key, value in given.items():
        if key not in spec.schema:
            allowed = ", ".join(sorted(spec.schema)) or "none"
            raise ParamProblem(key, f"unknown parameter for check {spec.name} (allowed: {allowed})")
        problem = spec.schema[key].problem(value)
        if problem:
            raise ParamProblem(key, problem)
    merged = {**spec.params, **{k: v for k, v in inherited.items() if k in spec.schema}, **given}
    for key, param in spec.schema.items():
        if param.required and merged.get(key) is None:
            takes = f" ({', '.join(map(str, param.allowed))})" if param.allowed else ""
            raise ParamProblem(None, f"check {spec.name} needs parameter {key}{takes}")
    return merged


def _wrong_type(default: Any, value: Any) -> str | None:
    """Why `value` cannot stand where `default` is, or None when it can."""
    if default is None:
        return None
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        if not isinstance(value, type(default)):
            return f"expected {kind(default)}, got {kind(value)}"
        if isinstance(value, str) and not value.strip():
            return "expected a non-empty string"
        return None
    # Numbers: YAML's true/false are not numbers, nor are .nan and .inf.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {kind(value)}"
    if isinstance(default, int) and not isinstance(value, int):
        return f"expected a whole number, got {value!r}"
    if not math.isfinite(value) or value <= 0:
        return f"expected a positive number, got {value!r}"
    return None


def kind(value: Any) -> str:
    """A value's kind as an error line names it: a mapping, a list, a string, a number, nothing."""
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


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
