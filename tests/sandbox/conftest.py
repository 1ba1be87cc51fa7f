"""Fixtures for the sandbox's own tests, on the session Sandbox of tests/conftest.py.

moto keeps its state process-wide, so a process has exactly one Sandbox.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import botocore.session
import pytest

from runbook_sandbox import Sandbox, Scenario, load_scenario, parse_scenario

HERE = Path(__file__).parent


@pytest.fixture
def load(sandbox: Sandbox) -> Callable[[str | Scenario], Sandbox]:
    """load("field-report") / load(path) / load(Scenario): a freshly built world."""

    def _load(what: str | Scenario) -> Sandbox:
        scenario = what if isinstance(what, Scenario) else load_scenario(str(what))
        sandbox.load(scenario)
        return sandbox

    return _load


@pytest.fixture
def test_scenario() -> Callable[[str], Scenario]:
    """test_scenario("nacl-deny"): a scenario from tests/sandbox/scenarios/."""

    def _get(name: str) -> Scenario:
        return load_scenario(str(HERE / "scenarios" / f"{name}.yaml"))

    return _get


@pytest.fixture
def yaml_scenario() -> Callable[[str], Scenario]:
    return lambda text: parse_scenario(text, label="inline.yaml")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------------- raw wire access


def raw_call(sandbox: Sandbox, operation: str, params: dict | None = None) -> tuple[int, dict, dict]:
    """POST one App Runner call as raw JSON 1.0; return (status, headers, parsed body)."""
    request = urllib.request.Request(
        sandbox.env["AWS_ENDPOINT_URL_APPRUNNER"] + "/",
        data=json.dumps(params or {}).encode(),
        method="POST",
        headers={"X-Amz-Target": f"AppRunner.{operation}", "Content-Type": "application/x-amz-json-1.0"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def http_get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


# ---------------------------------------------------------------------- strict shape checker

_MODEL = botocore.session.get_session().get_service_model("apprunner")


def shape_errors(shape: Any, value: Any, path: str = "$") -> list[str]:
    """Every way ``value`` (raw JSON) strays from the botocore ``shape``: unknown or
    missing members, wrong types, enum values, length and range limits.
    (Regex patterns are not checked: the model's ServiceId pattern, a dashed
    UUID, contradicts its own 32-character length and real service ids.)"""
    errors: list[str] = []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object for {shape.name}, got {type(value).__name__}"]
        for key in value:
            if key not in shape.members:
                errors.append(f"{path}.{key}: not a member of {shape.name}")
        for key in shape.required_members:
            if key not in value:
                errors.append(f"{path}.{key}: required member of {shape.name} missing")
        for key, item in value.items():
            if key in shape.members:
                errors += shape_errors(shape.members[key], item, f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected list for {shape.name}"]
        for i, item in enumerate(value):
            errors += shape_errors(shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected map for {shape.name}"]
        for key, item in value.items():
            errors += shape_errors(shape.key, key, f"{path}<key>")
            errors += shape_errors(shape.value, item, f"{path}[{key!r}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string for {shape.name}, got {type(value).__name__}"]
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in enum {shape.name}")
        if "min" in meta and len(value) < meta["min"]:
            errors.append(f"{path}: shorter than {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: longer than {meta['max']}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected integer for {shape.name}, got {type(value).__name__}"]
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            errors.append(f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected epoch-seconds number, got {type(value).__name__}")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected number")
    else:
        errors.append(f"{path}: unchecked shape type {kind}")
    return errors


def assert_output_shape(operation: str, body: dict) -> None:
    shape = _MODEL.operation_model(operation).output_shape
    errors = shape_errors(shape, body)
    assert not errors, "\n".join(errors)


def assert_error_shape(operation: str, status: int, body: dict, code: str) -> None:
    assert set(body) == {"__type", "Message"}, body
    assert body["__type"] == code
    error_shape = _MODEL.shape_for(code)
    assert error_shape.metadata.get("exception"), code
    assert shape_errors(error_shape, {"Message": body["Message"]}) == []
    assert status == (500 if error_shape.metadata.get("fault") else 400)


# ---------------------------------------------------------------------- helpers as fixtures
# (fixtures rather than imports, so that these tests never depend on how
# pytest puts test directories on sys.path)


@pytest.fixture
def raw(sandbox: Sandbox) -> Callable[..., tuple[int, dict, dict]]:
    return lambda operation, params=None: raw_call(sandbox, operation, params)


@pytest.fixture
def get() -> Callable[..., tuple[int, dict[str, str], bytes]]:
    return http_get


@pytest.fixture
def waiter() -> Callable[..., Any]:
    return wait_for


@pytest.fixture
def check_output() -> Callable[[str, dict], None]:
    return assert_output_shape


@pytest.fixture
def check_error() -> Callable[[str, int, dict, str], None]:
    return assert_error_shape


@pytest.fixture
def shape_check() -> Callable[..., list[str]]:
    return shape_errors


@pytest.fixture
def apprunner_model() -> Any:
    return _MODEL
