"""next_action: what a fix run does with one snapshot's results, tested with plain data like a check.

Steps here are named for what they stand for in the bundled runbook: `ingress` admits the connector
(authorize), `public` revokes a public rule (and waits on `ingress`), `deployment` redeploys or waits
for the deployment in flight (and waits on `ingress`), `healthz` probes the app (health).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from runbook.errors import EXIT_HEALTHY, EXIT_PROBLEMS
from runbook.model import ApiCall, AppliedChange, Change, Finding, Phase, Status, Step, StepResult
from runbook.next_action import Apply, Done, Options, RunState, Wait, next_action, prerequisites
from runbook.plan import change_key, masked_key
from runbook.secrets import Scrubber

AUTHORIZE = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-db"}), "admit the connector", Phase.AUTHORIZE)
REVOKE = Change(ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-db", "SecurityGroupRuleIds": ["sgr-1"]}),
                "revoke the public rule", Phase.REVOKE)
REDEPLOY = Change(ApiCall("apprunner", "start_deployment", {"ServiceArn": "arn:s"}), "redeploy", Phase.REDEPLOY)
REBUILD = Change(ApiCall("apprunner", "update_service", {"ServiceArn": "arn:s"}), "rebuild", Phase.REDEPLOY)
ADVICE = Change(ApiCall("ec2", "modify_vpc_attribute", {"VpcId": "vpc-1"}), "advice", Phase.AUTHORIZE, recommendation=True)
OFFER = replace(ADVICE, offer=("it also changes this",))

STEPS = {
    "ingress": Step("ingress", "sg.ingress-from-connector", "t", "w"),
    "public": Step("public", "sg.no-public-ingress", "t", "w", after=("ingress",)),
    "dns": Step("dns", "network.vpc-dns", "t", "w"),
    "deployment": Step("deployment", "apprunner.deployment", "t", "w", after=("ingress",)),
    "healthz": Step("healthz", "http.healthz", "t", "w"),
}
OK = Finding(Status.OK, "fine")


def results(**findings: Finding) -> list[StepResult]:
    """One result per step, OK unless given."""
    return [StepResult(step, findings.get(step_id, OK)) for step_id, step in STEPS.items()]


def fail(*changes: Change, waits_for: str | None = None) -> Finding:
    return Finding(Status.FAIL, "broken", changes=changes, waits_for=waits_for)


def declined(step_id: str, change: Change) -> RunState:
    return RunState(applied_by_step={step_id: [AppliedChange(change, False, "declined at the prompt", declined=True)]})


def kind(action) -> tuple:
    """An action as (kind, phase or what, the operations it applies) for the table."""
    if isinstance(action, Apply):
        return ("apply", action.phase.name.lower(), tuple(c.call.operation for _, c in action.items))
    if isinstance(action, Wait):
        return ("wait", action.what, action.then_stop)
    return ("done", action.stopped, action.exit_code)


PENDING = "deployment"
CASES = [
    # The order: authorize before the deployment wait, before revoke, before redeploy, before health.
    ("everything at once: authorize first",
     results(ingress=fail(AUTHORIZE), public=fail(REVOKE), deployment=fail(REDEPLOY), healthz=fail(waits_for="health")),
     Options(), RunState(), ("apply", "authorize", ("authorize_security_group_ingress",))),
    ("a deployment in flight is waited out before revoking",
     results(public=fail(REVOKE), deployment=Finding(Status.WARN, "deploying", waits_for=PENDING)),
     Options(), RunState(), ("wait", "deployment", None)),
    ("but not before authorizing",
     results(ingress=fail(AUTHORIZE), deployment=Finding(Status.WARN, "deploying", waits_for=PENDING)),
     Options(), RunState(), ("apply", "authorize", ("authorize_security_group_ingress",))),
    ("revoke before redeploy",
     results(public=fail(REVOKE), deployment=fail(REDEPLOY)),
     Options(), RunState(), ("apply", "revoke", ("revoke_security_group_ingress",))),
    ("redeploy: one operation at a time",
     results(deployment=fail(REDEPLOY, REBUILD), healthz=fail(waits_for="health")),
     Options(), RunState(), ("apply", "redeploy", ("start_deployment",))),
    ("redeploy before the health wait",
     results(deployment=fail(REDEPLOY), healthz=fail(waits_for="health")),
     Options(), RunState(), ("apply", "redeploy", ("start_deployment",))),
    ("nothing to send: wait for the health probe",
     results(healthz=fail(waits_for="health")),
     Options(), RunState(), ("wait", "health", None)),
    ("a failing step that is no one's prerequisite and was not left aside: no health wait",
     results(dns=Finding(Status.FAIL, "dns off"), healthz=fail(waits_for="health")),
     Options(), RunState(), ("done", "nothing more can be done automatically", EXIT_PROBLEMS)),
    # Healthy: prove it with N probes in a row, unless one probe is all that is asked, or none passed.
    ("healthy: N consecutive 200s before saying so",
     results(), Options(), RunState(), ("wait", "health", "healthy")),
    ("healthy with one probe asked: done",
     results(), Options(healthy_probes=1), RunState(), ("done", "healthy", EXIT_HEALTHY)),
    ("healthy but the probe did not pass (skipped): done without waiting",
     results(healthz=Finding(Status.SKIPPED, "no URL")), Options(), RunState(), ("done", "healthy", EXIT_HEALTHY)),
    # Dry run: never acts, never waits.
    ("dry run with changes",
     results(ingress=fail(AUTHORIZE)), Options(dry_run=True), RunState(), ("done", "dry run: nothing applied", EXIT_PROBLEMS)),
    ("dry run of a healthy service",
     results(), Options(dry_run=True), RunState(), ("done", "healthy", EXIT_HEALTHY)),
    # Declined and skipped steps.
    ("a declined change is not proposed again; what waits on it cannot go on",
     results(ingress=fail(AUTHORIZE), deployment=Finding(Status.FAIL, "failed")), Options(), replace(declined("ingress", AUTHORIZE), sent={change_key(AUTHORIZE)}),
     ("done", "declined changes remain; nothing more can be done without them", EXIT_PROBLEMS)),
    ("nothing left and nothing declined",
     results(ingress=fail(AUTHORIZE)), Options(), RunState(sent={change_key(AUTHORIZE)}),
     ("done", "nothing more can be done automatically", EXIT_PROBLEMS)),
    ("a declined prerequisite alone: the service may be healthy without it; prove it",
     results(ingress=fail(AUTHORIZE)), Options(), replace(declined("ingress", AUTHORIZE), sent={change_key(AUTHORIZE)}),
     ("wait", "health", "declined changes remain; the service itself is healthy")),
    ("healthy but for a declined step: prove the health, then say what was left",
     results(dns=fail(ADVICE)), Options(), declined("dns", ADVICE),
     ("wait", "health", "declined changes remain; the service itself is healthy")),
    ("a skipped step's changes are not sent",
     results(ingress=fail(AUTHORIZE), public=fail(REVOKE)), Options(skip=frozenset({"ingress"})), RunState(),
     ("apply", "revoke", ("revoke_security_group_ingress",))),
    ("--only keeps the others' changes back",
     results(ingress=fail(AUTHORIZE), public=fail(REVOKE)), Options(only=frozenset({"public"})), RunState(),
     ("apply", "revoke", ("revoke_security_group_ingress",))),
    ("skipping a step no one waits on leaves the health worth waiting for",
     results(dns=fail(ADVICE), healthz=fail(waits_for="health")), Options(skip=frozenset({"dns"})), RunState(),
     ("wait", "health", None)),
    ("skipping a prerequisite: the health cannot come, so no wait",
     results(ingress=fail(AUTHORIZE), healthz=fail(waits_for="health")), Options(skip=frozenset({"ingress"})), RunState(),
     ("done", "nothing more can be done automatically", EXIT_PROBLEMS)),
    ("healthy but for a skipped step: healthy, since --skip left it",
     results(dns=fail(ADVICE)), Options(skip=frozenset({"dns"}), healthy_probes=1), RunState(), ("done", "healthy", EXIT_HEALTHY)),
    # Advice: never sent, unless it is an offer and a person answers.
    ("advice is not sent", results(dns=fail(ADVICE)), Options(), RunState(),
     ("done", "nothing more can be done automatically", EXIT_PROBLEMS)),
    ("an offer is not sent under --yes", results(dns=fail(OFFER)), Options(), RunState(),
     ("done", "nothing more can be done automatically", EXIT_PROBLEMS)),
]


@pytest.mark.parametrize("results_, options, state, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_next_action(results_, options, state, expected):
    assert kind(next_action(results_, options, state)) == expected


def test_an_offer_is_asked_about_when_a_person_answers():
    action = next_action(results(dns=fail(OFFER)), Options(), RunState(), asks_offers=True)
    assert kind(action) == ("apply", "authorize", ("modify_vpc_attribute",))


def test_applied_changes_name_their_steps():
    (item,) = next_action(results(ingress=fail(AUTHORIZE)), Options(), RunState()).items
    assert item[0].step.id == "ingress" and item[1] is AUTHORIZE


# -- under a saved plan ------------------------------------------------------------
def planned(*changes: Change, scrubber: Scrubber = Scrubber()) -> RunState:
    return RunState(planned=frozenset(masked_key(c, scrubber) for c in changes), scrubber=scrubber)


def test_a_plan_sends_only_its_calls():
    state = planned(REVOKE)
    action = next_action(results(ingress=fail(AUTHORIZE), public=fail(REVOKE)), Options(), state)
    assert kind(action) == ("apply", "revoke", ("revoke_security_group_ingress",))


def test_a_plan_with_nothing_left_to_send_says_what_remains_needs_a_new_plan():
    state = planned(REVOKE)
    state.sent.add(masked_key(REVOKE, state.scrubber))
    action = next_action(results(ingress=fail(AUTHORIZE)), Options(), state)
    assert kind(action) == ("done", "the plan holds nothing more to send; what remains needs a new plan", EXIT_PROBLEMS)


def test_a_planned_call_held_by_its_step_counts_as_what_remains():
    held = StepResult(STEPS["public"], Finding(Status.FAIL, "public"), held=(REVOKE,), held_by=("ingress",))
    rest = [r for r in results(ingress=Finding(Status.FAIL, "broken")) if r.step.id != "public"]
    action = next_action([*rest, held], Options(), planned(AUTHORIZE))
    assert isinstance(action, Done) and action.stopped.startswith("the plan holds nothing more")


def test_a_planned_call_matches_by_its_masked_form():
    """The plan holds calls with secrets masked: the live call, secret and all, matches its masked twin."""
    secret = Change(ApiCall("apprunner", "update_service", {"ServiceArn": "arn:s", "Url": "postgres://u:hunter2@db/x"}),
                    "rebuild", Phase.REDEPLOY)
    scrubber = Scrubber().extended(["hunter2"])
    state = planned(secret, scrubber=scrubber)
    assert "hunter2" not in next(iter(state.planned))
    assert kind(next_action(results(deployment=fail(secret)), Options(), state)) == ("apply", "redeploy", ("update_service",))


# -- the state's own answers ---------------------------------------------------------
def test_declined_lists_each_change_once_in_the_order_asked():
    first = AppliedChange(AUTHORIZE, False, "declined", declined=True)
    state = RunState(applied_by_step={"ingress": [first, AppliedChange(AUTHORIZE, False, "declined", declined=True)],
                                      "public": [AppliedChange(REVOKE, True, "applied")],
                                      "dns": [AppliedChange(ADVICE, False, "declined", declined=True)]})
    assert [(step_id, r.change) for step_id, r in state.declined()] == [("ingress", AUTHORIZE), ("dns", ADVICE)]


def test_prerequisites_are_the_steps_others_wait_on():
    assert prerequisites(results()) == {"ingress"}


def test_next_action_changes_nothing_it_is_given():
    given, state = results(ingress=fail(AUTHORIZE)), RunState()
    before = [(r.step, r.finding, list(r.applied)) for r in given]
    next_action(given, Options(), state)
    assert [(r.step, r.finding, list(r.applied)) for r in given] == before
    assert (state.applied_by_step, state.sent, state.round, state.broken) == ({}, set(), 0, set())


def test_a_platform_that_runs_redeploys_side_by_side_gets_them_at_once():
    """How many redeploys go out together is the platform's (App Runner: one operation at a time)."""
    redeploy = fail(REDEPLOY, REBUILD)
    assert len(next_action(results(deployment=redeploy), Options(), RunState()).items) == 1
    assert len(next_action(results(deployment=redeploy), Options(), RunState(), redeploys_at_once=2).items) == 2
