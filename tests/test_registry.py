"""A check's params schema: values it takes (an enum, a type, a default's type), required ones,
and the runbook loader's one-line refusals (exit 2, as every invalid runbook)."""

from __future__ import annotations

import pytest

from runbook import registry
from runbook import runbook as rb
from runbook.errors import EXIT_USAGE, UsageError
from runbook.registry import CheckSpec, Param, ParamProblem


def spec(**schema: Param) -> CheckSpec:
    return CheckSpec("x.check", lambda topology, params: None, (), (), {k: p.default for k, p in schema.items()}, "", schema)


@pytest.mark.parametrize("param, value, problem", [
    (Param("cache", allowed=("cache", "database")), "database", None),
    (Param("cache", allowed=("cache", "database")), "redis", "expected one of cache, database, got 'redis'"),
    (Param(1, allowed=(1, 2)), True, "expected one of 1, 2, got True"),  # YAML's true is no 1
    (Param("/healthz"), "/ready", None),
    (Param("/healthz"), "", "expected a non-empty string"),
    (Param("/healthz"), 3, "expected a string, got a number"),
    (Param(3600), 60, None),
    (Param(3600), 1.5, "expected a whole number, got 1.5"),
    (Param(3600), -1, "expected a positive number, got -1"),
    (Param(False), True, None),
    (Param(False), "yes", "expected a boolean, got a string"),
    (Param(type=str, required=True), "db", None),
    (Param(type=str, required=True), ["db"], "expected a string, got a list"),
    (Param(), {"any": "thing"}, None),
])
def test_a_param_says_why_a_value_is_not_its_own(param, value, problem):
    assert param.problem(value) == problem


def test_step_params_merge_defaults_the_runbook_and_the_step():
    schema = spec(target=Param("cache", allowed=("cache", "database")), window=Param(60))
    assert registry.step_params(schema, {}) == {"target": "cache", "window": 60}
    assert registry.step_params(schema, {"target": "database"}, {"window": 5, "other": 1}) == {"target": "database", "window": 5}


@pytest.mark.parametrize("given, key, message", [
    ({"bogus": 1}, "bogus", "unknown parameter for check x.check (allowed: target)"),
    ({"target": "redis"}, "target", "expected one of cache, database, got 'redis'"),
    ({}, None, "check x.check needs parameter target (cache, database)"),
])
def test_step_params_name_the_first_problem(given, key, message):
    with pytest.raises(ParamProblem) as info:
        registry.step_params(spec(target=Param(allowed=("cache", "database"), required=True)), given)
    assert (info.value.key, str(info.value)) == (key, message)


def test_the_decorator_takes_params_or_plain_defaults():
    registered = registry.get("sg.ingress-from-connector")
    assert registered.params == {"target": "cache"}
    assert registered.schema["target"].allowed == ("cache", "database")
    assert registry.get("http.healthz").schema["health_path"] == Param("/healthz")


BUNDLED = rb.resolve("apprunner-vpc").read_text()


@pytest.mark.parametrize("old, new, expected", [
    ("with: {target: cache}", "with: {target: redis}", "step redis-ingress.with.target: expected one of cache, database, got 'redis'"),
    ("with: {target: database}", "with: {target: [database]}", "step rds-ingress.with.target: expected one of cache, database, got ['database']"),
    ("params:\n", "params:\n  target: memcached\n", "params.target: expected one of cache, database, got 'memcached'"),
])
def test_the_loader_refuses_a_target_it_does_not_take_listing_the_allowed(tmp_path, old, new, expected):
    assert old in BUNDLED
    path = tmp_path / "rb.yaml"
    path.write_text(BUNDLED.replace(old, new, 1))
    with pytest.raises(UsageError) as info:
        rb.load(str(path))
    assert str(info.value) == f"runbook {path}: {expected}" and info.value.exit_code == EXIT_USAGE
