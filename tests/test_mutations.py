"""Hundreds of broken runbook and scenario files: each is refused with one clear line (exit 2), never a traceback."""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runbook import runbook as rb
from runbook.errors import EXIT_USAGE, UsageError
from runbook_sandbox import load_scenario
from runbook_sandbox.scenario import SCENARIO_DIR

RUNBOOK_TEXT = rb.resolve("apprunner-vpc").read_text()
SCENARIO_TEXT = (SCENARIO_DIR / "field-report.yaml").read_text()
WRONG_VALUES = [None, 0, -1, 3.5, True, "", "x", [], ["a", 1], {}, {"k": "v"}]


def _paths(node, path=()):
    """Every (container, key) in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _paths(value, path + (index,))


def mutate(text: str, rng: random.Random) -> str:
    kind = rng.choice(["drop", "retype", "retype", "garbage", "truncate", "duplicate"])
    if kind == "garbage":
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            chars.insert(rng.randrange(len(chars)), rng.choice([":", "[", "{", "\t", "- ", "&a", "*b", "!!python/object:x", "\x00", "'"]))
        return "".join(chars)
    if kind == "truncate":
        return text[: rng.randrange(1, len(text))]
    doc = yaml.safe_load(text)
    places = list(_paths(doc))
    container, key = rng.choice(places)
    if kind == "drop":
        del container[key]
    elif kind == "retype":
        container[key] = copy.deepcopy(rng.choice(WRONG_VALUES))
    else:  # duplicate: a list item twice, or a mapping value copied onto another key
        if isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        else:
            other = rng.choice(list(container))
            container[other] = copy.deepcopy(container[key])
    return yaml.safe_dump(doc, sort_keys=False)


def outcomes(text: str, load, tmp_path: Path, count: int, seed: int):
    rng = random.Random(seed)
    refused = accepted = 0
    for number in range(count):
        path = tmp_path / f"mutant-{number}.yaml"
        path.write_text(mutate(text, rng), encoding="utf-8", errors="surrogateescape")
        try:
            load(str(path))
        except UsageError as exc:
            message = str(exc)
            assert message and "\n" not in message, (path.read_text(), message)
            assert str(path) in message or path.name in message, message
            refused += 1
        else:
            accepted += 1  # a mutation that left a valid file (e.g. dropped an optional field)
    return refused, accepted


def test_mutated_runbooks_are_refused_cleanly(tmp_path):
    refused, accepted = outcomes(RUNBOOK_TEXT, rb.load, tmp_path, 220, seed=7)
    assert refused >= 150, (refused, accepted)


def test_mutated_scenarios_are_refused_cleanly(tmp_path):
    refused, accepted = outcomes(SCENARIO_TEXT, load_scenario, tmp_path, 220, seed=11)
    assert refused >= 150, (refused, accepted)


@pytest.mark.parametrize("seed", range(4))
def test_through_the_cli_exit_2_and_one_line(tmp_path, seed):
    rng = random.Random(1000 + seed)
    runbook = tmp_path / "rb.yaml"
    scenario = tmp_path / "sc.yaml"
    while True:  # find a mutant of each that is really invalid
        runbook.write_text(mutate(RUNBOOK_TEXT, rng))
        try:
            rb.load(str(runbook))
        except UsageError:
            break
    while True:
        scenario.write_text(mutate(SCENARIO_TEXT, rng))
        try:
            load_scenario(str(scenario))
        except UsageError:
            break
    for args in (["show", str(runbook)], ["sandbox", "--scenario", str(scenario)]):
        result = subprocess.run([sys.executable, "-m", "runbook", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == EXIT_USAGE, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
