"""`fix --yes` on a healthy world of any shape changes nothing (issue 10).

Every world in worlds.PASSING is built in the sandbox and fixed in-process with the confirmer
`--yes` selects: it must exit 0 without one mutating call. Add new healthy shapes to PASSING.
"""

from __future__ import annotations

import pytest

from tests.helpers import mutating_calls, run
from tests.worlds import PASSING, PASSING_FILES, write_world


def _scenario(tmp_path, name: str) -> str:
    if name in PASSING_FILES:
        return PASSING_FILES[name]
    return write_world(tmp_path, name, *PASSING[name]) if PASSING[name] else "healthy"


@pytest.mark.parametrize("name", sorted({**PASSING, **PASSING_FILES}))
def test_fix_yes_on_a_healthy_world_changes_nothing(world, tmp_path, name):
    box = world(_scenario(tmp_path, name))
    service = box.scenario.services[0].name
    report, recorder, aws = run(service=service, timeout=30, healthy_probes=1)  # one healthy round is the point here, not a streak
    summary = [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results]
    assert report.exit_code == 0 and report.healthy, (report.stopped, summary)
    assert not mutating_calls(aws), (mutating_calls(aws), summary)
    assert not recorder.of("proposing"), recorder.of("proposing")
    assert box.app_health(service)[0], box.app_health(service)
