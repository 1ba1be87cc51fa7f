"""The one error type of the project, and the exit codes it maps to.

Every failure a user can cause or meet (bad input, AWS refusing, a wait that
runs out) is raised as a RunbookError subclass and turned into one line and an
exit code by the CLI's error handler. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

EXIT_HEALTHY = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_AWS = 3
EXIT_TIMEOUT = 4
EXIT_LOCAL_IO = 5
EXIT_INTERRUPTED = 130


class RunbookError(Exception):
    exit_code = EXIT_PROBLEMS


class UsageError(RunbookError):
    """Bad usage: an invalid runbook or scenario, an unknown service."""

    exit_code = EXIT_USAGE


class AwsError(RunbookError):
    """AWS refused or could not be reached: credentials, access, endpoint."""

    exit_code = EXIT_AWS


class LocalIOError(RunbookError):
    """The local disk failed us: the journal, a plan or a report could not be written (disk full, I/O error)."""

    exit_code = EXIT_LOCAL_IO


class Interrupted(RunbookError):
    """Ctrl-C at a prompt or during a wait. Raised instead of KeyboardInterrupt so
    that the CLI framework does not turn it into a generic abort."""

    exit_code = EXIT_INTERRUPTED
