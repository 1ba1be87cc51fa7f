"""The data the whole tool passes around: frozen, printable, free of I/O."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Mapping

from runbook.secrets import ENV_KEY, MASK


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

    @property
    def severity(self) -> int:
        """How bad: of several findings about one thing, the most severe speaks for it."""
        return (Status.SKIPPED, Status.OK, Status.WARN, Status.FAIL, Status.ERROR).index(self)


class Phase(IntEnum):
    """When fix sends a change: never cut the app off first. The order (with the waits between
    the phases) is next_action's; nothing serialises these numbers (a plan names the phase)."""

    AUTHORIZE = 1
    REVOKE = 2
    REDEPLOY = 3


def _kebab(name: str) -> str:
    """`IpPermissions` -> `ip-permissions`, `authorize_security_group_ingress` -> `authorize-security-group-ingress`."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name)
    return name.replace("_", "-").lower()


def _read_back(service: str, operation: str, key: str) -> tuple[str, str, str] | None:
    """A parameter resent as AWS described it, which a CLI twin reads back instead of printing: the
    describe call, its id parameter and the --query of the value (the platforms' READ_BACK)."""
    from runbook.platforms import owning

    platform = owning(service)
    return platform.READ_BACK.get((service, operation, key)) if platform else None


def _holds_environment(value: Any) -> bool:
    """Whether a value holds RuntimeEnvironmentVariables (at any depth), or a masked one."""
    if isinstance(value, dict):
        return ENV_KEY in value or any(_holds_environment(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_environment(v) for v in value)
    return isinstance(value, str) and MASK in value


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call as data: what the plan prints is what apply sends."""

    service: str
    operation: str  # boto3 method name, e.g. "authorize_security_group_ingress"
    params: Mapping[str, Any]

    def cli(self, region: str | None = None, profile: str | None = None) -> str:
        """The `aws` CLI twin of this call (complex parameters as JSON).

        A twin never carries a masked secret as a value to paste (it would set the password to
        `***`). A parameter the tool resends as AWS described it (the rebuild's
        SourceConfiguration, environment included) is read back from AWS by the twin itself, so
        the real values go from AWS to AWS and are never printed; any other parameter holding a
        masked value makes the line a shell comment that says so.
        """
        tail = (["--region", region] if region else []) + (["--profile", shlex.quote(profile)] if profile else [])
        parts = ["aws", self.service, _kebab(self.operation)]
        masked = []
        for key, value in self.params.items():
            parts.append(f"--{_kebab(key)}")
            if isinstance(value, bool):
                parts[-1] = f"--{_kebab(key)}" if value else f"--no-{_kebab(key)}"
                continue
            read_back = _read_back(self.service, self.operation, key)
            if read_back and read_back[1] in self.params and _holds_environment(value):
                operation, id_param, query = read_back
                reader = ["aws", self.service, _kebab(operation), f"--{_kebab(id_param)}", shlex.quote(str(self.params[id_param])),
                          "--query", query, "--output", "json", *tail]
                parts.append(f'"$({" ".join(reader)})"')
                continue
            text = json.dumps(value, separators=(",", ":"), sort_keys=False) if isinstance(value, (dict, list)) else str(value)
            if MASK in text:
                masked.append(key)
            parts.append(shlex.quote(text))
        command = " ".join(parts + tail)
        if masked:
            return f"# not pasteable: {', '.join(masked)} holds secrets shown as {MASK}: {command}"
        return command

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
    # Advice that a person at a terminal is still asked about, as a change of its own (default No):
    # what else it changes, one line each, shown before the question. Never applied under --yes.
    offer: tuple[str, ...] = ()


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
    platform: str = ""  # what runs the service: a name in runbook.platforms.PLATFORMS


@dataclass
class AppliedChange:
    change: Change
    applied: bool
    outcome: str  # "applied", "already in place", "declined", "failed: …", "unknown: …" (settled by the read-back)
    declined: bool = False
    seq: int = 0  # its call's number in the journal (0: not journaled)


@dataclass
class StepResult:
    step: Step
    finding: Finding
    applied: list[AppliedChange] = field(default_factory=list)
    # Changes the check proposed but that wait for the `after` steps to pass.
    held: tuple[Change, ...] = ()
    held_by: tuple[str, ...] = ()
