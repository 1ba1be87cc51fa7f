"""The journal as evidence: whole after bad lines and crashes, private, locked, never an instruction to undo;
`history` and `undo` as scripts read them; saved plans pinned to their runbook."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import boto3
import pexpect
import pytest

import subprocess
import sys

from runbook import journal as journal_mod
from runbook import runbook as rb

RUNBOOK = [sys.executable, "-m", "runbook"]


def cli(*args, env=None, input=None, cwd=None, timeout=120):
    return subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, env=env, input=input, cwd=cwd, timeout=timeout)


def sandbox_env(box, tmp_path):
    return {**os.environ, **box.env, "XDG_STATE_HOME": str(tmp_path / "state")}


def _ec2(box):
    return boto3.client("ec2", endpoint_url=box.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _ingress(box, group):
    rules = _ec2(box).describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    return sorted((r["FromPort"], r.get("CidrIpv4") or r.get("ReferencedGroupInfo", {}).get("GroupId")) for r in rules if not r["IsEgress"])


# Lines a journal must survive: valid JSON of the wrong shape, bytes that are not UTF-8, a half line, deep nesting.
BAD_LINES = [b"[1, 2]", b'{"run": 5, "time": "t", "event": "call"}', b'{"run": "r", "time": "t", "event": "call", "seq": "1"}',
             b"\xff\xfe\x00garbage", b'{"run": "r", "ti', b"[" * 5000 + b"]" * 5000]


def test_history_and_undo_survive_bad_lines_say_how_runs_ended_and_an_undo_is_not_repeated(world, tmp_path):
    box = world("field-report")
    env = sandbox_env(box, tmp_path)
    journal = tmp_path / "state" / "runbook" / "journal.jsonl"  # the default path under XDG_STATE_HOME
    before = _ingress(box, box.ids["sg:default"])

    fixed = cli("fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--format", "json", "--timeout", "60", env=env)
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    run_id = report["run_id"]
    assert report["journal"] == str(journal)
    # private: the journal holds the account id and the caller's ARN
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.parent.stat().st_mode) == 0o700

    with journal.open("ab") as handle:
        handle.write(b"\n".join(BAD_LINES) + b"\n")

    history = cli("history", "--format", "json", env=env)
    assert history.returncode == 0, history.stderr
    assert f"skipped {len(BAD_LINES)} line(s)" in history.stderr and "Traceback" not in history.stderr
    (run,) = json.loads(history.stdout)["runs"]
    assert json.loads(history.stdout)["skipped_lines"] == len(BAD_LINES)
    assert run["run"] == run_id and run["outcome"] == "healthy" and run["exit_code"] == 0
    assert (run["runbook"], run["service"], run["region"]) == ("apprunner-vpc", "nerava-backend", "us-east-1")
    assert run["caller"].startswith("arn:aws:")
    assert {"redis-ingress", "rds-public-ingress"} <= set(run["changed_steps"])
    assert run["counts"]["applied"] >= 2 and run["undone_by"] == []

    text = cli("history", env=env)
    header, row = text.stdout.splitlines()
    assert header.split("\t")[:7] == ["run", "started", "runbook", "service", "region", "caller", "outcome"]
    assert row.startswith(run_id + "\t") and "\thealthy\t" in row and "applied" in row

    # At a terminal the warning comes before the first question; declining every change sends nothing.
    child = pexpect.spawn(RUNBOOK[0], [*RUNBOOK[1:], "undo", run_id], env={**env, "TERM": "xterm"}, encoding="utf-8",
                          timeout=60, dimensions=(50, 200))
    child.expect("nerava-backend is healthy now; undoing run")
    while child.expect(["Apply this change", pexpect.EOF]) == 0:
        child.send("n\r")  # an explicit answer: a prompt has no default
    child.close()
    assert child.exitstatus == 1
    assert _ingress(box, box.ids["sg:default"]) != before

    undone = cli("undo", run_id, "--yes", "--format", "json", env=env)
    assert undone.returncode == 0, undone.stderr
    doc = json.loads(undone.stdout)
    assert doc["outcome"] == "undone" and doc["journal"] == str(journal) and doc["run_id"] != run_id
    assert doc["changes"] and all(c["applied"] for c in doc["changes"])
    assert _ingress(box, box.ids["sg:default"]) == before  # the 6379 rule revoked by its id, the public 5432 rule re-created
    # warned before the first change was proposed: the service was healthy and the undo reopens what the run fixed
    warning = undone.stderr.index("nerava-backend is healthy now")
    assert warning < undone.stderr.index("proposes"), undone.stderr
    assert "puts back the state that failed" in undone.stderr and "redis-ingress" in undone.stderr[warning:].splitlines()[0]

    again = cli("undo", run_id, "--yes", env=env)
    assert again.returncode == 0, again.stderr
    assert f"already undone by {doc['run_id']}" in again.stderr and "proposes" not in again.stderr

    runs = {r["run"]: r for r in json.loads(cli("history", "--format", "json", env=env).stdout)["runs"]}
    assert runs[run_id]["undone_by"] == [doc["run_id"]]
    assert runs[doc["run_id"]]["undoes"] == run_id and runs[doc["run_id"]]["outcome"] == "undone"

    # a run that never wrote its end entry was interrupted or crashed
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(line + "\n" for line in journal.read_text(errors="replace").splitlines()
                           if f'"run": "{run_id}"' in line and '"event": "end"' not in line))
    (crashed,) = json.loads(cli("history", "--journal", str(cut), "--format", "json", env=env).stdout)["runs"]
    assert crashed["outcome"] == "interrupted or crashed" and crashed["exit_code"] is None

    nothing = cli("undo", "no-such-run", "--yes", env=env)
    assert nothing.returncode == 2 and "no run 'no-such-run'" in nothing.stderr


def _forged_journal(path: Path, box) -> None:
    """A run as `fix` would journal it, but with inverses no fix ever records."""
    group = box.ids["sg:db-sg"]
    context = {"run": "20261201T000000Z-f0f0f0", "time": "2026-12-01T00:00:00.000+00:00", "runbook": "apprunner-vpc",
               "service": "nerava-backend", "region": "us-east-1"}
    permission = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": box.ids["sg:connector-sg"]}]}
    entries = [
        # an authorize whose "undo" deletes the group
        {"event": "call", "seq": 1, "step": "redis-ingress", "description": "allow tcp/6379",
         "call": {"service": "ec2", "operation": "authorize_security_group_ingress", "params": {"GroupId": group, "IpPermissions": [permission]}},
         "inverse": {"service": "ec2", "operation": "delete_security_group", "params": {"GroupId": group}}},
        {"event": "result", "seq": 1, "outcome": "applied"},
        # a revoke whose recorded body opens the database to another group (fix only revokes public rules)
        {"event": "call", "seq": 2, "step": "rds-public-ingress", "description": "revoke",
         "call": {"service": "ec2", "operation": "revoke_security_group_ingress", "params": {"GroupId": group, "SecurityGroupRuleIds": ["sgr-0123456789abcdef0"]}},
         "inverse": {"service": "ec2", "operation": "authorize_security_group_ingress",
                     "params": {"GroupId": group, "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": box.ids["sg:cache-sg"]}]}]}}},
        {"event": "result", "seq": 2, "outcome": "applied"},
        # a call this tool never sends at all
        {"event": "call", "seq": 3, "step": "x", "description": "x",
         "call": {"service": "ec2", "operation": "create_security_group", "params": {"GroupName": "x", "Description": "x"}},
         "inverse": {"service": "ec2", "operation": "delete_security_group", "params": {"GroupId": group}}},
        {"event": "result", "seq": 3, "outcome": "applied"},
    ]
    path.write_text("".join(json.dumps({**context, **e}) + "\n" for e in entries))


def test_undo_refuses_inverses_it_would_never_send(world, tmp_path):
    box = world("healthy")
    env = sandbox_env(box, tmp_path)
    journal = tmp_path / "forged.jsonl"
    _forged_journal(journal, box)
    groups = sorted(g["GroupId"] for g in _ec2(box).describe_security_groups()["SecurityGroups"])
    rules = _ingress(box, box.ids["sg:db-sg"])

    result = cli("undo", "20261201T000000Z-f0f0f0", "--yes", "--journal", str(journal), env=env)
    assert result.returncode == 1, result.stderr
    assert "refusing to undo ec2 authorize_security_group_ingress (call 1)" in result.stderr
    assert "is not the undo of ec2 authorize_security_group_ingress" in result.stderr
    assert "not a public one" in result.stderr
    assert "create_security_group is not a call runbook sends" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(g["GroupId"] for g in _ec2(box).describe_security_groups()["SecurityGroups"]) == groups
    assert _ingress(box, box.ids["sg:db-sg"]) == rules
    doc = json.loads(cli("undo", "20261201T000000Z-f0f0f0", "--yes", "--journal", str(journal), "--format", "json", env=env).stdout)
    assert len(doc["refused"]) == 3 and doc["changes"] == [] and doc["exit_code"] == 1


def test_a_symlink_at_the_journal_path_is_refused_before_anything_is_sent(world, tmp_path):
    box = world("field-report")
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours\n")
    link = tmp_path / "journal.jsonl"
    link.symlink_to(target)
    before = _ingress(box, box.ids["sg:default"])
    result = cli("fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--journal", str(link), "--timeout", "30", env=sandbox_env(box, tmp_path))
    assert result.returncode == 2, result.stderr
    assert "is a symbolic link: refusing to follow it" in result.stderr.strip().splitlines()[-1]
    assert target.read_text() == "not yours\n"
    assert _ingress(box, box.ids["sg:default"]) == before


def _fix_on_a_small_disk(box, tmp_path, limit):
    """A fix whose files may not grow past `limit` bytes: the file-size limit stands in for a disk that fills up."""
    import resource
    import signal

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**sandbox_env(box, tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    journal = tmp_path / "journal.jsonl"
    result = subprocess.run([*RUNBOOK, "fix", "apprunner-vpc", "-s", "nerava-backend", "--yes", "--journal", str(journal),
                             "--timeout", "30"], capture_output=True, text=True, env=env, preexec_fn=small_disk, timeout=120)
    assert result.returncode == 5, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"runbook: error: I/O error writing the journal {journal}: File too large"
    return journal, env


def test_a_journal_that_fills_up_mid_run_stops_the_run_with_an_io_error_and_stays_whole(world, tmp_path):
    box = world("field-report")
    journal, env = _fix_on_a_small_disk(box, tmp_path, 2500)  # room for the first entries only
    assert journal.stat().st_size > 0
    assert journal.read_bytes().endswith(b"\n")  # the part of a line that fitted was taken back
    history = cli("history", "--journal", str(journal), "--format", "json", env=env)
    assert history.returncode == 0 and "skipped" not in history.stderr, history.stderr
    (run,) = json.loads(history.stdout)["runs"]
    assert run["outcome"] == "interrupted or crashed"


def test_a_journal_path_that_is_not_a_file_is_refused():
    from runbook.errors import UsageError

    with pytest.raises(UsageError, match="is not a regular file"):
        journal_mod.append(Path("/dev/null"), "{}")
    result = cli("history", "--journal", "/dev/zero")  # reads would never end
    assert result.returncode == 2 and "is not a regular file" in result.stderr, result.stderr


def test_history_of_a_directory_is_one_line_exit_2_and_of_a_binary_file_skips_its_lines(tmp_path):
    result = cli("history", "--journal", str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)) * 40)
    result = cli("history", "--journal", str(binary))
    assert result.returncode == 0, result.stderr
    assert "line(s) of" in result.stderr and "no runs recorded" in result.stdout and "Traceback" not in result.stderr


def test_a_torn_last_line_is_terminated_before_the_next_entry(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"run": "a", "time": "t", "event": "end", "outcome": "healthy"}\n{"run": "b", "time": "t", "ev')  # killed mid-write
    record = journal_mod.Journal(path, runbook="apprunner-vpc", service="s", region="us-east-1")
    record.planned([], "us-east-1")
    contents = journal_mod.read(path)
    assert [e["run"] for e in contents.entries] == ["a", record.run_id]
    assert contents.skipped == 1


def test_entries_and_plans_nested_deeper_than_anything_written_are_refused_before_use(tmp_path):
    """900 levels parse, but would overflow whatever recursed into them later (the scrubber, json.dumps)."""
    from runbook import plan as plan_file
    from runbook.errors import UsageError

    deep: dict = {}
    for _ in range(900):
        deep = {"a": deep}
    call = {"service": "ec2", "operation": "authorize_security_group_ingress", "params": deep}
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"run": "r", "time": "t", "event": "call", "seq": 1, "step": "s", "call": call}) + "\n")
    assert (journal_mod.read(path).entries, journal_mod.read(path).skipped) == ([], 1)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format": plan_file.FORMAT, "runbook": "/r.yaml", "runbook_sha256": "0" * 64, "service": "s",
                                "changes": [{"step": "s", "call": call}]}))
    with pytest.raises(UsageError, match="nested too deeply"):
        plan_file.load(plan)


def test_appends_wait_for_the_lock(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text("")
    record = journal_mod.Journal(path, runbook="apprunner-vpc", service="s", region="us-east-1")
    with path.open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another run in the middle of its append
        writer = threading.Thread(target=record.planned, args=([], "us-east-1"))
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive() and path.read_text() == ""
        fcntl.flock(held, fcntl.LOCK_UN)
        writer.join(5)
    assert not writer.is_alive()
    assert [e["run"] for e in journal_mod.read(path).entries] == [record.run_id]


def test_a_saved_plan_pins_its_runbook(world, tmp_path):
    box = world("field-report")
    env = sandbox_env(box, tmp_path)
    made, other = tmp_path / "made", tmp_path / "other"
    made.mkdir()
    other.mkdir()
    shutil.copy(rb.bundled()["apprunner-vpc"], made / "my.yaml")
    (other / "my.yaml").write_text("steps: [")  # another my.yaml, where apply is run from
    plan = made / "plan.json"
    report = made / "report.json"
    dry = cli("fix", "my.yaml", "-s", "nerava-backend", "--dry-run", "--plan-out", "plan.json", "--format", "json",
              "--output", "report.json", env=env, cwd=made)
    assert dry.returncode == 1, dry.stderr
    doc = json.loads(plan.read_text())
    assert doc["runbook"] == str(made / "my.yaml") and len(doc["runbook_sha256"]) == 64
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600 and stat.S_IMODE(report.stat().st_mode) == 0o600

    # From another directory the plan's own runbook is loaded, not ./my.yaml (it gets as far as asking for --yes).
    elsewhere = cli("apply", str(plan), env=env, input="", cwd=other)
    assert elsewhere.returncode == 2 and "no terminal to confirm on" in elsewhere.stderr, elsewhere.stderr

    with (made / "my.yaml").open("a") as handle:
        handle.write("# edited after the plan was reviewed\n")
    before = _ingress(box, box.ids["sg:default"])
    edited = cli("apply", str(plan), "--yes", env=env)
    assert edited.returncode == 2, edited.stderr
    assert "changed since the plan was made" in edited.stderr and edited.stderr.strip().count("\n") == 0
    assert _ingress(box, box.ids["sg:default"]) == before

    from runbook import plan as plan_file
    from runbook.errors import UsageError

    for broken, message in ((dict(doc, region=5), "region: not a string"), (dict(doc, format="runbook-plan/1"), "make a new plan"),
                            ({k: v for k, v in doc.items() if k != "runbook_sha256"}, "runbook_sha256: missing")):
        with pytest.raises(UsageError, match=message):
            plan_file.validate(broken, "plan.json")
    plan.write_text("[" * 100_000)
    with pytest.raises(UsageError, match="cannot read it: nested too deeply"):
        plan_file.load(plan)


def test_the_demo_says_its_journal_is_temporary(tmp_path):
    """Said first, before the sandbox starts (the demo is stopped there: the rest is the sandbox's to test)."""
    demo = subprocess.Popen([*RUNBOOK, "demo", "--scenario", "healthy", "--yes"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TMPDIR": str(tmp_path)})
    try:
        line = demo.stderr.readline()
    finally:
        demo.kill()
        demo.wait(10)
    assert line.startswith(f"the demo's journal is temporary: {tmp_path}/runbook-demo-"), line
    assert line.rstrip().endswith("journal.jsonl is deleted with the sandbox when the demo ends"), line


def test_every_fix_a_check_proposes_has_its_undo_accepted():
    """The inverse table covers each change the checks send, as they record it: a new kind of fix
    without an entry there would leave its runs impossible to undo."""
    from dataclasses import replace

    from runbook import inverses
    from runbook.checks.apprunner import health_check_config, service_status
    from runbook.checks.network import vpc_dns
    from runbook.checks.security_groups import ingress_from_workload as ingress_from_connector
    from runbook.checks.security_groups import no_public_ingress
    from runbook.checks.security_groups import workload_egress as connector_egress
    from runbook.probe import ProbeResult
    from tests.topologies import CONNECTOR_SG, DB_SG, SERVICE, VPC, apprunner, rule, topology

    APP = {"server": "envoy", "x-envoy-upstream-service-time": "3"}

    base = topology()
    config = {"Protocol": "HTTP", "Path": "/", "Interval": 5, "Timeout": 2, "HealthyThreshold": 1, "UnhealthyThreshold": 5}
    findings = [
        ingress_from_connector(base, {"target": "cache"}),
        no_public_ingress(topology(db_rules=[rule(DB_SG, "sgr-0a1b2c3d4e5f60718", ports=(5432, 5432), cidr="0.0.0.0/0")]), {"target": "database"}),
        no_public_ingress(topology(db_rules=[rule(DB_SG, "sgr-0a1b2c3d4e5f60719", ports=(5432, 5432), cidr6="::/0")]), {"target": "database"}),
        connector_egress(topology(connector_rules=[rule(CONNECTOR_SG, "sgr-0e", egress=True, ports=(443, 443), cidr="0.0.0.0/0")]), {}),
        vpc_dns(replace(base, vpcs={VPC: {"EnableDnsSupport": False, "EnableDnsHostnames": False}}), {}),
        service_status(apprunner(base, service={**SERVICE, "Status": "PAUSED"}), {}),
        # The app answers 404 on the configured path and 200 on the runbook's: the only world that proposes a new path.
        health_check_config(replace(apprunner(base, service={**SERVICE, "HealthCheckConfiguration": config}), health_path="/",
                                    probe=ProbeResult("http://127.0.0.1:1/", 404, dict(APP), "{}"),
                                    alternate_probes=[ProbeResult("http://127.0.0.1:1/healthz", 200, dict(APP), "{}")]),
                            {"health_path": "/healthz"}),
    ]
    changes = [c for f in findings for c in f.changes if not c.recommendation]
    assert {c.call.operation for c in changes} == {"authorize_security_group_ingress", "revoke_security_group_ingress",
                                                     "authorize_security_group_egress", "modify_vpc_attribute", "resume_service",
                                                     "update_service"}
    for change in changes:
        assert inverses.undo_of(change.call.as_dict(), change.inverse.as_dict()) == change.inverse, change
        if change.call.operation.startswith("authorize"):  # as the applier records it once AWS named the created rule
            by_id = {"service": "ec2", "operation": change.inverse.operation,
                     "params": {"GroupId": change.call.params["GroupId"], "SecurityGroupRuleIds": ["sgr-0123456789abcdef0"]}}
            assert inverses.undo_of(change.call.as_dict(), by_id).as_dict() == by_id
            with pytest.raises(inverses.Refused):  # more rules than the call could have created
                inverses.undo_of(change.call.as_dict(), {**by_id, "params": {**by_id["params"], "SecurityGroupRuleIds": ["sgr-01", "sgr-02"]}})
    rebuild = service_status(apprunner(base, service={**SERVICE, "Status": "CREATE_FAILED", "SourceConfiguration": {}}), {}).changes[0]
    assert inverses.undo_of(rebuild.call.as_dict(), None) is None
