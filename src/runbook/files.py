"""Files the tool writes that hold account details: journal, plans, reports. Owner-only, errors said as what they are."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from runbook.errors import LocalIOError, RunbookError, UsageError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# The disk failed, not the user's choice of path: said as an I/O error, with its own exit code.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


# Deeper than anything this tool writes: JSON nested further is refused before any code recurses into it.
MAX_DEPTH = 64


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Is this parsed JSON nested more than `limit` levels? (iterative: the check itself cannot overflow)"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def os_error(what: str, path: Path, exc: OSError) -> RunbookError:
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_ERRORS:
        return LocalIOError(f"I/O error writing {what} {path}: {reason}")
    return UsageError(f"cannot write {what} {path}: {reason}")


def write_private(path: Path, text: str, what: str = "the report") -> None:
    """Write `text` to `path`, created 0600 (an existing file keeps its mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise os_error(what, path, exc) from None
