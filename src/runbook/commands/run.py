"""check, fix and apply: a runbook run against AWS, confirmed, journaled and closed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from runbook.console import make_console
from runbook.errors import Interrupted, RunbookError, UsageError

if TYPE_CHECKING:
    from runbook.engine import Report


def confirmer_for(yes: bool, console):
    """--yes, a person at a terminal, or nobody: then nothing is applied."""
    from runbook.confirm import AssumeYes, Interactive, NonInteractive

    if yes:
        return AssumeYes()
    if sys.stdin.isatty():
        return Interactive()
    console.print("no terminal on stdin and no --yes: showing the plan, applying nothing (pass --yes to apply)")
    return NonInteractive()


def service_ref(loaded, service: str, cluster: Optional[str]) -> str:
    """What the platform finds the service by: with --cluster, CLUSTER/NAME (an ARN names its own cluster)."""
    from runbook import platforms

    if cluster is None:
        return service
    grouped_by = platforms.get(loaded.platform).GROUPED_BY
    if grouped_by is None:
        raise UsageError(f"runbook {loaded.name} runs on {loaded.platform}, which has no clusters: drop --cluster")
    if not cluster or "/" in cluster or ":" in cluster:
        raise UsageError(f"--cluster {cluster!r} is not a {grouped_by} name")
    if service.startswith("arn:"):
        raise UsageError(f"--service {service} is an ARN, which names its {grouped_by} itself: drop --cluster")
    return f"{cluster}/{service}"


def run_check(runbook: str, service: str, *, region: Optional[str], profile: Optional[str], read_secrets: bool,
              step_lines: bool, cluster: Optional[str] = None) -> "Report":
    """One read-only look. `step_lines=False` when the report's table goes to the same terminal."""
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.console import ConsoleReporter
    from runbook.engine import Engine

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    service = service_ref(loaded, service, cluster)
    aws = Aws(region, profile, read_only=True)
    with ConsoleReporter(make_console(), region=aws.region, profile=profile, step_lines=step_lines) as reporter:
        reporter.busy(f"checking {service} ({loaded.name}, {aws.region}) …")
        return Engine(aws, loaded, service, confirmer=NonInteractive(), reporter=reporter).check()


def run_fix(runbook, service, *, yes, dry_run, timeout, journal_path, region, profile, only=(), skip=(), plan_out=None,
            read_secrets=False, cluster=None) -> "Report":
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.console import ConsoleReporter
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    service = service_ref(loaded, service, cluster)
    ids = {s.id for s in loaded.steps}
    for step_id in [*only, *skip]:
        if step_id not in ids:
            raise UsageError(f"no step {step_id!r} in runbook {loaded.name}; steps: {', '.join(s.id for s in loaded.steps)}")
    console = make_console()
    confirmer = NonInteractive() if dry_run else confirmer_for(yes, console)
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
        with journaled(journal, console):
            report = engine.fix()
    finally:
        reporter.close()
    if journal:
        close_run(journal, report)
    if plan_out:
        from runbook import plan as plan_file

        for line in plan_file.save(plan_out, engine.plan_document(report)):
            console.print(line)
    return report


def run_saved_plan(plan: Path, *, yes: bool, timeout: float, journal_path: Optional[Path], profile: Optional[str]) -> "Report":
    """`runbook apply`: the saved plan's calls, after the world is checked to still match it."""
    from runbook import plan as plan_file
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.console import ConsoleReporter
    from runbook.engine import Engine, Options
    from runbook.journal import Journal

    doc, loaded = plan_file.open_reviewed(plan)
    console = make_console()
    confirmer = confirmer_for(yes, console)
    if isinstance(confirmer, NonInteractive):
        raise UsageError("no terminal to confirm on: pass --yes to apply a saved plan")
    aws = Aws(doc.get("region"), profile)
    record = Journal(journal_path, runbook=loaded.name, service=doc["service"], region=aws.region, runbook_file=doc["runbook"])
    reporter = ConsoleReporter(console, region=aws.region, profile=profile)
    engine = Engine(aws, loaded, doc["service"], confirmer=confirmer, reporter=reporter, journal=record,
                    options=Options(timeout=timeout))
    try:
        with journaled(record, console):
            report = engine.apply_plan(doc)
    finally:
        reporter.close()
    close_run(record, report)
    return report


def say_what_was_sent(stop: Interrupted, journal) -> None:
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


class journaled:
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
            say_what_was_sent(exc, self.journal)
        if isinstance(exc, RunbookError) and self.journal.sent_any:
            self.console.print(f"journal of what was sent before the error: {self.journal.path} (run {self.journal.run_id}; see runbook history)")
        return False


def close_run(journal, report: "Report") -> None:
    """The run's end entry, and the run id and journal path in the report."""
    declined = sum(1 for r in report.results for a in r.applied if a.declined)
    outcome = {0: "healthy", 4: "timeout"}.get(report.exit_code) or ("declined" if declined else "problems")
    journal.finish(outcome, report.exit_code, report.stopped, declined)
    if journal.written:
        report.run_id, report.journal = journal.run_id, str(journal.path)
