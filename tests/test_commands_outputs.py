"""commands/outputs.py: an output that could not be written is refused before anything is read or sent."""

from __future__ import annotations

import os

import pytest

from runbook.commands.outputs import check_outputs
from runbook.errors import UsageError


def test_writable_outputs_pass(tmp_path):
    existing = tmp_path / "report.txt"
    existing.write_text("old")
    check_outputs(output=existing, plan_out=tmp_path / "plan.json")
    # the journal's folders are made on its first write: a missing folder under a writable one is fine
    check_outputs(journal=tmp_path / "state" / "runbook" / "journal.jsonl", use_journal=True)


@pytest.mark.parametrize(("option", "where", "said"), [
    ("output", "folder", "is a directory, not a file"),
    ("output", "missing/report.txt", "no such directory"),
    ("plan_out", "missing/plan.json", "no such directory"),
    ("journal", "folder", "is a directory, not a file"),
])
def test_an_output_that_cannot_be_written_is_one_usage_error(tmp_path, option, where, said):
    (tmp_path / "folder").mkdir()
    path = tmp_path / where
    with pytest.raises(UsageError) as refused:
        check_outputs(**{option: path}, use_journal=option == "journal")
    flag = {"output": "--output", "plan_out": "--plan-out", "journal": "--journal"}[option]
    assert str(refused.value) == f"{flag} {path}: cannot write: {said}" + (f" {path.parent}" if said == "no such directory" else "")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_file_or_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    report = tmp_path / "report.txt"
    report.write_text("")
    report.chmod(0o400)
    locked.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="permission denied$"):
            check_outputs(output=report)
        with pytest.raises(UsageError, match=f"permission denied in {locked}$"):
            check_outputs(output=locked / "report.txt")
    finally:
        locked.chmod(0o700)


def test_the_default_journal_is_checked_only_when_the_run_journals(tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.write_text("a file where the state folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    check_outputs(use_journal=False)
    with pytest.raises(UsageError, match="^the journal "):
        check_outputs(use_journal=True)
