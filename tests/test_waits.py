"""The waits, with polls and probes of the test's own: N consecutive healthy probes, a streak that
breaks, and the one line a passed deadline ends the run with."""

from __future__ import annotations

import time

import pytest

from runbook import waits
from runbook.probe import ProbeResult

APP = {"x-envoy-upstream-service-time": "3"}
OK, DOWN = ProbeResult("http://x/healthz", 200, APP), ProbeResult("http://x/healthz", 503, APP)


def fast(**kwargs):
    return {"timeout": 5.0, "report": lambda what, state, elapsed, budget: seen.append((what, state)), **kwargs}


seen: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def _clear():
    seen.clear()


def test_health_needs_consecutive_healthy_probes_and_counts_each():
    answers = iter([OK, DOWN, OK, OK, OK, DOWN])
    streaks = []
    waits.for_health(lambda: next(answers), time.monotonic() + 5, needed=3, interval=0.0,
                     on_probe=lambda streak, needed: streaks.append((streak, needed)), **fast())
    assert streaks == [(1, 3), (0, 3), (1, 3), (2, 3), (3, 3)]
    assert seen[-1] == ("health", "HTTP 200 (3/3 consecutive 200s)") and seen[1] == ("health", "HTTP 503 (0/3 consecutive 200s)")


def test_a_deployment_wait_ends_when_the_poll_says_finished():
    states = iter([(False, "START_DEPLOYMENT IN_PROGRESS"), (True, "service RUNNING")])
    waits.for_deployment(lambda: next(states), time.monotonic() + 5, initial=0.01, cap=0.02, **fast())
    assert seen == [("deployment", "START_DEPLOYMENT IN_PROGRESS"), ("deployment", "service RUNNING")]


def test_a_passed_deadline_ends_the_wait_with_what_was_last_seen():
    with pytest.raises(waits.TimedOut) as info:
        waits.for_deployment(lambda: (False, "UPDATE_SERVICE IN_PROGRESS"), time.monotonic() + 0.3, initial=0.05, cap=0.05,
                             **fast(timeout=900))
    assert str(info.value) == "timed out (--timeout 900s) waiting for deployment; last seen: UPDATE_SERVICE IN_PROGRESS"


def test_a_deadline_already_passed_still_polls_once():
    with pytest.raises(waits.TimedOut, match="waiting for health; last seen: HTTP 503"):
        waits.for_health(lambda: DOWN, time.monotonic() - 1, needed=3, interval=0.0, **fast())
    assert len(seen) == 1
