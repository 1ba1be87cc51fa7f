"""The `runbook` command line: its commands and their options, wired to `runbook.commands`.

What a command does lives in `runbook.commands`; how the process ends (signals, one-line
errors, the exit codes listed in `runbook.process`) in `runbook.process`.
"""

from __future__ import annotations

import math
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core

from runbook import __version__
from runbook.errors import UsageError

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
ClusterOpt = Annotated[Optional[str], typer.Option(
    "--cluster", metavar="NAME", help="The cluster the service runs in, for a platform that has clusters (its default cluster when omitted).")]
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


# -- commands that need no AWS ---------------------------------------------------
@app.command("list", cls=_Command)
def list_runbooks() -> None:
    """List the bundled runbooks.

    Example: runbook list
    """
    from runbook.commands.runbooks import list_runbooks

    list_runbooks()


@app.command(cls=_Command)
def show(runbook: RunbookArg) -> None:
    """Show a runbook's steps: what each checks and why.

    Example: runbook show apprunner-vpc
    """
    from runbook.commands.runbooks import show_runbook

    show_runbook(runbook)


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
    from runbook.commands.runbooks import print_policy

    print_policy(runbook, fix=mode is PolicyMode.fix, read_secrets=read_secrets)


# -- commands against AWS -------------------------------------------------------
@app.command(cls=_Command)
def check(
    runbook: RunbookArg,
    service: ServiceOpt,
    cluster: ClusterOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    format: FormatOpt = Format.text,
    output: OutputOpt = None,
    read_secrets: ReadSecretsOpt = False,
) -> None:
    """Diagnose a service once, read-only: every verdict with its evidence, every fix proposed.

    Example: runbook check apprunner-vpc --service nerava-backend --format json
    """
    from runbook.commands.outputs import check_outputs, emit
    from runbook.commands.run import run_check

    check_outputs(output=output)
    # On one terminal the report's table shows each step: progress lines would show them all twice.
    same_terminal = sys.stdout.isatty() and output is None
    report = run_check(runbook, service, cluster=cluster, region=region, profile=profile, read_secrets=read_secrets,
                       step_lines=not same_terminal)
    emit(report, format.value, output)
    raise typer.Exit(report.exit_code)


@app.command(cls=_Command)
def fix(
    runbook: RunbookArg,
    service: ServiceOpt,
    cluster: ClusterOpt = None,
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
    from runbook.commands.outputs import check_outputs, emit
    from runbook.commands.run import run_fix

    if plan_out and not dry_run:
        raise UsageError("--plan-out saves a plan without applying it: use it with --dry-run")
    check_outputs(output=output, plan_out=plan_out, journal=journal, use_journal=not dry_run)
    report = run_fix(
        runbook, service, cluster=cluster, yes=yes, dry_run=dry_run, timeout=timeout, journal_path=journal, region=region, profile=profile,
        only=only or [], skip=skip or [], plan_out=plan_out, read_secrets=read_secrets,
    )
    emit(report, format.value, output)
    raise typer.Exit(report.exit_code)


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
    from runbook.commands.outputs import check_outputs, emit
    from runbook.commands.run import run_saved_plan

    check_outputs(output=output, journal=journal, use_journal=True)
    report = run_saved_plan(plan, yes=yes, timeout=timeout, journal_path=journal, profile=profile)
    emit(report, format.value, output)
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
    from runbook.commands.history import show_history

    show_history(journal, as_json=format is HistoryFormat.json)


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
    from runbook.commands.undo import undo_run

    raise typer.Exit(undo_run(run_id, yes=yes, journal=journal, profile=profile, as_json=format is HistoryFormat.json))


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
    from runbook.commands.sandbox import serve_sandbox

    serve_sandbox(scenario, env_file=env_file, deploy_seconds=deploy_seconds)


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
    from runbook.commands.sandbox import run_demo

    raise typer.Exit(run_demo(scenario, yes=yes, deploy_seconds=deploy_seconds, timeout=timeout, fmt=format.value))


# -- entry point ----------------------------------------------------------------
def _root_options_first(args: list[str]) -> list[str]:
    """`--debug` is a root option; accept it after the subcommand too (`runbook check … --debug`)."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for i, a in enumerate(args) if i >= end or a != "--debug")]


def main() -> None:
    """Parse the command line and dispatch it; `runbook.process` turns how it ended into an exit code."""
    from runbook import process

    args = _root_options_first(sys.argv[1:])
    process.run(lambda: typer.main.get_command(app).main(args=args, prog_name="runbook", standalone_mode=False),
                debug=lambda: _debug)
