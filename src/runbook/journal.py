"""An append-only record of every change a run sends, written before it is sent.

JSON lines under `$XDG_STATE_HOME/runbook/journal.jsonl` (default
`~/.local/state/runbook/`). A `plan` entry lists what a phase is about to send;
a `call` entry is flushed to disk before each API call goes out and a `result`
entry after it answers, so a crash or kill leaves a record that says exactly
what was applied, what may have been, and what was not. An `end` entry closes a
run with its outcome; a run without one was interrupted or crashed.

The journal holds the account id and the caller's ARN: it is created 0600 in a
0700 directory, never through a symbolic link, and appended under an exclusive
lock so that two runs never interleave half lines. Reading skips (and counts)
any line that is not an entry this module writes, so one bad line never hides
the other runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets as _random
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.files import PRIVATE_DIR, PRIVATE_FILE, os_error, too_deep
from runbook.model import Change
from runbook.secrets import Scrubber

EVENTS = ("plan", "call", "result", "end")
# How a run ended (the `end` entry), and what history says of a run that has none.
OUTCOMES = ("healthy", "problems", "declined", "timeout", "interrupted", "error", "undone")
NO_END = "interrupted or crashed"


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "runbook" / "journal.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    def __init__(self, path: Path | None = None, *, runbook: str = "", service: str = "", region: str = "",
                 runbook_file: str | None = None, undoes: str | None = None):
        self.path = path or default_path()
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + _random.token_hex(3)
        self.context: dict[str, Any] = {"runbook": runbook, "service": service, "region": region}
        if runbook_file:
            self.context["runbook_file"] = runbook_file  # where undo finds the runbook to check health with
        if undoes:
            self.context["undoes"] = undoes
        self.scrubber = Scrubber()
        self.caller: dict[str, Any] | None = None
        self.undoing: int | None = None  # during an undo: the seq of the undone run's call being reversed
        self._seq = 0
        self.written = False  # has this run recorded anything?

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(self.scrubber.data({"run": self.run_id, "time": _now(), **entry}), default=str)
        # No record, no change: a call is only sent after its entry is on disk.
        append(self.path, line)
        self.written = True

    @property
    def sent_any(self) -> bool:
        """Has this run journaled a call (not only a plan)?"""
        return self._seq > 0

    def planned(self, items: list[tuple[str, Change]], region: str) -> None:
        """What this phase is about to send, before any of it is: after a crash, what was not applied."""
        self._write(
            {
                "event": "plan",
                **self.context,
                "changes": [
                    {"step": step_id, "call": change.call.as_dict(), "cli": self.scrubber.call(change.call).cli(region)}
                    for step_id, change in items
                ],
            }
        )

    def begin(self, step_id: str, change: Change, region: str) -> int:
        self._seq += 1
        entry = {
            "event": "call",
            "seq": self._seq,
            **self.context,
            "caller": self.caller,
            "step": step_id,
            "description": change.description,
            "call": change.call.as_dict(),
            "cli": self.scrubber.call(change.call).cli(region),
            "inverse": change.inverse.as_dict() if change.inverse else None,
        }
        if self.undoing is not None:
            entry["undoes_seq"] = self.undoing
        self._write(entry)
        return self._seq

    def end(self, seq: int, outcome: str, request_id: str | None = None, detail: Any = None, inverse=None) -> None:
        entry = {"event": "result", "seq": seq, "outcome": outcome, "request_id": request_id, "detail": detail}
        if inverse is not None:
            entry["inverse"] = inverse.as_dict()  # sharper than planned, e.g. the created rule's id
        self._write(entry)

    def finish(self, outcome: str, exit_code: int, stopped: str, declined: int = 0) -> None:
        """Close the run with how it ended; only a run that recorded something is closed."""
        if self.written:
            self._write({"event": "end", **self.context, "outcome": outcome, "exit_code": exit_code,
                         "stopped": stopped, "declined": declined})


def append(path: Path, line: str) -> None:
    """Append one line, fsynced, under an exclusive lock; a torn last line is terminated first."""
    try:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error("the journal", path, exc) from None
    if path.is_symlink():
        raise UsageError(f"the journal {path} is a symbolic link: refusing to follow it; pass --journal with a real file")
    try:
        # O_NONBLOCK: a FIFO at the path must not hang the run (it is refused below, like any non-file).
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as exc:
        raise os_error("the journal", path, exc) from None
    size = None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"the journal {path} is not a regular file; pass --journal with a journal file")
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)  # a journal an older version left readable by others
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = (line + "\n").encode("utf-8")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a crash mid-write left a torn line: keep this entry off it
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as exc:
        if size is not None:
            try:  # a full disk took part of the line: take it back, so the journal stays whole lines
                os.ftruncate(fd, size)
            except OSError:
                pass
        raise os_error("the journal", path, exc) from None
    finally:
        os.close(fd)  # releases the lock


# -- reading ----------------------------------------------------------------------
@dataclass
class Contents:
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines that are not journal entries: torn, not UTF-8, not JSON, or the wrong shape


def read(path: Path | None = None) -> Contents:
    """Every well-formed entry of a journal; any other line is skipped and counted."""
    path = path or default_path()
    if path.is_dir():
        raise UsageError(f"the journal {path} is a directory; pass --journal with a journal file")
    if path.exists() and not path.is_file():
        raise UsageError(f"the journal {path} is not a regular file; pass --journal with a journal file")
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)  # no half line of an append in progress
            raw = handle.read()
    except FileNotFoundError:
        return Contents()
    except OSError as exc:
        raise UsageError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    contents = Contents()
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            contents.skipped += 1
            continue
        if not too_deep(entry) and _well_formed(entry):
            contents.entries.append(entry)
        else:
            contents.skipped += 1
    return contents


def _is_call(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("service"), str) and isinstance(value.get("operation"), str)
            and isinstance(value.get("params"), dict))


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _well_formed(entry: Any) -> bool:
    if not (isinstance(entry, dict) and isinstance(entry.get("run"), str) and entry["run"]
            and isinstance(entry.get("time"), str) and entry.get("event") in EVENTS):
        return False
    if any(not isinstance(entry.get(key, ""), str) for key in ("runbook", "service", "region", "runbook_file", "undoes")):
        return False
    event = entry["event"]
    if event == "plan":
        return isinstance(entry.get("changes"), list)
    if event == "call":
        return (_is_seq(entry.get("seq")) and isinstance(entry.get("step"), str) and _is_call(entry.get("call"))
                and (entry.get("inverse") is None or _is_call(entry["inverse"]))
                and (entry.get("caller") is None or isinstance(entry["caller"], dict))
                and isinstance(entry.get("description", ""), str)
                and (entry.get("undoes_seq") is None or _is_seq(entry["undoes_seq"])))
    if event == "result":
        return (_is_seq(entry.get("seq")) and isinstance(entry.get("outcome"), str)
                and (entry.get("inverse") is None or _is_call(entry["inverse"])))
    return (isinstance(entry.get("outcome"), str) and isinstance(entry.get("stopped", ""), str)
            and _is_seq(entry.get("exit_code", 0)) and _is_seq(entry.get("declined", 0)))


def runs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per run, oldest first: what was sent, what answered, what is unknown, how it ended."""
    by_run: dict[str, dict[str, Any]] = {}
    for entry in entries:
        run = by_run.setdefault(
            entry["run"],
            {"run": entry["run"], "started": entry["time"], "calls": {}, "runbook": "", "service": "", "region": "",
             "runbook_file": None, "undoes": None, "caller": None, "end": None},
        )
        for key in ("runbook", "service", "region", "runbook_file", "undoes", "caller"):
            run[key] = entry.get(key) or run[key]
        if entry["event"] == "call":
            run["calls"][entry["seq"]] = {**entry, "outcome": None}
        elif entry["event"] == "result" and entry["seq"] in run["calls"]:
            call = run["calls"][entry["seq"]]
            call.update(outcome=entry["outcome"], request_id=entry.get("request_id"))
            if entry.get("inverse"):
                call["inverse"] = entry["inverse"]
        elif entry["event"] == "end":
            run["end"] = entry
    return list(by_run.values())


def _landed(outcome: str | None) -> bool:
    """May this call have changed the world? No answer, or an unknown one, counts: it may have landed."""
    return outcome is None or outcome.startswith(("applied", "unknown"))


def _done(outcome: str | None) -> bool:
    """Is the world as this call wanted it? (for an undo's calls: is that change undone)"""
    return outcome is not None and outcome.startswith(("applied", "already"))


def undone_calls(run: dict[str, Any], all_runs: list[dict[str, Any]]) -> dict[int, str]:
    """The seqs of `run`'s calls that a later undo run reversed, each with that undo's run id."""
    undone: dict[int, str] = {}
    for other in all_runs:
        if other["undoes"] != run["run"]:
            continue
        for call in other["calls"].values():
            if call.get("undoes_seq") is not None and _done(call["outcome"]):
                undone.setdefault(call["undoes_seq"], other["run"])
    return undone


def undoable(run: dict[str, Any], all_runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Calls of a run that changed the world, have an undo, and are not undone yet, newest first: what undo reverses.

    "already in place", failed and unsent calls changed nothing and are left
    alone; a call with no recorded answer (or an "unknown" one) may or may not
    have landed, so it is reversed too (the inverse is idempotent: an absent
    rule is already gone).
    """
    undone = undone_calls(run, all_runs or [])
    return [c for c in landed(run) if c.get("inverse") and c["seq"] not in undone]


def landed(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls of a run that may have changed the world, newest first."""
    calls = sorted(run["calls"].values(), key=lambda c: c["seq"], reverse=True)
    return [c for c in calls if _landed(c["outcome"])]


def _kind(outcome: str | None) -> str:
    if outcome is None:
        return "no answer"
    for kind in ("applied", "already", "unknown", "failed", "not sent"):
        if outcome.startswith(kind):
            return kind
    return "other"


def summary(run: dict[str, Any], all_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What `history --format json` says of one run."""
    counts: dict[str, int] = {}
    for call in run["calls"].values():
        kind = _kind(call["outcome"])
        counts[kind] = counts.get(kind, 0) + 1
    end = run["end"]
    if end and end.get("declined"):
        counts["declined"] = end["declined"]
    changed = list(dict.fromkeys(c["step"] for c in sorted(run["calls"].values(), key=lambda c: c["seq"]) if _landed(c["outcome"])))
    undone_by = list(dict.fromkeys(undone_calls(run, all_runs).values()))
    return {
        "run": run["run"],
        "time": run["started"],
        "runbook": run["runbook"],
        "service": run["service"],
        "region": run["region"],
        "caller": (run.get("caller") or {}).get("Arn"),
        "outcome": end["outcome"] if end else NO_END,
        "exit_code": end.get("exit_code") if end else None,
        "stopped": end.get("stopped") if end else None,
        "changed_steps": changed,
        "counts": counts,
        "undoes": run["undoes"],
        "undone_by": undone_by,
    }
