"""Ctrl-C and SIGTERM through a real process: during an API call in flight and during a wait.

The CLI runs as its own process against the session sandbox; the sandbox's
latency fault holds a request so that the signal lands while it is in flight.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from tests.helpers import journal_entries, run, step
from tests.test_cli import RUNBOOK, sandbox_env
from tests.test_scenarios import write_variant


def _start(box, tmp_path, *args):
    return subprocess.Popen([*RUNBOOK, *args], env=sandbox_env(box, tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _stop(process, signum) -> tuple[float, str, str]:
    """Send the signal; how long the process took to end, and what it wrote."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running 10 s after signal {signum}: {err[-2000:]}")
    return time.monotonic() - sent, out, err


def _calls(journal):
    entries = journal_entries(journal)
    calls = {e["seq"]: e for e in entries if e["event"] == "call"}
    outcomes = {e["seq"]: e["outcome"] for e in entries if e["event"] == "result"}
    return calls, outcomes


def _mutations(box) -> list[str]:
    return [f"{e.data['service']}:{e.data['action']}" for e in box.history() if e.kind == "aws-call"] + [
        f"apprunner:{e.data['operation']}" for e in box.history() if e.kind == "apprunner-call"
    ]


def test_ctrl_c_while_a_change_is_in_flight_stops_the_run_and_journals_it_unknown(world, tmp_path):
    box = world("field-report")
    journal = tmp_path / "journal.jsonl"
    box.faults.latency(2.0, "ec2:AuthorizeSecurityGroupIngress")
    fix = _start(box, tmp_path, "fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--journal", str(journal))
    _wait_for(lambda: journal.exists() and '"event": "call"' in journal.read_text(), "the authorize call journaled")
    time.sleep(0.3)  # the request is at the sandbox now, held by the latency
    took, _, err = _stop(fix, signal.SIGINT)

    assert fix.returncode == 130, err
    assert took < 1.5, f"took {took:.1f}s to stop"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("runbook: interrupted: 1 call(s) sent, 1 with an unknown outcome (authorize_security_group_ingress)"), last
    assert "authorize_security_group_ingress" in last and "runbook undo" in last
    calls, outcomes = _calls(journal)
    assert [c["call"]["operation"] for c in calls.values()] == ["authorize_security_group_ingress"]
    assert outcomes[1].startswith("unknown: Interrupted")
    # The sandbox applies the held request (AWS would too: it was received); nothing else was sent,
    # not even a retry of it: before, botocore took the interrupt for a network error and resent the call.
    time.sleep(2.2)
    assert _mutations(box) == ["ec2:AuthorizeSecurityGroupIngress"]


def test_ctrl_c_during_a_read_ends_check_within_a_second(world, tmp_path, monkeypatch):
    box = world("field-report")
    arrived = threading.Event()
    held = box.faults.before

    def before(call):
        arrived.set()
        return held(call)

    monkeypatch.setattr(box.faults, "before", before)
    box.faults.latency(5.0)
    check = _start(box, tmp_path, "check", "apprunner-vpc", "-s", "nerava-backend")
    assert arrived.wait(30), "check never called AWS"
    time.sleep(0.3)
    took, out, err = _stop(check, signal.SIGINT)
    assert check.returncode == 130, err
    assert took < 1.5, f"took {took:.1f}s to stop"
    assert err.strip() == "runbook: interrupted" and out == ""


@pytest.mark.parametrize("signum, code, said", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_the_deployment_wait_ends_the_run_with_one_line(world, tmp_path, signum, code, said):
    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    journal = tmp_path / "journal.jsonl"
    fix = _start(box, tmp_path, "fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--journal", str(journal))

    # The world's service is still being created (hung): the fix authorizes the 6379 rule, then waits.
    _wait_for(lambda: journal.exists() and '"event": "result"' in journal.read_text(), "the authorize answered")
    time.sleep(1.0)  # polling the hung operation now
    took, _, err = _stop(fix, signum)
    calls, outcomes = _calls(journal)
    assert fix.returncode == code, err
    assert took < 1.5, f"took {took:.1f}s to stop"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == f"runbook: {said}: 1 call(s) sent, each answered; journal {journal}, run {calls[1]['run']}", last
    assert "waiting for deployment" in err  # it was in the wait
    assert sorted(outcomes) == sorted(calls) and all(o.startswith("applied") for o in outcomes.values())


def test_a_lost_answer_then_an_error_on_the_retry_is_unknown_until_the_read_back(world, tmp_path):
    """start_deployment lands, its answer is lost, botocore retries, the retry meets the deployment it
    started (InvalidStateException). That answer proves nothing: before, it was journaled `failed`."""
    box = world(write_variant(tmp_path, "deployment"))
    box.faults.lose_answers("apprunner:StartDeployment")
    journal = tmp_path / "journal.jsonl"
    report, _, _ = run(journal_path=journal, timeout=30)

    assert report.healthy, report.stopped
    started = [e for e in box.history() if e.kind == "apprunner-call" and e.data["operation"] == "StartDeployment"]
    assert len(started) == 1  # the retry was refused by App Runner: one deployment, ours
    # The variant rolled back with the cache rule missing: the rule is added first, then the redeploy.
    (deploy,) = [e["seq"] for e in journal_entries(journal) if e["event"] == "call" and e["call"]["operation"] == "start_deployment"]
    results = [e for e in journal_entries(journal) if e["event"] == "result" and e["seq"] == deploy]
    assert len(results) == 2
    assert results[0]["outcome"].startswith("unknown: InvalidStateException after 1 retry")
    assert results[1]["outcome"] == "applied: in effect on read-back after an unknown answer"
    assert results[1]["detail"] == results[0]["outcome"]
    (applied,) = step(report, "deployment").applied
    assert applied.applied and applied.outcome.startswith("applied: in effect on read-back")


def test_an_error_after_a_retry_is_journaled_unknown_and_undo_covers_it(world, tmp_path):
    """The first attempt is throttled, the retry refused: whether an attempt landed is not for the
    client to know (an attempt that timed out may have), so the journal says unknown and the run
    stops (exit 3); undo counts the call among those that may have landed."""
    from runbook import journal as journal_mod
    from runbook.errors import EXIT_AWS, AwsError

    box = world(write_variant(tmp_path, "redis-ingress"))
    box.faults.throttle(1, action="ec2:AuthorizeSecurityGroupIngress")
    box.faults.deny("ec2:AuthorizeSecurityGroupIngress")
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(AwsError) as info:
        run(journal_path=journal, timeout=20)
    assert info.value.exit_code == EXIT_AWS and info.value.retries == 1
    (result,) = [e for e in journal_entries(journal) if e["event"] == "result"]
    assert result["outcome"].startswith("unknown: UnauthorizedOperation after 1 retry")
    (record,) = journal_mod.runs(journal_mod.read(journal).entries)
    assert [c["call"]["operation"] for c in journal_mod.undoable(record)] == ["authorize_security_group_ingress"]


def test_the_read_back_settles_an_unknown_call_either_way(tmp_path):
    """Still proposed after the settle: it did not land. No longer proposed by a step that passes: it did."""
    from dataclasses import replace

    from runbook import runbook as rb
    from runbook.engine import Engine
    from runbook.journal import Journal
    from runbook.model import ApiCall, AppliedChange, Change, Finding, Phase, Status, StepResult

    loaded = rb.load("apprunner-vpc")
    by_id = {s.id: s for s in loaded.steps}
    rule = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-1"}), "allow", Phase.AUTHORIZE,
                  inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-1"}))
    deploy = Change(ApiCall("apprunner", "start_deployment", {"ServiceArn": "arn:s"}), "redeploy", Phase.REDEPLOY)
    journal = Journal(tmp_path / "journal.jsonl", runbook="apprunner-vpc", service="s", region="us-east-1")
    seqs = [journal.begin(step_id, change, "us-east-1") for step_id, change in (("redis-ingress", rule), ("deployment", deploy))]
    unknown = "unknown: InvalidStateException after 1 retry; an earlier attempt may have landed"
    for seq in seqs:
        journal.end(seq, unknown)
    applied = {"redis-ingress": [AppliedChange(rule, True, unknown, seq=seqs[0])],
               "deployment": [AppliedChange(deploy, True, unknown, seq=seqs[1])]}
    results = [StepResult(by_id["redis-ingress"], Finding(Status.FAIL, "no rule", changes=(rule,))),
               StepResult(by_id["deployment"], Finding(Status.OK, "deployed"))]
    engine = Engine(None, loaded, "s", confirmer=None, reporter=None, journal=journal)

    engine._settle_unknown(results, applied)
    assert not applied["redis-ingress"][0].applied
    assert applied["redis-ingress"][0].outcome.startswith("not applied: the read-back still calls for it")
    assert applied["deployment"][0].applied and applied["deployment"][0].outcome.startswith("applied: in effect on read-back")
    outcomes = [e["outcome"] for e in journal_entries(journal.path) if e["event"] == "result"][2:]
    assert outcomes == [applied["redis-ingress"][0].outcome, applied["deployment"][0].outcome]

    # A step that neither proposes the call nor passes (still deploying) leaves it unknown.
    waiting = [replace(results[1], finding=Finding(Status.FAIL, "deploying", waits_for="deployment"))]
    pending = {"deployment": [AppliedChange(deploy, True, unknown, seq=seqs[1])]}
    engine._settle_unknown(waiting, pending)
    assert pending["deployment"][0].outcome == unknown
