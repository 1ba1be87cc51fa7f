"""history(): every change and what it did to each dependency, in order."""

from __future__ import annotations


def _database_flips(sb):
    return [e.data for e in sb.history()
            if e.kind == "reachability" and e.data["service"] == "nerava-backend" and e.data["label"] == "database"]


def _swap_db_rule_to_cidr(sb, authorize_first: bool):
    """Replace db-sg's rule naming the connector group by one naming the connector subnets' CIDR."""
    ec2 = sb.client("ec2")
    sg = sb.ids["sg:db-sg"]
    rule_ids = [r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"] if not r["IsEgress"]]

    def authorize():
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/22"}]}])

    def revoke():
        ec2.revoke_security_group_ingress(GroupId=sg, SecurityGroupRuleIds=rule_ids)

    for step in ((authorize, revoke) if authorize_first else (revoke, authorize)):
        step()


def test_authorize_before_revoke_never_loses_the_database(load):
    sb = load("healthy")
    _swap_db_rule_to_cidr(sb, authorize_first=True)
    flips = _database_flips(sb)
    assert [f["reachable"] for f in flips] == [True]  # only the baseline at load
    calls = [e.data["action"] for e in sb.history() if e.kind == "aws-call"]
    assert calls == ["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"]


def test_revoke_before_authorize_shows_the_outage(load):
    sb = load("healthy")
    _swap_db_rule_to_cidr(sb, authorize_first=False)
    flips = _database_flips(sb)
    assert [(f["reachable"], f["cause"]) for f in flips] == [
        (True, "load"),
        (False, "ec2:RevokeSecurityGroupIngress"),
        (True, "ec2:AuthorizeSecurityGroupIngress"),
    ]
    assert flips[1]["reasons"][0].startswith("no ingress on " + sb.ids["sg:db-sg"])


def test_history_restarts_at_each_load_and_reads_are_not_recorded(load):
    sb = load("healthy")
    sb.client("ec2").describe_security_groups()
    sb.client("apprunner").list_services()
    kinds = [e.kind for e in sb.history()]
    assert kinds == ["load", "reachability", "reachability"]
    assert str(sb.history()[0]).split(" ", 1)[1].startswith("load: scenario=healthy")


def test_a_second_sandbox_in_the_process_stops_the_first_ones_timers(load):
    """moto's state is process-wide: loading one Sandbox wipes another's world, so the
    other's pending operations must not fire into the new world."""
    from runbook_sandbox import Sandbox, load_scenario

    first = load("field-report")  # CREATE_SERVICE in flight, its timer armed
    with Sandbox(deploy_seconds=0.2) as second:
        second.load(load_scenario("healthy"))
        assert first.scenario is None
        import time

        time.sleep(1.0)  # past the first sandbox's deployment time
        groups = [g["logGroupName"] for g in second.client("logs").describe_log_groups()["logGroups"]]
        assert all(second.ids["service-id:nerava-backend"] in g for g in groups), groups
        assert [e.kind for e in first.history() if e.kind == "operation-finished"] == []
    assert load("healthy").app_health("nerava-backend") == (True, [])
