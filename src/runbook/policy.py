"""The least-privilege IAM policy of a runbook, from what discovery, its platform and each step declare."""

from __future__ import annotations

from typing import Any

from runbook import registry
from runbook.model import Runbook

# Who ran it goes into the journal before the first change is sent.
FIX_BASE = ("sts:GetCallerIdentity",)


def actions(runbook: Runbook, *, fix: bool) -> tuple[list[str], list[str]]:
    from runbook import platforms
    from runbook.discovery import PERMISSIONS, SECRET_PERMISSIONS

    read = set(PERMISSIONS) | set(platforms.get(runbook.platform).PERMISSIONS)
    if runbook.params.get("read_secrets") is True:  # secret values are read only when the runbook says so
        read.update(SECRET_PERMISSIONS)
    write: set[str] = set()
    for step in runbook.steps:
        spec = registry.get(step.check)
        assert spec is not None
        read.update(spec.permissions)
        if fix:
            write.update(spec.fix_permissions)
    if fix:
        write.update(FIX_BASE)
    return sorted(read), sorted(write - read)


def for_runbook(runbook: Runbook, *, fix: bool) -> dict[str, Any]:
    read, write = actions(runbook, fix=fix)
    statements = [{"Sid": "RunbookDiagnose", "Effect": "Allow", "Action": read, "Resource": "*"}]
    if write:
        statements.append({"Sid": "RunbookFix", "Effect": "Allow", "Action": write, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
