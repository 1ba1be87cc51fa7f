"""The applier's own decisions before anything is sent: a declined change, a change the world moved
past, and what a change shows (secrets masked). Sending, journaling and AWS's answers are tested
against the sandbox in test_fix, test_faults and test_signals."""

from __future__ import annotations

from tests.helpers import Recorder, Refuse

from runbook.applier import Applier, _response_detail
from runbook.confirm import AssumeYes
from runbook.model import ApiCall, Change, Phase
from runbook.secrets import MASK, Scrubber

SECRET = "s3cret-pass"
CHANGE = Change(ApiCall("apprunner", "update_service", {"ServiceArn": "arn:s", "Url": f"postgres://u:{SECRET}@db/x"}),
                "rebuild", Phase.REDEPLOY)


class NoAws:
    """Any use of AWS is a failure of the test: these paths send nothing."""

    region = "us-east-1"

    def __getattr__(self, name):
        raise AssertionError(f"the applier used AWS ({name}) on a path that sends nothing")


def test_a_declined_change_is_recorded_declined_and_not_sent():
    recorder = Recorder()
    applier = Applier(NoAws(), Refuse(), recorder, None, Scrubber())
    record = applier.apply("deployment", CHANGE)
    assert (record.applied, record.declined, record.outcome) == (False, True, "declined at the prompt")
    assert applier.sent == 0 and [e[0] for e in recorder.events] == ["proposing", "applied"]


def test_a_change_the_world_moved_past_is_not_sent_and_says_why():
    applier = Applier(NoAws(), AssumeYes(), Recorder(), None, Scrubber())
    record = applier.apply("deployment", CHANGE, drifted=lambda: "ok: already rebuilt")
    assert not record.applied and not record.declined
    assert record.outcome == "not sent: the world moved since the plan (ok: already rebuilt); re-planning"
    assert applier.sent == 0


def test_what_is_shown_is_masked_what_is_kept_is_not():
    recorder = Recorder()
    applier = Applier(NoAws(), Refuse(), recorder, None, Scrubber().extended([SECRET]))
    record = applier.apply("deployment", CHANGE)
    (_, _, _, shown) = recorder.of("proposing")[0]
    assert SECRET not in shown and MASK in shown
    assert SECRET in record.change.call.params["Url"]  # the real call keeps its value


def test_the_outcome_names_what_aws_created():
    assert _response_detail({"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1"}, {}]}) == "created sgr-1, ?"
    assert _response_detail({"OperationId": "op-1"}) == "operation op-1"
    assert _response_detail({"ResponseMetadata": {}}) == ""
