"""Bad input: one line, the documented exit code, nothing sent. Each case is one the red-team run
found giving a traceback, a wrong exit code, or silence."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.test_cli import RUNBOOK, cli, sandbox_env
from runbook import runbook as rb
from runbook.errors import UsageError

BUNDLED = (Path(rb.bundled_dir()) / "apprunner-vpc.yaml").read_text()


def one_line_error(result, code):
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: "), result.stderr
    return lines[0]


def mutations(box) -> list:
    return [e for e in box.history() if e.kind in ("aws-call", "apprunner-call")]


# -- regions -----------------------------------------------------------------------
@pytest.mark.parametrize("region, hint", [("us-east-1 ", "did you mean us-east-1?"), ("US-EAST-1", "did you mean us-east-1?"),
                                          ("us_east_1", "expected a name such as us-east-1")])
def test_an_invalid_region_is_one_line_exit_2(region, hint):
    # Refused before any client is made: no endpoint is needed to show it.
    line = one_line_error(cli("check", "apprunner-vpc", "-s", "nerava-backend", "--region", region), 2)
    assert f"invalid AWS region {region!r}" in line and hint in line


def test_a_plan_whose_region_is_not_a_string_is_refused_before_anything_is_sent(world, tmp_path):
    box = world("field-report")
    env = sandbox_env(box, tmp_path)
    plan = tmp_path / "plan.json"
    assert cli("fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run", "--plan-out", str(plan), env=env).returncode == 1
    doc = json.loads(plan.read_text())
    plan.write_text(json.dumps({**doc, "region": 5}))
    line = one_line_error(cli("apply", str(plan), "--yes", env=env), 2)
    assert "region: not a string" in line  # refused by the plan's own validation (plan.py), before any client is made
    assert not mutations(box)


def test_aws_region_is_honoured_like_the_aws_cli_does(world, tmp_path):
    box = world("field-report")
    env = {**sandbox_env(box, tmp_path), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", "--format", "json", env=env)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["region"] == "us-east-1"  # AWS_REGION first, as in the AWS CLI v2
    line = one_line_error(cli("check", "apprunner-vpc", "-s", "nerava-backend", env={**env, "AWS_REGION": "Us-East-1"}), 2)
    assert "(from AWS_REGION)" in line


def test_an_answer_that_is_not_aws_xml_is_one_line_exit_3(world, tmp_path):
    """A proxy's HTML error page where RDS's XML belongs: botocore raises ResponseParserError, which is
    not one of its BotoCoreErrors."""
    box = world("field-report")

    class HtmlPage(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HtmlPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**sandbox_env(box, tmp_path), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}", "AWS_MAX_ATTEMPTS": "1"}
        line = one_line_error(cli("check", "apprunner-vpc", "-s", "nerava-backend", env=env), 3)
    finally:
        server.shutdown()
    assert "answered with something that is not an AWS response" in line


# -- runbook and scenario files ----------------------------------------------------
def _runbook(tmp_path, text) -> str:
    path = tmp_path / "rb.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("old, new, expected", [
    ("health_path: /healthz", "health_path: 123", "params.health_path: expected a string, got a number"),
    ("health_path: /healthz", "health_path: /healthz\n  log_window_seconds: .nan", "params.log_window_seconds: expected a whole number, got nan"),
    ("health_path: /healthz", "health_path: /healthz\n  log_window_seconds: true", "params.log_window_seconds: expected a number, got a boolean"),
    ("health_path: /healthz", "health_path: /healthz\n  log_window_seconds: -60", "params.log_window_seconds: expected a positive number"),
    ("database_url_var: DATABASE_URL", "database_url_var: [x]", "params.database_url_var: expected a string, got a list"),
    ("health_path: /healthz", "helth_path: /healthz", "params.helth_path: unknown parameter (known: "),
    ("health_path: /healthz", "health_path: /healthz\n  health_path: /other", "duplicate key 'health_path'"),
    ("  - id: vpc-connector\n", "  - id: vpc-connector\n    id: vpc-connector\n", "duplicate key 'id'"),
])
def test_runbook_params_of_the_wrong_type_misspelt_or_twice_are_refused(tmp_path, old, new, expected):
    assert old in BUNDLED
    with pytest.raises(UsageError) as info:
        rb.load(_runbook(tmp_path, BUNDLED.replace(old, new, 1)))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_the_misspelt_param_gets_a_suggestion(tmp_path):
    with pytest.raises(UsageError, match="did you mean health_path"):
        rb.load(_runbook(tmp_path, BUNDLED.replace("health_path: /healthz", "helth_path: /healthz")))


DEEP = 1000


@pytest.mark.parametrize("text", [
    "name: x\nsteps: " + "[" * DEEP + "]" * DEEP + "\n",
    "name: x\nparams: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
    "name: x\nsteps:\n" + "".join("  " * i + "- \n" for i in range(DEEP)),
])
def test_deep_nesting_in_a_runbook_is_a_parse_error(tmp_path, text):
    with pytest.raises(UsageError, match="nested deeper than 64 levels"):
        rb.load(_runbook(tmp_path, text))


def test_deep_nesting_and_duplicate_keys_in_a_scenario_are_refused():
    from runbook_sandbox.scenario import parse_scenario

    with pytest.raises(UsageError, match="nested deeper than 64 levels"):
        parse_scenario("name: x\nvpcs: " + "[" * DEEP + "]" * DEEP + "\n", label="deep.yaml")
    with pytest.raises(UsageError, match="duplicate key 'name'"):
        parse_scenario("name: x\nname: y\n", label="twice.yaml")


def _chain(n: int, close: bool = False) -> str:
    steps = [f"  - {{id: s{i}, check: http.healthz, title: t, why: w{f', after: [s{i - 1}]' if i else ''}}}" for i in range(n)]
    if close:
        steps[0] = f"  - {{id: s0, check: http.healthz, title: t, why: w, after: [s{n - 1}]}}"
    return "name: chain\nplatform: apprunner\nsteps:\n" + "\n".join(steps) + "\n"


def test_a_long_valid_after_chain_loads_and_a_long_circle_is_named_briefly(tmp_path):
    assert len(rb.load(_runbook(tmp_path, _chain(1200))).steps) == 1200  # RecursionError before
    with pytest.raises(UsageError) as info:
        rb.load(_runbook(tmp_path, _chain(1200, close=True)))
    message = str(info.value)
    assert "steps wait for each other in a circle: s0 -> s1199 -> s1198" in message and "more ..." in message
    assert len(message) < 300


def test_deep_plan_and_journal_files_are_one_line(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"format": "runbook-plan/1", "changes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    line = one_line_error(cli("apply", str(plan), "--yes"), 2)
    assert f"plan {plan}: cannot read it" in line
    journal = tmp_path / "journal.jsonl"
    good = {"run": "r1", "time": "2026-12-01T00:00:00.000+00:00", "event": "plan", "runbook": "apprunner-vpc", "service": "s",
            "region": "us-east-1", "changes": []}
    journal.write_text(json.dumps(good) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    result = cli("history", "--journal", str(journal))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "r1" in result.stdout


# -- command lines -----------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "1e400"])
def test_timeout_must_be_a_finite_duration(value):
    line = one_line_error(cli("fix", "apprunner-vpc", "-s", "x", "--dry-run", "--timeout", value), 2)
    assert "--timeout" in line and "90s" in line


@pytest.mark.parametrize("value", ["inf", "0", "-5", "10x", "", "0.5", "8d", "1_0"])
def test_timeout_refuses_what_is_not_a_duration(value):
    import typer

    from runbook.cli import _seconds

    with pytest.raises(typer.BadParameter, match="90s"):
        _seconds(value)


def test_timeout_takes_seconds_and_durations():
    import typer

    from runbook.cli import _deploy_seconds, _seconds

    assert [_seconds(v) for v in ("90", "90s", "10m", "1.5m", "1h", 900.0)] == [90, 90, 600, 90, 3600, 900]
    assert _deploy_seconds("0.6") == 0.6
    for bad in ("0", "nan", "-1", "2d"):
        with pytest.raises(typer.BadParameter):
            _deploy_seconds(bad)  # before: 0 was a traceback from Sandbox(), nan deployments that never end


def test_every_output_path_is_checked_before_anything_is_sent(world, tmp_path):
    box = world("field-report")
    env = sandbox_env(box, tmp_path)
    base = ["fix", "apprunner-vpc", "-s", "nerava-backend"]
    line = one_line_error(cli(*base, "--yes", "--output", "/no/dir/r.json", env=env), 2)
    assert line == "runbook: error: --output /no/dir/r.json: cannot write: no such directory /no/dir"
    line = one_line_error(cli(*base, "--yes", "--journal", str(tmp_path), env=env), 2)
    assert "is a directory" in line
    line = one_line_error(cli(*base, "--dry-run", "--plan-out", "/no/dir/plan.json", env=env), 2)
    assert "--plan-out /no/dir/plan.json" in line
    assert not mutations(box)  # before: the fix was applied, then the report lost


def test_output_json_is_the_aws_habit_and_gets_a_hint(world, tmp_path):
    box = world("field-report")
    result = subprocess.run([*RUNBOOK, "check", "apprunner-vpc", "-s", "nerava-backend", "--output", "json"], cwd=tmp_path,
                            env=sandbox_env(box, tmp_path), capture_output=True, text=True, timeout=60)
    assert "use --format json" in one_line_error(result, 2)
    assert not (tmp_path / "json").exists()


def test_debug_works_after_the_subcommand_and_usage_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [")
    result = cli("show", str(bad), "--debug")
    assert "Traceback" in result.stderr and "UsageError" in result.stderr
    line = one_line_error(cli("show"), 2)
    assert "Missing argument 'RUNBOOK'" in line and "runbook show --help" in line
    one_line_error(cli("check", "apprunner-vpc", "--bogus"), 2)


def test_help_names_arguments_plainly():
    result = cli("fix", "--help", env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0
    assert "Usage: runbook fix [OPTIONS] RUNBOOK" in result.stdout
    assert "{runbook}" not in result.stdout and "{RUNBOOK}" not in result.stdout
    assert "float range" not in result.stdout and "SECONDS" in result.stdout


def test_a_closed_pipe_ends_quietly(world, tmp_path):
    box = world("field-report")
    process = subprocess.Popen([*RUNBOOK, "check", "apprunner-vpc", "-s", "nerava-backend"], env=sandbox_env(box, tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # `| head` that has read enough before the report is written
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert process.returncode in (0, 1)


def test_names_too_long_for_the_file_system_are_one_line(tmp_path):
    from runbook_sandbox import load_scenario

    long_name = "[" * 300 + "/apprunner-vpc.yaml"  # found by the long fuzz run, in a plan's runbook field
    with pytest.raises(UsageError, match="cannot read: File name too long"):
        rb.load(long_name)
    with pytest.raises(UsageError, match="cannot read: File name too long"):
        load_scenario("s" * 300)
    line = one_line_error(cli("check", "apprunner-vpc", "-s", "x", "--output", str(tmp_path / ("r" * 300))), 2)
    assert "cannot write: File name too long" in line


def test_control_characters_in_an_argument_stay_on_the_one_line():
    """Found by the long fuzz run: `apply $'\\r'` printed a carriage return into the error line."""
    line = one_line_error(cli("apply", "a\rb\x1b[2J"), 2)
    assert "\x1b" not in line and "\r" not in line and "a\\rb\\x1b[2J" in line
