"""Walk a runbook: discover -> detect -> plan -> confirm -> apply -> verify -> wait, until healthy.

The engine knows no terminal: it reports through a `Reporter` the CLI provides,
and asks through a `Confirmer`. Each round re-discovers the world, so every
applied change is verified by reading it back before the next phase starts;
what to do with a round's results is `next_action`'s choice (authorize, wait for
a deployment in flight, revoke, redeploy, wait for the health probe, or stop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from runbook import plan as saved_plan
from runbook import platforms, registry, waits
from runbook.applier import Applier, Reporter, UndoResult, undo  # noqa: F401  (undo, UndoResult: the CLI's, from here)
from runbook.aws import Aws
from runbook.confirm import Confirmer
from runbook.discovery import Topology, discover, refresh
from runbook.errors import EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_TIMEOUT, RunbookError
from runbook.journal import Journal
from runbook.model import AppliedChange, Change, Finding, Runbook, Status, Step, StepResult
from runbook.next_action import Apply, Done, Options, RunState, is_healthy, next_action  # noqa: F401  (Options, is_healthy: imported from here)
from runbook.plan import change_key
from runbook.secrets import Scrubber, ScrubbingReporter


@dataclass
class Report:
    runbook: Runbook
    service: str
    region: str
    results: list[StepResult]
    healthy: bool
    exit_code: int
    stopped: str  # why the run ended, in one line
    stats: dict[str, Any] = field(default_factory=dict)
    scrubber: Scrubber = field(default_factory=Scrubber)
    mode: str = "check"  # check, dry-run, fix or apply: what the closing summary reports on
    timed_out: bool = False
    service_status: str | None = None  # the platform's status of the service at the last snapshot
    health_streak: tuple[int, int] | None = None  # (consecutive 200s seen, needed) when the probe was waited on
    declined: list[tuple[str, AppliedChange]] = field(default_factory=list)  # once each, in the order asked
    left_by_skip: tuple[str, ...] = ()  # failing steps whose changes --skip kept back
    profile: str | None = None
    service_ref: str = ""  # the --service the run was given
    run_id: str | None = None  # the journal's run and path, for `history` and `undo`, when it recorded anything
    journal: str | None = None
    rerun_args: tuple[str, ...] = ()  # the --only/--skip a re-run of this fix needs to do the same


def step_view(topology: Topology, step: Step, broken: frozenset[str] | None = None) -> Topology:
    """The snapshot as `step`'s check sees it: `broken_this_run` narrowed to the steps it waits on."""
    seen = topology.broken_this_run if broken is None else broken
    return replace(topology, broken_this_run=seen & frozenset(step.after))


def _detect(step: Step, topology: Topology) -> Finding:
    spec = registry.get(step.check)
    assert spec is not None, step.check  # validated when the runbook was loaded
    try:
        return spec.detect(topology, step.params)
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        # An API answer the check did not expect: report it, keep the other steps.
        return Finding(Status.ERROR, f"could not evaluate: {type(exc).__name__}: {exc}")


def evaluate(runbook: Runbook, topology: Topology) -> list[StepResult]:
    """Run every check on one snapshot. Changes of a step whose `after` steps do not pass are held.

    A step whose `after` steps fail in this very snapshot is evaluated again knowing it, so that
    `broken_this_run` holds what this run has seen fail, earlier snapshots' and this one's."""
    results = [StepResult(step, _detect(step, step_view(topology, step))) for step in runbook.steps]
    failing = topology.broken_this_run | {r.step.id for r in results if not r.finding.status.passed}
    for result in results:
        if (failing - topology.broken_this_run) & frozenset(result.step.after):
            result.finding = _detect(result.step, step_view(topology, result.step, failing))
    by_id = {r.step.id: r for r in results}
    for result in results:
        blockers = tuple(a for a in result.step.after if not by_id[a].finding.status.passed)
        if blockers and result.finding.changes:
            result.held, result.held_by = result.finding.changes, blockers
            result.finding = replace(result.finding, changes=())
    return results


class PlanStale(RunbookError):
    """A saved plan no longer matches the world (exit 1)."""


class Engine:
    def __init__(
        self,
        aws: Aws,
        runbook: Runbook,
        service_ref: str,
        *,
        confirmer: Confirmer,
        reporter: Reporter,
        journal: Journal | None = None,
        options: Options | None = None,
    ):
        self.aws = aws
        self.runbook = runbook
        self.platform = platforms.get(runbook.platform)
        self.service_ref = service_ref
        self.confirmer = confirmer
        self.reporter = ScrubbingReporter(reporter, lambda: self.state.scrubber)
        self.journal = journal
        self.options = options or Options()
        self.state = RunState()  # the current (or last) run's

    # -- one snapshot -------------------------------------------------------
    def snapshot(self, state: RunState) -> tuple[Topology, list[StepResult]]:
        topology = replace(discover(self.aws, self.service_ref, dict(self.runbook.params), platform=self.platform),
                           broken_this_run=frozenset(state.broken), steps=self.runbook.steps)
        state.probes += 1 if topology.probe else 0
        state.scrubber = state.scrubber.extended(topology.secrets, shown_env={t.env_var for t in topology.targets.values()})
        if self.journal:
            self.journal.scrubber = state.scrubber
        results = evaluate(self.runbook, topology)
        state.broken |= {r.step.id for r in results if not r.finding.status.passed}
        return topology, results

    def _begin(self, mode: str) -> RunState:
        self.state = RunState(mode=mode, started=time.monotonic())
        return self.state

    def check(self) -> Report:
        state = self._begin("check")
        topology, results = self.snapshot(state)
        self.reporter.evaluated(results, 1)
        return self._report(topology, results, state, "checked once (read-only)")

    # -- fix loop -----------------------------------------------------------
    def fix(self) -> Report:
        return self._run(self._begin("fix"))

    def apply_plan(self, plan: dict[str, Any]) -> Report:
        """Apply exactly the planned calls, after checking the world still calls for each of them,
        then wait like `fix` (bounded by the timeout) for the service to be healthy."""
        state = self._begin("apply")
        _, results = self.snapshot(state)
        stale = saved_plan.stale(plan, results, state.scrubber)
        if stale:
            self.reporter.evaluated(results, 1)
            raise PlanStale("the world changed since the plan; refusing it: " + "; ".join(stale))
        # The fix loop keeps its order and interlocks (authorize, wait, revoke, redeploy, wait),
        # restricted to the reviewed calls.
        state.planned = saved_plan.call_keys(plan)
        report = self._run(state)
        done = sum(1 for r in report.results for a in r.applied if a.applied)
        report.stopped = f"sent {done} of the plan's {len(state.planned)} change(s); {report.stopped}"
        return report

    def plan_document(self, report: Report) -> dict[str, Any]:
        """The exact calls a dry run proposes, secrets masked, to be applied later as reviewed."""
        return saved_plan.dump(report, self.runbook, self.aws.region, self.options.selected, report.scrubber)

    def _run(self, state: RunState) -> Report:
        """Round after round: read the world, read back what was applied, do what next_action says."""
        state.started = time.monotonic()
        state.deadline = state.started + self.options.timeout
        asks_offers = bool(getattr(self.confirmer, "asks_offers", False))
        while True:
            state.round += 1
            if state.round > 1 and time.monotonic() > state.deadline:
                return self._timed_out(topology, results, state, f"timed out (--timeout {self.options.timeout:.0f}s) before the service was healthy")
            topology, results = self._settled_snapshot(state)
            self._settle_unknown(results, state.applied_by_step)
            self._verify(results, state.applied_by_step)
            for result in results:
                result.applied = state.applied_by_step.setdefault(result.step.id, [])  # the same list _apply appends to
            self.reporter.evaluated(results, state.round)
            action = next_action(results, self.options, state, asks_offers=asks_offers,
                                 redeploys_at_once=self.platform.REDEPLOYS_AT_ONCE)
            try:
                if isinstance(action, Done):
                    return self._report(topology, results, state, action.stopped)
                if isinstance(action, Apply):
                    # A declined change holds back only the steps that wait on its step (evaluate holds
                    # them by `after`); everything else goes on.
                    self._apply(topology, action.items, state)
                elif action.what == "deployment":
                    self._wait_deployment(topology, state)
                else:
                    self._wait_health(topology, state)
                    if action.then_stop is not None:
                        return self._report(topology, results, state, action.then_stop)
            except waits.TimedOut as exc:
                return self._timed_out(topology, results, state, str(exc))

    def _timed_out(self, topology, results, state: RunState, stopped: str) -> Report:
        report = self._report(topology, results, state, stopped, settled=False)
        report.healthy, report.exit_code, report.timed_out = False, EXIT_TIMEOUT, True
        return report

    def _apply(self, topology: Topology, items, state: RunState) -> None:
        applier = Applier(self.aws, self.confirmer, self.reporter, self.journal, state.scrubber)
        if self.journal:
            self.journal.planned([(r.step.id, c) for r, c in items], self.aws.region)
        # An offer is its own question, after the changes the fix needs; declining it declines nothing else.
        items = sorted(items, key=lambda item: bool(item[1].offer))
        for result, change in items:
            before = int(time.time() * 1000)
            try:
                record = applier.apply(result.step.id, change, lambda: self._drift(topology, result, change))
            finally:
                if applier.sent and state.first_sent_ms is None:
                    state.first_sent_ms = before
                state.calls_sent += applier.sent
                applier.sent = 0
            state.sent.add(change_key(change))
            if state.planned is not None:
                state.sent.add(state.masked_key(change))  # a reviewed call is sent once, even if a secret in it changes
            state.applied_by_step.setdefault(result.step.id, []).append(record)

    def _drift(self, topology: Topology, result: StepResult, change: Change) -> str | None:
        """Drift guard: re-read what the change touches right before sending it.

        If the world moved since the snapshot (someone added the rule
        meanwhile), the step is re-planned by the next round instead of
        sending a stale call.
        """
        fresh = step_view(refresh(self.aws, topology, change.call, self.platform), result.step)
        try:
            finding = registry.get(result.step.check).detect(fresh, result.step.params)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            return f"the re-read could not be evaluated ({type(exc).__name__}: {exc})"
        if any(change_key(c) == change_key(change) for c in finding.changes):
            return None
        return f"{finding.status.value}: {finding.summary}"

    def _settled_snapshot(self, state: RunState) -> tuple[Topology, list[StepResult]]:
        """A snapshot in which every applied EC2 change reads back: EC2 is eventually consistent,
        so a miss is read again for a few seconds before _verify counts it."""
        retrying = Retrying(
            stop=stop_after_delay(self.options.settle_seconds),
            wait=wait_fixed(1),
            retry=retry_if_result(
                lambda snapshot: any(c.call.service == "ec2" for _, c in self._unread(snapshot[1], state.applied_by_step))
            ),
            retry_error_callback=lambda retry_state: retry_state.outcome.result(),
        )
        return retrying(lambda: self.snapshot(state))

    @staticmethod
    def _unread(results, applied_by_step) -> list[tuple[StepResult, Change]]:
        """Applied changes that the checks still propose: not (yet) visible on read-back."""
        return [
            (result, change)
            for result in results
            for change in result.finding.changes
            if any(a.applied and change_key(a.change) == change_key(change) for a in applied_by_step.get(result.step.id, []))
        ]

    def _settle_unknown(self, results, applied_by_step) -> None:
        """The read-back of a call whose answer is unknown: still proposed, it did not land; no longer
        proposed by a step that now passes, it did (and undo reverses it). Otherwise it stays unknown."""
        for result in results:
            records = applied_by_step.get(result.step.id, [])
            for index, record in enumerate(records):
                if not record.outcome.startswith("unknown"):
                    continue
                key = change_key(record.change)
                if any(change_key(c) == key for c in (*result.finding.changes, *result.held)):
                    landed = False
                elif result.finding.status.passed and not result.finding.waits_for:
                    landed = True
                else:
                    continue
                outcome = ("applied: in effect on read-back after an unknown answer" if landed
                           else "not applied: the read-back still calls for it after an unknown answer")
                if self.journal and record.seq:
                    self.journal.end(record.seq, outcome, detail=record.outcome, inverse=record.change.inverse if landed else None)
                records[index] = replace(record, applied=landed, outcome=outcome)

    def _verify(self, results, applied_by_step) -> None:
        """A change applied earlier must no longer be proposed: that is the read-back."""
        for result, change in self._unread(results, applied_by_step):
            result.finding = replace(
                result.finding,
                status=Status.ERROR,
                summary=f"{change.call.operation} was applied but reading it back still shows: {result.finding.summary}",
                changes=(),
            )

    # -- waits --------------------------------------------------------------
    def _wait_deployment(self, topology: Topology, state: RunState) -> None:
        waits.for_deployment(_deployment_poll(self.platform, self.aws, topology), state.deadline, report=self.reporter.waiting,
                             timeout=self.options.timeout, initial=self.options.poll_initial, cap=self.options.poll_max)

    def _wait_health(self, topology: Topology, state: RunState) -> None:
        workload, path = topology.workload, topology.health_path

        def probed(streak: int, needed: int) -> None:
            state.probes += 1
            state.health_streak = (streak, needed)

        waits.for_health(lambda: workload.probe(path), state.deadline, report=self.reporter.waiting, timeout=self.options.timeout,
                         needed=self.options.healthy_probes, interval=self.options.probe_interval, on_probe=probed)

    def _history(self, topology: Topology, results: list[StepResult], state: RunState) -> None:
        """Once the service is healthy after this run's fixes, log lines written before them are history,
        not a warning: the startup-log step is read again on the lines since the first fix, and if those
        are clean its earlier matches are kept as evidence labelled history. (Lines from before the
        running version's deployment are not read at all: see discovery.)"""
        if state.first_sent_ms is None:
            return
        since = state.first_sent_ms
        for result in results:
            if not registry.get(result.step.check).reads_logs or result.finding.status is not Status.WARN:
                continue
            recent = replace(topology, log_events=[e for e in topology.log_events if (e.get("timestamp") or 0) >= since])
            try:
                now = registry.get(result.step.check).detect(recent, result.step.params)
            except (LookupError, TypeError, ValueError, AttributeError):
                continue
            if now.status is not Status.OK:
                continue  # lines since the fix still match: the warning stands
            at = time.strftime("%H:%M:%S UTC", time.gmtime(since / 1000))
            result.finding = replace(
                result.finding,
                status=Status.OK,
                summary=f"{now.summary} since this run's first fix ({at}); "
                        "the earlier lines that matched known failures are kept as history",
                evidence=tuple(
                    replace(e, source=f"history, before this run's fixes: {e.source}", data={**(e.data or {}), "history": True})
                    for e in result.finding.evidence
                ),
            )

    def _report(self, topology, results, state: RunState, stopped: str, settled: bool = True) -> Report:
        healthy = is_healthy(results, self.options.skip)
        declined, seen = [], set()
        for result in results:
            for record in result.applied:
                if record.declined and change_key(record.change) not in seen:
                    seen.add(change_key(record.change))
                    declined.append((result.step.id, record))
        if settled and state.mode != "check" and is_healthy(results, self.options.skip | {step_id for step_id, _ in declined}):
            self._history(topology, results, state)  # the service itself is healthy
        sent = self.journal is not None and state.calls_sent > 0
        return Report(
            mode="dry-run" if state.mode == "fix" and self.options.dry_run else state.mode,
            service_status=topology.workload.status,
            health_streak=state.health_streak,
            declined=declined,
            left_by_skip=tuple(r.step.id for r in results if r.step.id in self.options.skip and not r.finding.status.passed),
            profile=getattr(self.aws, "profile", None),
            service_ref=self.service_ref,
            run_id=self.journal.run_id if sent else None,
            journal=str(self.journal.path) if sent else None,
            rerun_args=tuple(
                [a for step_id in sorted(self.options.only) for a in ("--only", step_id)]
                + [a for step_id in sorted(self.options.skip) for a in ("--skip", step_id)]
            ),
            runbook=self.runbook,
            service=topology.workload.name,
            region=self.aws.region,
            results=results,
            healthy=healthy,
            exit_code=EXIT_HEALTHY if healthy else EXIT_PROBLEMS,
            stopped=stopped,
            stats={
                "api_calls": dict(sorted(self.aws.calls.items())),
                "api_calls_total": sum(self.aws.calls.values()),
                "http_probes": state.probes,
                "discovery_seconds": {k: round(v, 3) for k, v in topology.timings.items()},
                "wall_seconds": round(time.monotonic() - state.started, 3),
            },
            scrubber=state.scrubber,
        )


def _deployment_poll(platform, aws: Aws, topology: Topology) -> waits.Poll:
    """The platform's deployment state, read once per call: (finished, the state to show)."""
    seen = topology.probe
    last_probe = f"; last probe: HTTP {seen.status}" if seen and seen.status else ""

    def poll() -> tuple[bool, str]:
        done, state = platform.deployment(aws, topology.workload)
        return done, state + last_probe

    return poll
