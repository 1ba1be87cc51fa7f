"""An append-only record of every change a run sends, written before it is sent.

JSON lines under `$XDG_STATE_HOME/runbook/journal.jsonl` (default
`~/.local/state/runbook/`). A `plan` entry lists what a phase is about to send;
a `call` entry is flushed to disk before each API call goes out and a `result`
entry after it answers, so a crash or kill leaves a record that says exactly
what was applied, what may have been, and what was not.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.model import Change
from runbook.secrets import Scrubber


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "runbook" / "journal.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    def __init__(self, path: Path | None = None, *, runbook: str = "", service: str = "", region: str = ""):
        self.path = path or default_path()
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + _random.token_hex(3)
        self.context = {"runbook": runbook, "service": service, "region": region}
        self.scrubber = Scrubber()
        self.caller: dict[str, Any] | None = None
        self._seq = 0
        self.written = False  # has this run recorded anything?

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(self.scrubber.data({"run": self.run_id, "time": _now(), **entry}), default=str)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.written = True
        except OSError as exc:
            # No record, no change: a call is only sent after its entry is on disk.
            raise UsageError(f"cannot write the journal {self.path}: {exc.strerror or exc}; pass --journal PATH") from None

    def planned(self, items: list[tuple[str, Change]], region: str) -> None:
        """What this phase is about to send, before any of it is: after a crash, what was not applied."""
        self._write(
            {
                "event": "plan",
                **self.context,
                "changes": [
                    {"step": step_id, "call": change.call.as_dict(), "cli": change.call.cli(region)} for step_id, change in items
                ],
            }
        )

    def begin(self, step_id: str, change: Change, region: str) -> int:
        self._seq += 1
        self._write(
            {
                "event": "call",
                "seq": self._seq,
                **self.context,
                "caller": self.caller,
                "step": step_id,
                "description": change.description,
                "call": change.call.as_dict(),
                "cli": change.call.cli(region),
                "inverse": change.inverse.as_dict() if change.inverse else None,
            }
        )
        return self._seq

    def end(self, seq: int, outcome: str, request_id: str | None = None, detail: Any = None, inverse=None) -> None:
        entry = {"event": "result", "seq": seq, "outcome": outcome, "request_id": request_id, "detail": detail}
        if inverse is not None:
            entry["inverse"] = inverse.as_dict()  # sharper than planned, e.g. the created rule's id
        self._write(entry)


def read(path: Path | None = None) -> list[dict[str, Any]]:
    """Every entry of a journal; a torn last line (a crash mid-write) is skipped."""
    path = path or default_path()
    try:
        if not path.exists():
            return []
    except OSError as exc:
        raise UsageError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a directory, a name too long
        raise UsageError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    entries = []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep to be ours
            continue
    return entries


def runs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per run, oldest first: what was sent, what answered, what is unknown."""
    by_run: dict[str, dict[str, Any]] = {}
    for entry in entries:
        run = by_run.setdefault(
            entry["run"],
            {"run": entry["run"], "started": entry["time"], "calls": {}, "runbook": "", "service": "", "region": "", "caller": None},
        )
        for key in ("runbook", "service", "region", "caller"):
            run[key] = entry.get(key) or run[key]
        if entry["event"] == "call":
            run["calls"][entry["seq"]] = {**entry, "outcome": None}
        elif entry["event"] == "result" and entry["seq"] in run["calls"]:
            call = run["calls"][entry["seq"]]
            call.update(outcome=entry["outcome"], request_id=entry.get("request_id"))
            if entry.get("inverse"):
                call["inverse"] = entry["inverse"]
    return list(by_run.values())


def undoable(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls of a run that changed the world, newest first: what undo reverses.

    "already in place", failed and unsent calls changed nothing and are left
    alone; a call with no recorded answer (or an "unknown" one) may or may not
    have landed, so it is reversed too (the inverse is idempotent: an absent
    rule is already gone).
    """
    calls = sorted(run["calls"].values(), key=lambda c: c["seq"], reverse=True)
    return [c for c in calls if c["outcome"] is None or c["outcome"].startswith(("applied", "unknown"))]
