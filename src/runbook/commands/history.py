"""`runbook history`: the journal's runs, one summary each, as a table, tab-separated lines or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from runbook.console import make_console

HEADER = ("run", "started", "runbook", "service", "region", "caller", "outcome", "changed", "calls")


def read_journal(journal: Optional[Path]):
    """The journal at `journal` (default: the user's) and its contents; lines that are not entries are said on stderr."""
    from runbook import journal as journal_mod

    path = journal or journal_mod.default_path()
    contents = journal_mod.read(path)
    if contents.skipped:
        typer.echo(f"runbook: skipped {contents.skipped} line(s) of {path} that are not journal entries", err=True)
    return path, contents


def row(run: dict) -> tuple[str, ...]:
    """One run's summary as the table's cells."""
    calls = ", ".join(f"{n} {kind}" for kind, n in run["counts"].items()) or "nothing sent"
    outcome = run["outcome"] + (f" (undo of {run['undoes']})" if run["undoes"] else "")
    outcome += f", undone by {', '.join(run['undone_by'])}" if run["undone_by"] else ""
    return tuple(str(v) for v in (run["run"], run["time"][:19], run["runbook"], run["service"], run["region"],
                                  run["caller"] or "?", outcome, ", ".join(run["changed_steps"]) or "-", calls))


def show_history(journal: Optional[Path], *, as_json: bool) -> None:
    from rich.table import Table

    from runbook import journal as journal_mod

    path, contents = read_journal(journal)
    runs = journal_mod.runs(contents.entries)
    summaries = [journal_mod.summary(run, runs) for run in runs]
    if as_json:
        doc = {"journal": str(path), "skipped_lines": contents.skipped, "runs": summaries}
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    if not runs:
        typer.echo(f"no runs recorded in {path}")
        return
    rows = [row(run) for run in summaries]
    console = make_console(stderr=False)
    if not console.is_terminal:  # scripts get a header and one tab-separated line per run
        for line in (HEADER, *rows):
            typer.echo("\t".join(line))
        return
    table = Table(*HEADER)
    for cells in rows:
        table.add_row(*cells)
    console.print(table)
