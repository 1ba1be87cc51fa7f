"""process.py: how a command ends, as exit code and the one line on stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from runbook import process
from runbook.errors import AwsError, Interrupted, UsageError


@pytest.fixture
def restored(monkeypatch):
    """run() installs signal handlers and an excepthook, and may wrap the streams: put them back."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def _ends(command, debug=False) -> int:
    with pytest.raises(SystemExit) as ended:
        process.run(command, debug=lambda: debug)
    return ended.value.code


def _raise(exc):
    def command():
        raise exc
    return command


def test_a_command_ends_with_its_code(restored):
    assert _ends(lambda: 1) == 1
    assert _ends(lambda: None) == 0  # a command that returns nothing succeeded


def test_an_error_is_one_line_with_its_exit_code_and_no_control_character_reaches_the_terminal(restored, capsys):
    assert _ends(_raise(UsageError("no step 'x\x1b[2J\r'"))) == 2
    assert capsys.readouterr().err == "runbook: error: no step 'x\\x1b[2J\\r'\n"
    assert _ends(_raise(AwsError("AccessDenied"))) == 3
    assert capsys.readouterr().err == "runbook: error: AccessDenied\n"


def test_debug_keeps_the_traceback_of_an_error(restored):
    with pytest.raises(AwsError):
        process.run(_raise(AwsError("AccessDenied")), debug=lambda: True)


def test_a_reader_gone_is_exit_1_and_nothing_said(restored, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    assert _ends(_raise(BrokenPipeError())) == 1
    assert capsys.readouterr().err == ""


def test_an_interrupt_ends_at_once_with_its_code_and_says_so():
    code = ("from runbook import process\nfrom runbook.errors import Interrupted\n"
            "def stop():\n    raise Interrupted('terminated (SIGTERM)', 143)\n"
            "process.run(stop, debug=lambda: False)\n")
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert (ended.returncode, ended.stdout, ended.stderr) == (143, "", "runbook: terminated (SIGTERM)\n")


def test_a_signal_raises_interrupted_and_a_second_one_at_once_is_ignored(restored):
    process.stop_on_signals()
    with pytest.raises(Interrupted) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # give the handler its chance to run
    assert (str(stop.value), stop.value.exit_code) == ("terminated (SIGTERM)", 143)
    os.kill(os.getpid(), signal.SIGINT)  # within two seconds of the first: the unwinding goes on
    signal.sigtimedwait([], 0)
