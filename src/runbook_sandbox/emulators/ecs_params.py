"""Request checking and paging shared by the ECS emulator's modules (ECS's error names and words)."""

from __future__ import annotations

import base64
import json
from typing import Any

from runbook_sandbox.emulators.wire import ApiError, region_of  # noqa: F401 - the ECS modules take them from here


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def string_param(params: dict, key: str, *, required: bool = False) -> str:
    value = params.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} can not be blank.")
        return ""
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"{key} must be a non-empty string")
    return value


def strings_param(params: dict, key: str, *, required: bool = False) -> list[str]:
    value = params.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid(f"{key} must be a list of strings")
    return value


def integer_param(params: dict, key: str, low: int, high: int, *, default: int | None = None) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{key} must be an integer from {low} to {high}")
    return value


def number_param(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid("timestamps must be numbers")
    return float(value)


def tags_param(params: dict) -> list[dict]:
    tags = params.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) and isinstance(t.get("key"), str) for t in tags):
        raise invalid("tags must be a list of {key, value}")
    return [{"key": t["key"], "value": str(t.get("value", ""))} for t in tags]


def page(items: list, params: dict, key: str, *, default: int, maximum: int = 100) -> dict[str, Any]:
    """A List* answer: one page of ``items`` under ``key``, and a ``nextToken`` when more remain."""
    limit = params.get("maxResults", default)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise invalid(f"maxResults must be an integer from 1 to {maximum}")
    start = 0
    token = params.get("nextToken")
    if token is not None:
        try:
            if not isinstance(token, str):
                raise ValueError
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            if start < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise invalid("Invalid nextToken.") from None
    page = items[start:start + limit]
    answer: dict[str, Any] = {key: page}
    if start + len(page) < len(items):
        answer["nextToken"] = base64.urlsafe_b64encode(json.dumps({"offset": start + len(page)}).encode()).decode()
    return answer
