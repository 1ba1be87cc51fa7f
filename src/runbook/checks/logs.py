"""Startup failures in the service's log groups, each linked to the check kind it implicates.

A signature names a kind of check (its registered name, and the params that pick one target),
never a runbook's step: the step that shows it is found in the runbook being run.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from runbook.discovery import LOG_EVENTS, LOG_TAIL_SECONDS
from runbook.model import Evidence, Finding, Status
from runbook.registry import check
from runbook.topology import LogSignature, Topology

# What the application writes, whatever runs it; a platform adds its own lines (Workload.log_signatures).
SIGNATURES: tuple[LogSignature, ...] = tuple(
    LogSignature(re.compile(p, re.I), meaning, kind, target)
    for p, meaning, kind, target in (
        (r"redis\.exceptions\.ConnectionError.*:6379.*timed out", "Redis connection timed out", "sg.ingress-from-workload", {"target": "cache"}),
        (r"connecting to .*:6379", "Redis connection failed", "sg.ingress-from-workload", {"target": "cache"}),
        (r"port 5432 failed: Connection timed out", "PostgreSQL connection timed out", "sg.ingress-from-workload", {"target": "database"}),
        (r"could not translate host name", "a host name does not resolve", "env.endpoints", {}),
        (r"password authentication failed", "the database password is wrong", "env.endpoints", {}),
        (r"ModuleNotFoundError", "the image is missing a Python module", "logs.startup", {}),
        (r"exec format error", "the image was built for another CPU architecture", "logs.startup", {}),
    )
)


def _shown_as(topology: Topology, signature: LogSignature) -> str:
    """The runbook step that shows the implicated kind; the kind itself when the runbook has none."""
    found = topology.step_for(signature.kind, signature.params)
    if found:
        return found
    target = signature.params.get("target")
    return f"{signature.kind} ({target})" if target else signature.kind


@check("logs.startup", params={"log_window_seconds": 3600}, reads_logs=True)
def startup_logs(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """Scan the service's log groups for known startup failures.

    Example:
      - id: startup-logs
        check: logs.startup
    """
    evidence, implicated = [], {}
    seen: set[tuple[str, str]] = set()
    signatures = SIGNATURES + tuple(topology.workload.log_signatures)
    # Discovery reads only what the running version logged (since its deployment started).
    events = topology.log_events
    for event in events:
        message = event["message"].strip()
        for signature in signatures:
            if signature.pattern.search(message):
                key = (signature.meaning, message)
                if key not in seen:
                    seen.add(key)
                    step = _shown_as(topology, signature)
                    implicated[step] = implicated.get(step, 0) + 1
                    evidence.append(Evidence(f"logs filter_log_events {event['logGroupName']}",
                                             f'"{message[:300]}" -> {signature.meaning}; see step {step}'))
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
