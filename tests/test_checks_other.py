"""The non-security-group checks on hand-made snapshots."""

from dataclasses import replace

import pytest

from runbook.checks.apprunner import deployment, health_check_config, service_status, vpc_connector
from runbook.checks.endpoints import env_endpoints
from runbook.checks.http import healthz
from runbook.checks.logs import startup_logs
from runbook.checks.network import nacl, nat_egress, same_vpc, vpc_dns
from runbook.model import Phase, Status
from runbook.probe import ProbeResult, service_url
from tests.topologies import VPC, topology

ENV = {"database_url_var": "DATABASE_URL", "redis_url_var": "REDIS_URL"}


def with_service(operations=(), **fields):
    return topology(service={**topology().workload.payload.service, **fields}, operations=operations)


def op(status, type_="START_DEPLOYMENT"):
    return {"Id": "op1", "Type": type_, "Status": status}


def test_deployment_in_flight_is_waited_for():
    finding = deployment(with_service(Status="OPERATION_IN_PROGRESS", operations=[op("IN_PROGRESS", "CREATE_SERVICE")]), {})
    assert finding.status is Status.FAIL and finding.waits_for == "deployment" and not finding.changes


def test_maintenance_is_a_warning_that_waits():
    finding = deployment(with_service(Status="OPERATION_IN_PROGRESS", operations=[op("SUCCEEDED")]), {})
    assert finding.status is Status.WARN and "maintenance" in finding.summary and finding.waits_for == "deployment"


@pytest.mark.parametrize("status", ["FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED"])
def test_failed_deployment_is_redeployed_once_a_cause_was_found(status):
    finding = deployment(topology(operations=[op(status)], broken_this_run=frozenset({"redis-ingress"})), {})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert change.call.operation == "start_deployment" and change.phase is Phase.REDEPLOY and not change.recommendation
    assert any("redis-ingress" in e.observation for e in finding.evidence)


@pytest.mark.parametrize("status", ["FAILED", "ROLLBACK_SUCCEEDED"])
def test_a_rolled_back_deployment_with_no_cause_found_is_advice(status):
    """RUNNING on the version before the failed one, and no step it waits on broken: a redeploy would
    most likely fail the same way, so it is advice (with its CLI twin), never sent."""
    finding = deployment(topology(operations=[op(status)]), {})
    assert finding.status is Status.WARN and "RUNNING on the version before it" in finding.summary
    (change,) = finding.changes
    assert change.call.operation == "start_deployment" and change.recommendation and not change.offer


def test_a_failed_rollback_is_redeployed_whatever_was_found():
    finding = deployment(topology(operations=[op("ROLLBACK_FAILED")]), {})
    assert finding.status is Status.FAIL and not finding.changes[0].recommendation


def test_create_failed_is_rebuilt_with_the_whole_source_configuration():
    source = {"ImageRepository": {"ImageIdentifier": "img", "ImageRepositoryType": "ECR_PUBLIC",
                                  "ImageConfiguration": {"Port": "8000", "RuntimeEnvironmentVariables": {"A": "1"}}}}
    top = with_service(Status="CREATE_FAILED", SourceConfiguration=source)
    (change,) = service_status(top, {}).changes
    assert change.call.operation == "update_service"
    assert change.call.params["SourceConfiguration"] == source  # nothing wiped
    assert deployment(top, {}).status is Status.SKIPPED


def test_paused_is_resumed_and_delete_failed_has_no_fix():
    (change,) = service_status(with_service(Status="PAUSED"), {}).changes
    assert change.call.operation == "resume_service" and change.inverse.operation == "pause_service"
    finding = service_status(with_service(Status="DELETE_FAILED"), {})
    assert finding.status is Status.FAIL and not finding.changes


def test_default_egress_fails_vpc_connector():
    top = with_service(NetworkConfiguration={"EgressConfiguration": {"EgressType": "DEFAULT"}})
    assert vpc_connector(top, {}).status is Status.FAIL
    assert vpc_connector(topology(), {}).status is Status.OK


APP = {"server": "envoy", "x-envoy-upstream-service-time": "2"}
HEALTH_CONFIG = {"Protocol": "HTTP", "Path": "/", "Interval": 5, "Timeout": 2, "HealthyThreshold": 1, "UnhealthyThreshold": 5}


def _answer(path, status, headers=APP):
    return ProbeResult(f"http://127.0.0.1:1{path}", status, dict(headers), "{}")


def test_health_check_on_a_failing_path_resends_whole_block_only_for_a_path_that_answers():
    """The app answers 404 on the configured path and 200 on the runbook's: that path is proposed,
    the whole block resent. Without a 200 elsewhere, nothing is proposed."""
    failing = with_service(HealthCheckConfiguration=HEALTH_CONFIG)
    probed = replace(failing, probe=_answer("/", 404), health_path="/",
                     alternate_probes=[_answer("/healthz", 200), _answer("/v1/healthz", 404)])
    finding = health_check_config(probed, {"health_path": "/healthz"})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert not change.recommendation
    assert change.call.params["HealthCheckConfiguration"] == {**HEALTH_CONFIG, "Path": "/healthz"}
    assert set(change.call.params) == {"ServiceArn", "HealthCheckConfiguration"}
    assert change.inverse.params["HealthCheckConfiguration"] == HEALTH_CONFIG
    assert any("HTTP 404" in e.observation for e in finding.evidence) and any("HTTP 200" in e.observation for e in finding.evidence)

    # 200 only from envoy itself is no answer from the app: nothing proposed.
    nowhere = replace(probed, alternate_probes=[_answer("/healthz", 404), _answer("/health", 200, {"server": "envoy"})])
    finding = health_check_config(nowhere, {"health_path": "/healthz"})
    assert finding.status is Status.FAIL and not finding.changes


def test_a_health_check_path_that_answers_200_is_right_whatever_the_runbook_says():
    config = {**HEALTH_CONFIG, "Path": "/health"}
    working = replace(with_service(HealthCheckConfiguration=config), probe=_answer("/health", 200), health_path="/health")
    finding = health_check_config(working, {"health_path": "/healthz"})
    assert finding.status is Status.OK and not finding.changes and "/health" in finding.summary
    assert healthz(working, {"health_path": "/healthz"}).summary == "/health answered 200 from the application"


def test_without_an_answer_from_the_app_a_health_check_path_is_never_changed():
    unprobed = with_service(HealthCheckConfiguration=HEALTH_CONFIG)
    proxy_only = replace(unprobed, probe=_answer("/", 404, {"server": "envoy"}), health_path="/")
    for top in (unprobed, proxy_only):
        finding = health_check_config(top, {"health_path": "/healthz"})
        assert finding.status is Status.WARN
        assert finding.changes and all(c.recommendation and not c.offer for c in finding.changes)
    same = with_service(HealthCheckConfiguration={**HEALTH_CONFIG, "Path": "/healthz"})
    assert health_check_config(same, {"health_path": "/healthz"}).status is Status.OK


def test_a_tcp_health_check_is_app_runners_default_and_never_changed():
    for probe in (None, _answer("/healthz", 200), _answer("/healthz", 404, {"server": "envoy"})):
        top = replace(with_service(HealthCheckConfiguration={"Protocol": "TCP"}), probe=probe)
        finding = health_check_config(top, {"health_path": "/healthz"})
        assert finding.status is Status.OK and not finding.changes, finding


def test_env_endpoints_unknown_host_and_tls():
    base = topology()
    no_cache = env_endpoints(replace(base, targets={"database": base.targets["database"]}), ENV)
    assert no_cache.status is Status.OK and any("REDIS_URL is not set" in e.observation for e in no_cache.evidence)
    unknown = replace(base.targets["database"], resource_id=None, host="old-db.example.com")
    assert "old-db.example.com" in env_endpoints(replace(base, targets={**base.targets, "database": unknown}), ENV).summary
    tls = replace(base.targets["cache"], transit_encryption=True)
    finding = env_endpoints(replace(base, targets={**base.targets, "cache": tls}), ENV)
    assert finding.status is Status.FAIL and "rediss://" in finding.summary
    assert any("scheme redis://" in e.observation and "TransitEncryptionEnabled=True" in e.observation for e in finding.evidence)
    plain = replace(base.targets["cache"], scheme="rediss", transit_encryption=False)
    finding = env_endpoints(replace(base, targets={**base.targets, "cache": plain}), ENV)
    assert finding.status is Status.FAIL and "TLS handshake fails" in finding.summary
    assert any("scheme rediss://" in e.observation and "TransitEncryptionEnabled=False" in e.observation for e in finding.evidence)
    both = replace(base.targets["cache"], scheme="rediss", transit_encryption=True)
    assert env_endpoints(replace(base, targets={**base.targets, "cache": both}), ENV).status is Status.OK
    migrating = replace(base.targets["cache"], transit_encryption=True, resource={"TransitEncryptionMode": "preferred"})
    assert env_endpoints(replace(base, targets={**base.targets, "cache": migrating}), ENV).status is Status.OK
    valkey = replace(base.targets["cache"], scheme="valkeys", transit_encryption=False)
    assert "use valkey://" in env_endpoints(replace(base, targets={**base.targets, "cache": valkey}), ENV).summary
    assert env_endpoints(base, ENV).status is Status.OK
    other = replace(base.targets["database"], vpc_id="vpc-other")
    assert "another VPC" in env_endpoints(replace(base, targets={**base.targets, "database": other}), ENV).summary


def test_same_vpc():
    base = topology()
    assert same_vpc(base, {}).status is Status.OK
    other = replace(base.targets["cache"], vpc_id="vpc-other")
    assert same_vpc(replace(base, targets={**base.targets, "cache": other}), {}).status is Status.FAIL


def _tables(target):
    return [{"RouteTableId": "rtb-1", "VpcId": VPC, "Associations": [{"Main": True}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "State": "active", **target}]}]


def _nat_world(nat=None, nat_subnet_route=None):
    """Connector subnets (main table) -> nat-1, which sits in subnet-pub with its own table."""
    nat = {"NatGatewayId": "nat-1", "State": "available", "ConnectivityType": "public", "SubnetId": "subnet-pub",
           "VpcId": VPC, **(nat or {})}
    public = {"RouteTableId": "rtb-pub", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-pub"}],
              "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "State": "active", **(nat_subnet_route or {"GatewayId": "igw-1"})}]}
    return replace(topology(), route_tables=_tables({"NatGatewayId": "nat-1"}) + [public], nat_gateways={"nat-1": nat})


def test_nat_routes():
    assert nat_egress(_nat_world(), {}).status is Status.OK
    # A connector in public subnets, or with no working NAT: the app's internet calls fail, if it makes any.
    # No API shows whether it does, so a warning, never a failure.
    assert nat_egress(replace(topology(), route_tables=_tables({"GatewayId": "igw-1"})), {}).status is Status.WARN
    assert nat_egress(replace(topology(), route_tables=_tables({"NatGatewayId": "nat-1", "State": "blackhole"})), {}).status is Status.WARN
    # A transit gateway may well lead to a central egress VPC: not followed, and not called broken.
    tgw = nat_egress(replace(topology(), route_tables=_tables({"TransitGatewayId": "tgw-1"})), {})
    assert tgw.status is Status.WARN and "not followed" in tgw.summary and "no working route" not in tgw.summary


@pytest.mark.parametrize("nat, route, why", [
    ({"State": "failed"}, None, "nat-1 is failed"),
    ({"State": "pending"}, None, "nat-1 is pending"),
    ({"ConnectivityType": "private"}, None, "private NAT gateway"),
    (None, {"NatGatewayId": "nat-2"}, "does not route 0.0.0.0/0 to an internet gateway"),
    (None, {"GatewayId": "igw-1", "State": "blackhole"}, "does not route 0.0.0.0/0 to an internet gateway"),
])
def test_a_nat_route_must_lead_to_the_internet(nat, route, why):
    finding = nat_egress(_nat_world(nat, route), {})
    assert finding.status is Status.WARN and why in finding.summary and not finding.changes
    (seen,) = [e for e in finding.evidence if e.source.startswith("ec2 describe_nat_gateways")]
    assert "nat-1" in seen.observation and "subnet-pub" in seen.observation
    missing = replace(_nat_world(), nat_gateways={})
    assert nat_egress(missing, {}).status is Status.WARN


def test_a_regional_nat_gateway_is_followed_through_its_own_route_table():
    regional = {"AvailabilityMode": "regional", "SubnetId": None, "RouteTableId": "rtb-pub"}
    finding = nat_egress(_nat_world(regional), {})
    assert finding.status is Status.OK and any("AvailabilityMode=regional" in e.observation and "igw-1" in e.observation
                                               for e in finding.evidence)
    assert nat_egress(_nat_world({**regional, "State": "deleting"}), {}).status is Status.WARN
    unread = nat_egress(_nat_world({**regional, "RouteTableId": "rtb-elsewhere"}), {})
    assert unread.status is Status.WARN and "not followed" in unread.summary


def test_vpc_dns_support_off_fails_and_proposes_turning_it_on():
    top = replace(topology(), vpcs={VPC: {"EnableDnsSupport": False, "EnableDnsHostnames": True}})
    finding = vpc_dns(top, {})
    assert finding.status is Status.FAIL
    (change,) = finding.changes
    assert change.call.params == {"VpcId": VPC, "EnableDnsSupport": {"Value": True}} and not change.recommendation
    assert change.inverse.params == {"VpcId": VPC, "EnableDnsSupport": {"Value": False}}


def test_vpc_dns_hostnames_off_alone_is_advice_never_a_fix():
    """RDS and ElastiCache names resolve through the Amazon DNS server with DNS support alone:
    a VPC with host names off is not broken for this service, so nothing is sent."""
    top = replace(topology(), vpcs={VPC: {"EnableDnsSupport": True, "EnableDnsHostnames": False}})
    finding = vpc_dns(top, {})
    assert finding.status is Status.WARN and "still resolve" in finding.summary
    (change,) = finding.changes
    assert change.recommendation and change.call.params == {"VpcId": VPC, "EnableDnsHostnames": {"Value": True}}


def test_vpc_dns_both_off_fixes_support_and_advises_host_names():
    top = replace(topology(), vpcs={VPC: {"EnableDnsSupport": False, "EnableDnsHostnames": False}})
    finding = vpc_dns(top, {})
    assert finding.status is Status.FAIL
    assert [(list(c.call.params)[1], c.recommendation) for c in finding.changes] == [("EnableDnsSupport", False), ("EnableDnsHostnames", True)]


def _acl(entries):
    return [{"NetworkAclId": "acl-1", "Associations": [{"SubnetId": "subnet-a"}, {"SubnetId": "subnet-b"}], "Entries": entries}]


def _entry(number, action, egress, ports=None, protocol="6", cidr="0.0.0.0/0"):
    entry = {"RuleNumber": number, "RuleAction": action, "Egress": egress, "Protocol": protocol, "CidrBlock": cidr}
    if ports:
        entry["PortRange"] = {"From": ports[0], "To": ports[1]}
    return entry


ALLOW_ALL = [_entry(100, "allow", False, protocol="-1"), _entry(100, "allow", True, protocol="-1"),
             _entry(32767, "deny", False, protocol="-1"), _entry(32767, "deny", True, protocol="-1")]


def test_nacl_allows_default_and_catches_denies_by_rule_order():
    assert nacl(replace(topology(), network_acls=_acl(ALLOW_ALL)), {}).status is Status.OK
    deny_port = [_entry(50, "deny", False, (6379, 6379))] + ALLOW_ALL
    assert "6379" in nacl(replace(topology(), network_acls=_acl(deny_port)), {}).summary
    deny_ephemeral = [_entry(60, "deny", True, (30000, 40000))] + ALLOW_ALL
    assert nacl(replace(topology(), network_acls=_acl(deny_ephemeral)), {}).status is Status.FAIL
    later_deny = ALLOW_ALL[:2] + [_entry(200, "deny", False, (6379, 6379))] + ALLOW_ALL[2:]
    assert nacl(replace(topology(), network_acls=_acl(later_deny)), {}).status is Status.OK


def _probe(status, headers=None, body=""):
    return ProbeResult("http://127.0.0.1:1/healthz", status, headers or {}, body)


def test_healthz_tells_proxy_from_app():
    proxy = healthz(replace(topology(), probe=_probe(404, {"server": "envoy"})), {"health_path": "/healthz"})
    assert proxy.status is Status.FAIL and "proxy" in proxy.summary and proxy.waits_for == "health"
    app_404 = replace(topology(), probe=_probe(404, {"server": "envoy", "x-envoy-upstream-service-time": "3"}, '{"detail":"Not Found"}'),
                      alternate_probes=[ProbeResult("http://127.0.0.1:1/health", 200, {"x-envoy-upstream-service-time": "1"}, "ok")])
    finding = healthz(app_404, {"health_path": "/healthz"})
    assert "application" in finding.summary and "/health" in finding.summary and finding.waits_for is None
    from_app = {"server": "envoy", "x-envoy-upstream-service-time": "2"}
    assert healthz(replace(topology(), probe=_probe(200, from_app)), {"health_path": "/healthz"}).status is Status.OK
    # A 200 that never reached the app (a proxy's page) proves nothing about the app.
    not_app = healthz(replace(topology(), probe=_probe(200, {"server": "squid"})), {"health_path": "/healthz"})
    assert not_app.status is Status.FAIL and "not from the application" in not_app.summary
    crashed = healthz(replace(topology(), probe=_probe(503, {"server": "envoy"}, "upstream connect error")), {"health_path": "/healthz"})
    assert "not listening or crashed" in crashed.summary


def test_service_url_scheme():
    assert service_url("t2z3amfrq3.us-east-1.awsapprunner.com", "/healthz") == "https://t2z3amfrq3.us-east-1.awsapprunner.com/healthz"
    assert service_url("127.0.0.1:8123", "/healthz") == "http://127.0.0.1:8123/healthz"


def test_startup_logs_link_lines_to_steps():
    events = [{"logGroupName": "/aws/apprunner/x/y/application", "message": "redis.exceptions.ConnectionError: Error 110 connecting to h:6379. Connection timed out.", "timestamp": 1},
              {"logGroupName": "/aws/apprunner/x/y/service", "message": "[AppRunner] all good", "timestamp": 2}]
    finding = startup_logs(replace(topology(), log_events=events), {})
    assert finding.status is Status.WARN and "redis-ingress" in finding.summary
    assert '"redis.exceptions.ConnectionError' in finding.evidence[0].observation
    assert startup_logs(topology(), {}).status is Status.OK


def test_nacl_allow_must_cover_the_whole_peer_subnet():
    from runbook.checks.network import acl_verdict

    acl = {"Entries": [_entry(100, "allow", True, (5432, 5432), cidr="10.0.11.0/28"), _entry(32767, "deny", True, protocol="-1")]}
    allowed, rule = acl_verdict(acl, True, (5432, 5432), ["10.0.11.0/24"])
    assert not allowed and "rule 32767 deny" in rule
    wide = {"Entries": [_entry(100, "allow", True, (5432, 5432), cidr="10.0.0.0/16"), _entry(32767, "deny", True, protocol="-1")]}
    assert acl_verdict(wide, True, (5432, 5432), ["10.0.11.0/24"])[0]
