"""Fuzzing what a user or a disk can hand the tool: runbooks, scenarios, plans, journals, command lines.

Each input is a mutation of a real one (the bundled runbook and scenario, a plan a
dry run saved, a journal a run wrote, the commands of the README). The rule for
all of them: no traceback, only a documented exit code (or, in-process, only
UsageError with one line), and the sandbox world unchanged by a refused input.

Most cases call the loaders and the CLI's `main()` in-process; a few run the real
`runbook` process. `derandomize` keeps a run reproducible; RUNBOOK_FUZZ_LONG=1
runs twenty times as many cases with fresh randomness.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from runbook import cli
from runbook import journal as journal_mod
from runbook import runbook as rb
from runbook.errors import EXIT_AWS, EXIT_HEALTHY, EXIT_LOCAL_IO, EXIT_PROBLEMS, EXIT_TIMEOUT, EXIT_USAGE, UsageError
from runbook_sandbox import load_scenario
from runbook_sandbox.scenario import SCENARIO_DIR, parse_scenario, scenario_from_data
from tests.test_cli import RUNBOOK

LONG = os.environ.get("RUNBOOK_FUZZ_LONG") == "1"
DOCUMENTED = {EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_USAGE, EXIT_AWS, EXIT_TIMEOUT, EXIT_LOCAL_IO}


def fuzz(examples: int, *, shrink: bool = True):
    return settings(
        max_examples=examples * (20 if LONG else 1),
        derandomize=not LONG,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])],
    )


# -- values and mutations ------------------------------------------------------------
def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.binary(max_size=8),
    st.sampled_from(["", " ", "x" * 5000, "../../etc/passwd", "/dev/null", "\x1b]0;owned\x07", "${database.nope}",
                     "us-east-1 ", "US-EAST-1", "DATABASE_URL", "/healthz", "apprunner-vpc", "http.healthz", "nan", "1e400"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.integers(min_value=60, max_value=150).map(_nested),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw, original):
    """`original` with one to three nodes replaced, deleted, renamed, doubled or given a stray key."""
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(HOSTILE) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "rename", "double", "stray"]))
        if action == "replace":
            parent[key] = draw(HOSTILE)
        elif action == "delete":
            del parent[key]
        elif action == "double" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif isinstance(parent, dict) and action in ("rename", "stray"):
            value = parent.pop(key) if action == "rename" else draw(HOSTILE)
            new_key = draw(st.sampled_from([f"{key}s", str(key)[:-1] or "k", str(key).upper(), f"{key}_x", 5, True]))
            parent[new_key] = value
    return doc


@st.composite
def mutated_text(draw, text: str):
    """YAML or JSON text cut, spliced, with a line doubled (a duplicate key) or junk inserted."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 2))):
        action = draw(st.sampled_from(["truncate", "junk", "double", "drop", "indent"]))
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines:
            break
        if action == "truncate":
            joined = "".join(lines)
            lines = [joined[: draw(st.integers(0, len(joined)))]]
        elif action == "junk":
            junk = draw(st.sampled_from(["{", "[", "]", "}", ": ", "- ", "&a ", "*a", "!!python/object:os.system ", "\t",
                                         '"', "'", "\x00", "\ufeff", "? ", "%YAML 1.1\n", "---\n", "[" * 300]))
            line = lines[at]
            cut = draw(st.integers(0, len(line)))
            lines[at] = line[:cut] + junk + line[cut:]
        elif action == "double":
            lines.insert(at, lines[at])
        elif action == "drop":
            del lines[at]
        else:
            lines[at] = "  " + lines[at]
    return "".join(lines)


def _one_line(error: BaseException, prefix: str) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(prefix), message


# -- runbooks and scenarios, in-process -----------------------------------------------
RUNBOOK_TEXT = (Path(rb.bundled_dir()) / "apprunner-vpc.yaml").read_text()
RUNBOOK_DOC = yaml.safe_load(RUNBOOK_TEXT)
SCENARIO_TEXT = (SCENARIO_DIR / "field-report.yaml").read_text()
SCENARIO_DOC = yaml.safe_load(SCENARIO_TEXT)
ECS_RUNBOOK_DOC = yaml.safe_load((Path(rb.bundled_dir()) / "ecs-service.yaml").read_text())
ECS_SCENARIO_DOC = yaml.safe_load((SCENARIO_DIR / "ecs-field-report.yaml").read_text())


@fuzz(300)
@given(doc=mutated(RUNBOOK_DOC))
def test_mutated_runbook_documents(doc):
    try:
        rb.parse(doc, "fuzz.yaml")
    except UsageError as error:
        _one_line(error, "runbook fuzz.yaml: ")


@fuzz(150)
@given(doc=mutated(ECS_RUNBOOK_DOC))
def test_mutated_ecs_runbook_documents(doc):
    try:
        rb.parse(doc, "fuzz.yaml")
    except UsageError as error:
        _one_line(error, "runbook fuzz.yaml: ")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


@fuzz(150)
@given(text=mutated_text(RUNBOOK_TEXT))
def test_mutated_runbook_files(scratch, text):
    path = scratch / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        rb.load(str(path))
    except UsageError as error:
        _one_line(error, f"runbook {path}: ")


@fuzz(250)
@given(doc=mutated(SCENARIO_DOC))
def test_mutated_scenario_documents(doc):
    try:
        scenario_from_data(doc, label="fuzz.yaml")
    except UsageError as error:
        _one_line(error, "scenario fuzz.yaml: ")


@fuzz(150)
@given(doc=mutated(ECS_SCENARIO_DOC))
def test_mutated_ecs_scenario_documents(doc):
    try:
        scenario_from_data(doc, label="fuzz.yaml")
    except UsageError as error:
        _one_line(error, "scenario fuzz.yaml: ")


@fuzz(120)
@given(text=mutated_text(SCENARIO_TEXT))
def test_mutated_scenario_files(text):
    try:
        parse_scenario(text, label="fuzz.yaml")
    except UsageError as error:
        _one_line(error, "scenario fuzz.yaml: ")


# -- the CLI, in-process and as a process ---------------------------------------------
@pytest.fixture(scope="module")
def field(sandbox, tmp_path_factory):
    """The field-report world, the plan a dry run saves of it, and a journal of the calls its fix sends."""
    folder = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(folder / "state"))
        # A mutated line may name a relative --plan-out or --output ("🙂"): it lands here, not in the checkout.
        patch.chdir(folder)
        for key, value in sandbox.env.items():
            patch.setenv(key, value)
        sandbox.load(load_scenario("field-report"))
        plan = folder / "plan.json"
        code, _, err = invoke(["fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run", "--plan-out", str(plan)])
        assert code == 1 and plan.exists(), err
        yield {"box": sandbox, "plan": plan, "journal": _journal_of(plan, folder / "journal.jsonl"), "folder": folder}


def _journal_of(plan: Path, path: Path) -> Path:
    """A journal as the run of `plan` writes it: the plan entry, then each call and its answer."""
    from runbook.model import ApiCall, Change, Phase

    doc = json.loads(plan.read_text())
    journal = journal_mod.Journal(path, runbook="apprunner-vpc", service=doc["service"], region=doc["region"])
    journal.caller = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/oncall", "UserId": "AIDA"}
    changes = []
    for entry in doc["changes"]:
        inverse = entry.get("inverse")
        changes.append((entry["step"], Change(ApiCall(**entry["call"]), entry["description"], Phase[entry["phase"].upper()],
                                              inverse=ApiCall(**inverse) if inverse else None)))
    journal.planned(changes, doc["region"])
    for step_id, change in changes:
        seq = journal.begin(step_id, change, doc["region"])
        journal.end(seq, "applied", "req-1", "created sgr-1", inverse=change.inverse)
    return path


def invoke(args: list[str]) -> tuple[int, str, str]:
    """`runbook ARGS` through cli.main() in this process: its exit code, stdout and stderr.
    Anything main() lets escape (a traceback, in a terminal) fails the test."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["runbook", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
        cli._debug = False
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return code, out.getvalue(), err.getvalue()


def mutations(box) -> int:
    return sum(1 for e in box.history() if e.kind in ("aws-call", "apprunner-call"))


BAD_OPTIONS = [
    ["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "1e400"], ["--timeout", "-1"], ["--timeout", ""],
    ["--region", "us-east-1 "], ["--region", "US-EAST-1"], ["--region", ""], ["--region", "x" * 300],
    ["--format", "yaml"], ["--output", "json"], ["--output", "/no/such/dir/r.json"], ["--plan-out", "/no/such/dir/p.json"],
    ["--only", "no-such-step"], ["--skip", "Redis-Ingress"], ["--profile", "no-such-profile"], ["--bogus"], ["-z"],
    ["--journal", "/"], ["--service"], ["--timeout"], ["--deploy-seconds", "-1"], ["--deploy-seconds", "nan"],
    ["--timeout", "10 m"], ["--output", "/tmp/" + "o" * 300], ["--plan-out", "p" * 300], ["--journal", "j" * 300], ["--timeout", "0x10"], ["--mode", "write"], ["--format"], ["--output", "markdown"],
    ["--cluster", ""], ["--cluster", "a/b"], ["--cluster", "arn:aws:ecs:us-east-1:1:cluster/x"], ["--cluster"],
]


COMMANDS = {"list", "show", "iam-policy", "check", "fix", "apply", "history", "undo"}


def command_lines(field):
    plan, journal = str(field["plan"]), str(field["journal"])
    bases = st.sampled_from([
        ["check", "apprunner-vpc", "-s", "nerava-backend"],
        ["fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run"],
        ["fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run", "--plan-out", str(field["folder"] / "out.json")],
        ["show", "apprunner-vpc"], ["iam-policy", "apprunner-vpc", "--mode", "check"], ["history", "--journal", journal],
        ["check", "ecs-service", "-s", "nerava-backend", "--cluster", "prod"], ["iam-policy", "ecs-service"],
        ["apply", plan], ["undo", "no-such-run", "--journal", journal],
    ])

    @st.composite
    def line(draw):
        args = list(draw(bases))
        for _ in range(draw(st.integers(1, 3))):
            action = draw(st.sampled_from(["option", "option", "replace", "drop", "insert"]))
            at = draw(st.integers(0, len(args)))
            if action == "option":
                args[at:at] = draw(st.sampled_from(BAD_OPTIONS))
            elif action == "replace" and at < len(args):
                args[at] = draw(st.one_of(st.text(max_size=12), st.sampled_from(["-", "--", "-s", "--yes", "\x00", "🙂"])))
            elif action == "drop" and at < len(args):
                del args[at]
            else:
                args.insert(at, draw(st.text(max_size=8)))
        # Only refusable input: nothing here may apply a change (no --yes outside a dry run, no terminal).
        return [a.replace("\x00", "") for a in args if a not in ("--yes", "-y")]

    return line()


@fuzz(150)
@given(data=st.data())
def test_mutated_command_lines_in_process(field, data):
    box = field["box"]
    before = mutations(box)
    args = data.draw(command_lines(field))
    code, out, err = invoke(args)
    assert code in DOCUMENTED, (args, code, err)
    assert "Traceback" not in out + err
    if code == EXIT_USAGE and set(args) & COMMANDS:  # (without a command, the help is the answer)
        assert err.strip() and err.strip().splitlines()[-1].startswith("runbook: error: "), (args, err)
    assert mutations(box) == before, args


@st.composite
def mutated_plan(draw, plan_text: str):
    doc = json.loads(plan_text)
    if draw(st.booleans()):
        return json.dumps(draw(mutated(doc)), default=repr)
    return draw(mutated_text(json.dumps(doc, indent=1)))


@fuzz(120)
@given(data=st.data())
def test_mutated_plans_in_process(field, data):
    box = field["box"]
    before = mutations(box)
    path = field["folder"] / "mutated-plan.json"
    path.write_text(data.draw(mutated_plan(field["plan"].read_text())), encoding="utf-8", errors="surrogatepass")
    code, out, err = invoke(["apply", str(path)])  # no --yes and no terminal: refused at the latest at the prompt
    assert code == EXIT_USAGE, (code, err)
    assert "Traceback" not in out + err and err.strip().splitlines()[-1].startswith("runbook: error: "), err
    assert mutations(box) == before


@st.composite
def mutated_journal(draw, original: list[str]):
    """A journal with some lines cut, spliced, nested deep or mangled as text: what a crash or a
    foreign hand leaves. (Lines of the wrong shape are the journal's own fuzz, below.)"""
    lines = list(original)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["truncate", "junk", "deep", "double", "drop"]))
        if action == "truncate":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif action == "junk":
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + draw(st.sampled_from(["{", "}", '"', ",", "\\", "[" * 5000])) + lines[at][cut:]
        elif action == "deep":
            lines[at] = "[" * 100_000 + "]" * 100_000
        elif action == "double":
            lines.insert(at, lines[at])
        elif len(lines) > 1:
            del lines[at]
    originals = set(original)
    for line in lines:
        try:
            json.loads(line)
        except (ValueError, RecursionError):
            continue
        # A line that still parses must be one a run wrote: the wrong shapes are the test below.
        assume(line in originals)
    return "\n".join(lines) + "\n"


@fuzz(120)
@given(data=st.data())
def test_mutated_journals_in_process(field, data):
    path = field["folder"] / "mutated-journal.jsonl"
    path.write_text(data.draw(mutated_journal(field["journal"].read_text().splitlines())), encoding="utf-8")
    journal_mod.runs(journal_mod.read(path).entries)
    code, out, err = invoke(["history", "--journal", str(path)])
    assert code == EXIT_HEALTHY and "Traceback" not in out + err, err


@fuzz(60, shrink=False)
@given(data=st.data())
def test_journal_lines_of_the_wrong_shape(field, data):
    lines = field["journal"].read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    at = data.draw(st.integers(0, len(entries) - 1))
    entries[at] = data.draw(mutated(entries[at]))
    path = field["folder"] / "shaped-journal.jsonl"
    path.write_bytes(b"\n".join(json.dumps(e, default=repr).encode() for e in entries) + data.draw(st.sampled_from([b"\n", b"\xff\xfe\n"])))
    code, out, err = invoke(["history", "--journal", str(path)])
    assert code == EXIT_HEALTHY and "Traceback" not in out + err, err


@fuzz(6)
@given(data=st.data())
def test_mutated_command_lines_through_the_real_process(field, data):
    box = field["box"]
    before = mutations(box)
    args = data.draw(command_lines(field))
    result = subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode in DOCUMENTED, (args, result.returncode, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, (args, result.stderr)
    assert mutations(box) == before, args
