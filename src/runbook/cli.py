"""The `runbook` command: the only place that prints or prompts.

Exit codes: 0 healthy, 1 problems remain, 2 bad usage or invalid input,
3 AWS or network error, 4 timed out waiting, 5 local I/O error (the journal,
a plan or a report could not be written), 130 interrupted.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from runbook import __version__
from runbook.errors import Interrupted, RunbookError, UsageError

if TYPE_CHECKING:
    from runbook.engine import Report
    from runbook.model import AppliedChange, Change, StepResult

app = typer.Typer(
    name="runbook",
    help="Walk a broken AWS deployment back to health, step by step, with the evidence for every verdict.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


_debug = False

ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="App Runner service name or ARN.")]
RegionOpt = Annotated[Optional[str], typer.Option("--region", help="AWS region (default: from your AWS config).")]
ProfileOpt = Annotated[Optional[str], typer.Option("--profile", help="AWS profile from your AWS config.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to FILE instead of stdout.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Give up waiting after SECONDS (exit 4).", min=1)]
JournalOpt = Annotated[
    Optional[Path], typer.Option("--journal", help="Journal file (default: $XDG_STATE_HOME/runbook/journal.jsonl).")
]
OnlyOpt = Annotated[Optional[list[str]], typer.Option("--only", help="Apply only this step's changes (repeatable).")]
SkipOpt = Annotated[Optional[list[str]], typer.Option("--skip", help="Never apply this step's changes (repeatable).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply every proposed change without asking.")]
ReadSecretsOpt = Annotated[bool, typer.Option(
    "--read-secrets",
    help="Follow DATABASE_URL/REDIS_URL held in RuntimeEnvironmentSecrets by reading them (GetSecretValue/GetParameter); "
         "the values are never printed. Same as the runbook's params.read_secrets: true.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"runbook {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    global _debug
    _debug = debug


def _console(stderr: bool = True):
    from rich.console import Console

    # Progress lines are not wrapped: logs and grep of a script's output see whole lines.
    return Console(stderr=stderr, highlight=False, soft_wrap=stderr, emoji=False)  # ":secret:" in an ARN is no emoji


# -- commands that need no AWS ---------------------------------------------------
@app.command("list")
def list_runbooks() -> None:
    """List the bundled runbooks.

    Example: runbook list
    """
    from runbook import runbook as rb

    for name, path in rb.bundled().items():
        loaded = rb.load(str(path))
        typer.echo(f"{name}\t{loaded.title}")


@app.command()
def show(runbook: Annotated[str, typer.Argument(help="Bundled runbook name or path to a YAML file.")]) -> None:
    """Show a runbook's steps: what each checks and why.

    Example: runbook show apprunner-vpc
    """
    from rich.markup import escape

    from runbook import runbook as rb

    loaded = rb.load(runbook)
    console = _console(stderr=False)
    console.print(f"[bold]{escape(loaded.name)}[/bold]: {escape(loaded.title)}")
    if loaded.description:
        console.print(escape(loaded.description.strip()))
    for number, step in enumerate(loaded.steps, 1):
        after = f" (after {', '.join(step.after)})" if step.after else ""
        console.print(f"\n{number}. [bold]{escape(step.id)}[/bold] [dim]{escape(step.check)}{escape(after)}[/dim]")
        console.print(f"   {escape(step.title)}")
        console.print(f"   [dim]why:[/dim] {escape(step.why)}")


class PolicyMode(str, Enum):
    check = "check"
    fix = "fix"


@app.command("iam-policy")
def iam_policy(
    runbook: Annotated[str, typer.Argument(help="Bundled runbook name or path to a YAML file.")],
    mode: Annotated[PolicyMode, typer.Option("--mode", help="check: read-only; fix: also the calls fixes send.")] = PolicyMode.fix,
    read_secrets: ReadSecretsOpt = False,
) -> None:
    """Print a least-privilege IAM policy (JSON) for running a runbook.

    Example: runbook iam-policy apprunner-vpc --mode check > policy.json
    """
    import json

    from runbook import policy
    from runbook import runbook as rb

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    typer.echo(json.dumps(policy.for_runbook(loaded, fix=mode is PolicyMode.fix), indent=2))


# -- commands against AWS -------------------------------------------------------
@app.command()
def check(
    runbook: Annotated[str, typer.Argument(help="Bundled runbook name or path to a YAML file.")],
    service: ServiceOpt,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    format: FormatOpt = Format.text,
    output: OutputOpt = None,
    read_secrets: ReadSecretsOpt = False,
) -> None:
    """Diagnose a service once, read-only: every verdict with its evidence, every fix proposed.

    Example: runbook check apprunner-vpc --service nerava-backend --format json
    """
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    aws = Aws(region, profile, read_only=True)
    reporter = ConsoleReporter(_console())
    report = Engine(aws, loaded, service, confirmer=NonInteractive(), reporter=reporter).check()
    _emit(report, format, output)
    raise typer.Exit(report.exit_code)


@app.command()
def fix(
    runbook: Annotated[str, typer.Argument(help="Bundled runbook name or path to a YAML file.")],
    service: ServiceOpt,
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")] = False,
    timeout: TimeoutOpt = 900.0,
    journal: JournalOpt = None,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    plan_out: Annotated[Optional[Path], typer.Option("--plan-out", help="With --dry-run: save the exact calls to FILE for `runbook apply`.")] = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    format: FormatOpt = Format.text,
    output: OutputOpt = None,
    read_secrets: ReadSecretsOpt = False,
) -> None:
    """Fix a service: each change shown, confirmed, applied and read back; then wait until RUNNING and healthy.

    Examples:
      runbook fix apprunner-vpc --service nerava-backend
      runbook fix apprunner-vpc --service nerava-backend --yes --timeout 1200
    """
    if plan_out and not dry_run:
        raise UsageError("--plan-out saves a plan without applying it: use it with --dry-run")
    report = run_fix(
        runbook, service, yes=yes, dry_run=dry_run, timeout=timeout, journal_path=journal, region=region, profile=profile,
        only=only or [], skip=skip or [], plan_out=plan_out, read_secrets=read_secrets,
    )
    _emit(report, format, output)
    raise typer.Exit(report.exit_code)


def _confirmer(yes: bool, console):
    """--yes, a person at a terminal, or nobody: then nothing is applied."""
    from runbook.confirm import AssumeYes, Interactive, NonInteractive

    if yes:
        return AssumeYes()
    if sys.stdin.isatty():
        return Interactive()
    console.print("no terminal on stdin and no --yes: showing the plan, applying nothing (pass --yes to apply)")
    return NonInteractive()


def run_fix(runbook, service, *, yes, dry_run, timeout, journal_path, region, profile, only=(), skip=(), plan_out=None,
            read_secrets=False) -> "Report":
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    ids = {s.id for s in loaded.steps}
    for step_id in [*only, *skip]:
        if step_id not in ids:
            raise UsageError(f"no step {step_id!r} in runbook {loaded.name}; steps: {', '.join(s.id for s in loaded.steps)}")
    console = _console()
    confirmer = NonInteractive() if dry_run else _confirmer(yes, console)
    dry_run = dry_run or isinstance(confirmer, NonInteractive)
    aws = Aws(region, profile, read_only=dry_run)
    journal = None if dry_run else Journal(journal_path, runbook=loaded.name, service=service, region=aws.region,
                                           runbook_file=str(Path(loaded.source).resolve()))
    engine = Engine(
        aws,
        loaded,
        service,
        confirmer=confirmer,
        reporter=ConsoleReporter(console),
        journal=journal,
        options=Options(timeout=timeout, dry_run=dry_run, only=frozenset(only), skip=frozenset(skip)),
    )
    with _journaled(journal, console):
        report = engine.fix()
    if journal:
        _close_run(journal, report)
    if plan_out:
        from runbook import plan as plan_file

        plan = engine.plan_document(report)
        plan_file.write(plan_out, plan)
        console.print(f"plan of {len(plan['changes'])} change(s) saved to {plan_out}; apply it with: runbook apply {plan_out}")
        if plan["held"]:
            console.print(f"{len(plan['held'])} more wait for other steps and are not in it "
                          f"({', '.join(h['step'] for h in plan['held'])}): plan again after applying this one")
    if journal and any(a for r in report.results for a in r.applied):
        console.print(f"journal: {journal.path} (run {journal.run_id})")
    return report


def _write(path: Path, text: str) -> None:
    from runbook.files import write_private

    write_private(path, text)


class _journaled:
    """Around a run that journals: if it ends by an error, an interrupt or a crash, the journal's
    last entry for it says so (best effort: the disk may be what failed)."""

    def __init__(self, journal, console):
        self.journal, self.console = journal, console

    def __enter__(self):
        return self.journal

    def __exit__(self, kind, exc, tb):
        if exc is None or self.journal is None or not self.journal.written:
            return False
        interrupted = isinstance(exc, (Interrupted, KeyboardInterrupt))
        try:
            self.journal.finish("interrupted" if interrupted else "error", getattr(exc, "exit_code", 1), str(exc) or type(exc).__name__)
        except RunbookError:
            pass  # the error being raised says why
        if isinstance(exc, RunbookError):
            self.console.print(f"journal of what was sent before the error: {self.journal.path} (run {self.journal.run_id}; see runbook history)")
        return False


def _close_run(journal, report: "Report") -> None:
    """The run's end entry, and the run id and journal path in the report."""
    declined = sum(1 for r in report.results for a in r.applied if a.declined)
    outcome = {0: "healthy", 4: "timeout"}.get(report.exit_code) or ("declined" if declined else "problems")
    journal.finish(outcome, report.exit_code, report.stopped, declined)
    if journal.written:
        report.run_id, report.journal = journal.run_id, str(journal.path)


def _emit(report: "Report", fmt: Format, output: Optional[Path]) -> None:
    from runbook import render

    if output:
        _write(output, render.render(report, fmt.value))
        return
    if fmt is Format.text:
        render.print_text(report, _console(stderr=False))
    else:
        sys.stdout.write(render.render(report, fmt.value))
        sys.stdout.flush()


@app.command("apply")
def apply_plan(
    plan: Annotated[Path, typer.Argument(help="A plan saved by `runbook fix … --dry-run --plan-out FILE`.")],
    yes: YesOpt = False,
    timeout: TimeoutOpt = 900.0,
    journal: JournalOpt = None,
    profile: ProfileOpt = None,
    format: FormatOpt = Format.text,
    output: OutputOpt = None,
) -> None:
    """Apply a saved plan exactly as reviewed, after checking the world still matches it,
    then wait (like fix, up to --timeout) until the service is healthy. Nothing outside the
    plan is sent.

    Example: runbook apply plan.json --yes --timeout 1200
    """
    from runbook import plan as plan_file
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    doc = plan_file.load(plan)
    loaded = rb.with_secrets_read(plan_file.pinned_runbook(doc, str(plan)), doc.get("read_secrets") is True)
    console = _console()
    confirmer = _confirmer(yes, console)
    if isinstance(confirmer, NonInteractive):
        raise UsageError("no terminal to confirm on: pass --yes to apply a saved plan")
    aws = Aws(doc.get("region"), profile)
    record = Journal(journal, runbook=loaded.name, service=doc["service"], region=aws.region, runbook_file=doc["runbook"])
    engine = Engine(aws, loaded, doc["service"], confirmer=confirmer, reporter=ConsoleReporter(console), journal=record,
                    options=Options(timeout=timeout))
    with _journaled(record, console):
        report = engine.apply_plan(doc)
    _close_run(record, report)
    _emit(report, format, output)
    if any(a for r in report.results for a in r.applied):
        console.print(f"journal: {record.path} (run {record.run_id})")
    raise typer.Exit(report.exit_code)


class HistoryFormat(str, Enum):
    text = "text"
    json = "json"


@app.command()
def history(
    journal: JournalOpt = None,
    format: Annotated[HistoryFormat, typer.Option("--format", "-f", help="text (a table on a terminal, tab-separated lines otherwise) or json.")] = HistoryFormat.text,
) -> None:
    """List the runs recorded in the journal, newest last: how each ended, the steps it changed, its calls.

    Examples:
      runbook history
      runbook history --format json
    """
    import json

    from rich.table import Table

    from runbook import journal as journal_mod

    path = journal or journal_mod.default_path()
    contents = journal_mod.read(path)
    runs = journal_mod.runs(contents.entries)
    if contents.skipped:
        typer.echo(f"runbook: skipped {contents.skipped} line(s) of {path} that are not journal entries", err=True)
    summaries = [journal_mod.summary(run, runs) for run in runs]
    if format is HistoryFormat.json:
        doc = {"journal": str(path), "skipped_lines": contents.skipped, "runs": summaries}
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    if not runs:
        typer.echo(f"no runs recorded in {path}")
        return
    header = ("run", "started", "runbook", "service", "region", "caller", "outcome", "changed", "calls")
    rows = []
    for run in summaries:
        calls = ", ".join(f"{n} {kind}" for kind, n in run["counts"].items()) or "nothing sent"
        outcome = run["outcome"] + (f" (undo of {run['undoes']})" if run["undoes"] else "")
        outcome += f", undone by {', '.join(run['undone_by'])}" if run["undone_by"] else ""
        rows.append(tuple(str(v) for v in (run["run"], run["time"][:19], run["runbook"], run["service"], run["region"],
                                           run["caller"] or "?", outcome, ", ".join(run["changed_steps"]) or "-", calls)))
    console = _console(stderr=False)
    if not console.is_terminal:  # scripts get a header and one tab-separated line per run
        for row in (header, *rows):
            typer.echo("\t".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def undo(
    run_id: Annotated[str, typer.Argument(help="A run id from `runbook history`.")],
    yes: YesOpt = False,
    journal: JournalOpt = None,
    profile: ProfileOpt = None,
    format: Annotated[HistoryFormat, typer.Option("--format", "-f", help="text, or json: one document on stdout.")] = HistoryFormat.text,
) -> None:
    """Undo a run: apply the inverses of its changes, newest first, after confirmation. The undo is journaled too.

    Each inverse is recomputed from the journaled call; an entry whose undo is not one runbook sends is refused.

    Example: runbook undo 20261128T223000Z-ab12cd --yes
    """
    import json

    from runbook import journal as journal_mod
    from runbook import render
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import undo as undo_run

    path = journal or journal_mod.default_path()
    contents = journal_mod.read(path)
    if contents.skipped:
        typer.echo(f"runbook: skipped {contents.skipped} line(s) of {path} that are not journal entries", err=True)
    all_runs = journal_mod.runs(contents.entries)
    runs = {r["run"]: r for r in all_runs}
    if run_id not in runs:
        raise UsageError(f"no run {run_id!r} in the journal; see `runbook history`")
    run = runs[run_id]
    if run["undoes"]:
        raise UsageError(f"run {run_id} is the undo of run {run['undoes']}: an undo is not undone; run `runbook fix` to apply what is needed again")
    console = _console()
    pending = journal_mod.undoable(run, all_runs)
    undone_by = list(dict.fromkeys(journal_mod.undone_calls(run, all_runs).values()))
    irreversible = [f"{c['call']['service']} {c['call']['operation']} (call {c['seq']})" for c in journal_mod.landed(run) if not c.get("inverse")]
    if irreversible:
        console.print(f"not undone, they have no inverse: {', '.join(irreversible)}", markup=False)

    def finish(doc_extra: dict, exit_code: int) -> None:
        if format is HistoryFormat.json:
            doc = {"undo": run_id, "service": run["service"], "region": run["region"], "already_undone_by": undone_by,
                   "changes": [], "refused": [], "no_inverse": irreversible, "run_id": None, "journal": None, **doc_extra, "exit_code": exit_code}
            typer.echo(json.dumps(doc, indent=2, default=str))
        raise typer.Exit(exit_code)

    if not pending:
        if undone_by:
            console.print(f"run {run_id} was already undone by {', '.join(undone_by)}; nothing to do", markup=False)
        else:
            console.print(f"run {run_id} changed nothing that can be undone", markup=False)
        finish({}, 0)
    if undone_by:
        console.print(f"run {run_id} was partly undone already by {', '.join(undone_by)}; undoing the {len(pending)} change(s) left",
                      markup=False)
    confirmer = _confirmer(yes, console)
    aws = Aws(run["region"] or None, profile, read_only=isinstance(confirmer, NonInteractive))
    _warn_if_healthy(aws, run, pending, console)
    record = journal_mod.Journal(journal, runbook=run["runbook"], service=run["service"], region=aws.region,
                                 runbook_file=run["runbook_file"], undoes=run_id)
    with _journaled(record, console):
        result = undo_run(aws, pending, confirmer=confirmer, reporter=ConsoleReporter(console), journal=record)
    undone = sum(1 for d in result.done if d.applied)
    complete = undone == len(result.done) and not result.refused
    declined = sum(1 for d in result.done if d.declined)
    exit_code = 0 if complete else 1
    outcome = "undone" if complete else ("declined" if declined else "problems")
    stopped = f"undid {undone} of {len(result.done)} change(s)" + (f"; refused {len(result.refused)} journal entr{'y' if len(result.refused) == 1 else 'ies'}" if result.refused else "")
    record.finish(outcome, exit_code, stopped, declined)
    console.print(stopped + (f"; journal run {record.run_id}" if record.written else ""))
    finish({"run_id": record.run_id, "journal": str(record.path) if record.written else None, "outcome": outcome, "stopped": stopped,
            "changes": [render.change_dict(d.change, aws.region, d) for d in result.done],
            "refused": result.refused, "no_inverse": irreversible + result.no_inverse}, exit_code)


def _warn_if_healthy(aws, run, pending, console) -> None:
    """Before asking: if the service is healthy now, undoing puts back what its steps failed on."""
    from rich.markup import escape

    from runbook import runbook as rb
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine

    source = run.get("runbook_file") or run["runbook"]
    try:
        loaded = rb.load(source)
        report = Engine(aws, loaded, run["service"], confirmer=NonInteractive(), reporter=_Silent()).check()
    except Interrupted:
        raise
    except RunbookError as exc:
        console.print(f"cannot tell whether {run['service']} is healthy now ({exc})", markup=False)
        return
    if report.healthy:
        steps = ", ".join(dict.fromkeys(c["step"] for c in pending))
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(run['service'])} is healthy now; undoing run {escape(run['run'])} "
                      f"puts back the state that failed {escape(steps)} before that run")


class _Silent:
    """A reporter for a read-only look that prints nothing."""

    def evaluated(self, results, round_no): ...
    def proposing(self, step_id, change): ...
    def applied(self, step_id, applied): ...
    def waiting(self, what, state, elapsed, budget): ...
    def note(self, message): ...


# -- the sandbox ----------------------------------------------------------------
ScenarioOpt = Annotated[str, typer.Option("--scenario", help="Bundled scenario name or path to a scenario YAML file.")]
DeployOpt = Annotated[
    Optional[float], typer.Option("--deploy-seconds", help="Override every deployment's duration in the scenario.", min=0)
]


@app.command()
def sandbox(
    scenario: ScenarioOpt = "field-report",
    env_file: Annotated[Optional[Path], typer.Option("--env-file", help="Write the export lines to PATH once ready.")] = None,
    deploy_seconds: DeployOpt = None,
) -> None:
    """Run a local twin of a broken deployment (moto + App Runner emulator) until interrupted.

    Example: runbook sandbox --scenario field-report --env-file /tmp/sandbox.env
    """
    from runbook.sandbox import Sandbox, load_scenario

    loaded = load_scenario(scenario)
    console = _console()
    box = Sandbox(deploy_seconds=deploy_seconds)
    # SIGTERM shuts down as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(Interrupted("terminated")))
    try:
        box.start()
        box.load(loaded)
        lines = box.export_lines()
        for line in lines:
            typer.echo(line)
        sys.stdout.flush()
        if env_file:
            tmp = env_file.with_suffix(env_file.suffix + ".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(env_file)
        console.print(f"sandbox {loaded.name} ready; press Ctrl-C to stop")
        while True:
            time.sleep(3600)
    except Interrupted:
        console.print("sandbox stopping")
    finally:
        box.stop()


@app.command()
def demo(
    scenario: ScenarioOpt = "field-report",
    yes: YesOpt = False,
    deploy_seconds: DeployOpt = None,
    timeout: TimeoutOpt = 300.0,
    format: FormatOpt = Format.text,
) -> None:
    """Start the sandbox and fix it in one process: the field report, repaired end to end.

    Example: runbook demo --yes
    """
    from runbook.sandbox import Sandbox, load_scenario

    loaded = load_scenario(scenario)
    if not loaded.services:
        raise UsageError(f"scenario {scenario}: services: the demo needs a service to fix")
    import tempfile

    console = _console()
    with tempfile.TemporaryDirectory(prefix="runbook-demo-") as tmp:
        # The sandbox's world ends with the demo: its runs could not be undone later, so they stay out of history.
        journal = Path(tmp) / "journal.jsonl"
        console.print(f"the demo's journal is temporary: {journal} is deleted with the sandbox when the demo ends")
        with Sandbox(deploy_seconds=deploy_seconds) as box:
            box.load(loaded)
            os.environ.update(box.env)
            service = loaded.services[0].name
            console.print(f"sandbox {loaded.name} is up; fixing service {service}")
            report = run_fix(
                "apprunner-vpc", service, yes=yes, dry_run=False, timeout=timeout,
                journal_path=journal, region=None, profile=None,
            )
            _emit(report, format, None)
    raise typer.Exit(report.exit_code)


# -- progress -------------------------------------------------------------------
class ConsoleReporter:
    """Shows progress on stderr: a live status line on a terminal, plain lines otherwise."""

    def __init__(self, console):
        self.console = console
        self._last: dict[str, str] = {}
        self._status = None
        self._last_wait = ("", "")

    def _end_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def evaluated(self, results: "list[StepResult]", round_no: int) -> None:
        from rich.markup import escape

        self._end_status()
        for result in results:
            line = f"{result.finding.status.value}: {result.finding.summary}"
            if self._last.get(result.step.id) != line:
                self._last[result.step.id] = line
                style = {"ok": "green", "warn": "yellow", "fail": "red", "error": "bold red"}.get(result.finding.status.value, "dim")
                self.console.print(f"[{style}]{result.finding.status.value:>7}[/] {escape(result.step.id)}: {escape(result.finding.summary)}")

    def proposing(self, step_id: str, change: "Change") -> None:
        from rich.markup import escape

        self._end_status()
        self.console.print(f"\n[bold]{escape(step_id)}[/bold] proposes: {escape(change.description)}")
        params = ", ".join(f"{k}={v!r}" for k, v in change.call.params.items())
        self.console.print(f"  [dim]API:[/dim] {change.call.service}.{change.call.operation}({escape(params)})", soft_wrap=True)
        self.console.print(f"  [dim]CLI:[/dim] {escape(change.call.cli())}", soft_wrap=True)
        if change.inverse:
            self.console.print(f"  [dim]undo:[/dim] {escape(change.inverse.cli())}", soft_wrap=True)
        if change.offer:
            self.console.print("  [bold]advice, applied only if you say so; it closes all of this:[/bold]")
            for line in change.offer:
                self.console.print(f"    - {escape(line)}", soft_wrap=True)

    def applied(self, step_id: str, applied: "AppliedChange") -> None:
        from rich.markup import escape

        mark = "[green]applied[/green]" if applied.applied else "[yellow]not applied[/yellow]"
        self.console.print(f"  {mark}: {escape(applied.outcome)}")

    def waiting(self, what: str, state: str, elapsed: float, budget: float) -> None:
        from rich.markup import escape

        text = f"waiting for {what}: {state} ({elapsed:.0f}s of {budget:.0f}s)"
        if self.console.is_terminal:
            if self._status is None:
                self._status = self.console.status(escape(text))
                self._status.start()
            else:
                self._status.update(escape(text))
        elif self._last_wait != (what, state):
            self._last_wait = (what, state)
            self.console.print(escape(text))

    def note(self, message: str) -> None:
        from rich.markup import escape

        self._end_status()
        self.console.print(escape(message))


# -- entry point ----------------------------------------------------------------
def main() -> None:
    def interrupt(*_):
        raise Interrupted("interrupted")

    from runbook.secrets import install_excepthook, scrub_line

    # click turns KeyboardInterrupt into a generic abort with exit 1; ours keeps 130.
    signal.signal(signal.SIGINT, interrupt)
    install_excepthook()  # a traceback (--debug, or a bug) is scrubbed like every other output
    try:
        app()
    except RunbookError as exc:
        if _debug:
            raise
        typer.echo(f"runbook: error: {scrub_line(str(exc))}" if not isinstance(exc, Interrupted) else "runbook: interrupted", err=True)
        sys.exit(exc.exit_code)
