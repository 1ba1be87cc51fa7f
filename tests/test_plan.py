"""The saved plan's format: dump, write, load and validate round trip; what it refuses; its call keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runbook import plan
from runbook import runbook as rb
from runbook.engine import Report
from runbook.errors import UsageError
from runbook.model import ApiCall, Change, Finding, Phase, Status, StepResult
from runbook.secrets import MASK, Scrubber

SECRET = "hunter2-secret"
AUTHORIZE = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-db", "IpPermissions": []}),
                   "admit the connector", Phase.AUTHORIZE,
                   inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-db", "IpPermissions": []}))
REBUILD = Change(ApiCall("apprunner", "update_service", {"ServiceArn": "arn:s", "Note": f"postgres://u:{SECRET}@db/x"}),
                 "rebuild", Phase.REDEPLOY)
REVOKE = Change(ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-db", "SecurityGroupRuleIds": ["sgr-1"]}),
                "revoke the public rule", Phase.REVOKE)
ADVICE = Change(ApiCall("ec2", "modify_vpc_attribute", {"VpcId": "vpc-1"}), "advice", Phase.AUTHORIZE, recommendation=True)


@pytest.fixture
def runbook_copy(tmp_path):
    """The bundled runbook in a file of the test's own, so that it can be edited or removed."""
    path = tmp_path / "apprunner-vpc.yaml"
    shutil.copy(rb.resolve("apprunner-vpc"), path)
    return rb.load(str(path))


def report_of(loaded, scrubber) -> Report:
    by_id = {s.id: s for s in loaded.steps}
    results = [
        StepResult(by_id["redis-ingress"], Finding(Status.FAIL, "no rule", changes=(AUTHORIZE, ADVICE))),
        StepResult(by_id["deployment"], Finding(Status.FAIL, "failed", changes=(REBUILD,))),
        StepResult(by_id["rds-public-ingress"], Finding(Status.FAIL, "public"), held=(REVOKE,), held_by=("rds-ingress",)),
    ]
    return Report(loaded, "nerava-backend", "us-east-1", results, healthy=False, exit_code=1, stopped="dry run", scrubber=scrubber)


def test_a_plan_round_trips_through_its_file_with_secrets_masked(runbook_copy, tmp_path):
    scrubber = Scrubber().extended([SECRET])
    doc = plan.dump(report_of(runbook_copy, scrubber), runbook_copy, "us-east-1", lambda step_id: True, scrubber)
    path = tmp_path / "plan.json"
    said = plan.save(path, doc)
    assert SECRET not in path.read_text() and MASK in path.read_text()
    assert said[0] == f"plan of 2 change(s) saved to {path}; apply it with: runbook apply {path}"
    assert "1 more wait for other steps and are not in it (rds-public-ingress)" in said[1]
    loaded_doc, loaded = plan.open_reviewed(path)
    assert loaded_doc == json.loads(json.dumps(doc, default=str))
    assert loaded.source == str(Path(runbook_copy.source).resolve()) and [s.id for s in loaded.steps] == [s.id for s in runbook_copy.steps]
    assert [(c["step"], c["phase"], c["call"]["operation"]) for c in loaded_doc["changes"]] == [
        ("redis-ingress", "authorize", "authorize_security_group_ingress"), ("deployment", "redeploy", "update_service")]
    assert loaded_doc["changes"][0]["inverse"]["operation"] == "revoke_security_group_ingress"
    assert loaded_doc["held"] == [{"step": "rds-public-ingress", "operation": "revoke_security_group_ingress",
                                   "description": "revoke the public rule", "held_by": ["rds-ingress"]}]
    # The keys apply matches the live calls by: the live call, secret and all, matches its masked twin.
    assert plan.call_keys(loaded_doc) == {plan.masked_key(AUTHORIZE, scrubber), plan.masked_key(REBUILD, scrubber)}
    assert plan.masked_key(REBUILD, scrubber) != plan.change_key(REBUILD)
    assert plan.masked_key(AUTHORIZE, scrubber) == plan.change_key(AUTHORIZE)


def test_only_selected_steps_enter_the_plan(runbook_copy):
    scrubber = Scrubber()
    doc = plan.dump(report_of(runbook_copy, scrubber), runbook_copy, "us-east-1", lambda step_id: step_id == "deployment", scrubber)
    assert [c["step"] for c in doc["changes"]] == ["deployment"] and doc["held"] == []


def test_stale_names_each_planned_call_the_world_no_longer_calls_for(runbook_copy):
    scrubber = Scrubber().extended([SECRET])
    report = report_of(runbook_copy, scrubber)
    doc = json.loads(json.dumps(plan.dump(report, runbook_copy, "us-east-1", lambda step_id: True, scrubber), default=str))
    assert plan.stale(doc, report.results, scrubber) == []
    fixed = [StepResult(r.step, Finding(Status.OK, "rule in place")) if r.step.id == "redis-ingress" else r for r in report.results]
    assert plan.stale(doc, fixed, scrubber) == [
        "redis-ingress no longer proposes authorize_security_group_ingress (now ok: rule in place)"]
    gone = [r for r in report.results if r.step.id != "deployment"]
    assert plan.stale(doc, gone, scrubber) == ["deployment no longer proposes update_service (now no such step)"]


GOOD = {"format": plan.FORMAT, "runbook": "/x.yaml", "runbook_sha256": "ab", "service": "s", "region": "us-east-1",
        "changes": [{"step": "a", "call": {"service": "ec2", "operation": "op", "params": {}}}], "held": []}


@pytest.mark.parametrize("doc, expected", [
    ([], "not a runbook plan (expected format runbook-plan/2)"),
    ({**GOOD, "format": "something/2"}, "not a runbook plan"),
    ({**GOOD, "format": "runbook-plan/1"}, "format runbook-plan/1 is not runbook-plan/2 (made by another version of runbook): make a new plan"),
    ({**GOOD, "service": ""}, "service: missing or not a string"),
    ({k: v for k, v in GOOD.items() if k != "runbook_sha256"}, "runbook_sha256: missing or not a string"),
    ({**GOOD, "region": 5}, "region: not a string"),
    ({**GOOD, "held": {}}, "held: not a list"),
    ({k: v for k, v in GOOD.items() if k != "changes"}, "changes: missing"),
    ({**GOOD, "changes": [{"step": "a", "call": {"service": "ec2", "operation": "op"}}]},
     "changes[0]: needs step and call.service, call.operation, call.params"),
    ({**GOOD, "changes": ["x"]}, "changes[0]: needs step"),
])
def test_validate_refuses_what_is_not_a_plan_in_one_line(doc, expected):
    with pytest.raises(UsageError) as info:
        plan.validate(doc, "p.json")
    assert str(info.value).startswith(f"plan p.json: {expected}") and "\n" not in str(info.value)


def test_validate_accepts_a_plan_without_region():
    assert plan.validate({**GOOD, "region": None}, "p.json")["service"] == "s"


@pytest.mark.parametrize("text, expected", [
    ("{not json", "cannot read it"),
    ("[" * 100 + "]" * 100, "cannot read it: nested too deeply"),
    (b"\xff\xfe", "cannot read it"),
])
def test_load_refuses_unreadable_files_in_one_line(tmp_path, text, expected):
    path = tmp_path / "plan.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UsageError, match=f"^plan {path}: {expected}"):
        plan.load(path)
    with pytest.raises(UsageError, match="cannot read it"):
        plan.load(tmp_path / "missing.json")


def _saved(runbook_copy, tmp_path) -> Path:
    scrubber = Scrubber()
    path = tmp_path / "plan.json"
    plan.save(path, plan.dump(report_of(runbook_copy, scrubber), runbook_copy, "us-east-1", lambda step_id: True, scrubber))
    return path


def test_a_plan_is_refused_once_its_runbook_changed(runbook_copy, tmp_path):
    path = _saved(runbook_copy, tmp_path)
    source = Path(runbook_copy.source)
    source.write_text(source.read_text() + "\n# edited\n")
    with pytest.raises(UsageError, match="changed since the plan was made .*refusing it: make a new plan"):
        plan.open_reviewed(path)
    source.unlink()
    with pytest.raises(UsageError, match="no longer exists; make a new plan"):
        plan.open_reviewed(path)


def test_a_plan_naming_a_relative_runbook_is_refused(runbook_copy, tmp_path):
    path = _saved(runbook_copy, tmp_path)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "runbook": "apprunner-vpc.yaml"}))
    with pytest.raises(UsageError, match="is not an absolute path; make a new plan"):
        plan.open_reviewed(path)


def test_a_plan_that_read_secrets_is_applied_reading_them(runbook_copy, tmp_path):
    path = _saved(runbook_copy, tmp_path)
    assert plan.open_reviewed(path)[1].params.get("read_secrets") is not True
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "read_secrets": True}))
    assert plan.open_reviewed(path)[1].params["read_secrets"] is True
