"""What a fix run does next: a pure function of one snapshot's results, the run's options and its state.

The engine reads the world, evaluates the steps, then asks `next_action` what to do with them:
apply one phase's changes, wait for something that finishes by itself, or stop and say why.
Nothing here reads AWS, the clock or a terminal, so every branch is tested with plain data.

Within a round only one phase acts, in this order: authorize, wait for a deployment in flight,
revoke, redeploy (as many at once as the platform runs), wait for the health probe. A rule that
admits the service's own traffic is authorized before a public rule on the same port is revoked,
so the fix never cuts the app off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

from runbook import registry
from runbook.errors import EXIT_HEALTHY, EXIT_PROBLEMS
from runbook.model import AppliedChange, Change, Phase, Status, StepResult
from runbook.plan import change_key, masked_key
from runbook.secrets import Scrubber


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
    skip: frozenset[str] = frozenset()  # never apply these steps' changes

    def selected(self, step_id: str) -> bool:
        """Whether this step's changes may be applied (--only, --skip)."""
        return (not self.only or step_id in self.only) and step_id not in self.skip


@dataclass
class RunState:
    """What one run of the engine has done and seen so far; the engine's only mutable state."""

    mode: str = "fix"  # check, fix or apply
    started: float = 0.0  # time.monotonic() when the loop started
    deadline: float = 0.0  # time.monotonic() past which no new round starts and waits give up
    round: int = 0
    applied_by_step: dict[str, list[AppliedChange]] = field(default_factory=dict)  # every record, declined ones too
    sent: set[str] = field(default_factory=set)  # keys of every change applied, declined or not sent: never proposed twice
    broken: set[str] = field(default_factory=set)  # steps any snapshot of this run has seen fail
    planned: frozenset[str] | None = None  # a saved plan's calls (masked keys): nothing else is sent
    scrubber: Scrubber = field(default_factory=Scrubber)  # grows with the secrets each snapshot finds
    first_sent_ms: int | None = None  # epoch ms just before this run's first call went out
    calls_sent: int = 0  # calls that reached (or may have reached) AWS
    probes: int = 0  # HTTP probes of the health URL, discovery's included
    health_streak: tuple[int, int] | None = None  # (consecutive 200s seen, needed) once the probe is waited on

    def declined(self) -> list[tuple[str, AppliedChange]]:
        """Each declined change once, with its step, in the order asked."""
        seen, declined = set(), []
        for step_id, records in self.applied_by_step.items():
            for record in records:
                if record.declined and change_key(record.change) not in seen:
                    seen.add(change_key(record.change))
                    declined.append((step_id, record))
        return declined

    def masked_key(self, change: Change) -> str:
        """The key a saved plan holds for this change: its call with this run's secrets masked."""
        return masked_key(change, self.scrubber)


@dataclass(frozen=True)
class Apply:
    """Show, confirm and send these changes, all of one phase."""

    phase: Phase
    items: tuple[tuple[StepResult, Change], ...]
    reason: str


@dataclass(frozen=True)
class Wait:
    """Poll until `what` ("deployment" or "health") finishes; then stop with `then_stop`, or look again."""

    what: str
    reason: str
    then_stop: str | None = None


@dataclass(frozen=True)
class Done:
    """Stop: `stopped` is the report's one line on why; `exit_code` 0 healthy or 1 problems remain."""

    stopped: str
    exit_code: int


Action = Union[Apply, Wait, Done]


def is_healthy(results: Sequence[StepResult], left: frozenset[str] = frozenset()) -> bool:
    """Every step passes and nothing is still settling; `left`: steps the user chose to leave (--skip)."""
    counted = [r for r in results if r.step.id not in left]
    return all(r.finding.status.passed for r in counted) and not any(r.finding.waits_for for r in counted)


def left_aside(options: Options, state: RunState) -> frozenset[str]:
    """Steps the user left aside: skipped, or with a change declined."""
    return frozenset(options.skip) | {step_id for step_id, _ in state.declined()}


def next_action(results: Sequence[StepResult], options: Options, state: RunState, *, asks_offers: bool = False,
                redeploys_at_once: int = 1) -> Action:
    """The one thing to do with this snapshot. `asks_offers`: a person answers, so advice with an
    offer is asked about as a change of its own (never under --yes or a saved plan)."""

    def done(stopped: str) -> Done:
        return Done(stopped, EXIT_HEALTHY if is_healthy(results, options.skip) else EXIT_PROBLEMS)

    # Healthy but for what the user left aside (skipped or declined): nothing more to do but
    # prove the health, and say what was left.
    if is_healthy(results, left_aside(options, state)):
        stopped = "healthy" if is_healthy(results, options.skip) else "declined changes remain; the service itself is healthy"
        probed = any(registry.get(r.step.check).proves_health and r.finding.status is Status.OK for r in results)
        if options.dry_run or options.healthy_probes <= 1 or not probed:
            return done(stopped)
        return Wait("health", f"one 200 may be luck: healthy means {options.healthy_probes} consecutive 200s", then_stop=stopped)
    if options.dry_run:
        return done("dry run: nothing applied")

    by_phase: dict[Phase, list[tuple[StepResult, Change]]] = {}
    for result, change in _pending(results, options, state, asks_offers):
        by_phase.setdefault(change.phase, []).append((result, change))
    waits = {r.finding.waits_for for r in results if r.finding.waits_for}
    if by_phase.get(Phase.AUTHORIZE):
        return Apply(Phase.AUTHORIZE, tuple(by_phase[Phase.AUTHORIZE]), "authorize first: a new rule cuts nobody off")
    if "deployment" in waits:
        return Wait("deployment", "a deployment is in flight: revoking or redeploying now would race it")
    if by_phase.get(Phase.REVOKE):
        return Apply(Phase.REVOKE, tuple(by_phase[Phase.REVOKE]), "revoke once every rule the app needs is in place")
    if by_phase.get(Phase.REDEPLOY):
        # A platform may run only so many at once (one operation at a time, say): start those, then wait.
        return Apply(Phase.REDEPLOY, tuple(by_phase[Phase.REDEPLOY][:redeploys_at_once]),
                     f"redeploy last, {redeploys_at_once} at a time")
    # A step the user declined or skipped that no other step waits on (by `after`) does not keep the
    # service from recovering: the health probe is still worth waiting for. One that some step waits
    # on still blocks: what waits on it cannot recover.
    not_blocking = left_aside(options, state) - prerequisites(results)
    others_failing = any(
        r.finding.status in (Status.FAIL, Status.ERROR) and r.finding.waits_for is None and r.step.id not in not_blocking
        for r in results
    )
    if "health" in waits and not others_failing:
        return Wait("health", "every change is in: the service should recover by itself")
    if _unplanned(results, options, state):
        return done("the plan holds nothing more to send; what remains needs a new plan")
    if state.declined():
        return done("declined changes remain; nothing more can be done without them")
    return done("nothing more can be done automatically")


def prerequisites(results: Sequence[StepResult]) -> frozenset[str]:
    """Steps that some other step waits on by `after`: the ones the service's recovery needs."""
    return frozenset(a for r in results for a in r.step.after)


def _pending(results: Sequence[StepResult], options: Options, state: RunState, asks_offers: bool) -> list[tuple[StepResult, Change]]:
    """Changes this snapshot proposes that this run may still send: selected, never sent (nor declined)
    before, not advice (unless offered to a person), and, under a saved plan, among its calls."""
    return [
        (r, c)
        for r in results
        if options.selected(r.step.id)
        for c in r.finding.changes
        if change_key(c) not in state.sent
        and (not c.recommendation or (bool(c.offer) and asks_offers))
        and (state.planned is None or _unsent_planned(c, state))
    ]


def _unsent_planned(change: Change, state: RunState) -> bool:
    masked = state.masked_key(change)
    return masked in state.planned and masked not in state.sent


def _unplanned(results: Sequence[StepResult], options: Options, state: RunState) -> list[Change]:
    """Under a saved plan: changes the world now calls for that the plan does not hold."""
    if state.planned is None:
        return []
    return [
        c for r in results if options.selected(r.step.id) for c in (*r.finding.changes, *r.held)
        if not c.recommendation and state.masked_key(c) not in state.planned
    ]
