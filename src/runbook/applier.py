"""The applier: the only path by which a change reaches AWS. It shows each change, asks, journals, sends.

AWS answers that mean the world is already as wanted (a duplicate rule, a rule already gone)
count as done; a call botocore retried has an unknown outcome until the next snapshot reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from runbook import inverses
from runbook.aws import ApiError, Aws, EndpointUnreachable
from runbook.confirm import Confirmer
from runbook.journal import Journal
from runbook.model import ApiCall, AppliedChange, Change, Phase, StepResult
from runbook.secrets import Scrubber, ScrubbingReporter


class Reporter(Protocol):
    def evaluated(self, results: list[StepResult], round_no: int) -> None: ...
    def proposing(self, step_id: str, change: Change) -> None: ...
    def applied(self, step_id: str, applied: AppliedChange) -> None: ...
    def waiting(self, what: str, state: str, elapsed: float, budget: float) -> None: ...
    def note(self, message: str) -> None: ...


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


def _response_detail(response: dict[str, Any]) -> str:
    if "SecurityGroupRules" in response:
        return "created " + ", ".join(r.get("SecurityGroupRuleId", "?") for r in response["SecurityGroupRules"])
    if "OperationId" in response:
        return f"operation {response['OperationId']}"
    return ""
