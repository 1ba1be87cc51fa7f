"""Where a command's report goes: outputs refused before anything is sent, the report written after."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from runbook.console import make_console
from runbook.errors import UsageError

if TYPE_CHECKING:
    from runbook.engine import Report


def check_outputs(*, output: Optional[Path] = None, plan_out: Optional[Path] = None, journal: Optional[Path] = None,
                  use_journal: bool = False) -> None:
    """Refuse, before anything is read or sent, an output that could not be written afterwards:
    a report lost after the changes were applied is a run nobody can review."""
    targets = [("--output", output), ("--plan-out", plan_out)]
    if use_journal:
        from runbook import journal as journal_mod

        targets.append(("--journal" if journal else "the journal", journal or journal_mod.default_path()))
    for option, path in targets:
        if path is None:
            continue
        try:
            _writable(path, create_folders=option.endswith("journal"))
        except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
            raise UsageError(f"{option} {path}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None


def _writable(path: Path, *, create_folders: bool) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        return
    # The journal's directories are made on its first write; a report's must exist.
    folder = path.parent
    while create_folders and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"no such directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"permission denied in {folder}")


def emit(report: "Report", fmt: str, output: Optional[Path]) -> None:
    """The report in `fmt` (text, json, markdown) to `output` or stdout, and its ending on the terminal."""
    from runbook import render
    from runbook.files import write_private

    if output:
        write_private(output, render.render(report, fmt))
    elif fmt == "text":
        render.print_text(report, make_console(stderr=False))
    else:
        sys.stdout.write(render.render(report, fmt))
        sys.stdout.flush()
    # The ending belongs on the terminal: repeat it there when the report went elsewhere (or is JSON).
    on_terminal = output is None and fmt != "json" and sys.stdout.isatty()
    if sys.stderr.isatty() and not on_terminal:
        console = make_console()
        console.print()
        render.print_summary(report, console)
    elif report.run_id and not sys.stderr.isatty():  # a script's log: where the record of what was sent is
        make_console().print(f"journal: {report.journal} (run {report.run_id})")
