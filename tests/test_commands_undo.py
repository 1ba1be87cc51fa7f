"""commands/undo.py: what undo refuses, what it says when nothing is left, and its warning on a healthy service."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from runbook import journal as journal_mod
from runbook.commands.undo import undo_run, warn_if_healthy
from runbook.errors import UsageError
from runbook.model import ApiCall, Change, Phase

RULE = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-1"}), "admit the connector", Phase.AUTHORIZE,
              inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-1"}))
DEPLOY = Change(ApiCall("apprunner", "start_deployment", {"ServiceArn": "arn:aws:apprunner:us-east-1:1:service/svc/1"}),
                "redeploy", Phase.REDEPLOY)


def _run(path, *changes: Change, undoes=None, undoing=None) -> str:
    journal = journal_mod.Journal(path, runbook="apprunner-vpc", service="svc", region="us-east-1", undoes=undoes)
    journal.undoing = undoing
    for change in changes:
        seq = journal.begin("redis-ingress", change, "us-east-1")
        journal.end(seq, "applied", "req-1", inverse=change.inverse)
    journal.finish("healthy", 0, "healthy")
    return journal.run_id


def test_an_unknown_run_and_the_undo_of_an_undo_are_refused(tmp_path):
    path = tmp_path / "journal.jsonl"
    first = _run(path, RULE)
    undo = _run(path, Change(RULE.inverse, "undo", Phase.REVOKE), undoes=first, undoing=1)
    with pytest.raises(UsageError, match="^no run 'r0' in the journal; see `runbook history`$"):
        undo_run("r0", yes=True, journal=path, profile=None, as_json=False)
    with pytest.raises(UsageError, match=f"^run {undo} is the undo of run {first}: an undo is not undone"):
        undo_run(undo, yes=True, journal=path, profile=None, as_json=False)


def test_nothing_left_to_undo_ends_0_and_says_why(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    only_deploy = _run(path, DEPLOY)
    assert undo_run(only_deploy, yes=True, journal=path, profile=None, as_json=True) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["undo"] == only_deploy and doc["exit_code"] == 0 and doc["changes"] == []
    assert doc["no_inverse"] == ["apprunner start_deployment (call 1)"]
    assert "not undone, they have no inverse: apprunner start_deployment (call 1)" in err
    assert f"run {only_deploy} changed nothing that can be undone" in err

    rule = _run(path, RULE)
    undo = _run(path, Change(RULE.inverse, "undo", Phase.REVOKE), undoes=rule, undoing=1)
    assert undo_run(rule, yes=True, journal=path, profile=None, as_json=False) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"run {rule} was already undone by {undo}; nothing to do" in err


def _warning(aws, service: str, runbook: str = "apprunner-vpc") -> str:
    shown = io.StringIO()
    run = {"run": "r1", "runbook": runbook, "runbook_file": None, "service": service}
    warn_if_healthy(aws, run, [{"step": "redis-ingress"}, {"step": "redis-ingress"}, {"step": "rds-public-ingress"}],
                    Console(file=shown, width=300))
    return shown.getvalue().strip()


def test_undoing_on_a_healthy_service_is_warned_about_and_a_broken_one_is_not(world):
    from runbook.aws import Aws

    world("healthy")
    assert _warning(Aws(None, None, read_only=True), "nerava-backend") == (
        "warning: nerava-backend is healthy now; undoing run r1 puts back the state that failed "
        "redis-ingress, rds-public-ingress before that run")
    world("field-report")
    assert _warning(Aws(None, None, read_only=True), "nerava-backend") == ""
    said = _warning(Aws(None, None, read_only=True), "nerava-backend", runbook="no-such-runbook")
    assert said.startswith("cannot tell whether nerava-backend is healthy now (unknown runbook 'no-such-runbook'"), said
