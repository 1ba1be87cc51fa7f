"""Which bundled runbook fixes each service a scenario builds, and the --service that names it."""

from __future__ import annotations

from runbook_sandbox.scenario import Scenario


def bundled_runs(scenario: Scenario) -> list[tuple[str, str]]:
    """(runbook, --service value) for each service of the scenario, App Runner's first."""
    ecs = [*scenario.ecs_services, *getattr(scenario, "ecs_express_services", ())]
    return [("apprunner-vpc", s.name) for s in scenario.services] + [
        ("ecs-service", s.name if s.cluster == "default" else f"{s.cluster}/{s.name}") for s in ecs]
