"""The data the whole tool passes around: frozen, printable, free of I/O."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Mapping


class Status(str, Enum):
    OK = "ok"
    FAIL = "fail"
    WARN = "warn"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def passed(self) -> bool:
        """A step that holds, or has nothing to check: steps that wait on it may proceed."""
        return self in (Status.OK, Status.WARN, Status.SKIPPED)


class Phase(IntEnum):
    """The order in which fix applies changes: never cut the app off first."""

    AUTHORIZE = 1
    WAIT = 2
    REVOKE = 3
    REDEPLOY = 4
    PROBE = 5


def _kebab(name: str) -> str:
    """`IpPermissions` -> `ip-permissions`, `authorize_security_group_ingress` -> `authorize-security-group-ingress`."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name)
    return name.replace("_", "-").lower()


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call as data: what the plan prints is what apply sends."""

    service: str
    operation: str  # boto3 method name, e.g. "authorize_security_group_ingress"
    params: Mapping[str, Any]

    def cli(self, region: str | None = None, profile: str | None = None) -> str:
        """The `aws` CLI twin of this call (complex parameters as JSON), for the region and profile it was made for."""
        parts = ["aws", self.service, _kebab(self.operation)]
        for key, value in self.params.items():
            parts.append(f"--{_kebab(key)}")
            if isinstance(value, bool):
                parts[-1] = f"--{_kebab(key)}" if value else f"--no-{_kebab(key)}"
                continue
            if isinstance(value, (dict, list)):
                parts.append(shlex.quote(json.dumps(value, separators=(",", ":"), sort_keys=False)))
            else:
                parts.append(shlex.quote(str(value)))
        if region:
            parts += ["--region", region]
        if profile:
            parts += ["--profile", shlex.quote(profile)]
        return " ".join(parts)

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(("describe_", "list_", "get_"))

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "params": dict(self.params)}


@dataclass(frozen=True)
class Change:
    """A proposed fix: the call, the call that undoes it, and when to send it."""

    call: ApiCall
    description: str
    phase: Phase
    inverse: ApiCall | None = None
    # Shown as advice only: never applied, not even with --yes.
    recommendation: bool = False


@dataclass(frozen=True)
class Evidence:
    """An API value a verdict was drawn from, with where it came from."""

    source: str  # e.g. "ec2 describe_security_group_rules group-id=sg-0e4c…"
    observation: str  # e.g. "no rule admits sg-00bc… on tcp/6379"
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Finding:
    """What one check concluded from one snapshot of the world."""

    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()
    changes: tuple[Change, ...] = ()
    # Something that finishes by itself (a deployment in flight, a health probe
    # after a fix): the engine waits for it instead of changing anything.
    waits_for: str | None = None


@dataclass(frozen=True)
class Step:
    """One step of a runbook file."""

    id: str
    check: str
    title: str
    why: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # Steps that must pass before this step's changes may be applied.
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    description: str
    source: str  # the file it was loaded from
    steps: tuple[Step, ...]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class AppliedChange:
    change: Change
    applied: bool
    outcome: str  # "applied", "already in place", "declined", "failed: …"
    declined: bool = False


@dataclass
class StepResult:
    step: Step
    finding: Finding
    applied: list[AppliedChange] = field(default_factory=list)
    # Changes the check proposed but that wait for the `after` steps to pass.
    held: tuple[Change, ...] = ()
    held_by: tuple[str, ...] = ()
