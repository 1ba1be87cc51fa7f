"""`runbook undo RUN_ID`: the inverses of a journaled run's changes, newest first, journaled as a run of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from runbook.commands.history import read_journal
from runbook.commands.run import confirmer_for, journaled
from runbook.console import make_console
from runbook.errors import Interrupted, RunbookError, UsageError


def undo_run(run_id: str, *, yes: bool, journal: Optional[Path], profile: Optional[str], as_json: bool) -> int:
    """Undo run `run_id`; its exit code: 0 when every change left is undone, else 1."""
    from runbook import journal as journal_mod
    from runbook import render
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.console import ConsoleReporter
    from runbook.engine import undo as send_inverses

    _, contents = read_journal(journal)
    all_runs = journal_mod.runs(contents.entries)
    runs = {r["run"]: r for r in all_runs}
    if run_id not in runs:
        raise UsageError(f"no run {run_id!r} in the journal; see `runbook history`")
    run = runs[run_id]
    if run["undoes"]:
        raise UsageError(f"run {run_id} is the undo of run {run['undoes']}: an undo is not undone; run `runbook fix` to apply what is needed again")
    console = make_console()
    pending = journal_mod.undoable(run, all_runs)
    undone_by = list(dict.fromkeys(journal_mod.undone_calls(run, all_runs).values()))
    irreversible = [f"{c['call']['service']} {c['call']['operation']} (call {c['seq']})" for c in journal_mod.landed(run) if not c.get("inverse")]
    if irreversible:
        console.print(f"not undone, they have no inverse: {', '.join(irreversible)}", markup=False)

    def finish(doc_extra: dict, exit_code: int) -> int:
        if as_json:
            doc = {"undo": run_id, "service": run["service"], "region": run["region"], "already_undone_by": undone_by,
                   "changes": [], "refused": [], "no_inverse": irreversible, "run_id": None, "journal": None, **doc_extra, "exit_code": exit_code}
            typer.echo(json.dumps(doc, indent=2, default=str))
        return exit_code

    if not pending:
        if undone_by:
            console.print(f"run {run_id} was already undone by {', '.join(undone_by)}; nothing to do", markup=False)
        else:
            console.print(f"run {run_id} changed nothing that can be undone", markup=False)
        return finish({}, 0)
    if undone_by:
        console.print(f"run {run_id} was partly undone already by {', '.join(undone_by)}; undoing the {len(pending)} change(s) left",
                      markup=False)
    confirmer = confirmer_for(yes, console)
    aws = Aws(run["region"] or None, profile, read_only=isinstance(confirmer, NonInteractive))
    warn_if_healthy(aws, run, pending, console)
    record = journal_mod.Journal(journal, runbook=run["runbook"], service=run["service"], region=aws.region,
                                 runbook_file=run["runbook_file"], undoes=run_id)
    with journaled(record, console), ConsoleReporter(console, region=aws.region, profile=profile) as reporter:
        result = send_inverses(aws, pending, confirmer=confirmer, reporter=reporter, journal=record)
    undone = sum(1 for d in result.done if d.applied)
    complete = undone == len(result.done) and not result.refused
    declined = sum(1 for d in result.done if d.declined)
    exit_code = 0 if complete else 1
    outcome = "undone" if complete else ("declined" if declined else "problems")
    stopped = f"undid {undone} of {len(result.done)} change(s)" + (f"; refused {len(result.refused)} journal entr{'y' if len(result.refused) == 1 else 'ies'}" if result.refused else "")
    record.finish(outcome, exit_code, stopped, declined)
    console.print(stopped + (f"; journal run {record.run_id}" if record.written else ""))
    return finish({"run_id": record.run_id, "journal": str(record.path) if record.written else None, "outcome": outcome, "stopped": stopped,
                   "changes": [render.change_dict(d.change, aws.region, d) for d in result.done],
                   "refused": result.refused, "no_inverse": irreversible + result.no_inverse}, exit_code)


def warn_if_healthy(aws, run, pending, console) -> None:
    """Before asking: if the service is healthy now, undoing puts back what its steps failed on."""
    from rich.markup import escape

    from runbook import runbook as rb
    from runbook.confirm import NonInteractive
    from runbook.console import SilentReporter
    from runbook.engine import Engine

    source = run.get("runbook_file") or run["runbook"]
    try:
        loaded = rb.load(source)
        report = Engine(aws, loaded, run["service"], confirmer=NonInteractive(), reporter=SilentReporter()).check()
    except Interrupted:
        raise
    except RunbookError as exc:
        console.print(f"cannot tell whether {run['service']} is healthy now ({exc})", markup=False)
        return
    if report.healthy:
        steps = ", ".join(dict.fromkeys(c["step"] for c in pending))
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(run['service'])} is healthy now; undoing run {escape(run['run'])} "
                      f"puts back the state that failed {escape(steps)} before that run")
