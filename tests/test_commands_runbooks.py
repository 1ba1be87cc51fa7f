"""`runbook show`: a runbook's steps, and the platform whose service --service names."""

from __future__ import annotations

from runbook.commands.runbooks import show_runbook


def test_show_names_the_runbooks_platform(tmp_path, capsys):
    show_runbook("apprunner-vpc")
    out = capsys.readouterr().out
    assert "platform: apprunner" in out and "1. service-status" in out
