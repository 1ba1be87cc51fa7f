"""Startup failures in the App Runner log groups, each linked to the step it implicates."""

from __future__ import annotations

import re
from typing import Any, Mapping

from runbook.discovery import LOG_EVENTS, LOG_TAIL_SECONDS, Topology
from runbook.model import Evidence, Finding, Status
from runbook.registry import check

# (pattern, what it means, the step it implicates)
SIGNATURES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(p, re.I), meaning, step)
    for p, meaning, step in (
        (r"redis\.exceptions\.ConnectionError.*:6379.*timed out", "Redis connection timed out", "redis-ingress"),
        (r"connecting to .*:6379", "Redis connection failed", "redis-ingress"),
        (r"port 5432 failed: Connection timed out", "PostgreSQL connection timed out", "rds-ingress"),
        (r"could not translate host name", "a host name does not resolve", "env-endpoints"),
        (r"password authentication failed", "the database password is wrong", "env-endpoints"),
        (r"ModuleNotFoundError", "the image is missing a Python module", "startup-logs"),
        (r"exec format error", "the image was built for another CPU architecture", "startup-logs"),
        (r"Health check failed on protocol", "App Runner's health check failed: the app did not answer it", "deployment"),
        (r"Container exit code", "the application stopped or failed to start", "startup-logs"),
        (r"Deployment failed", "a deployment failed", "deployment"),
    )
)


@check("logs.startup", permissions=("logs:FilterLogEvents",), params={"log_window_seconds": 3600})
def startup_logs(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """Scan the service and application log groups for known startup failures.

    Example:
      - id: startup-logs
        check: logs.startup
    """
    evidence, implicated = [], {}
    seen: set[tuple[str, str]] = set()
    # Discovery reads only what the running version logged (since its deployment started).
    events = topology.log_events
    for event in events:
        message = event["message"].strip()
        for pattern, meaning, step in SIGNATURES:
            if pattern.search(message):
                key = (meaning, message)
                if key not in seen:
                    seen.add(key)
                    implicated[step] = implicated.get(step, 0) + 1
                    evidence.append(Evidence(f"logs filter_log_events {event['logGroupName']}", f'"{message[:300]}" -> {meaning}; see step {step}'))
                break
    unread = ""
    if topology.logs_unread:
        unread = (f"; {', '.join(topology.logs_unread)} logged more than one discovery reads: "
                  f"its oldest {LOG_EVENTS} events and its last {LOG_TAIL_SECONDS // 60} minutes were read, not what lies between")
    if not evidence:
        groups = sorted({e["logGroupName"] for e in topology.log_events})
        return Finding(
            Status.OK,
            f"no known failure signature in {len(events)} recent events{unread}",
            (Evidence("logs filter_log_events", ", ".join(groups) or "no events"),),
        )
    steps = ", ".join(f"{step} ({count})" for step, count in implicated.items())
    return Finding(Status.WARN, f"{len(evidence)} recent log lines match known failures; they implicate {steps}{unread}",
                   tuple(evidence[:20]))
