"""The health probe, read the way an engineer reads a front's answers (App Runner's envoy, an ALB)."""

from __future__ import annotations

from typing import Any, Mapping

from runbook.topology import Topology
from runbook.model import Evidence, Finding, Status
from runbook.probe import ProbeResult
from runbook.registry import check

_SHOWN_HEADERS = ("server", "location", "content-type", "content-length")  # and the front's own marker


def probe_evidence(result: ProbeResult) -> Evidence:
    if result.status is None:
        return Evidence(f"GET {result.url}", f"no answer: {result.error}")
    shown = dict.fromkeys((*_SHOWN_HEADERS[:1], *result.front.shown_headers, *_SHOWN_HEADERS[1:]))
    headers = ", ".join(f"{h}: {result.headers[h]}" for h in shown if h in result.headers)
    body = result.body.strip().replace("\n", " ")
    body = (body[:200] + "…") if len(body) > 200 else body
    return Evidence(
        f"GET {result.url}",
        f"HTTP {result.status} ({headers or 'no headers'}) body: {body or '(empty)'}",
        {"status": result.status, "headers": result.headers, "body": body, "elapsed_ms": result.elapsed_ms},
    )


def classify(result: ProbeResult) -> str:
    """Who answered, and what it means."""
    if result.status is None:
        return "the service URL did not answer at all"
    front = result.front
    if result.redirect:
        who = "the application" if result.from_app else front.name
        return (f"not healthy: redirects to {result.redirect} (HTTP {result.status} from {who}); "
                "a health path must answer 200 itself, and the probe never follows a redirect")
    if result.status == 200 and not result.from_app:
        return f"HTTP 200 but not from the application ({front.sign(result.headers)}): the request never reached the app"
    if result.status == 200:
        return "the application answered 200"
    if not result.from_app and result.status in front.own_pages:
        return f"{result.status} from {front.name} itself: {front.own_pages[result.status]}, the request never reached the app"
    if result.status == 404 and result.from_app:
        return "404 from the application: it runs, but does not serve this path"
    if result.status >= 500 and not result.from_app:
        return f"{result.status} from {front.name}: the container is not listening or crashed"
    if not result.from_app:
        return f"HTTP {result.status} from {front.name} itself ({front.sign(result.headers)}): the request never reached the app"
    return f"HTTP {result.status} from the application"


@check("http.healthz", params={"health_path": "/healthz"}, proves_health=True)
def healthz(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """The service URL's health path answers 200: the path of the service's HTTP health check, else the runbook's.

    Example:
      - id: healthz
        check: http.healthz   # with a TCP health check, probes the runbook's params.health_path
    """
    result = topology.probe
    workload = topology.workload
    if result is None and workload.unprobed and workload.health_instead:
        # Not proven by a probe, so never OK: the platform's own view of its health, said as such.
        evidence = (Evidence("not probed", f"{workload.unprobed}; instead: {workload.health_instead}"),)
        if workload.healthy_instead:
            return Finding(Status.WARN, f"not probed ({workload.unprobed}); {workload.health_instead}", evidence)
        return Finding(Status.FAIL, f"not probed ({workload.unprobed}); {workload.health_instead}", evidence)
    if result is None:
        return Finding(Status.SKIPPED, f"nothing to probe: {workload.unprobed}" if workload.unprobed
                       else "the service has no URL to probe")
    evidence = (probe_evidence(result),) + ((Evidence("probe", workload.tls_unchecked),) if workload.tls_unchecked else ())
    if result.healthy:
        return Finding(Status.OK, f"{topology.health_path} answered 200 from the application", evidence)
    if result.redirect:
        # A redirect is the app's (or a proxy's) configuration: it does not go away by waiting.
        return Finding(Status.FAIL, classify(result), evidence)
    if result.status == 404 and result.from_app:
        tried = [probe_evidence(alt) for alt in topology.alternate_probes]
        answering = [alt.url for alt in topology.alternate_probes if alt.healthy]
        hint = f"; 200 at {', '.join(answering)}" if answering else "; no other usual path answers 200 either"
        return Finding(Status.FAIL, classify(result) + hint, evidence + tuple(tried))
    return Finding(Status.FAIL, classify(result), evidence, waits_for="health")
