"""The `runbook` command as a user runs it: separate processes, real terminals, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.helpers import DEPLOY_SECONDS

RUNBOOK = [sys.executable, "-m", "runbook"]


def cli(*args, env=None, input=None, timeout=120):
    return subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, env=env, input=input, timeout=timeout)


def sandbox_env(box, tmp_path):
    return {**os.environ, **box.env, "XDG_STATE_HOME": str(tmp_path / "state")}


def test_fix_yes_end_to_end_against_runbook_sandbox_process(tmp_path):
    env_file = tmp_path / "sandbox.env"
    server = subprocess.Popen(
        [*RUNBOOK, "sandbox", "--scenario", "field-report", "--env-file", str(env_file), "--deploy-seconds", str(DEPLOY_SECONDS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "sandbox never became ready"
            time.sleep(0.1)
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if line.startswith("export ")
        )
        assert {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_APPRUNNER", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID"} <= set(exports)
        env = {**os.environ, **{k: v.strip("'\"") for k, v in exports.items()}, "XDG_STATE_HOME": str(tmp_path / "state")}
        result = cli("fix", "apprunner-vpc", "--service", "nerava-backend", "--yes", "--format", "json", env=env)
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["healthy"] is True
        steps = {s["id"]: s for s in doc["steps"]}
        assert steps["healthz"]["status"] == "ok"
        applied = [c for c in steps["redis-ingress"]["changes"] if c["applied"]]
        assert applied and applied[0]["cli"].startswith("aws ec2 authorize-security-group-ingress")
        # each proposed call was shown (on stderr) before it was applied
        assert "aws ec2 authorize-security-group-ingress" in result.stderr
        assert (tmp_path / "state" / "runbook" / "journal.jsonl").exists()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    err = server.stderr.read()
    assert server.returncode == 0, err
    # what the other shell needs: the services of this world, and the file to source
    assert "ready; services: nerava-backend" in err and f"in another shell: source {env_file}" in err


def test_without_terminal_and_without_yes_prints_plan_and_exits_1(world, tmp_path):
    box = world("field-report")
    result = cli("fix", "apprunner-vpc", "--service", "nerava-backend", "--format", "json", env=sandbox_env(box, tmp_path), input="")
    assert result.returncode == 1, result.stderr
    assert "pass --yes" in result.stderr
    doc = json.loads(result.stdout)
    proposed = [c for s in doc["steps"] for c in s["changes"]]
    assert proposed and not any(c["applied"] for c in proposed)


def test_json_document_follows_the_contract_and_hides_secrets(world, tmp_path):
    box = world("field-report")
    result = cli("check", "apprunner-vpc", "--service", "nerava-backend", "--format", "json", env=sandbox_env(box, tmp_path))
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert {"runbook", "service", "healthy", "steps"} <= set(doc)
    for s in doc["steps"]:
        assert {"id", "title", "status", "summary", "evidence", "changes"} <= set(s)
        assert s["status"] in {"ok", "fail", "warn", "skipped", "error"}
        for c in s["changes"]:
            assert {"service", "operation", "params", "cli", "applied"} <= set(c)
    assert "S3cr3t" not in result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_other_formats_render(world, tmp_path, fmt):
    box = world("field-report")
    out = tmp_path / f"report.{fmt}"
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", "--format", fmt, "--output", str(out), env=sandbox_env(box, tmp_path))
    assert result.returncode == 1, result.stderr
    text = out.read_text()
    assert "redis-ingress" in text and "authorize-security-group-ingress" in text


def _spawn_fix(box, tmp_path):
    env = sandbox_env(box, tmp_path)
    env["TERM"] = "xterm"
    return pexpect.spawn(RUNBOOK[0], [*RUNBOOK[1:], "fix", "apprunner-vpc", "--service", "nerava-backend", "--timeout", "60"],
                         env=env, encoding="utf-8", timeout=60, dimensions=(50, 200))


def test_interactive_no_leaves_world_unchanged(world, tmp_path):
    box = world("field-report")
    before = box.app_health("nerava-backend")
    child = _spawn_fix(box, tmp_path)
    declined = 0
    while child.expect(["Apply this change", pexpect.EOF]) == 0:  # a decline holds back only its dependents
        child.send("n\r")
        declined += 1
    child.close()
    assert declined >= 2 and child.exitstatus == 1
    assert box.app_health("nerava-backend") == before
    assert before[0] is False


def test_interactive_yes_fixes_it(world, tmp_path):
    box = world("field-report")
    child = _spawn_fix(box, tmp_path)
    answered = 0
    while True:
        index = child.expect(["Apply this change", pexpect.EOF])
        if index == 1:
            break
        child.send("y\r")
        answered += 1
    child.close()
    assert answered >= 1
    assert child.exitstatus == 0, child.before
    assert box.app_health("nerava-backend")[0] is True


def test_bad_usage_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [")
    result = cli("show", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_endpoint_down_is_exit_3(tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "1"}
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", env=env)
    assert result.returncode == 3
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr


def test_saved_plan_applies_as_reviewed_and_a_stale_plan_is_refused(world, tmp_path):
    box = world("field-report")
    env = sandbox_env(box, tmp_path)
    plan = tmp_path / "plan.json"
    dry = cli("fix", "apprunner-vpc", "-s", "nerava-backend", "--dry-run", "--plan-out", str(plan), env=env)
    assert dry.returncode == 1, dry.stderr
    doc = json.loads(plan.read_text())
    operations = sorted(c["call"]["operation"] for c in doc["changes"])
    assert operations == ["authorize_security_group_ingress", "revoke_security_group_ingress"]
    assert "S3cr3t" not in plan.read_text()

    applied = cli("apply", str(plan), "--yes", "--format", "json", "--timeout", "60", env=env)
    result = json.loads(applied.stdout)
    redis = next(s for s in result["steps"] if s["id"] == "redis-ingress")
    assert redis["status"] == "ok" and any(c["applied"] for c in redis["changes"])
    # The CREATE_SERVICE of the field report failed meanwhile: its update_service was never reviewed.
    assert applied.returncode == 1, applied.stderr
    assert result["stopped"] == "sent 2 of the plan's 2 change(s); the plan holds nothing more to send; what remains needs a new plan"
    assert f"journal: {tmp_path / 'state'}" in applied.stderr
    assert result["journal"] == str(tmp_path / "state" / "runbook" / "journal.jsonl") and result["run_id"] in applied.stderr
    assert result["summary"]["mode"] == "apply" and result["summary"]["applied"] == 2 and result["summary"]["run"]
    status = next(s for s in result["steps"] if s["id"] == "service-status")
    assert status["status"] == "fail" and not any(c["applied"] for c in status["changes"])

    # The same plan again: the world no longer calls for it.
    stale = cli("apply", str(plan), "--yes", env=env)
    assert stale.returncode == 1
    assert "refusing it: redis-ingress no longer proposes authorize_security_group_ingress" in stale.stderr
    assert "Traceback" not in stale.stderr


def test_secrets_never_appear_in_anything_the_tool_writes(world, tmp_path):
    """A password in DATABASE_URL and an auth token, through a fix that resends the whole environment."""
    import yaml

    from runbook_sandbox.scenario import SCENARIO_DIR

    doc = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text())
    password, token = "S3cr3t-pw", "tok-9f8e7d6c5b4a"
    svc = doc["services"][0]
    svc["env"]["REDIS_AUTH_TOKEN"] = token
    svc["env"]["REDIS_URL"] = f"redis://:{token}@${{cache.nerava-redis.address}}:${{cache.nerava-redis.port}}/0"
    svc.update(status="CREATE_FAILED", operations=[{"type": "CREATE_SERVICE", "status": "FAILED"}])
    path = tmp_path / "secrets.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    box = world(str(path))
    env = sandbox_env(box, tmp_path)
    journal = tmp_path / "journal.jsonl"
    written = []
    for fmt in ("json", "text", "markdown"):
        out = tmp_path / f"out.{fmt}"
        result = cli("--debug", "fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--format", fmt, "--output", str(out),
                     "--journal", str(journal), "--timeout", "60", env=env)
        written += [result.stdout, result.stderr, out.read_text()]
        if fmt == "json":
            doc_out = json.loads(out.read_text())
            rebuilt = [c for s in doc_out["steps"] for c in s["changes"] if c["operation"] == "update_service"]
            assert rebuilt and rebuilt[0]["applied"], doc_out["stopped"]
    written.append(journal.read_text())
    written.append(cli("history", "--journal", str(journal)).stdout)
    everything = "\n".join(written)
    assert "***" in everything
    assert password not in everything and token not in everything
    # and the service really got its secrets back: the rebuild resent the real values
    assert box.service_state("nerava-backend")["env"]["REDIS_AUTH_TOKEN"] == token


def test_unknown_profile_is_one_line_exit_2_and_profile_beats_aws_profile(tmp_path):
    config = tmp_path / "config"
    config.write_text("[profile good]\nregion = us-east-1\naws_access_key_id = x\naws_secret_access_key = y\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_ENDPOINT_URL="http://127.0.0.1:9",
               AWS_MAX_ATTEMPTS="1", AWS_EC2_METADATA_DISABLED="true")
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", "--profile", "missing", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "runbook: error: AWS profile 'missing' not found in your AWS config", result.stderr
    # --profile wins over a stale AWS_PROFILE: the run gets as far as the (closed) endpoint.
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", "--profile", "good", env={**env, "AWS_PROFILE": "missing"})
    assert result.returncode == 3 and "cannot reach" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_missing_credentials_is_one_line_exit_3(world, tmp_path):
    box = world("field-report")
    env = {k: v for k, v in sandbox_env(box, tmp_path).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    result = cli("check", "apprunner-vpc", "-s", "nerava-backend", env=env)
    assert result.returncode == 3, result.stderr
    assert "no AWS credentials found" in result.stderr and "Traceback" not in result.stderr


def test_unknown_service_exit_2_lists_services(world, tmp_path):
    box = world("field-report")
    result = cli("check", "apprunner-vpc", "-s", "nerava-api", env=sandbox_env(box, tmp_path))
    assert result.returncode == 2
    assert "services there: nerava-backend" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_ctrl_c_at_the_prompt_exits_130_with_a_complete_journal(world, tmp_path):
    box = world("field-report")
    child = _spawn_fix(box, tmp_path)
    child.expect("Apply this change")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "runbook: interrupted" in child.before
    assert "journal of what was sent" not in child.before  # nothing was sent (issue 12)
    journal = tmp_path / "state" / "runbook" / "journal.jsonl"
    # nothing was sent, so nothing is journaled as sent-but-unanswered
    entries = [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    calls = {e["seq"] for e in entries if e["event"] == "call"}
    results = {e["seq"] for e in entries if e["event"] == "result"}
    assert calls == results


def test_demo_of_a_scenario_without_a_service_is_exit_2(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\nregion: us-east-1\nvpcs: {main: {cidr: 10.0.0.0/16, subnets: {a: {cidr: 10.0.1.0/24, az: us-east-1a}}}}\n")
    result = cli("demo", "--scenario", str(bare), "--yes")
    assert result.returncode == 2 and "needs a service to fix" in result.stderr and "Traceback" not in result.stderr
