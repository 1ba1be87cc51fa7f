import pytest
import yaml

from runbook import runbook as rb
from runbook.errors import UsageError


def test_bundled_runbook_loads_with_the_contract_step_ids():
    loaded = rb.load("apprunner-vpc")
    ids = [s.id for s in loaded.steps]
    for step_id in ("redis-ingress", "deployment", "healthz"):
        assert step_id in ids
    assert all(s.title and s.why for s in loaded.steps)
    deployment = next(s for s in loaded.steps if s.id == "deployment")
    assert "redis-ingress" in deployment.after


def _write(tmp_path, doc) -> str:
    path = tmp_path / "rb.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


GOOD_STEP = {"id": "a", "check": "http.healthz", "title": "t", "why": "w"}


@pytest.mark.parametrize(
    "doc, expected",
    [
        ("steps: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top"),
        ({"steps": [GOOD_STEP]}, "name: missing"),
        ({"name": "x"}, "steps: expected a non-empty list"),
        ({"name": "x", "steps": [{**GOOD_STEP, "check": "nope"}]}, "step a.check: unknown check 'nope'; known checks:"),
        ({"name": "x", "steps": [GOOD_STEP, GOOD_STEP]}, "step a.id: duplicate step id"),
        ({"name": "x", "steps": [{**GOOD_STEP, "title": 3}]}, "step a.title: expected a non-empty string, got a number"),
        ({"name": "x", "steps": [{**GOOD_STEP, "with": {"bogus": 1}}]}, "step a.with.bogus: unknown parameter"),
        ({"name": "x", "steps": [{**GOOD_STEP, "with": {"health_path": "/h"}}]}, "step a.with.health_path: discovery reads this parameter"),
        ({"name": "x", "steps": [{**GOOD_STEP, "after": ["later"]}]}, "step a.after: 'later' is no step of this runbook"),
        ({"name": "x", "steps": ["just a string"]}, "steps[0]: expected a mapping"),
        (
            {"name": "x", "steps": [{**GOOD_STEP, "after": ["b"]}, {**GOOD_STEP, "id": "b", "after": ["a"]}]},
            "steps wait for each other in a circle: a -> b -> a",
        ),
        ({"name": "x", "extra": 1, "steps": [GOOD_STEP]}, "extra: unknown key"),
    ],
)
def test_malformed_runbooks_give_one_clear_line(tmp_path, doc, expected):
    with pytest.raises(UsageError) as info:
        rb.load(_write(tmp_path, doc))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith("runbook ")


def test_unknown_runbook_name_lists_bundled():
    with pytest.raises(UsageError, match="bundled runbooks: apprunner-vpc"):
        rb.load("no-such-runbook")
