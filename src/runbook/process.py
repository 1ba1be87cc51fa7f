"""How the process ends: signals stop the run, every error becomes one line and its exit code.

Exit codes: 0 healthy, 1 problems remain, 2 bad usage or invalid input,
3 AWS or network error, 4 timed out waiting, 5 local I/O error (the journal,
a plan or a report could not be written), 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from typing import Callable

import typer

from runbook.errors import EXIT_INTERRUPTED, EXIT_PROBLEMS, EXIT_TERMINATED, Interrupted, RunbookError


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM raise Interrupted in the main thread, wherever it is.

    A repeated signal while the first one unwinds (journaling what was in flight,
    stopping the sandbox) is ignored for two seconds, so that a double Ctrl-C does not
    tear the journal; after that, one more ends the process at once."""
    first: list[float] = []

    def stop(signum, _frame):
        code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        if first:
            if time.monotonic() - first[0] > 2.0:
                os._exit(code)
            return
        first.append(time.monotonic())
        raise Interrupted("terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted", code)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def say_error(line: str) -> None:
    """One line on stderr, whatever the input it quotes holds: control characters (a CR, an
    escape sequence typed or pasted into an argument) are shown, never sent to the terminal."""
    typer.echo(_CONTROL.sub(lambda m: repr(m.group())[1:-1], line), err=True)


def finish(code: int, *, hard: bool = False) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if hard:
        # After a signal, reader threads of an abandoned discovery may still wait on their
        # sockets; the interpreter would join them before exiting. Nothing they hold is
        # worth waiting for: every change is journaled (and fsynced) from the main thread.
        import atexit

        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


def run(command: Callable[[], object], *, debug: Callable[[], bool]) -> None:
    """Run the parsed command line `command` (click, standalone_mode off) and exit with its code.
    `debug()`: whether --debug was given, read after parsing; a RunbookError then keeps its traceback."""
    try:  # typer 0.26 and later carry their own click
        from typer._click import exceptions as click_errors, utils as click_utils
    except ImportError:
        from click import exceptions as click_errors, utils as click_utils

    from runbook.secrets import install_excepthook, scrub_line

    stop_on_signals()
    install_excepthook()  # a traceback (--debug, or a bug) is scrubbed like every other output
    try:
        try:
            code = command()
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click_errors.UsageError as exc:
            # One line, like every other bad input; click's own box spans six.
            path = exc.ctx.command_path if exc.ctx else "runbook"
            say_error(f"runbook: error: {exc.format_message()} (see `{path} --help`)")
            code = exc.exit_code
        except click_errors.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except typer.Abort:
            typer.echo("runbook: aborted", err=True)
            code = EXIT_INTERRUPTED
    except Interrupted as exc:
        say_error(f"runbook: {exc}")
        finish(exc.exit_code, hard=True)
    except RunbookError as exc:
        if debug():
            raise
        say_error(f"runbook: error: {scrub_line(str(exc))}")
        code = exc.exit_code
    except BrokenPipeError:
        # `runbook check | head`: the reader has gone; nobody is left to tell.
        sys.stdout = click_utils.PacifyFlushWrapper(sys.stdout)
        sys.stderr = click_utils.PacifyFlushWrapper(sys.stderr)
        code = EXIT_PROBLEMS
    finish(code if isinstance(code, int) else 0)
