"""The run as an on-call engineer sees it: a real terminal (pexpect), its screen as left after exit (pyte)."""

from __future__ import annotations

import re
import shlex
import sys

import boto3
import pexpect
import pyte
import pytest

from tests.helpers import create_failed_field_report
from tests.test_cli import sandbox_env

PROMPT = r"Apply this change for step (\S+)\? \(yes/no\)"
SPINNER = r"waiting for (deployment|health): "  # the live status line of a wait


class Terminal:
    """A child process on a pty of the given size, and the screen it leaves."""

    def __init__(self, command: str, env, columns: int, rows: int = 300):
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.Stream(self.screen)
        self.transcript: list[str] = []
        self.child = pexpect.spawn("/bin/sh", ["-c", command], env={**env, "TERM": "xterm"}, encoding="utf-8",
                                   timeout=60, dimensions=(rows, columns))
        self.child.logfile_read = self

    # pexpect's logfile protocol
    def write(self, text: str) -> None:
        self.transcript.append(text)
        self.stream.feed(text)

    def flush(self) -> None:
        pass

    def prompt(self) -> str | None:
        """The step of the next question, or None when the process ended."""
        if self.child.expect([PROMPT, pexpect.EOF]) == 1:
            return None
        return self.child.match.group(1)

    def answer(self, keys: str) -> None:
        """Type an answer and wait until the run has acted on it (prompts redraw as keys arrive)."""
        self.child.send(keys)
        self.child.expect(r"applied")

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def fix_command(*extra: str, redirect: str = "") -> str:
    args = [sys.executable, "-m", "runbook", "fix", "apprunner-vpc", "--service", "nerava-backend", "--timeout", "60", *extra]
    return "exec " + " ".join(shlex.quote(a) for a in args) + redirect


def public_5432_rules(box) -> list[dict]:
    rules = boto3.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [box.ids["sg:default"]]}])["SecurityGroupRules"]
    return [r for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0" and r.get("FromPort") == 5432]


def assert_no_id_broken(terminal: Terminal, box) -> None:
    """Every AWS id the run printed is whole on one screen line: never split by a wrap."""
    ids = [v for v in box.ids.values() if isinstance(v, str) and re.match(r"(sg|sgr|subnet|vpc|acl|rtb)-[0-9a-f]+$", v)]
    joined = "".join(terminal.lines)
    for resource_id in ids:
        if resource_id in joined:
            assert any(resource_id in line for line in terminal.lines), f"{resource_id} is broken across lines"


def test_decline_then_continue_with_type_ahead_and_the_report_in_a_file(world, tmp_path):
    """Yes to the 6379 rule (typed twice: the second y⏎ must not answer the next prompt), a stray Enter,
    no to the public-rule revoke, and the CREATE_FAILED rebuild is still offered; stdout goes to a file."""
    box = world(create_failed_field_report(tmp_path))
    out = tmp_path / "out.txt"
    terminal = Terminal(fix_command(redirect=f" > {shlex.quote(str(out))}"), sandbox_env(box, tmp_path), columns=80)
    assert terminal.prompt() == "redis-ingress"  # the question is on the terminal, not in the file
    terminal.answer("y\ry\r")
    assert terminal.prompt() == "rds-public-ingress"
    terminal.child.send("\r")  # an Enter alone is no answer
    terminal.child.expect("answer yes or no")
    terminal.answer("n\r")
    assert terminal.prompt() == "service-status"  # the decline held back nothing the rebuild waits on
    terminal.answer("y\r")
    assert terminal.prompt() is None
    assert terminal.finish() == 1  # the public rule the user kept is still a problem

    assert len(public_5432_rules(box)) == 1  # neither the stray y nor the stray Enter answered the revoke
    assert box.app_health("nerava-backend")[0] is True  # rebuilt and serving
    report = out.read_text()
    assert "Apply this change" not in report and not re.search(SPINNER, report)
    assert "Fix: 2 applied, 1 declined, 0 skipped" in report
    screen = terminal.text
    # the ending, repeated on the terminal because the report went to a file
    assert "Fix: 2 applied, 1 declined, 0 skipped, 0 held, 3 advice (never applied)." in screen
    flat = " ".join(screen.split())
    assert "declined: rds-public-ingress" in screen and "no other step's change waits on it" in flat
    assert "to leave it next time, pass --skip rds-public-ingress" in flat
    assert "service: nerava-backend RUNNING; health: /healthz answered 200 3 times in a row" in screen
    assert "result: not healthy: declined changes remain; the service itself is healthy" in screen
    assert "runbook undo " in screen
    # the declined change is listed once in the report
    assert report.count("revoke sgr-") == 2  # in its step (once: not also as proposed) and in the closing lines
    assert "change (declined at the prompt): revoke sgr-" in report
    assert not re.search(SPINNER, screen), screen  # the spinner is gone


@pytest.mark.parametrize("columns", [80])
def test_skip_ends_0_on_a_healthy_service_and_the_summary_says_so(world, tmp_path, columns):
    box = world("field-report")
    terminal = Terminal(fix_command("--skip", "rds-public-ingress"), sandbox_env(box, tmp_path), columns=columns)
    asked = []
    while (step_id := terminal.prompt()) is not None:
        asked.append(step_id)
        terminal.answer("y\r")
    assert terminal.finish() == 0
    assert asked[0] == "redis-ingress" and "rds-public-ingress" not in asked
    screen = terminal.text
    assert "left by --skip: rds-public-ingress" in screen
    assert f"Fix: {len(asked)} applied, 0 declined, 1 skipped, 0 held, 3 advice (never applied)." in screen
    assert "service: nerava-backend RUNNING; health: /healthz answered 200 3 times in a row" in screen
    assert "result: healthy" in screen
    assert "next:" not in screen
    # the CLI twin at the prompt names the region, as in the report
    assert re.search(r"authorize-security-group-ingress .*--region us-east-1", "".join(terminal.lines))
    assert not re.search(SPINNER, screen)
    assert_no_id_broken(terminal, box)


@pytest.mark.parametrize("columns", [80, 250])
def test_check_on_a_terminal_shows_each_step_once(world, tmp_path, columns):
    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    args = [sys.executable, "-m", "runbook", "check", "apprunner-vpc", "--service", "nerava-backend"]
    terminal = Terminal("exec " + " ".join(map(shlex.quote, args)), sandbox_env(box, tmp_path), columns=columns)
    assert terminal.finish() == 1
    screen = terminal.text
    # the table's rows, and no progress line repeating them
    assert not re.search(r"^\s*(ok|fail|warn|skipped|error) [a-z-]+: ", screen, re.M), screen
    assert re.search(r"│ fail\s+│ redis-ingress", screen)
    assert "checking nerava-backend" not in screen  # the discovery spinner is gone
    assert "Check: 2 to apply, 0 held, 3 advice (never applied); nothing applied (read-only)." in " ".join(screen.split())
    assert_no_id_broken(terminal, box)


@pytest.mark.parametrize("width", [40, 60, 80, 160, 250])
def test_a_wrapped_command_pastes_as_the_same_command_and_cuts_no_word(width):
    import json

    from runbook.console import shell_words, wrap_command
    from runbook.model import ApiCall

    call = ApiCall("ec2", "authorize_security_group_ingress", {
        "GroupId": "sg-0a1b2c3d4e5f60718",
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [
            {"GroupId": "sg-0f1e2d3c4b5a69788", "Description": "App Runner connector, to cache nerava-redis"}]}],
    })
    command = call.cli("eu-west-1", "on call")
    lines = wrap_command(command, width, "    ")
    pasted = "\n".join(lines).replace(" \\\n", " ")  # what the shell does with a backslash-newline
    words, original = shlex.split(pasted), shlex.split(command)
    assert len(words) == len(original)
    for got, want in zip(words, original):
        assert (json.loads(got) if got.startswith("[") else got) == (json.loads(want) if want.startswith("[") else want)
    for token in ("sg-0a1b2c3d4e5f60718", "sg-0f1e2d3c4b5a69788", "--region eu-west-1", "--profile 'on call'"):
        assert any(token in line for line in lines), (token, lines)
    # only what cannot be cut (one word, an option with its value, a JSON string) runs past the width
    assert all(len(line) <= width or len(shell_words(line.strip().removesuffix(" \\"))) <= 2 for line in lines), lines


def test_ctrl_c_during_a_wait_clears_the_status_line(world, tmp_path):
    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    terminal = Terminal(fix_command("--yes"), sandbox_env(box, tmp_path), columns=160, rows=200)
    terminal.child.expect("waiting for deployment: ")
    terminal.child.sendintr()
    assert terminal.finish() == 130
    screen = terminal.text
    assert "runbook: interrupted" in screen
    assert not re.search(SPINNER, screen), screen
    # the 6379 rule was sent before the wait: the interrupt's line says so, and where its record is
    line = " ".join(screen.split())
    assert "call(s) sent, each answered; journal" in line and "run " in line, line


def test_every_cli_twin_names_region_and_profile_at_the_prompt_as_in_the_report(world):
    import io

    from rich.console import Console

    from tests.helpers import run
    from runbook import render
    from runbook.console import ConsoleReporter

    world("field-report").faults.hang_deployments("nerava-backend")
    report, _, _ = run(fix=False)
    report.profile = "on-call"
    clis = [c["cli"] for s in render.to_document(report)["steps"] for c in s["changes"]]
    clis += [c["undo"]["cli"] for s in render.to_document(report)["steps"] for c in s["changes"] if "undo" in c]
    assert clis and all(cli.endswith(" --region us-east-1 --profile on-call") for cli in clis)

    shown = io.StringIO()
    reporter = ConsoleReporter(Console(file=shown, width=100), region="us-east-1", profile="on-call")
    change = next(c for r in report.results for c in r.finding.changes)
    reporter.proposing("redis-ingress", change)
    text = shown.getvalue()
    assert text.count("--region us-east-1 --profile on-call") == 2  # the call and its undo
    assert "runbook fix apprunner-vpc --service nerava-backend --region us-east-1 --profile on-call" in render.to_text(report)


def test_a_change_whose_outcome_is_unknown_is_never_said_to_be_applied():
    """A call retried after a lost answer may or may not have landed: the console says unknown, as the journal does."""
    import io

    from rich.console import Console

    from runbook.console import ConsoleReporter
    from runbook.model import ApiCall, AppliedChange, Change, Phase

    change = Change(ApiCall("apprunner", "start_deployment", {"ServiceArn": "arn:aws:apprunner:us-east-1:1:service/s/1"}),
                    "redeploy s", Phase.REDEPLOY)
    shown = io.StringIO()
    reporter = ConsoleReporter(Console(file=shown, width=200), region="us-east-1")
    unknown = "unknown: InvalidStateException after 1 retry; an earlier attempt may have landed"
    reporter.applied("deployment", AppliedChange(change, True, unknown))
    reporter.applied("deployment", AppliedChange(change, True, "applied (created sgr-1)"))
    lines = shown.getvalue().splitlines()
    assert lines == [f"  {unknown}", "  applied: applied (created sgr-1)"], lines


def test_with_stderr_redirected_the_question_is_asked_on_the_terminal_and_answered_there(world, tmp_path):
    """`runbook fix … 2>/dev/null` at a terminal: the progress is gone, but the questions are drawn on
    /dev/tty (issue 12), and the answers typed there are the ones applied."""
    box = world("field-report")
    terminal = Terminal(fix_command("--skip", "rds-public-ingress", redirect=" 2>/dev/null"), sandbox_env(box, tmp_path),
                        columns=120)
    asked: list[str] = []
    while (step_id := terminal.prompt()) is not None:
        if asked and asked[-1] == step_id:
            continue  # the same question redrawn with its answer typed in
        asked.append(step_id)
        terminal.child.send("y\r")
    assert terminal.finish() == 0
    assert asked and asked[0] == "redis-ingress" and "rds-public-ingress" not in asked
    screen = terminal.text
    assert not re.search(SPINNER, screen) and "proposes:" not in screen  # stderr went to /dev/null, progress with it
    # the report (stdout, on the terminal) says what the answers did
    assert f"Fix: {len(asked)} applied, 0 declined, 1 skipped" in " ".join(screen.split())
    assert "result: healthy" in screen
    assert box.app_health("nerava-backend")[0] is True
