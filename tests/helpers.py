"""Driving the engine in-process against the sandbox, the way the CLI does."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from runbook import runbook as rb
from runbook.aws import Aws, is_read_operation
from runbook.confirm import AssumeYes, Decision
from runbook.engine import Engine, Options, Report
from runbook.journal import Journal

# Deployments in test worlds take this long: long enough to be waited for, short enough for the suite.
DEPLOY_SECONDS = 0.6
# In-process runs poll at the pace of those short deployments; the production pace
# (Options' defaults) is what test_budget's politeness test and the CLI tests run.
TEST_PACE = {"poll_initial": 0.2, "poll_max": 0.5, "probe_interval": 0.1}
PRODUCTION_PACE = {name: getattr(Options(), name) for name in TEST_PACE}


class RecordingAws(Aws):
    """Aws that also keeps (service:Operation, params) of every call, in memory: the call-budget tests read it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, dict]] = []
        self._sent_lock = threading.Lock()  # discovery calls from several threads

    def call(self, service, operation, /, **params):
        action = self.client(service).meta.method_to_api_mapping.get(operation, operation)
        with self._sent_lock:
            self.sent.append((f"{service}:{action}", params))
        return super().call(service, operation, **params)


@dataclass
class Recorder:
    """A Reporter that keeps what the CLI would print."""

    events: list[tuple] = field(default_factory=list)

    def evaluated(self, results, round_no):
        self.events.append(("evaluated", round_no, {r.step.id: r.finding.status.value for r in results}))

    def proposing(self, step_id, change):
        self.events.append(("proposing", step_id, change.call.operation, change.call.cli()))

    def applied(self, step_id, applied):
        self.events.append(("applied", step_id, applied.change.call.operation, applied.applied, applied.outcome))

    def waiting(self, what, state, elapsed, budget):
        self.events.append(("waiting", what, state))

    def note(self, message):
        self.events.append(("note", message))

    def of(self, kind):
        return [e for e in self.events if e[0] == kind]


class Refuse:
    def confirm(self, step_id, change):
        return Decision(False, "declined at the prompt")


def run(runbook="apprunner-vpc", service="nerava-backend", *, fix=True, confirmer=None, timeout=60.0,
        dry_run=False, journal_path=None, **options) -> tuple[Report, Recorder, Aws]:
    loaded = rb.load(runbook)
    aws = RecordingAws(read_only=not fix or dry_run)
    recorder = Recorder()
    journal = Journal(journal_path, runbook=loaded.name, service=service, region=aws.region) if fix and not dry_run else None
    engine = Engine(aws, loaded, service, confirmer=confirmer or AssumeYes(), reporter=recorder, journal=journal,
                    options=Options(timeout=timeout, dry_run=dry_run, **{**TEST_PACE, **options}))
    report = engine.fix() if fix else engine.check()
    return report, recorder, aws


def journal_entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def step(report: Report, step_id: str):
    return next(r for r in report.results if r.step.id == step_id)


def mutating_calls(aws: Aws) -> dict[str, int]:
    return {k: v for k, v in aws.calls.items() if not is_read_operation(k.split(":")[1])}


def create_failed_field_report(tmp_path) -> str:
    """The field report after its CREATE_SERVICE has failed: the service is CREATE_FAILED and must be rebuilt."""
    from pathlib import Path

    import yaml

    from runbook_sandbox.scenario import SCENARIO_DIR

    doc = yaml.safe_load((SCENARIO_DIR / "field-report.yaml").read_text())
    doc["services"][0].update(status="CREATE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}])
    path = tmp_path / "create-failed.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)
