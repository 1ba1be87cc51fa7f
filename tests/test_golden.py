"""Golden files: the rendered report and plan of the field-report scenario, volatile values normalised.

Regenerate after an intended change with `UPDATE_GOLDEN=1 make test` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.helpers import run
from runbook import render

GOLDEN = Path(__file__).parent / "golden"

_IDS = re.compile(r"\b(sgr|sg|subnet|vpc|acl|rtb|nat|igw)-[0-9a-f]{8,17}\b")
_VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<hex32>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"), "<time>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}\b"), "<time>"),
    (re.compile(r"\.[a-z0-9]{6}\.use1\.cache\.amazonaws\.com"), ".<rand>.use1.cache.amazonaws.com"),
    (re.compile(r"\.[a-z0-9]{10,12}\.us-east-1\.rds\.amazonaws\.com"), ".<rand>.us-east-1.rds.amazonaws.com"),
]


def normalise(text: str) -> str:
    """Stable names for ids in order of appearance (sg-1, sg-2 …), so the structure still shows."""
    seen: dict[str, str] = {}

    def stable(match: re.Match) -> str:
        kind = match.group(1)
        key = match.group(0)
        if key not in seen:
            seen[key] = f"{kind}-<{sum(1 for v in seen.values() if v.startswith(kind + '-<')) + 1}>"
        return seen[key]

    text = _IDS.sub(stable, text)
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    text = normalise(text)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
        pytest.skip(f"golden {name} written")
    assert path.exists(), f"missing golden {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file; if intended, regenerate with UPDATE_GOLDEN=1"


def field_report(world):
    """The field report as found: its CREATE_SERVICE kept IN_PROGRESS, or the test sandbox's 0.6 s
    deployments would end (and log their failure) while the report is being read, on a busy machine."""
    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    return box


@pytest.fixture
def field_report_check(world):
    field_report(world)
    report, _, _ = run(fix=False)
    return report


def test_text_report(field_report_check):
    check_golden("field-report-check.txt", render.to_text(field_report_check, width=120))


def test_markdown_report(field_report_check):
    check_golden("field-report-check.md", render.to_markdown(field_report_check))


def test_plan(world):
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import NonInteractive
    from runbook.engine import Engine, Options

    from tests.helpers import Recorder

    field_report(world)
    engine = Engine(Aws(read_only=True), rb.load("apprunner-vpc"), "nerava-backend", confirmer=NonInteractive(),
                    reporter=Recorder(), options=Options(dry_run=True))
    plan = engine.plan_document(engine.fix())
    plan["runbook"] = Path(plan["runbook"]).name
    plan["created"] = "<time>"
    plan["runbook_sha256"] = "<sha256 of the runbook file>"  # changes with every edit of the bundled runbook
    check_golden("field-report-plan.json", json.dumps(plan, indent=2) + "\n")
