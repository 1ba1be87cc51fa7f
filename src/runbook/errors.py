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
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as shells report it
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


class RunbookError(Exception):
    exit_code = EXIT_PROBLEMS


class UsageError(RunbookError):
    """Bad usage: an invalid runbook or scenario, an unknown service."""

    exit_code = EXIT_USAGE


class AwsError(RunbookError):
    """AWS refused or could not be reached: credentials, access, endpoint."""

    exit_code = EXIT_AWS

    def __init__(self, message: str, *, retries: int = 0):
        super().__init__(message)
        # >0: botocore sent the call again; an earlier attempt may have landed before this answer.
        self.retries = retries


class LocalIOError(RunbookError):
    """The local disk failed us: the journal, a plan or a report could not be written (disk full, I/O error)."""

    exit_code = EXIT_LOCAL_IO


class Interrupted(BaseException):
    """A signal asked the run to stop: Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143).

    A BaseException, as KeyboardInterrupt is, because the signal handler raises it
    wherever the main thread happens to be, and it must pass every `except Exception`
    on the way out: botocore wraps any Exception raised while urllib3 sends or reads
    (httpsession.send: `except Exception` -> HTTPClientError) and its standard retry
    mode retries HTTPClientError as a transient network error, so an Exception raised
    during an API call was swallowed and the call sent again. Not KeyboardInterrupt
    itself, which click turns into a generic abort with exit 1.
    """

    def __init__(self, message: str = "interrupted", exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code
