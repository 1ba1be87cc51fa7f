"""The `runbook` command: the only place that prints or prompts.

Exit codes: 0 healthy, 1 problems remain, 2 bad usage or invalid input,
3 AWS or network error, 4 timed out waiting, 5 local I/O error (the journal,
a plan or a report could not be written), 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import errno
import math
import os
import re
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
import typer.core

from runbook import __version__
from runbook.errors import EXIT_INTERRUPTED, EXIT_PROBLEMS, EXIT_TERMINATED, Interrupted, RunbookError, UsageError

if TYPE_CHECKING:
    from runbook.engine import Report

app = typer.Typer(
    name="runbook",
    help="Walk a broken AWS deployment back to health, step by step, with the evidence for every verdict.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


class _Command(typer.core.TyperCommand):
    """Usage lines name the arguments as the help lists them (RUNBOOK), without typer's {braces}."""

    def collect_usage_pieces(self, ctx):
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


class Format(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


_debug = False

def _duration(value, *, least: float, most: float, range_said: str) -> float:
    """Seconds as a plain number or a duration (90, 90s, 10m, 1h): finite, never nan, inf or 1e400."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([smh]?)\s*", str(value))
        if not match:
            raise typer.BadParameter(f"{value!r} is not a duration: give seconds (90) or a duration such as 90s, 10m, 1h")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not math.isfinite(seconds) or not least <= seconds <= most:
        raise typer.BadParameter(f"{value!r}: give {range_said} (such as 90, 90s, 10m)")
    return seconds


def _seconds(value) -> float:
    """--timeout: at least a second, at most a week."""
    return _duration(value, least=1, most=7 * 24 * 3600, range_said="between 1 second and 7 days")


def _deploy_seconds(value) -> float:
    """--deploy-seconds: how long the sandbox's deployments take; more than nothing, at most a day."""
    seconds = _duration(value, least=0, most=24 * 3600, range_said="more than 0 seconds and at most a day")
    if seconds <= 0:
        raise typer.BadParameter(f"{value!r}: give more than 0 seconds and at most a day (such as 0.5, 30s, 5m)")
    return seconds


# Names of report formats, the aws CLI's included: `--output json` is a habit from there, not a file name.
_FORMAT_WORDS = {"text", "json", "markdown", "md", "table", "yaml", "yaml-stream"}


def _file(value) -> Path:
    """A FILE option, as typed: `json` alone is the aws CLI's `--output json`, not a file name."""
    if isinstance(value, Path):
        return value
    if value in _FORMAT_WORDS:
        raise typer.BadParameter(f"{value!r} names a format, not a file: use --format {value if value != 'md' else 'markdown'}"
                                 f" (for a file named {value}, give ./{value})")
    return Path(value)


RunbookArg = Annotated[str, typer.Argument(metavar="RUNBOOK", help="Bundled runbook name or path to a YAML file.", show_default=False)]
ServiceOpt = Annotated[str, typer.Option("--service", "-s", metavar="NAME", help="Service name or ARN (see `runbook show RUNBOOK` for its platform).")]
RegionOpt = Annotated[Optional[str], typer.Option("--region", metavar="REGION", help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION or your AWS config).")]
ProfileOpt = Annotated[Optional[str], typer.Option("--profile", metavar="PROFILE", help="AWS profile from your AWS config.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
OutputOpt = Annotated[
    Optional[Path], typer.Option("--output", "-o", metavar="FILE", parser=_file, help="Write the report to FILE instead of stdout.")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", metavar="SECONDS", parser=_seconds, help="Give up waiting after SECONDS, or a duration such as 90s or 10m (exit 4).")
]
JournalOpt = Annotated[
    Optional[Path], typer.Option("--journal", metavar="FILE", help="Journal file (default: $XDG_STATE_HOME/runbook/journal.jsonl).")
]
OnlyOpt = Annotated[Optional[list[str]], typer.Option("--only", metavar="STEP", help="Apply only this step's changes (repeatable).")]
SkipOpt = Annotated[Optional[list[str]], typer.Option("--skip", metavar="STEP", help="Never apply this step's changes (repeatable).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply every proposed change without asking.")]
ReadSecretsOpt = Annotated[bool, typer.Option(
    "--read-secrets",
    help="Follow DATABASE_URL/REDIS_URL held in RuntimeEnvironmentSecrets by reading them (GetSecretValue/GetParameter); "
         "the values are never printed. Same as the runbook's params.read_secrets: true.")]


def _check_outputs(*, output: Optional[Path] = None, plan_out: Optional[Path] = None, journal: Optional[Path] = None,
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

    console = Console(stderr=stderr, highlight=False, emoji=False)  # ":secret:" in an ARN is no emoji
    # Progress lines are not wrapped for logs and grep of a script's output (whole lines); on a
    # terminal they are, at spaces, so that no id is cut by the terminal's own wrap.
    console.soft_wrap = stderr and not console.is_terminal
    return console


# -- commands that need no AWS ---------------------------------------------------
@app.command("list", cls=_Command)
def list_runbooks() -> None:
    """List the bundled runbooks.

    Example: runbook list
    """
    from runbook import runbook as rb

    for name, path in rb.bundled().items():
        loaded = rb.load(str(path))
        typer.echo(f"{name}\t{loaded.title}")


@app.command(cls=_Command)
def show(runbook: RunbookArg) -> None:
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


@app.command("iam-policy", cls=_Command)
def iam_policy(
    runbook: RunbookArg,
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
@app.command(cls=_Command)
def check(
    runbook: RunbookArg,
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

    from runbook.console import ConsoleReporter

    _check_outputs(output=output)
    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    aws = Aws(region, profile, read_only=True)
    # On one terminal the report's table shows each step: progress lines would show them all twice.
    same_terminal = sys.stdout.isatty() and output is None
    with ConsoleReporter(_console(), region=aws.region, profile=profile, step_lines=not same_terminal) as reporter:
        reporter.busy(f"checking {service} ({loaded.name}, {aws.region}) …")
        report = Engine(aws, loaded, service, confirmer=NonInteractive(), reporter=reporter).check()
    _emit(report, format, output)
    raise typer.Exit(report.exit_code)


@app.command(cls=_Command)
def fix(
    runbook: RunbookArg,
    service: ServiceOpt,
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")] = False,
    timeout: TimeoutOpt = 900.0,
    journal: JournalOpt = None,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    plan_out: Annotated[Optional[Path], typer.Option("--plan-out", metavar="FILE", parser=_file, help="With --dry-run: save the exact calls to FILE for `runbook apply`.")] = None,
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
    _check_outputs(output=output, plan_out=plan_out, journal=journal, use_journal=not dry_run)
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
    from runbook.console import ConsoleReporter
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
    reporter = ConsoleReporter(console, region=aws.region, profile=profile)
    engine = Engine(
        aws,
        loaded,
        service,
        confirmer=confirmer,
        reporter=reporter,
        journal=journal,
        options=Options(timeout=timeout, dry_run=dry_run, only=frozenset(only), skip=frozenset(skip)),
    )
    try:
        with _journaled(journal, console):
            report = engine.fix()
    finally:
        reporter.close()
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
    return report


def _say_what_was_sent(stop: Interrupted, journal) -> None:
    """Add to the interrupt's one line what this run sent, read back from its journal."""
    if not (journal and journal.written):
        return
    from runbook import journal as journal_mod

    try:
        run = next((r for r in journal_mod.runs(journal_mod.read(journal.path).entries) if r["run"] == journal.run_id), None)
    except Exception:  # the line must still be said; the journal is the user's to read then
        run = None
    calls = list(run["calls"].values()) if run else []
    if run is not None and not calls:
        return  # only a plan was journaled: nothing was sent
    unknown = [c for c in calls if c["outcome"] is None or c["outcome"].startswith("unknown")]
    where = f"journal {journal.path}, run {journal.run_id}"
    if not calls:
        said = f"see the {where}"
    elif unknown:
        ops = ", ".join(c["call"]["operation"] for c in unknown)
        said = (f"{len(calls)} call(s) sent, {len(unknown)} with an unknown outcome ({ops}); "
                f"{where}; `runbook undo {journal.run_id}` reverses what may have landed")
    else:
        said = f"{len(calls)} call(s) sent, each answered; {where}"
    stop.args = (f"{stop.args[0] if stop.args else 'interrupted'}: {said}",)


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
        if isinstance(exc, Interrupted):
            _say_what_was_sent(exc, self.journal)
        if isinstance(exc, RunbookError) and self.journal.sent_any:
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
    elif fmt is Format.text:
        render.print_text(report, _console(stderr=False))
    else:
        sys.stdout.write(render.render(report, fmt.value))
        sys.stdout.flush()
    # The ending belongs on the terminal: repeat it there when the report went elsewhere (or is JSON).
    on_terminal = output is None and fmt is not Format.json and sys.stdout.isatty()
    if sys.stderr.isatty() and not on_terminal:
        console = _console()
        console.print()
        render.print_summary(report, console)
    elif report.run_id and not sys.stderr.isatty():  # a script's log: where the record of what was sent is
        _console().print(f"journal: {report.journal} (run {report.run_id})")


@app.command("apply", cls=_Command)
def apply_plan(
    plan: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan saved by `runbook fix … --dry-run --plan-out FILE`.")],
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

    _check_outputs(output=output, journal=journal, use_journal=True)
    doc = plan_file.load(plan)
    loaded = rb.with_secrets_read(plan_file.pinned_runbook(doc, str(plan)), doc.get("read_secrets") is True)
    console = _console()
    confirmer = _confirmer(yes, console)
    if isinstance(confirmer, NonInteractive):
        raise UsageError("no terminal to confirm on: pass --yes to apply a saved plan")
    aws = Aws(doc.get("region"), profile)
    record = Journal(journal, runbook=loaded.name, service=doc["service"], region=aws.region, runbook_file=doc["runbook"])
    from runbook.console import ConsoleReporter

    reporter = ConsoleReporter(console, region=aws.region, profile=profile)
    engine = Engine(aws, loaded, doc["service"], confirmer=confirmer, reporter=reporter, journal=record,
                    options=Options(timeout=timeout))
    try:
        with _journaled(record, console):
            report = engine.apply_plan(doc)
    finally:
        reporter.close()
    _close_run(record, report)
    _emit(report, format, output)
    raise typer.Exit(report.exit_code)


class HistoryFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(cls=_Command)
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


@app.command(cls=_Command)
def undo(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id from `runbook history`.")],
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
    from runbook.console import ConsoleReporter

    with _journaled(record, console), ConsoleReporter(console, region=aws.region, profile=profile) as reporter:
        result = undo_run(aws, pending, confirmer=confirmer, reporter=reporter, journal=record)
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
    Optional[float], typer.Option("--deploy-seconds", metavar="SECONDS", parser=_deploy_seconds,
                                  help="Override every deployment's duration in the scenario.")
]


@app.command(cls=_Command)
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
        names = ", ".join(s.name for s in loaded.services) or "none (this world has no App Runner service)"
        console.print(f"sandbox {loaded.name} ready; services: {names}")
        if env_file:
            console.print(f"in another shell: source {env_file}")
        else:
            console.print("in another shell: paste the export lines above (or start with --env-file FILE, then: source FILE)")
        if loaded.services:
            console.print(f"then: runbook check apprunner-vpc --service {loaded.services[0].name}")
        console.print("press Ctrl-C to stop")
        while True:
            time.sleep(3600)
    except Interrupted:
        console.print("sandbox stopping")
    finally:
        box.stop()


@app.command(cls=_Command)
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
            report.run_id = report.journal = None  # a temporary journal, gone with the sandbox: no undo to offer
            _emit(report, format, None)
    raise typer.Exit(report.exit_code)


# -- entry point ----------------------------------------------------------------
def _stop_on_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM raise Interrupted in the main thread, wherever it is.

    A repeated signal while the first one unwinds (journaling what was in flight,
    stopping the sandbox) is ignored for two seconds, so that a double Ctrl-C does not
    tear the journal; after that, one more ends the process at once."""
    first: list[float] = []

    def stop(signum, _frame):
        code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        if first:
            if time.monotonic() - first[0] > 2.0:
                os._exit(code)
            return
        first.append(time.monotonic())
        raise Interrupted("terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted", code)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _root_options_first(args: list[str]) -> list[str]:
    """`--debug` is a root option; accept it after the subcommand too (`runbook check … --debug`)."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for i, a in enumerate(args) if i >= end or a != "--debug")]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _say_error(line: str) -> None:
    """One line on stderr, whatever the input it quotes holds: control characters (a CR, an
    escape sequence typed or pasted into an argument) are shown, never sent to the terminal."""
    typer.echo(_CONTROL.sub(lambda m: repr(m.group())[1:-1], line), err=True)


def _finish(code: int, *, hard: bool = False) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if hard:
        # After a signal, reader threads of an abandoned discovery may still wait on their
        # sockets; the interpreter would join them before exiting. Nothing they hold is
        # worth waiting for: every change is journaled (and fsynced) from the main thread.
        import atexit

        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    try:  # typer 0.26 and later carry their own click
        from typer._click import exceptions as click_errors, utils as click_utils
    except ImportError:
        from click import exceptions as click_errors, utils as click_utils

    from runbook.secrets import install_excepthook, scrub_line

    _stop_on_signals()
    install_excepthook()  # a traceback (--debug, or a bug) is scrubbed like every other output
    args = _root_options_first(sys.argv[1:])
    try:
        try:
            code = typer.main.get_command(app).main(args=args, prog_name="runbook", standalone_mode=False)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click_errors.UsageError as exc:
            # One line, like every other bad input; click's own box spans six.
            command = exc.ctx.command_path if exc.ctx else "runbook"
            _say_error(f"runbook: error: {exc.format_message()} (see `{command} --help`)")
            code = exc.exit_code
        except click_errors.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except typer.Abort:
            typer.echo("runbook: aborted", err=True)
            code = EXIT_INTERRUPTED
    except Interrupted as exc:
        _say_error(f"runbook: {exc}")
        _finish(exc.exit_code, hard=True)
    except RunbookError as exc:
        if _debug:
            raise
        _say_error(f"runbook: error: {scrub_line(str(exc))}")
        code = exc.exit_code
    except BrokenPipeError:
        # `runbook check | head`: the reader has gone; nobody is left to tell.
        sys.stdout = click_utils.PacifyFlushWrapper(sys.stdout)
        sys.stderr = click_utils.PacifyFlushWrapper(sys.stderr)
        code = EXIT_PROBLEMS
    _finish(code if isinstance(code, int) else 0)
