"""A public rule wider than the port (issue 10 §2): advice under --yes, offered at a terminal as a change
of its own (default No) once the connector has its own rule on every port of ours it serves, with what
else it closes shown before the question. Driven through a real terminal (pexpect)."""

from __future__ import annotations

import os
import re
import sys

import boto3
import pexpect

from tests.helpers import mutating_calls, run, step
from tests.worlds import write_world

RUNBOOK = [sys.executable, "-m", "runbook"]
OFFER_QUESTION = "Also apply this change for step rds-public-ingress"


def shared_open_group(*own_ports: int):
    """The cache lives in the database's group, which admits all traffic from 0.0.0.0/0 and the
    connector on `own_ports` only."""

    def mutate(doc: dict) -> None:
        doc["caches"][0]["security_groups"] = ["db-sg"]
        doc["security_groups"]["db-sg"]["ingress"] = [
            *({"protocol": "tcp", "port": port, "source_group": "connector-sg"} for port in own_ports),
            {"protocol": "-1", "cidr": "0.0.0.0/0"},
        ]

    return mutate


def public_rules(box) -> list[str]:
    rules = boto3.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [box.ids["sg:db-sg"]]}])["SecurityGroupRules"]
    return [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0"]


def spawn_fix(box, tmp_path, *extra):
    env = {**os.environ, **box.env, "XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm"}
    return pexpect.spawn(RUNBOOK[0], [*RUNBOOK[1:], "fix", "apprunner-vpc", "--service", "nerava-backend", "--timeout", "60", *extra],
                         env=env, encoding="utf-8", timeout=60, dimensions=(50, 250))


def test_under_yes_the_wide_rule_is_advice_and_only_the_connectors_own_rule_is_added(world, tmp_path):
    box = world(write_world(tmp_path, "shared-open", shared_open_group(5432)))
    report, _, aws = run(timeout=30)
    assert mutating_calls(aws) == {"ec2:AuthorizeSecurityGroupIngress": 1}  # 6379 for the connector, nothing revoked
    assert len(public_rules(box)) == 1
    public = step(report, "rds-public-ingress").finding
    assert public.status.value == "fail" and report.exit_code == 1
    (advice,) = public.changes
    assert advice.recommendation and advice.offer  # the connector has both ports now: a person would be asked


def test_at_a_terminal_the_wide_rule_is_offered_after_the_connectors_own_rules_and_closed_on_yes(world, tmp_path):
    box = world(write_world(tmp_path, "shared-open", shared_open_group(5432)))
    child = spawn_fix(box, tmp_path)
    # First the connector's own 6379 rule: the wide rule still serves the cache.
    child.expect("redis-ingress.* proposes: allow tcp/6379")
    child.expect("Apply this change for step redis-ingress")
    child.send("y\r")
    child.expect(OFFER_QUESTION)
    shown = child.before
    assert "it closes all of this" in shown
    assert "tcp/5432 of database nerava-db" in shown and "tcp/6379 of cache nerava-redis" in shown
    assert "every protocol and port" in shown
    child.send("y\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert public_rules(box) == []
    # The sandbox's ground truth, re-judged after every call: neither dependency was ever cut off.
    flips = [e for e in box.history() if e.kind == "reachability"]
    assert flips and all(e.data["reachable"] for e in flips), [str(e) for e in flips]


def test_at_a_terminal_the_offer_defaults_to_no_and_declining_it_declines_nothing_else(world, tmp_path):
    box = world(write_world(tmp_path, "shared-open-admitted", shared_open_group(5432, 6379)))
    before = public_rules(box)
    # The report goes to a file: on a busy machine the terminal's redraws may interleave with it on screen.
    child = spawn_fix(box, tmp_path, "--output", str(tmp_path / "report.txt"))
    child.expect(OFFER_QUESTION)
    child.send("n\r")  # an explicit no (a bare Enter is no answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1, child.before
    assert public_rules(box) == before and len(before) == 1
    report = (tmp_path / "report.txt").read_text()
    # Declining the offer declines nothing else: the service is healthy, the declined change is what remains.
    assert "declined changes remain; the service itself is healthy" in report, report[-3000:]
    assert report.count("change (declined at the prompt)") == 1
    assert "change (proposed)" not in report  # the declined change is shown once, with its outcome
