"""commands/history.py: each run as one row; a script gets tab-separated lines, a terminal a table."""

from __future__ import annotations

import json

from runbook import journal as journal_mod
from runbook.commands.history import HEADER, row, show_history
from runbook.model import ApiCall, Change, Phase

RULE = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-1"}), "admit the connector", Phase.AUTHORIZE,
              inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-1"}))


def _two_runs(path):
    first = journal_mod.Journal(path, runbook="apprunner-vpc", service="svc", region="us-east-1")
    seq = first.begin("redis-ingress", RULE, "us-east-1")
    first.end(seq, "applied", "req-1", inverse=RULE.inverse)
    first.finish("healthy", 0, "healthy")
    second = journal_mod.Journal(path, runbook="apprunner-vpc", service="svc", region="us-east-1", undoes=first.run_id)
    second.undoing = seq
    seq = second.begin("redis-ingress", Change(RULE.inverse, "undo", Phase.REVOKE), "us-east-1")
    second.end(seq, "applied", "req-2")
    second.finish("undone", 0, "undid 1 of 1 change(s)")
    return first.run_id, second.run_id


def test_a_row_says_how_the_run_ended_and_what_undid_it():
    summary = {"run": "r1", "time": "2026-11-28T22:30:00.123456+00:00", "runbook": "apprunner-vpc", "service": "svc",
               "region": "us-east-1", "caller": None, "outcome": "healthy", "undoes": None, "undone_by": ["r2", "r3"],
               "changed_steps": [], "counts": {}}
    assert row(summary) == ("r1", "2026-11-28T22:30:00", "apprunner-vpc", "svc", "us-east-1", "?",
                            "healthy, undone by r2, r3", "-", "nothing sent")
    undo = {**summary, "run": "r2", "undoes": "r1", "undone_by": [], "outcome": "undone", "caller": "arn:aws:iam::1:user/a",
            "changed_steps": ["redis-ingress"], "counts": {"applied": 1}}
    assert row(undo)[5:] == ("arn:aws:iam::1:user/a", "undone (undo of r1)", "redis-ingress", "1 applied")


def test_a_script_reads_a_header_and_one_tab_separated_line_per_run(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    first, second = _two_runs(path)
    with path.open("a") as handle:
        handle.write("not a journal entry\n")
    show_history(path, as_json=False)
    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == list(HEADER) and [line[0] for line in lines[1:]] == [first, second]
    assert lines[1][6] == f"healthy, undone by {second}" and lines[2][6] == f"undone (undo of {first})"
    assert err == f"runbook: skipped 1 line(s) of {path} that are not journal entries\n"


def test_json_and_an_empty_journal(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    show_history(path, as_json=False)
    assert capsys.readouterr().out == f"no runs recorded in {path}\n"
    first, _ = _two_runs(path)
    show_history(path, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["journal"] == str(path) and doc["skipped_lines"] == 0
    assert [r["run"] for r in doc["runs"]][0] == first
