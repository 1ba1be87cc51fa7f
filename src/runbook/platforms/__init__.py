"""The platforms a runbook can name with `platform:`, registered explicitly by name."""

from __future__ import annotations

from runbook.platforms import apprunner, ecs
from runbook.platforms.base import Platform

PLATFORMS: dict[str, Platform] = {"apprunner": apprunner, "ecs": ecs}


def get(name: str) -> Platform:
    """The platform a runbook names (the loader validated the name against PLATFORMS)."""
    return PLATFORMS[name]


def owning(service: str) -> Platform | None:
    """The platform whose checks send calls to this AWS service, if one does."""
    return next((p for p in PLATFORMS.values() if service in p.SERVICES), None)
