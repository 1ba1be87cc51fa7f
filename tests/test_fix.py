"""The engine end to end against the sandbox: moto and the App Runner emulator over HTTP, boto3's real clients."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.helpers import Refuse, create_failed_field_report, mutating_calls, run, step
from runbook.aws import Aws, ReadOnlyViolation
from runbook.errors import UsageError

REDIS_ONLY = """
name: redis-only
platform: apprunner
steps:
  - id: redis-ingress
    check: sg.ingress-from-connector
    with: {target: cache}
    title: The cache admits the connector on its port
    why: the 6379 fix alone
"""


def cache_rules_from_connector(box) -> list[dict]:
    """Ingress rules on the cache's group (the VPC default) that admit the connector on 6379."""
    ec2 = boto3.client("ec2")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [box.ids["sg:default"]]}])["SecurityGroupRules"]
    connector = box.ids["sg:connector-sg"]
    return [
        r for r in rules
        if (r.get("ReferencedGroupInfo") or {}).get("GroupId") == connector and not r["IsEgress"] and r["FromPort"] <= 6379 <= r["ToPort"]
    ]


def test_four_beats_of_the_6379_fix(world, tmp_path):
    box = world("field-report")
    runbook = tmp_path / "redis-only.yaml"
    runbook.write_text(REDIS_ONLY)

    # 1. the plan shows a change
    plan, _, aws = run(str(runbook), fix=False)
    (change,) = step(plan, "redis-ingress").finding.changes
    assert change.call.operation == "authorize_security_group_ingress"
    assert change.call.params["IpPermissions"][0]["FromPort"] == 6379
    assert not mutating_calls(aws)
    assert cache_rules_from_connector(box) == []

    # 2. apply changes the world
    applied, recorder, aws = run(str(runbook))
    assert applied.healthy and applied.exit_code == 0
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}
    (rule,) = cache_rules_from_connector(box)
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 6379, 6379)
    # shown before it was applied
    kinds = [e[0] for e in recorder.events]
    assert kinds.index("proposing") < kinds.index("applied")

    # 3. the plan shows nothing
    replan, _, _ = run(str(runbook), fix=False)
    assert step(replan, "redis-ingress").finding.status.value == "ok"
    assert not step(replan, "redis-ingress").finding.changes

    # 4. apply changes nothing
    again, recorder, aws = run(str(runbook))
    assert again.healthy and not mutating_calls(aws) and not recorder.of("proposing")


def test_field_report_converges_and_a_second_fix_changes_nothing(world, tmp_path):
    box = world("field-report")
    report, recorder, aws = run(journal_path=tmp_path / "journal.jsonl")
    assert report.healthy, [(r.step.id, r.finding.status, r.finding.summary) for r in report.results]
    assert report.exit_code == 0
    assert step(report, "healthz").finding.status.value == "ok"
    assert box.service_state("nerava-backend")["status"] == "RUNNING"
    # the 6379 rule was added and the public 5432 rule revoked
    calls = mutating_calls(aws)
    assert calls.get("ec2:AuthorizeSecurityGroupIngress") == 1
    assert calls.get("ec2:RevokeSecurityGroupIngress") == 1
    # every applied call was journaled before and after
    entries = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert {e["event"] for e in entries} == {"plan", "call", "result"}
    assert len([e for e in entries if e["event"] == "call"]) == sum(calls.values())

    second, recorder, aws = run()
    assert second.healthy and second.exit_code == 0
    assert not mutating_calls(aws)
    assert not recorder.of("proposing")


def test_declining_leaves_the_world_unchanged_and_exits_1(world):
    box = world("field-report")
    report, recorder, aws = run(confirmer=Refuse())
    assert report.exit_code == 1 and not report.healthy
    assert not mutating_calls(aws)
    assert cache_rules_from_connector(box) == []
    applied = recorder.of("applied")
    assert applied and all(not ok for _, _, _, ok, _ in applied)


def test_read_only_commands_cannot_mutate(world):
    box = world("field-report")
    aws = Aws(read_only=True)
    group = box.ids["sg:connector-sg"]
    with pytest.raises(ReadOnlyViolation, match="AuthorizeSecurityGroupIngress"):
        aws.call("ec2", "authorize_security_group_ingress", GroupId=group,
                 IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    rules = boto3.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert not any(r.get("FromPort") == 1 for r in rules)


def test_unknown_service_lists_the_ones_that_exist(world):
    world("field-report")
    with pytest.raises(UsageError, match=r"no App Runner service named 'nerava-frontend'.*services there: nerava-backend"):
        run(service="nerava-frontend", fix=False)


def test_service_found_by_arn(world):
    box = world("field-report")
    report, _, _ = run(service=box.ids["service:nerava-backend"], fix=False)
    assert report.service == "nerava-backend"


class AddsTheRuleMeanwhile:
    """A colleague fixes it by hand while the engineer reads the prompt."""

    def __init__(self, box):
        self.box = box

    def confirm(self, step_id, change):
        from runbook.confirm import Decision

        if step_id == "redis-ingress":
            boto3.client("ec2").authorize_security_group_ingress(
                GroupId=self.box.ids["sg:default"],
                IpPermissions=[{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                                "UserIdGroupPairs": [{"GroupId": self.box.ids["sg:connector-sg"], "Description": "by hand"}]}],
            )
        return Decision(True, "approved")


def test_drift_guard_replans_instead_of_sending_a_stale_call(world, tmp_path):
    box = world("field-report")
    runbook = tmp_path / "redis-only.yaml"
    runbook.write_text(REDIS_ONLY)
    report, recorder, aws = run(str(runbook), confirmer=AddsTheRuleMeanwhile(box))
    assert report.healthy
    assert "ec2:AuthorizeSecurityGroupIngress" not in mutating_calls(aws)
    (applied,) = recorder.of("applied")
    assert applied[3] is False and "world moved" in applied[4]
    assert len(cache_rules_from_connector(box)) == 1  # the colleague's rule, not a second one of ours


def test_only_and_skip_select_which_steps_may_change_the_world(world):
    box = world("field-report")
    report, _, aws = run(only=frozenset({"rds-public-ingress"}), timeout=30)
    assert mutating_calls(aws) == {"ec2:RevokeSecurityGroupIngress": 1}
    assert cache_rules_from_connector(box) == []  # redis-ingress was not selected
    assert not report.healthy and report.exit_code == 1

    box = world("field-report")
    report, _, aws = run(skip=frozenset({"rds-public-ingress"}), timeout=30)
    assert step(report, "healthz").finding.status.value == "ok"  # the service is fixed ...
    assert step(report, "rds-public-ingress").finding.status.value == "fail"  # ... the public rule left, as asked
    # Healthy, and the only failure left is the one the user skipped: a recovery, exit 0 (issue 12).
    assert report.healthy and report.exit_code == 0 and "ec2:RevokeSecurityGroupIngress" not in mutating_calls(aws)
    assert report.left_by_skip == ("rds-public-ingress",) and report.health_streak == (3, 3)


class Declines:
    """Answers no for the named steps' changes, yes for the rest."""

    def __init__(self, *step_ids):
        self.step_ids, self.asked = set(step_ids), []

    def confirm(self, step_id, change):
        from runbook.confirm import Decision

        self.asked.append((step_id, change.call.operation))
        if step_id in self.step_ids:
            return Decision(False, "declined at the prompt")
        return Decision(True, "approved at the prompt")


def test_a_declined_change_holds_back_only_what_waits_on_it(world, tmp_path):
    box = world(create_failed_field_report(tmp_path))
    confirmer = Declines("rds-public-ingress")
    report, _, aws = run(confirmer=confirmer, timeout=30)
    # the 6379 rule, then the CREATE_FAILED rebuild: declining the public-rule revoke stopped neither
    assert len(cache_rules_from_connector(box)) == 1
    assert mutating_calls(aws).get("apprunner:UpdateService") == 1
    assert step(report, "healthz").finding.status.value == "ok"
    assert [(s, a.change.call.operation) for s, a in report.declined] == [("rds-public-ingress", "revoke_security_group_ingress")]
    assert confirmer.asked.count(("rds-public-ingress", "revoke_security_group_ingress")) == 1  # asked once
    # a problem the user chose to keep is still a problem; the service itself was proven healthy
    assert not report.healthy and report.exit_code == 1
    assert report.stopped == "declined changes remain; the service itself is healthy" and report.health_streak == (3, 3)


def test_declining_a_prerequisite_holds_its_dependents_and_nothing_else(world, tmp_path):
    from runbook import render

    box = world(create_failed_field_report(tmp_path))
    report, recorder, aws = run(confirmer=Declines("redis-ingress"), timeout=30)
    assert cache_rules_from_connector(box) == []
    # rds-public-ingress waits only on rds-ingress (which passes): its revoke went on
    assert mutating_calls(aws).get("ec2:RevokeSecurityGroupIngress") == 1
    # the rebuild waits on redis-ingress: held, never sent, never waited for until the timeout
    assert "apprunner:UpdateService" not in mutating_calls(aws)
    assert "redis-ingress" in step(report, "service-status").held_by
    (declined,) = render.summary(report)["declined_changes"]
    assert declined["step"] == "redis-ingress" and "service-status" in declined["holds"]
    assert "declined changes remain; nothing more can be done without them" == report.stopped
    assert report.exit_code == 1 and report.stats["wall_seconds"] < 25


def test_duplicate_and_not_found_count_as_done(world):
    from runbook.confirm import AssumeYes
    from runbook.engine import Applier
    from runbook.model import ApiCall, Change, Phase
    from runbook.secrets import Scrubber

    from tests.helpers import Recorder

    box = world("field-report")
    group, connector = box.ids["sg:default"], box.ids["sg:connector-sg"]
    # moto matches duplicates on the description too (AWS does not): resend the field report's rule exactly.
    permission = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                  "UserIdGroupPairs": [{"GroupId": connector, "Description": "nerava-backend via VPC connector"}]}
    already = Change(ApiCall("ec2", "authorize_security_group_ingress", {"GroupId": group, "IpPermissions": [permission]}),
                     "the 5432 rule the field report already has", Phase.AUTHORIZE)
    gone = Change(ApiCall("ec2", "revoke_security_group_ingress", {"GroupId": group, "SecurityGroupRuleIds": ["sgr-0000000000000dead"]}),
                  "a rule that does not exist", Phase.REVOKE)
    applier = Applier(Aws(), AssumeYes(), Recorder(), None, Scrubber())
    first = applier.apply("rds-ingress", already)
    second = applier.apply("rds-public-ingress", gone)
    assert first.applied and "InvalidPermission.Duplicate" in first.outcome
    assert second.applied and "InvalidPermission.NotFound" in second.outcome


def test_log_lines_from_before_this_runs_fixes_are_history_once_healthy(world):
    """The field report's CREATE_SERVICE logs Redis timeouts while it waits; the 6379 rule lets that same
    deployment succeed. Its earlier lines are then history, not a warning; a later check still sees them."""
    from runbook import render
    from runbook.confirm import Decision

    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")

    class ReleaseTheDeployment:
        def confirm(self, step_id, change):
            box.faults.clear()  # the deployment in flight finishes (and succeeds, once the rule is in)
            return Decision(True, "approved")

    report, _, _ = run(timeout=30, confirmer=ReleaseTheDeployment())
    assert report.healthy
    logs = step(report, "startup-logs").finding
    assert logs.status.value == "ok" and "kept as history" in logs.summary and "since this run's first fix" in logs.summary
    assert logs.evidence and all(e.source.startswith("history, before this run's fixes: ") for e in logs.evidence)
    assert any("6379" in e.observation for e in logs.evidence)
    assert "history, before this run's fixes" in render.to_text(report)  # shown, though the step passes

    checked, _, _ = run(fix=False)  # a check has no fixes of its own to date the lines by
    assert step(checked, "startup-logs").finding.status.value == "warn"


def test_skipping_a_prerequisite_ends_without_waiting_for_a_health_that_cannot_come(world):
    world("field-report")
    report, _, aws = run(skip=frozenset({"redis-ingress"}), timeout=30)
    assert "ec2:AuthorizeSecurityGroupIngress" not in mutating_calls(aws)
    assert report.exit_code == 1 and not report.timed_out and report.stats["wall_seconds"] < 25
    assert report.left_by_skip == ("redis-ingress",)


def test_a_timeout_ends_with_the_command_that_keeps_waiting(world):
    from runbook import render

    box = world("field-report")
    box.faults.hang_deployments("nerava-backend")
    report, _, _ = run(timeout=3, skip=frozenset({"rds-public-ingress"}))
    assert report.exit_code == 4 and report.timed_out
    lines = {label: (text, paste) for label, text, paste in render.summary_lines(report)}
    assert lines["next:"] == ("re-run to keep waiting:",
                              "runbook fix apprunner-vpc --service nerava-backend --region us-east-1 --skip rds-public-ingress")
    assert lines["result:"][0].startswith("timed out (--timeout 3s) waiting for deployment")
    assert lines["run:"][1].startswith("runbook undo ")


def test_a_rolled_back_deployment_is_redeployed_after_this_run_fixes_its_cause(world, tmp_path):
    """RUNNING on the version before a rolled-back deployment, the cache rule missing: the fix adds the
    rule, then redeploys (the cause of the failure was found), and waits for that deployment."""
    from tests.worlds import service, write_world

    def rolled_back_without_the_cache_rule(doc):
        service(doc).update(operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"},
                                        {"type": "START_DEPLOYMENT", "status": "ROLLBACK_SUCCEEDED"}])
        doc["security_groups"]["cache-sg"].update(ingress=[])

    box = world(write_world(tmp_path, "rolled-back-cache", rolled_back_without_the_cache_rule))
    name = box.scenario.services[0].name
    report, _, aws = run(service=name, timeout=120, healthy_probes=1)
    assert report.healthy and report.exit_code == 0, (report.stopped, [(r.step.id, r.finding.status.value, r.finding.summary) for r in report.results])
    calls = mutating_calls(aws)
    assert calls.get("ec2:AuthorizeSecurityGroupIngress") == 1 and calls.get("apprunner:StartDeployment") == 1, calls
    assert box.service_state(name)["operations"][0]["Status"] == "SUCCEEDED"
