"""An append-only record of every change a run sends, written before it is sent.

JSON lines under `$XDG_STATE_HOME/runbook/journal.jsonl` (default
`~/.local/state/runbook/`). A `call` entry is flushed to disk before the API call
goes out and a `result` entry after it answers, so a crash or kill between the
two leaves a record that says exactly what may have been applied.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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

    def _write(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(self.scrubber.data({"run": self.run_id, "time": _now(), **entry}), default=str)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

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

    def end(self, seq: int, outcome: str, request_id: str | None = None, detail: Any = None) -> None:
        self._write({"event": "result", "seq": seq, "outcome": outcome, "request_id": request_id, "detail": detail})
