"""A saved plan: the exact calls a dry run proposes, written by `fix --dry-run --plan-out` and read by `apply`.

The plan pins the runbook it was made with, by absolute path and the SHA-256 of
the file's bytes: `apply` from another directory, or after the file was edited,
refuses the plan instead of checking the world against different steps.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from runbook.errors import UsageError
from runbook.files import too_deep, write_private

if TYPE_CHECKING:
    from runbook.engine import Report
    from runbook.model import Change, Runbook, StepResult
    from runbook.secrets import Scrubber

FORMAT = "runbook-plan/2"


def call_key(call: dict[str, Any]) -> str:
    """A call (as ApiCall.as_dict gives it, or as a saved plan holds it) as a comparable string."""
    return json.dumps(call, sort_keys=True, default=str)


def change_key(change: "Change") -> str:
    return call_key(change.call.as_dict())


def masked_key(change: "Change", scrubber: "Scrubber") -> str:
    """The key a saved plan holds for `change`: its call with the secrets `scrubber` knows masked, as the plan wrote it."""
    return call_key(scrubber.data(change.call.as_dict()))


def call_keys(doc: dict[str, Any]) -> frozenset[str]:
    """The keys of a (validated) plan's calls: what `apply` may send, and nothing else."""
    return frozenset(call_key(entry["call"]) for entry in doc.get("changes", []))


def stale(doc: dict[str, Any], results: "list[StepResult]", scrubber: "Scrubber") -> list[str]:
    """One line per planned call the world no longer calls for (the steps' findings in `results`)."""
    current = {masked_key(c, scrubber) for r in results for c in r.finding.changes if not c.recommendation}
    lines = []
    for entry in doc.get("changes", []):
        if call_key(entry["call"]) not in current:
            result = next((r for r in results if r.step.id == entry["step"]), None)
            now = f"{result.finding.status.value}: {result.finding.summary}" if result else "no such step"
            lines.append(f"{entry['step']} no longer proposes {entry['call']['operation']} (now {now})")
    return lines


def runbook_digest(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"runbook {path}: cannot read: {exc.strerror or exc}") from None


def dump(report: "Report", runbook: "Runbook", region: str, selected: Callable[[str], bool], scrubber: "Scrubber") -> dict[str, Any]:
    """The exact calls a dry run proposes, secrets masked, to be applied later as reviewed."""
    changes = [
        {
            "step": r.step.id,
            "description": c.description,
            "phase": c.phase.name.lower(),
            "call": c.call.as_dict(),
            "cli": scrubber.call(c.call).cli(region),
            "inverse": c.inverse.as_dict() if c.inverse else None,
        }
        for r in report.results
        if selected(r.step.id)
        for c in r.finding.changes
        if not c.recommendation
    ]
    # Not applied by `apply`: they wait for other steps; a plan made after applying this one holds them.
    held = [
        {"step": r.step.id, "operation": c.call.operation, "description": c.description, "held_by": list(r.held_by)}
        for r in report.results
        if selected(r.step.id)
        for c in r.held
        if not c.recommendation
    ]
    source = Path(runbook.source).resolve()
    return scrubber.data(
        {
            "format": FORMAT,
            "runbook": str(source),
            "runbook_sha256": runbook_digest(source),
            "service": report.service_ref or report.service,  # what finds it again (a name in its cluster, an ARN)
            "region": region,
            "read_secrets": runbook.params.get("read_secrets") is True,  # apply discovers as the plan did
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "changes": changes,
            "held": held,
        }
    )


def write(path: Path, doc: dict[str, Any]) -> None:
    write_private(path, json.dumps(doc, indent=2, default=str) + "\n", "the plan")


def save(path: Path, doc: dict[str, Any]) -> list[str]:
    """Write the plan; the lines that tell the user what it holds and how to apply it."""
    write(path, doc)
    said = [f"plan of {len(doc['changes'])} change(s) saved to {path}; apply it with: runbook apply {path}"]
    if doc["held"]:
        said.append(f"{len(doc['held'])} more wait for other steps and are not in it "
                    f"({', '.join(h['step'] for h in doc['held'])}): plan again after applying this one")
    return said


def open_reviewed(path: Path) -> "tuple[dict[str, Any], Runbook]":
    """A saved plan and the runbook it pins, as `apply` needs them (secrets read if the plan's discovery read them)."""
    from runbook import runbook as rb

    doc = load(path)
    return doc, rb.with_secrets_read(pinned_runbook(doc, str(path)), doc.get("read_secrets") is True)


def load(path: Path) -> dict[str, Any]:
    """Read and validate a saved plan; UsageError (one line) for anything that is not one."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else ("nested too deeply" if isinstance(exc, RecursionError) else exc)
        raise UsageError(f"plan {path}: cannot read it: {reason}") from None
    if too_deep(doc):
        raise UsageError(f"plan {path}: cannot read it: nested too deeply")
    return validate(doc, str(path))


def validate(doc: Any, label: str) -> dict[str, Any]:
    def fail(message: str) -> UsageError:
        return UsageError(f"plan {label}: {message}")

    if not isinstance(doc, dict) or not isinstance(doc.get("format"), str) or not doc["format"].startswith("runbook-plan/"):
        raise fail(f"not a runbook plan (expected format {FORMAT})")
    if doc["format"] != FORMAT:
        raise fail(f"format {doc['format']} is not {FORMAT} (made by another version of runbook): make a new plan")
    for key in ("runbook", "runbook_sha256", "service"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise fail(f"{key}: missing or not a string")
    if doc.get("region") is not None and not isinstance(doc["region"], str):
        raise fail("region: not a string")
    for key in ("changes", "held"):
        if not isinstance(doc.get(key, []), list):
            raise fail(f"{key}: not a list")
    if "changes" not in doc:
        raise fail("changes: missing")
    for index, entry in enumerate(doc["changes"]):
        call = entry.get("call") if isinstance(entry, dict) else None
        if not (isinstance(entry.get("step") if isinstance(entry, dict) else None, str) and isinstance(call, dict)
                and isinstance(call.get("service"), str) and isinstance(call.get("operation"), str)
                and isinstance(call.get("params"), dict)):
            raise fail(f"changes[{index}]: needs step and call.service, call.operation, call.params")
    return doc


def pinned_runbook(doc: dict[str, Any], label: str) -> "Runbook":
    """The runbook the plan was made with, refused if the file is not the one reviewed."""
    from runbook import runbook as rb

    path = Path(doc["runbook"])
    if not path.is_absolute():
        raise UsageError(f"plan {label}: runbook: {path} is not an absolute path; make a new plan")
    if not path.is_file():
        raise UsageError(f"plan {label}: the runbook it was made with, {path}, no longer exists; make a new plan")
    def check() -> None:
        digest = runbook_digest(path)
        if digest != doc["runbook_sha256"]:
            raise UsageError(f"plan {label}: the runbook {path} changed since the plan was made "
                             f"(sha256 {digest[:12]}…, the plan pinned {doc['runbook_sha256'][:12]}…); refusing it: make a new plan")

    check()
    loaded = rb.load(str(path))
    check()  # and it did not change while it was being read
    return loaded
