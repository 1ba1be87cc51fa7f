"""Walk a runbook: discover -> detect -> plan -> confirm -> apply -> verify -> wait, until healthy.

The engine knows no terminal: it reports through a `Reporter` the CLI provides,
and asks through a `Confirmer`. Each round re-discovers the world, so every
applied change is verified by reading it back before the next phase starts.
Within a round only one phase acts, in this order: authorize, wait for a
deployment in flight, revoke, redeploy, wait for the health probe.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_delay,
    stop_before_delay,
    wait_exponential,
    wait_fixed,
    wait_random,
)

from runbook import inverses, platforms, registry
from runbook import plan as saved_plan
from runbook.aws import ApiError, Aws, EndpointUnreachable
from runbook.confirm import Confirmer
from runbook.discovery import Topology, discover, refresh
from runbook.errors import EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_TIMEOUT, RunbookError, UsageError
from runbook.journal import Journal
from runbook.model import ApiCall, AppliedChange, Change, Finding, Phase, Runbook, Status, Step, StepResult
from runbook.probe import probe
from runbook.secrets import Scrubber, ScrubbingReporter

# Outcomes AWS reports as errors that mean the world is already as we want it.
_ALREADY_DONE = {
    "InvalidPermission.Duplicate": "already in place (InvalidPermission.Duplicate)",
    "InvalidPermission.NotFound": "already gone (InvalidPermission.NotFound)",
    "InvalidSecurityGroupRuleId.NotFound": "already gone (InvalidSecurityGroupRuleId.NotFound)",
}


# Errors with which AWS refuses a call as it stands (another operation in progress, a bad value):
# the run goes on and the next snapshot shows what to do.
_REFUSED_AS_IS = ("InvalidStateException", "InvalidRequestException")


def _retries(n: int) -> str:
    return f"{n} retr{'y' if n == 1 else 'ies'}"


class Reporter(Protocol):
    def evaluated(self, results: list[StepResult], round_no: int) -> None: ...
    def proposing(self, step_id: str, change: Change) -> None: ...
    def applied(self, step_id: str, applied: AppliedChange) -> None: ...
    def waiting(self, what: str, state: str, elapsed: float, budget: float) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass
class Options:
    timeout: float = 900.0
    dry_run: bool = False
    healthy_probes: int = 3  # consecutive 200s that count as healthy
    probe_interval: float = 0.5  # seconds between health probes
    settle_seconds: float = 10.0  # how long an applied change may take to read back (EC2 is eventually consistent)
    poll_initial: float = 1.0  # seconds before the first re-poll of a deployment; doubles from there
    poll_max: float = 3.0  # the backoff's cap; each poll adds up to poll_initial/2 of jitter
    only: frozenset[str] = frozenset()  # apply only these steps' changes (empty: all)
    planned: frozenset[str] | None = None  # a saved plan's calls (masked keys): nothing else is sent
    skip: frozenset[str] = frozenset()  # never apply these steps' changes


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
    service_status: str | None = None  # App Runner's Status at the last snapshot
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


def is_healthy(results: list[StepResult], left: frozenset[str] = frozenset()) -> bool:
    """Every step passes and nothing is still settling; `left`: steps the user chose to leave (--skip)."""
    counted = [r for r in results if r.step.id not in left]
    return all(r.finding.status.passed for r in counted) and not any(r.finding.waits_for for r in counted)


def prerequisites(runbook: Runbook) -> frozenset[str]:
    """Steps that some other step waits on by `after`: the ones the service's recovery needs."""
    return frozenset(a for s in runbook.steps for a in s.after)


def _call_key(call: dict[str, Any]) -> str:
    """A call (as ApiCall.as_dict gives it, or as a saved plan holds it) as a comparable string."""
    return json.dumps(call, sort_keys=True, default=str)


def _key(change: Change) -> str:
    return _call_key(change.call.as_dict())


class Applier:
    """Show, confirm, journal and send one change at a time: the only path by which a change reaches AWS."""

    def __init__(self, aws: Aws, confirmer: Confirmer, reporter: Reporter, journal: Journal | None, scrubber: Scrubber):
        self.aws, self.confirmer, self.reporter, self.journal, self.scrubber = aws, confirmer, reporter, journal, scrubber
        self.sent = 0  # calls handed to AWS (answered or not)

    def apply(self, step_id: str, change: Change, drifted: Callable[[], str | None] | None = None) -> AppliedChange:
        """`drifted` re-reads the world after the confirmation and says why the change is stale, if it is."""
        self.reporter.proposing(step_id, self._display(change))
        decision = self.confirmer.confirm(step_id, change)
        if not decision.approved:
            record = AppliedChange(change, False, decision.reason, declined=True)
        elif drifted and (moved := drifted()):
            record = AppliedChange(change, False, f"not sent: the world moved since the plan ({moved}); re-planning")
        else:
            record = self._send(step_id, change)
        self.reporter.applied(step_id, record)
        return record

    def _display(self, change: Change) -> Change:
        """A copy safe to show: secrets in the parameters masked (the real call keeps them)."""
        return self.scrubber.view(change)

    def _send(self, step_id: str, change: Change) -> AppliedChange:
        if self.journal and self.journal.caller is None:
            identity = self.aws.call("sts", "get_caller_identity")
            self.journal.caller = {k: identity.get(k) for k in ("Account", "Arn", "UserId")}
        seq = self.journal.begin(step_id, change, self.aws.region) if self.journal else 0

        def end(outcome: str, request_id: str | None = None, detail: Any = None) -> None:
            if self.journal:
                self.journal.end(seq, outcome, request_id, detail)

        self.sent += 1
        try:
            response = self.aws.execute(change.call)
        except ApiError as exc:
            already = _ALREADY_DONE.get(exc.code)
            if exc.retries:
                # botocore sent the call again: an earlier attempt may have landed and its answer been lost,
                # so this last answer says nothing sure (a start_deployment that landed answers its retry with
                # InvalidStateException). Unknown until the next snapshot reads back which.
                outcome = f"unknown: {already or exc.code} after {_retries(exc.retries)}; an earlier attempt may have landed"
                end(outcome, exc.request_id, str(exc))
                if already or exc.code in _REFUSED_AS_IS:
                    return AppliedChange(change, True, outcome, seq=seq)
                raise
            end(already or f"failed: {exc.code}", exc.request_id, str(exc))
            if already:
                return AppliedChange(change, True, already, seq=seq)
            if exc.code in _REFUSED_AS_IS:
                return AppliedChange(change, False, f"failed: {exc}", seq=seq)
            raise
        except EndpointUnreachable as exc:
            if exc.retries:
                end(f"unknown: endpoint unreachable after {_retries(exc.retries)}; an earlier attempt may have landed",
                    None, str(exc))
            else:
                end("not sent: endpoint unreachable", None, str(exc))
            raise
        except BaseException as exc:  # a lost connection, an unparsable answer, Ctrl-C: sent, answer unknown
            end(f"unknown: {type(exc).__name__} before AWS answered", None, str(exc))
            raise
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        detail = _response_detail(response)
        change = inverses.answered(change, response)
        if self.journal:
            self.journal.end(seq, "applied", request_id, detail, inverse=change.inverse)
        return AppliedChange(change, True, "applied" + (f" ({detail})" if detail else ""), seq=seq)


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
        self.reporter = ScrubbingReporter(reporter, lambda: self.scrubber)
        self.journal = journal
        self.options = options or Options()
        self.probes = 0
        self.scrubber = Scrubber()
        self.calls_sent = 0  # calls that reached (or may have reached) AWS in this run
        self.first_sent_ms: int | None = None  # epoch ms just before this run's first call went out
        self.health_streak: tuple[int, int] | None = None
        self.mode = "fix"
        self.broken: set[str] = set()  # steps any snapshot of this run has seen fail

    # -- one snapshot -------------------------------------------------------
    def snapshot(self) -> tuple[Topology, list[StepResult]]:
        topology = replace(discover(self.aws, self.service_ref, dict(self.runbook.params), platform=self.platform),
                           broken_this_run=frozenset(self.broken), steps=self.runbook.steps)
        self.probes += 1 if topology.probe else 0
        self.scrubber = self.scrubber.extended(topology.secrets, shown_env={t.env_var for t in topology.targets.values()})
        if self.journal:
            self.journal.scrubber = self.scrubber
        results = evaluate(self.runbook, topology)
        self.broken |= {r.step.id for r in results if not r.finding.status.passed}
        return topology, results

    def check(self) -> Report:
        started = time.monotonic()
        self.mode = "check"
        topology, results = self.snapshot()
        self.reporter.evaluated(results, 1)
        return self._report(topology, results, started, "checked once (read-only)")

    # -- fix loop -----------------------------------------------------------
    def fix(self) -> Report:
        started = time.monotonic()
        deadline = started + self.options.timeout
        applied_by_step: dict[str, list[AppliedChange]] = {}
        sent: set[str] = set()  # keys of every change applied, declined or not sent: never proposed twice
        round_no = 0
        while True:
            round_no += 1
            if round_no > 1 and time.monotonic() > deadline:
                return self._timed_out(topology, results, started, f"timed out (--timeout {self.options.timeout:.0f}s) before the service was healthy")
            topology, results = self._settled_snapshot(applied_by_step)
            self._settle_unknown(results, applied_by_step)
            self._verify(results, applied_by_step)
            for result in results:
                result.applied = applied_by_step.setdefault(result.step.id, [])  # the same list _apply appends to
            self.reporter.evaluated(results, round_no)

            # Healthy but for what the user left aside (skipped or declined): nothing more to do but
            # prove the health, and say what was left.
            if is_healthy(results, self._left_aside(applied_by_step)):
                done = "healthy" if is_healthy(results, self.options.skip) else \
                    "declined changes remain; the service itself is healthy"
                probed = any(registry.get(r.step.check).proves_health and r.finding.status is Status.OK for r in results)
                if self.options.dry_run or self.options.healthy_probes <= 1 or not probed:
                    return self._report(topology, results, started, done)
                # One 200 may be luck: healthy means N consecutive 200s.
                try:
                    self._wait_health(topology, deadline)
                except _Deadline as exc:
                    return self._timed_out(topology, results, started, str(exc))
                return self._report(topology, results, started, done)
            pending = [
                (r, c)
                for r in results
                if self._selected(r.step.id)
                for c in r.finding.changes
                if _key(c) not in sent and (not c.recommendation or self._offered(c))
                and (self.options.planned is None or self._unsent_planned(c, sent))
            ]
            if self.options.dry_run:
                return self._report(topology, results, started, "dry run: nothing applied")

            # A declined change holds back only the steps that wait on its step (evaluate holds
            # them by `after`); everything else goes on.
            try:
                acted = self._act(topology, results, pending, sent, applied_by_step, deadline)
            except _Deadline as exc:
                return self._timed_out(topology, results, started, str(exc))
            if not acted:
                if self._unplanned(results):
                    return self._report(topology, results, started, "the plan holds nothing more to send; what remains needs a new plan")
                if self._declined_records(applied_by_step):
                    return self._report(topology, results, started, "declined changes remain; nothing more can be done without them")
                return self._report(topology, results, started, "nothing more can be done automatically")

    def _timed_out(self, topology, results, started, stopped: str) -> Report:
        report = self._report(topology, results, started, stopped, settled=False)
        report.healthy, report.exit_code, report.timed_out = False, EXIT_TIMEOUT, True
        return report

    def _left_aside(self, applied_by_step) -> frozenset[str]:
        """Steps the user left aside: skipped, or with a change declined."""
        return frozenset(self.options.skip) | {step_id for step_id, _ in self._declined_records(applied_by_step)}

    @staticmethod
    def _declined_records(applied_by_step) -> list[tuple[str, AppliedChange]]:
        seen, declined = set(), []
        for step_id, records in applied_by_step.items():
            for record in records:
                if record.declined and _key(record.change) not in seen:
                    seen.add(_key(record.change))
                    declined.append((step_id, record))
        return declined

    # -- saved plans ----------------------------------------------------------
    def plan_document(self, report: Report) -> dict[str, Any]:
        """The exact calls a dry run proposes, secrets masked, to be applied later as reviewed."""
        return saved_plan.dump(report, self.runbook, self.aws.region, self._selected, self.scrubber)

    def apply_plan(self, plan: dict[str, Any]) -> Report:
        """Apply exactly the planned calls, after checking the world still calls for each of them,
        then wait like `fix` (bounded by the timeout) for the service to be healthy."""
        _, results = self.snapshot()
        current = {self._masked_key(c) for r in results for c in r.finding.changes if not c.recommendation}
        keys, stale = set(), []
        for entry in plan.get("changes", []):
            key = _call_key(entry["call"])
            keys.add(key)
            if key not in current:
                result = next((r for r in results if r.step.id == entry["step"]), None)
                now = f"{result.finding.status.value}: {result.finding.summary}" if result else "no such step"
                stale.append(f"{entry['step']} no longer proposes {entry['call']['operation']} (now {now})")
        if stale:
            self.reporter.evaluated(results, 1)
            raise PlanStale("the world changed since the plan; refusing it: " + "; ".join(stale))
        # The fix loop keeps its order and interlocks (authorize, wait, revoke, redeploy, wait),
        # restricted to the reviewed calls.
        self.options = replace(self.options, planned=frozenset(keys))
        report = self.fix()
        report.mode = "apply"
        done = sum(1 for r in report.results for a in r.applied if a.applied)
        report.stopped = f"sent {done} of the plan's {len(keys)} change(s); {report.stopped}"
        return report

    def _unsent_planned(self, change: Change, sent: set[str]) -> bool:
        masked = self._masked_key(change)
        return masked in self.options.planned and masked not in sent

    def _unplanned(self, results: list[StepResult]) -> list[Change]:
        """Under a saved plan: changes the world now calls for that the plan does not hold."""
        if self.options.planned is None:
            return []
        return [
            c for r in results if self._selected(r.step.id) for c in (*r.finding.changes, *r.held)
            if not c.recommendation and self._masked_key(c) not in self.options.planned
        ]

    def _masked_key(self, change: Change) -> str:
        return _call_key(self.scrubber.data(change.call.as_dict()))

    def _offered(self, change: Change) -> bool:
        """Advice with an offer is asked about when a person answers (never under --yes or a plan)."""
        return bool(change.offer) and bool(getattr(self.confirmer, "asks_offers", False))

    def _selected(self, step_id: str) -> bool:
        return (not self.options.only or step_id in self.options.only) and step_id not in self.options.skip

    def _act(self, topology, results, pending, sent, applied_by_step, deadline) -> bool:
        """Do the first phase that has work; False when nothing is left to do."""
        by_phase: dict[Phase, list[tuple[StepResult, Change]]] = {}
        for result, change in pending:
            by_phase.setdefault(change.phase, []).append((result, change))
        waits = {r.finding.waits_for for r in results if r.finding.waits_for}
        # A step the user declined or skipped that no other step waits on (by `after`) does not keep the
        # service from recovering: the health probe is still worth waiting for. One that some step waits
        # on still blocks: what waits on it cannot recover.
        not_blocking = self._left_aside(applied_by_step) - prerequisites(self.runbook)
        others_failing = any(
            r.finding.status in (Status.FAIL, Status.ERROR) and r.finding.waits_for is None and r.step.id not in not_blocking
            for r in results
        )

        if by_phase.get(Phase.AUTHORIZE):
            return self._apply(topology, by_phase[Phase.AUTHORIZE], sent, applied_by_step)
        if "deployment" in waits:
            self._wait_deployment(topology, deadline)
            return True
        if by_phase.get(Phase.REVOKE):
            return self._apply(topology, by_phase[Phase.REVOKE], sent, applied_by_step)
        if by_phase.get(Phase.REDEPLOY):
            # As many as the platform runs at once (App Runner: one operation), then wait for them.
            return self._apply(topology, by_phase[Phase.REDEPLOY][:self.platform.REDEPLOYS_AT_ONCE], sent, applied_by_step)
        if "health" in waits and not others_failing:
            self._wait_health(topology, deadline)
            return True
        return False

    def _apply(self, topology, items, sent, applied_by_step) -> bool:
        applier = Applier(self.aws, self.confirmer, self.reporter, self.journal, self.scrubber)
        if self.journal:
            self.journal.planned([(r.step.id, c) for r, c in items], self.aws.region)
        # An offer is its own question, after the changes the fix needs; declining it declines nothing else.
        items = sorted(items, key=lambda item: bool(item[1].offer))
        for result, change in items:
            before = int(time.time() * 1000)
            try:
                record = applier.apply(result.step.id, change, lambda: self._drift(topology, result, change))
            finally:
                if applier.sent and self.first_sent_ms is None:
                    self.first_sent_ms = before
                self.calls_sent += applier.sent
                applier.sent = 0
            sent.add(_key(change))
            if self.options.planned is not None:
                sent.add(self._masked_key(change))  # a reviewed call is sent once, even if a secret in it changes
            applied_by_step.setdefault(result.step.id, []).append(record)
        return True

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
        if any(_key(c) == _key(change) for c in finding.changes):
            return None
        return f"{finding.status.value}: {finding.summary}"

    def _settled_snapshot(self, applied_by_step) -> tuple[Topology, list[StepResult]]:
        """A snapshot in which every applied EC2 change reads back: EC2 is eventually consistent,
        so a miss is read again for a few seconds before _verify counts it."""
        retrying = Retrying(
            stop=stop_after_delay(self.options.settle_seconds),
            wait=wait_fixed(1),
            retry=retry_if_result(
                lambda snapshot: any(c.call.service == "ec2" for _, c in self._unread(snapshot[1], applied_by_step))
            ),
            retry_error_callback=lambda state: state.outcome.result(),
        )
        return retrying(self.snapshot)

    @staticmethod
    def _unread(results, applied_by_step) -> list[tuple[StepResult, Change]]:
        """Applied changes that the checks still propose: not (yet) visible on read-back."""
        return [
            (result, change)
            for result in results
            for change in result.finding.changes
            if any(a.applied and _key(a.change) == _key(change) for a in applied_by_step.get(result.step.id, []))
        ]

    def _settle_unknown(self, results, applied_by_step) -> None:
        """The read-back of a call whose answer is unknown: still proposed, it did not land; no longer
        proposed by a step that now passes, it did (and undo reverses it). Otherwise it stays unknown."""
        for result in results:
            records = applied_by_step.get(result.step.id, [])
            for index, record in enumerate(records):
                if not record.outcome.startswith("unknown"):
                    continue
                key = _key(record.change)
                if any(_key(c) == key for c in (*result.finding.changes, *result.held)):
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
    def _wait(self, what: str, poll: Callable[[], tuple[bool, str]], deadline: float, wait=None) -> None:
        started = time.monotonic()
        budget = max(0.0, deadline - started)
        last = {"state": "not polled yet"}

        def attempt() -> bool:
            done, state = poll()
            last["state"] = state
            self.reporter.waiting(what, state, time.monotonic() - started, budget)
            return done

        retrying = Retrying(
            stop=stop_before_delay(budget),
            # About one call a second at first, backing off to poll_max: polite to App Runner's rate limits;
            # the jitter keeps scripts started together from polling in step.
            wait=wait
            or wait_exponential(multiplier=self.options.poll_initial, max=self.options.poll_max)
            + wait_random(0, self.options.poll_initial / 2),
            retry=retry_if_result(lambda done: not done),
            retry_error_callback=lambda state: _raise_deadline(what, last["state"], self.options.timeout, state),
            reraise=True,
        )
        retrying(attempt)

    def _wait_deployment(self, topology: Topology, deadline: float) -> None:
        seen = topology.probe
        last_probe = f"; last probe: HTTP {seen.status}" if seen and seen.status else ""

        def poll() -> tuple[bool, str]:
            done, state = self.platform.deployment(self.aws, topology.workload)
            return done, state + last_probe

        self._wait("deployment", poll, deadline)

    def _wait_health(self, topology: Topology, deadline: float) -> None:
        url = topology.workload.url_for(topology.health_path)
        streak = {"n": 0}
        needed = self.options.healthy_probes

        def poll() -> tuple[bool, str]:
            result = probe(url)
            self.probes += 1
            streak["n"] = streak["n"] + 1 if result.healthy else 0
            self.health_streak = (streak["n"], needed)
            shown = result.headline
            return streak["n"] >= needed, f"{shown} ({streak['n']}/{needed} consecutive 200s)"

        # Probes are cheap and N of them must pass in a row: a steady pace, not a backoff.
        self._wait("health", poll, deadline, wait=wait_fixed(self.options.probe_interval) + wait_random(0, 0.2))

    def _history(self, topology: Topology, results: list[StepResult]) -> None:
        """Once the service is healthy after this run's fixes, log lines written before them are history,
        not a warning: the startup-log step is read again on the lines since the first fix, and if those
        are clean its earlier matches are kept as evidence labelled history. (Lines from before the
        running version's deployment are not read at all: see discovery.)"""
        if self.first_sent_ms is None:
            return
        since = self.first_sent_ms
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

    def _report(self, topology, results, started, stopped, settled: bool = True) -> Report:
        healthy = is_healthy(results, self.options.skip)
        declined, seen = [], set()
        for result in results:
            for record in result.applied:
                if record.declined and _key(record.change) not in seen:
                    seen.add(_key(record.change))
                    declined.append((result.step.id, record))
        if settled and self.mode != "check" and is_healthy(results, self.options.skip | {step_id for step_id, _ in declined}):
            self._history(topology, results)  # the service itself is healthy
        sent = self.journal is not None and self.calls_sent > 0
        return Report(
            mode="dry-run" if self.mode == "fix" and self.options.dry_run else self.mode,
            service_status=topology.workload.status,
            health_streak=self.health_streak,
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
                "http_probes": self.probes,
                "discovery_seconds": {k: round(v, 3) for k, v in topology.timings.items()},
                "wall_seconds": round(time.monotonic() - started, 3),
            },
            scrubber=self.scrubber,
        )


@dataclass
class UndoResult:
    done: list[AppliedChange] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # journal entries whose undo this tool would not send
    no_inverse: list[str] = field(default_factory=list)  # calls that have no undo (a redeploy)


def undo(aws: Aws, calls: list[dict[str, Any]], *, confirmer: Confirmer, reporter: Reporter, journal: Journal | None) -> UndoResult:
    """Apply the inverses of a run's journaled calls (newest first), each recomputed from the call,
    confirmed and journaled like any change. An entry whose undo this tool would not send is refused."""
    scrubber = Scrubber()
    reporter = ScrubbingReporter(reporter, lambda: scrubber)
    applier = Applier(aws, confirmer, reporter, journal, scrubber)
    result = UndoResult()
    for entry in calls:
        what = f"{entry['call']['service']} {entry['call']['operation']} (call {entry['seq']})"
        try:
            inverse = inverses.undo_of(entry["call"], entry.get("inverse"))
        except inverses.Refused as exc:
            reporter.note(f"refusing to undo {what}: {exc}")
            result.refused.append(f"{what}: {exc}")
            continue
        if inverse is None:
            reporter.note(f"cannot undo {what}: it has no inverse")
            result.no_inverse.append(what)
            continue
        change = Change(
            inverse,
            f"undo {entry.get('description') or entry['call']['operation']}",
            Phase.AUTHORIZE,
            inverse=ApiCall(entry["call"]["service"], entry["call"]["operation"], entry["call"]["params"]),
        )
        if journal:
            journal.undoing = entry["seq"]
        try:
            result.done.append(applier.apply(entry.get("step", "undo"), change))
        except ApiError as exc:  # journaled by the applier; the other inverses are still worth trying
            reporter.note(f"could not undo {what}: {exc}")
            result.done.append(AppliedChange(change, False, f"failed: {exc.code}"))
    return result


class PlanStale(RunbookError):
    """A saved plan no longer matches the world (exit 1)."""


class _Deadline(Exception):
    pass


def _raise_deadline(what: str, state: str, timeout: float, retry_state: RetryCallState):
    raise _Deadline(f"timed out (--timeout {timeout:.0f}s) waiting for {what}; last seen: {state}")


def _response_detail(response: dict[str, Any]) -> str:
    if "SecurityGroupRules" in response:
        return "created " + ", ".join(r.get("SecurityGroupRuleId", "?") for r in response["SecurityGroupRules"])
    if "OperationId" in response:
        return f"operation {response['OperationId']}"
    return ""
