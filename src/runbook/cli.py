"""The `runbook` command: the only place that prints or prompts.

Exit codes: 0 healthy, 1 problems remain, 2 bad usage or invalid input,
3 AWS or network error, 4 timed out waiting, 130 interrupted.
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

    console = Console(stderr=stderr, highlight=False)
    # Progress lines are not wrapped for logs and grep of a script's output (whole lines); on a
    # terminal they are, at spaces, so that no id is cut by the terminal's own wrap.
    console.soft_wrap = stderr and not console.is_terminal
    return console


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
) -> None:
    """Print a least-privilege IAM policy (JSON) for running a runbook.

    Example: runbook iam-policy apprunner-vpc --mode check > policy.json
    """
    import json

    from runbook import policy
    from runbook import runbook as rb

    typer.echo(json.dumps(policy.for_runbook(rb.load(runbook), fix=mode is PolicyMode.fix), indent=2))


# -- commands against AWS -------------------------------------------------------
@app.command()
def check(
    runbook: Annotated[str, typer.Argument(help="Bundled runbook name or path to a YAML file.")],
    service: ServiceOpt,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    format: FormatOpt = Format.text,
    output: OutputOpt = None,
) -> None:
    """Diagnose a service once, read-only: every verdict with its evidence, every fix proposed.

    Example: runbook check apprunner-vpc --service nerava-backend --format json
    """
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine

    from runbook.console import ConsoleReporter

    loaded = rb.load(runbook)
    aws = Aws(region, profile, read_only=True)
    # On one terminal the report's table shows each step: progress lines would show them all twice.
    same_terminal = sys.stdout.isatty() and output is None
    with ConsoleReporter(_console(), region=aws.region, profile=profile, step_lines=not same_terminal) as reporter:
        reporter.busy(f"checking {service} ({loaded.name}, {aws.region}) …")
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
        only=only or [], skip=skip or [], plan_out=plan_out,
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


def run_fix(runbook, service, *, yes, dry_run, timeout, journal_path, region, profile, only=(), skip=(), plan_out=None) -> "Report":
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.console import ConsoleReporter
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    loaded = rb.load(runbook)
    ids = {s.id for s in loaded.steps}
    for step_id in [*only, *skip]:
        if step_id not in ids:
            raise UsageError(f"no step {step_id!r} in runbook {loaded.name}; steps: {', '.join(s.id for s in loaded.steps)}")
    console = _console()
    confirmer = NonInteractive() if dry_run else _confirmer(yes, console)
    dry_run = dry_run or isinstance(confirmer, NonInteractive)
    aws = Aws(region, profile, read_only=dry_run)
    journal = None if dry_run else Journal(journal_path, runbook=loaded.name, service=service, region=aws.region)
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
        report = engine.fix()
    except RunbookError:
        _journal_after_error(console, journal, engine.calls_sent)
        raise
    finally:
        reporter.close()
    if plan_out:
        import json

        plan = engine.plan_document(report)
        _write(plan_out, json.dumps(plan, indent=2, default=str) + "\n")
        console.print(f"plan of {len(plan['changes'])} change(s) saved to {plan_out}; apply it with: runbook apply {plan_out}")
        if plan["held"]:
            console.print(f"{len(plan['held'])} more wait for other steps and are not in it "
                          f"({', '.join(h['step'] for h in plan['held'])}): plan again after applying this one")
    return report


def _journal_after_error(console, journal, calls_sent: int) -> None:
    """Where the record of a run cut short is, when it sent anything at all."""
    if journal and calls_sent:
        console.print(f"journal of what was sent before the error: {journal.path} (run {journal.run_id}; see runbook history)")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


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
        _console().print(f"journal: {report.journal_path} (run {report.run_id})")


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
    import json

    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import PLAN_FORMAT, Engine, Options
    from runbook.journal import Journal

    try:
        doc = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"plan {plan}: cannot read it: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT or not isinstance(doc.get("changes"), list):
        raise UsageError(f"plan {plan}: not a runbook plan (expected format {PLAN_FORMAT})")
    for key in ("runbook", "service"):
        if not isinstance(doc.get(key), str):
            raise UsageError(f"plan {plan}: {key}: missing or not a string")
    for index, entry in enumerate(doc["changes"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("step"), str) and isinstance(entry.get("call"), dict)
                and isinstance(entry["call"].get("operation"), str)):
            raise UsageError(f"plan {plan}: changes[{index}]: needs step and call.operation")
    loaded = rb.load(doc["runbook"])
    console = _console()
    confirmer = _confirmer(yes, console)
    if isinstance(confirmer, NonInteractive):
        raise UsageError("no terminal to confirm on: pass --yes to apply a saved plan")
    aws = Aws(doc.get("region"), profile)
    record = Journal(journal, runbook=loaded.name, service=doc["service"], region=aws.region)
    from runbook.console import ConsoleReporter

    reporter = ConsoleReporter(console, region=aws.region, profile=profile)
    engine = Engine(aws, loaded, doc["service"], confirmer=confirmer, reporter=reporter, journal=record,
                    options=Options(timeout=timeout))
    try:
        report = engine.apply_plan(doc)
    except RunbookError:
        _journal_after_error(console, record, engine.calls_sent)
        raise
    finally:
        reporter.close()
    _emit(report, format, output)
    raise typer.Exit(report.exit_code)


@app.command()
def history(journal: JournalOpt = None) -> None:
    """List the runs recorded in the journal, newest last.

    Example: runbook history
    """
    from rich.table import Table

    from runbook import journal as journal_mod

    runs = journal_mod.runs(journal_mod.read(journal))
    if not runs:
        typer.echo(f"no runs recorded in {journal or journal_mod.default_path()}")
        return
    rows = []
    for run in runs:
        outcomes = [c["outcome"] or "no answer recorded" for c in run["calls"].values()]
        summary = ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes)) or "nothing sent"
        caller = (run.get("caller") or {}).get("Arn") or "?"
        rows.append((run["run"], run["started"][:19], run["runbook"], run["service"], run["region"], caller, summary))
    console = _console(stderr=False)
    if not console.is_terminal:  # scripts get one tab-separated line per run
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table("run", "started", "runbook", "service", "region", "caller", "calls")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def undo(
    run_id: Annotated[str, typer.Argument(help="A run id from `runbook history`.")],
    yes: YesOpt = False,
    journal: JournalOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Undo a run: apply the inverses of its changes, newest first, after confirmation. The undo is journaled too.

    Example: runbook undo 20261128T223000Z-ab12cd --yes
    """
    from runbook import journal as journal_mod
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import undo as undo_run

    runs = {r["run"]: r for r in journal_mod.runs(journal_mod.read(journal))}
    if run_id not in runs:
        raise UsageError(f"no run {run_id!r} in the journal; see `runbook history`")
    run = runs[run_id]
    console = _console()
    confirmer = _confirmer(yes, console)
    aws = Aws(run["region"] or None, profile, read_only=isinstance(confirmer, NonInteractive))
    record = journal_mod.Journal(journal, runbook=f"undo {run_id}", service=run["service"], region=aws.region)
    from runbook import render
    from runbook.console import ConsoleReporter

    with ConsoleReporter(console, region=aws.region, profile=profile) as reporter:
        done = undo_run(aws, run, confirmer=confirmer, reporter=reporter, journal=record)
    if not done:
        console.print(f"run {run_id} changed nothing that can be undone")
        raise typer.Exit(0)
    undone = sum(1 for d in done if d.applied)
    render.print_undo_summary(console, run_id, done, record.run_id if record.written else None,
                              runbook=run.get("runbook") or "", service=run["service"], region=aws.region, profile=profile)
    raise typer.Exit(0 if undone == len(done) else 1)


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
    console = _console()
    with Sandbox(deploy_seconds=deploy_seconds) as box:
        box.load(loaded)
        os.environ.update(box.env)
        service = loaded.services[0].name
        console.print(f"sandbox {loaded.name} is up; fixing service {service}")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            report = run_fix(
                "apprunner-vpc", service, yes=yes, dry_run=False, timeout=timeout,
                journal_path=Path(tmp) / "journal.jsonl", region=None, profile=None,
            )
            report.run_id = report.journal_path = None  # a temporary journal, gone with the sandbox: no undo to offer
            _emit(report, format, None)
    raise typer.Exit(report.exit_code)


# -- entry point ----------------------------------------------------------------
def main() -> None:
    def interrupt(*_):
        raise Interrupted("interrupted")

    # click turns KeyboardInterrupt into a generic abort with exit 1; ours keeps 130.
    signal.signal(signal.SIGINT, interrupt)
    try:
        app()
    except RunbookError as exc:
        if _debug:
            raise
        typer.echo(f"runbook: error: {exc}" if not isinstance(exc, Interrupted) else "runbook: interrupted", err=True)
        sys.exit(exc.exit_code)
