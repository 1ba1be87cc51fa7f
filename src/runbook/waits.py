"""Waiting is a step, not a sleep: poll (with tenacity) until something finishes, within the run's deadline.

The waits know no platform: a deployment wait is given the poll that reads the platform's
deployment state, a health wait the probe of the service's health URL.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from tenacity import RetryCallState, Retrying, retry_if_result, stop_before_delay, wait_exponential, wait_fixed, wait_random

if TYPE_CHECKING:
    from tenacity.wait import wait_base

    from runbook.probe import ProbeResult

Poll = Callable[[], "tuple[bool, str]"]  # (finished, the state to show)
Report = Callable[[str, str, float, float], None]  # (what, state, elapsed, budget): a Reporter's `waiting`


class TimedOut(Exception):
    """The deadline passed before the wait's poll said finished; the message is the run's last line."""


def until(what: str, poll: Poll, deadline: float, *, pace: "wait_base", report: Report, timeout: float) -> None:
    """Poll until it says finished; TimedOut at `deadline` (time.monotonic()). `timeout`: the
    --timeout the deadline came from, for the message."""
    started = time.monotonic()
    budget = max(0.0, deadline - started)
    last = {"state": "not polled yet"}

    def attempt() -> bool:
        done, state = poll()
        last["state"] = state
        report(what, state, time.monotonic() - started, budget)
        return done

    def give_up(_: RetryCallState):
        raise TimedOut(f"timed out (--timeout {timeout:.0f}s) waiting for {what}; last seen: {last['state']}")

    Retrying(
        stop=stop_before_delay(budget),
        wait=pace,
        retry=retry_if_result(lambda done: not done),
        retry_error_callback=give_up,
        reraise=True,
    )(attempt)


def for_deployment(poll: Poll, deadline: float, *, report: Report, timeout: float, initial: float, cap: float) -> None:
    """Wait for the platform's deployment in flight to end; `poll` reads its state once."""
    # About one call a second at first, backing off to `cap`: polite to the platform's rate limits;
    # the jitter keeps scripts started together from polling in step.
    pace = wait_exponential(multiplier=initial, max=cap) + wait_random(0, initial / 2)
    until("deployment", poll, deadline, pace=pace, report=report, timeout=timeout)


def for_health(
    probe: Callable[[], "ProbeResult"],
    deadline: float,
    *,
    report: Report,
    timeout: float,
    needed: int,
    interval: float,
    on_probe: Callable[[int, int], None] = lambda streak, needed: None,
) -> None:
    """Wait for `needed` consecutive healthy probes; `on_probe(streak, needed)` after each one."""
    streak = 0

    def poll() -> tuple[bool, str]:
        nonlocal streak
        result = probe()
        streak = streak + 1 if result.healthy else 0
        on_probe(streak, needed)
        return streak >= needed, f"{result.headline} ({streak}/{needed} consecutive 200s)"

    # Probes are cheap and N of them must pass in a row: a steady pace, not a backoff.
    until("health", poll, deadline, pace=wait_fixed(interval) + wait_random(0, 0.2), report=report, timeout=timeout)
