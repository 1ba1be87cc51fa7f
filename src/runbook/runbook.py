"""Find, load and validate runbook files. No AWS here."""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from runbook import registry, validation, yamlfile
from runbook.discovery import DEFAULTS as RUNBOOK_LEVEL
from runbook.errors import UsageError
from runbook.model import Runbook, Step

_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TOP_KEYS = {"name", "title", "description", "platform", "params", "steps"}
_STEP_KEYS = {"id", "check", "title", "why", "with", "after"}
_kind = validation.a_kind  # runbook messages name types as phrases: "got a list"


def bundled_dir() -> Path:
    """Where the bundled runbooks are: inside an installed wheel, or the repository's `runbooks/`."""
    packaged = resources.files("runbook") / "_runbooks"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "runbooks"


def bundled() -> dict[str, Path]:
    folder = bundled_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve(name_or_path: str) -> Path:
    found = bundled().get(name_or_path)
    if found:
        return found
    path = Path(name_or_path)
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise UsageError(f"runbook {validation.shorten(name_or_path)!r}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix in (".yaml", ".yml") or exists:
        if not is_file:
            raise UsageError(f"runbook file {name_or_path} does not exist")
        return path
    known = ", ".join(bundled()) or "none"
    raise UsageError(f"unknown runbook {name_or_path!r}; bundled runbooks: {known}")


def load(name_or_path: str) -> Runbook:
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"runbook {path}: cannot read: {exc}") from None
    try:
        doc = yamlfile.parse(text)  # no duplicate keys, bounded nesting
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"runbook {path}: not valid YAML{where}: {problem}") from None
    return parse(doc, str(path))


def parse(doc: Any, source: str) -> Runbook:
    fail = validation.Document("runbook", source).fail
    if not isinstance(doc, dict):
        raise fail("", f"expected a mapping at the top, got {_kind(doc)}")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise fail(sorted(map(str, unknown))[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    name = _string(doc, "name", fail, required=True)
    title = _string(doc, "title", fail) or name
    description = _string(doc, "description", fail) or ""
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise fail("params", f"expected a mapping, got {_kind(params)}")
    if "read_secrets" in params and not isinstance(params["read_secrets"], bool):
        raise fail("params.read_secrets", f"expected true or false, got {_kind(params['read_secrets'])}")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail("steps", f"expected a non-empty list, got {_kind(raw_steps)}")
    _check_runbook_params(params, raw_steps, fail)

    steps: list[Step] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        at = f"steps[{index}]"
        if not isinstance(raw, dict):
            raise fail(at, f"expected a mapping, got {_kind(raw)}")
        step_id = raw.get("id")
        if isinstance(step_id, str):
            at = f"step {step_id}"
        unknown = set(raw) - _STEP_KEYS
        if unknown:
            raise fail(f"{at}.{sorted(map(str, unknown))[0]}", f"unknown key (allowed: {', '.join(sorted(_STEP_KEYS))})")
        step_id = _string(raw, "id", fail, at=at, required=True)
        if not _STEP_ID.match(step_id):
            raise fail(f"{at}.id", "use lower-case letters, digits and dashes")
        if step_id in seen:
            raise fail(f"{at}.id", "duplicate step id")
        check_name = _string(raw, "check", fail, at=at, required=True)
        spec = registry.get(check_name)
        if spec is None:
            raise fail(f"{at}.check", f"unknown check {check_name!r}; known checks: {', '.join(registry.names())}")
        with_params = raw.get("with") or {}
        if not isinstance(with_params, dict):
            raise fail(f"{at}.with", f"expected a mapping, got {_kind(with_params)}")
        for key in with_params:
            if key in RUNBOOK_LEVEL:
                raise fail(f"{at}.with.{key}", "discovery reads this parameter: set it under the runbook's params:, not per step")
        try:
            step_params = registry.step_params(spec, with_params, params)
        except registry.ParamProblem as exc:
            raise fail(f"{at}.with" + (f".{exc.key}" if exc.key else ""), str(exc)) from None
        after = raw.get("after") or []
        if isinstance(after, str):
            after = [after]
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise fail(f"{at}.after", "expected a list of step ids")
        steps.append(
            Step(
                id=step_id,
                check=check_name,
                title=_string(raw, "title", fail, at=at, required=True),
                why=_string(raw, "why", fail, at=at, required=True),
                params=step_params,
                after=tuple(after),
            )
        )
        seen.add(step_id)
    ids = {s.id for s in steps}
    for step in steps:
        for dep in step.after:
            if dep not in ids:
                raise fail(f"step {step.id}.after", f"{dep!r} is no step of this runbook")
            if dep == step.id:
                raise fail(f"step {step.id}.after", "a step cannot wait for itself")
    cycle = _cycle({s.id: s.after for s in steps})
    if cycle:
        shown = cycle if len(cycle) <= 12 else [*cycle[:6], f"... {len(cycle) - 9} more ...", *cycle[-3:]]
        raise fail(f"step {cycle[0]}.after", "steps wait for each other in a circle: " + " -> ".join(shown))
    platform = _platform(doc, fail)
    for step in steps:
        # A platform's own checks (`<platform>.<check>`) read that platform's payload: another platform has none.
        owner = step.check.split(".", 1)[0]
        if owner != platform and owner in _platform_names():
            raise fail(f"step {step.id}.check", f"{step.check} is a check of platform {owner}, and this runbook's platform is {platform}")
    return Runbook(name=name, title=title, description=description, source=source, steps=tuple(steps), params=params,
                   platform=platform)


def _platform_names() -> frozenset[str]:
    from runbook.platforms import PLATFORMS

    return frozenset(PLATFORMS)


def _platform(doc: dict, fail) -> str:
    """What runs the service: a name in runbook.platforms.PLATFORMS."""
    from runbook.platforms import PLATFORMS

    allowed = ", ".join(sorted(PLATFORMS))
    value = doc.get("platform")
    if value is None:
        raise fail("platform", f"missing (allowed: {allowed})")
    if not isinstance(value, str) or value not in PLATFORMS:
        shown = repr(value) if isinstance(value, str) else _kind(value)
        raise fail("platform", f"unknown platform {shown} (allowed: {allowed})")
    return value


def with_secrets_read(runbook: Runbook, read: bool) -> Runbook:
    """The runbook with params.read_secrets turned on when `read` (the --read-secrets flag)."""
    from dataclasses import replace

    return replace(runbook, params={**runbook.params, "read_secrets": True}) if read else runbook


def _cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A circle of `after` edges, as a path that ends where it starts; None if there is none.
    Iterative: a valid chain of thousands of steps must not exhaust Python's stack."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = [root]
        pending = [iter(graph.get(root, ()))]
        state[root] = 1
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                pending.append(iter(graph.get(nxt, ())))
    return None


def _check_runbook_params(params: dict, raw_steps: list, fail) -> None:
    """Runbook-level params: discovery's own (DEFAULTS) and those of the checks the steps name,
    each of the type its default has. A misspelt name would silently fall back to the default."""
    expected: dict[str, list[registry.Param]] = {key: [registry.Param(value)] for key, value in RUNBOOK_LEVEL.items()}
    for raw in raw_steps:
        spec = registry.get(raw.get("check")) if isinstance(raw, dict) and isinstance(raw.get("check"), str) else None
        for key, param in (spec.schema.items() if spec else ()):
            expected.setdefault(key, []).append(param)
    for key, value in params.items():
        if key not in expected:
            close = difflib.get_close_matches(str(key), sorted(expected), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise fail(f"params.{key}", f"unknown parameter (known: {', '.join(sorted(expected))}){hint}")
        problems = [param.problem(value) for param in expected[key]]
        if all(problems):
            raise fail(f"params.{key}", problems[0])


def _string(doc: dict, key: str, fail, *, at: str = "", required: bool = False) -> str:
    where = validation.join(at, key)
    value = doc.get(key)
    if value is None:
        if required:
            raise fail(where, "missing")
        return ""
    if not isinstance(value, str) or not value.strip():
        raise fail(where, f"expected a non-empty string, got {_kind(value)}")
    return value
