"""commands/run.py without AWS: what an interrupt's line says was sent, and how a run's journal is closed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from runbook import journal as journal_mod
from runbook.commands.run import close_run, journaled, say_what_was_sent
from runbook.errors import AwsError, Interrupted
from runbook.model import ApiCall, Change, Phase

RULE = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": "sg-1"}), "admit the connector", Phase.AUTHORIZE,
              inverse=ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": "sg-1"}))


def _journal(tmp_path, *outcomes: str | None) -> journal_mod.Journal:
    journal = journal_mod.Journal(tmp_path / "journal.jsonl", runbook="apprunner-vpc", service="svc", region="us-east-1")
    journal.planned([("redis-ingress", RULE)], "us-east-1")
    for outcome in outcomes:
        seq = journal.begin("redis-ingress", RULE, "us-east-1")
        if outcome is not None:
            journal.end(seq, outcome)
    return journal


@pytest.mark.parametrize(("outcomes", "said"), [
    ((), None),  # only the plan was journaled: nothing was sent, nothing to add
    (("applied",), "interrupted: 1 call(s) sent, each answered; journal "),
    (("applied", None), "interrupted: 2 call(s) sent, 1 with an unknown outcome (authorize_security_group_ingress); journal "),
    (("unknown: Interrupted before AWS answered",), "interrupted: 1 call(s) sent, 1 with an unknown outcome"),
])
def test_the_interrupt_says_what_was_sent(tmp_path, outcomes, said):
    journal = _journal(tmp_path, *outcomes)
    stop = Interrupted()
    say_what_was_sent(stop, journal)
    if said is None:
        assert str(stop) == "interrupted"
        return
    assert str(stop).startswith(said), str(stop)
    assert f"run {journal.run_id}" in str(stop)
    assert ("`runbook undo " in str(stop)) == ("unknown" in said)


def test_an_error_closes_the_journal_and_says_where_it_is(tmp_path):
    journal = _journal(tmp_path, "applied")
    shown = io.StringIO()
    with pytest.raises(AwsError), journaled(journal, Console(file=shown, width=300)):
        raise AwsError("AccessDenied")
    (run,) = journal_mod.runs(journal_mod.read(journal.path).entries)
    assert run["end"]["outcome"] == "error" and run["end"]["exit_code"] == 3
    assert shown.getvalue().strip() == f"journal of what was sent before the error: {journal.path} (run {journal.run_id}; see runbook history)"


def test_an_interrupt_is_journaled_as_such_and_its_line_names_the_calls(tmp_path):
    journal = _journal(tmp_path, "applied")
    with pytest.raises(Interrupted) as stop, journaled(journal, Console(file=io.StringIO())):
        raise Interrupted("terminated (SIGTERM)", 143)
    (run,) = journal_mod.runs(journal_mod.read(journal.path).entries)
    assert run["end"]["outcome"] == "interrupted" and run["end"]["exit_code"] == 143
    assert str(stop.value).startswith("terminated (SIGTERM): 1 call(s) sent, each answered")


class _Report:
    def __init__(self, exit_code: int, results=()):
        self.exit_code, self.results, self.stopped = exit_code, list(results), "why it stopped"
        self.run_id = self.journal = None


@pytest.mark.parametrize(("exit_code", "outcome"), [(0, "healthy"), (4, "timeout"), (1, "problems")])
def test_a_run_closes_with_its_outcome_and_the_report_names_it(tmp_path, exit_code, outcome):
    journal = _journal(tmp_path, "applied")
    report = _Report(exit_code)
    close_run(journal, report)
    (run,) = journal_mod.runs(journal_mod.read(journal.path).entries)
    assert run["end"]["outcome"] == outcome and run["end"]["exit_code"] == exit_code
    assert (report.run_id, report.journal) == (journal.run_id, str(journal.path))
