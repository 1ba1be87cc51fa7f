"""Fault injection (runbook_sandbox.faults), seen from plain boto3 clients and urllib."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from runbook_sandbox import faults as faults_module

NO_RETRY = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
STANDARD = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=10)
FAKE_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"


_CLIENTS: dict[tuple, object] = {}
_SESSION = boto3.session.Session()


@pytest.fixture
def client(sandbox):
    """client("ec2") / client("apprunner", STANDARD): a plain boto3 client on the sandbox's public
    endpoints (made once per session: the ports never change, and making one costs ~0.1 s)."""

    def make(service: str, config: Config = NO_RETRY):
        env = sandbox.env
        endpoint = {"apprunner": env["AWS_ENDPOINT_URL_APPRUNNER"], "ecs": env["AWS_ENDPOINT_URL_ECS"]}.get(
            service, env["AWS_ENDPOINT_URL"])
        key = (service, endpoint, env["AWS_DEFAULT_REGION"], id(config))
        if key not in _CLIENTS:
            _CLIENTS[key] = _SESSION.client(
                service, endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                config=config)
        return _CLIENTS[key]

    return make


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url + "/", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def ec2_raw(sb, action: str = "DescribeVpcs") -> tuple[int, dict[str, str], bytes]:
    return post(sb.env["AWS_ENDPOINT_URL"], f"Action={action}&Version=2016-11-15".encode(),
                {"Authorization": FAKE_AUTH.format("ec2"),
                 "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def ecs_raw(sb, operation: str, params: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    return post(sb.env["AWS_ENDPOINT_URL_ECS"], json.dumps(params or {}).encode(),
                {"Authorization": FAKE_AUTH.format("ecs"), "Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}"})


def error_of(exc: ClientError) -> tuple[str, int, str]:
    return (exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"],
            exc.response["Error"]["Message"])


def fault_events(sb) -> list[dict]:
    return [e.data for e in sb.history() if e.kind == "fault"]


def ingress_rules(ec2, group_id: str) -> list[dict]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return sorted((r for r in rules["SecurityGroupRules"] if not r["IsEgress"]), key=lambda r: r["SecurityGroupRuleId"])


def open_6379(ec2, sb) -> dict:
    return ec2.authorize_security_group_ingress(GroupId=sb.ids["sg:default"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": sb.ids["sg:connector-sg"]}]}])


# ---------------------------------------------------------------------- the API is documented


def test_every_fault_is_documented():
    doc = faults_module.__doc__
    for name in ("stop_aws", "start_aws", "stop_aws_after", "throttle", "throttled", "deny", "flap",
                 "hang_deployments", "latency", "clear"):
        assert name in doc, name
    guide = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text()
    for name in ("sandbox.stop_aws(", "sandbox.start_aws(", "faults.stop_aws_after(", "faults.throttle(",
                 "faults.throttled", "faults.deny(", "faults.allow(", "faults.flap(", "faults.hang_deployments(",
                 "faults.latency(", "faults.clear("):
        assert name in guide, name


def test_typos_are_errors(load):
    sb = load("healthy")
    with pytest.raises(ValueError, match="did you mean AuthorizeSecurityGroupIngress"):
        sb.faults.deny("AuthorizeSecurityGroupIngres")
    with pytest.raises(ValueError, match="unknown service 'iam'"):
        sb.faults.deny("iam:PassRole")
    with pytest.raises(ValueError, match="no operation 'UpdateService' in ec2"):
        sb.faults.stop_aws_after("ec2:UpdateService")
    with pytest.raises(ValueError, match="unknown service 's3'"):
        sb.faults.throttle(1, service="s3")
    with pytest.raises(ValueError, match="did you mean UpdateService"):
        sb.faults.deny("ecs:UpdateServices")
    with pytest.raises(ValueError, match="no operation 'ModifyTargetGroups' in elasticloadbalancing"):
        sb.faults.deny("elasticloadbalancing:ModifyTargetGroups")
    sb.faults.deny("elasticloadbalancing:ModifyTargetGroup")  # ELBv2's operations and classic ELB's share a prefix
    sb.faults.deny("elasticloadbalancing:CreateLoadBalancerListeners")
    with pytest.raises(ValueError, match="no App Runner service 'nerava'"):
        sb.faults.flap("nerava")
    with pytest.raises(ValueError, match="no App Runner service"):
        sb.faults.hang_deployments("ghost")
    with pytest.raises(ValueError, match="status codes"):
        sb.faults.flap("nerava-backend", pattern=())
    with pytest.raises(ValueError, match="is not denied"):
        sb.faults.allow("ec2:AuthorizeSecurityGroupIngress")
    with pytest.raises(ValueError, match="seconds from 0 to 60"):
        sb.faults.latency(-1)
    sb.faults.deny("ec2:Describe*")  # wildcards are not checked against the models
    sb.faults.deny("updateservice")  # IAM action names are case-insensitive


# ---------------------------------------------------------------------- 1. endpoints down and back


def test_stop_and_start_aws_keep_the_world_and_the_ports(load, client, get):
    sb = load("healthy")
    env = dict(sb.env)
    ec2, apprunner = client("ec2"), client("apprunner")
    groups = ec2.describe_security_groups()["SecurityGroups"]
    services = apprunner.list_services()["ServiceSummaryList"]  # leaves a keep-alive connection in the pool
    url = "http://" + sb.service_state("nerava-backend")["url"]

    sb.stop_aws()
    assert not sb.aws_up and sb.env == env
    with pytest.raises(EndpointConnectionError):
        ec2.describe_security_groups()
    with pytest.raises(EndpointConnectionError):
        apprunner.list_services()  # the pooled connection was dropped, a new one is refused
    with pytest.raises(EndpointConnectionError):
        client("apprunner").list_services()
    with pytest.raises(urllib.error.URLError) as refused:
        ec2_raw(sb)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    assert get(url + "/healthz")[0] == 200  # the service URL is not an AWS endpoint: still up
    sb.stop_aws()  # idempotent

    sb.start_aws()
    assert sb.aws_up and sb.env == env
    assert ec2.describe_security_groups()["SecurityGroups"] == groups
    assert apprunner.list_services()["ServiceSummaryList"] == services
    assert [(e["fault"], e["cause"]) for e in fault_events(sb)] == [("aws-down", "stop_aws()"),
                                                                     ("aws-up", "start_aws()")]


def test_deployments_keep_running_while_aws_is_down(load, client):
    sb = load("healthy")
    apprunner = client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    operation_id = apprunner.start_deployment(ServiceArn=arn)["OperationId"]
    sb.stop_aws()
    state = sb.wait_idle("nerava-backend", timeout=10)  # the sandbox's own view needs no endpoint
    assert state["operations"][0]["Id"] == operation_id and state["operations"][0]["Status"] == "SUCCEEDED"
    with pytest.raises(EndpointConnectionError):
        apprunner.list_operations(ServiceArn=arn)
    sb.start_aws()
    newest = apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]
    assert (newest["Id"], newest["Status"]) == (operation_id, "SUCCEEDED")
    # It was judged, and logged, through the sandbox's private listener while the public one was down.
    logs = client("logs")
    group = sb.ids["log-group:nerava-backend/service"]
    lines = [e["message"] for e in logs.filter_log_events(logGroupName=group,
                                                          logStreamNames=[f"deployment/{operation_id}"])["events"]]
    assert "[AppRunner] Deployment completed successfully." in lines


def test_stop_aws_after_the_nth_applied_call(load, client):
    sb = load("field-report")
    ec2 = client("ec2")
    group = sb.ids["sg:default"]
    sb.faults.stop_aws_after("AuthorizeSecurityGroupIngress", count=2)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}])
    assert sb.aws_up
    ec2.describe_security_groups(GroupIds=[group])  # reads do not count
    answer = open_6379(ec2, sb)  # the 2nd: applied and answered...
    assert answer["Return"] is True and answer["SecurityGroupRules"][0]["FromPort"] == 6379
    assert not sb.aws_up  # ...and the endpoints were already down when the answer arrived
    with pytest.raises(EndpointConnectionError):
        ec2.describe_security_groups(GroupIds=[group])
    with pytest.raises(EndpointConnectionError):
        client("apprunner").list_services()
    sb.start_aws()
    ports = {r.get("FromPort") for r in ingress_rules(ec2, group)}
    assert {8080, 6379} <= ports
    events = [(e.kind, e.data.get("action") or e.data.get("fault")) for e in sb.history()
              if e.kind in ("aws-call", "fault")]
    assert events == [("aws-call", "AuthorizeSecurityGroupIngress"), ("aws-call", "AuthorizeSecurityGroupIngress"),
                      ("fault", "aws-down"), ("fault", "aws-up")]
    assert fault_events(sb)[0]["cause"] == "after ec2:AuthorizeSecurityGroupIngress (AuthorizeSecurityGroupIngress)"


def test_stop_aws_after_an_app_runner_call_and_come_back_by_itself(load, client):
    sb = load("healthy")
    apprunner, ec2 = client("apprunner"), client("ec2")
    arn = sb.ids["service:nerava-backend"]
    sb.faults.stop_aws_after("apprunner:StartDeployment", down_for=0.5)
    started = time.monotonic()
    operation_id = apprunner.start_deployment(ServiceArn=arn)["OperationId"]
    assert not sb.aws_up
    with pytest.raises(EndpointConnectionError):
        apprunner.describe_service(ServiceArn=arn)  # the same keep-alive connection: closed after the answer
    with pytest.raises(EndpointConnectionError):
        ec2.describe_vpcs()
    while not sb.aws_up:
        assert time.monotonic() - started < 5
        time.sleep(0.02)
    assert time.monotonic() - started >= 0.5
    assert apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]["Id"] == operation_id
    assert [e["cause"] for e in fault_events(sb) if e["fault"] == "aws-up"] == ["down_for elapsed"]


def test_stop_aws_after_an_ecs_call_counts_only_applied_ones(load, client):
    sb = load("ecs-healthy")
    ecs = client("ecs")
    sb.faults.stop_aws_after("ecs:UpdateService")
    sb.faults.throttle(1, service="ecs", action="UpdateService")
    ecs.describe_services(cluster="default", services=["nerava-backend"])  # reads do not count
    with pytest.raises(ClientError):
        ecs.update_service(cluster="default", service="nerava-backend", desiredCount=3)  # throttled: not applied
    assert sb.aws_up
    answer = ecs.update_service(cluster="default", service="nerava-backend", desiredCount=3)
    assert answer["service"]["desiredCount"] == 3  # applied and answered...
    assert not sb.aws_up  # ...and the endpoints were already down when the answer arrived
    with pytest.raises(EndpointConnectionError):
        ecs.describe_services(cluster="default", services=["nerava-backend"])  # the same connection: closed
    with pytest.raises(EndpointConnectionError):
        client("ec2").describe_vpcs()
    sb.start_aws()
    assert ecs.describe_services(cluster="default", services=["nerava-backend"])["services"][0]["desiredCount"] == 3
    assert fault_events(sb)[-2]["cause"] == "after ecs:UpdateService (ecs:UpdateService)"


def test_load_brings_the_endpoints_back_and_cancels_triggers(load, client):
    sb = load("healthy")
    sb.stop_aws(down_for=60)
    sb2 = load("healthy")
    assert sb2.aws_up
    sb.faults.stop_aws_after("DescribeVpcs")
    load("healthy")
    client("ec2").describe_vpcs()
    assert sb.aws_up


# ---------------------------------------------------------------------- 2. throttling


def test_ec2_throttling_on_the_wire(load):
    sb = load("healthy")
    sb.faults.throttle(1)
    status, headers, body = ec2_raw(sb)
    assert status == 503 and headers["content-type"].startswith("text/xml")
    text = body.decode()
    assert re.fullmatch(r'<\?xml version="1.0" encoding="UTF-8"\?>\n<Response><Errors><Error>'
                        r"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
                        r"</Error></Errors><RequestID>[0-9a-f-]{36}</RequestID></Response>", text), text
    assert ec2_raw(sb)[0] == 200  # only the first
    assert sb.faults.throttled == 1


def test_app_runner_throttling_on_the_wire(load, raw):
    sb = load("healthy")
    sb.faults.throttle(1, service="apprunner")
    status, headers, body = raw("ListServices")
    assert status == 429 and headers["Content-Type"] == "application/x-amz-json-1.0"
    assert body == {"__type": "ThrottlingException", "Message": "Rate exceeded"}
    assert raw("ListServices")[0] == 200


PROTOCOLS = [
    # service, call, kwargs, code, HTTP status
    ("ec2", "describe_vpcs", {}, "RequestLimitExceeded", 503),
    ("rds", "describe_db_instances", {}, "Throttling", 400),
    ("elasticache", "describe_replication_groups", {}, "Throttling", 400),
    ("logs", "describe_log_groups", {}, "ThrottlingException", 400),
    ("apprunner", "list_services", {}, "ThrottlingException", 429),
    ("ecs", "list_clusters", {}, "ThrottlingException", 400),
    ("elbv2", "describe_load_balancers", {}, "Throttling", 400),
]
SIGNING_NAMES = {"elbv2": "elasticloadbalancing"}  # what IAM and the faults call a client's service


@pytest.mark.parametrize("service, call, kwargs, code, status", PROTOCOLS, ids=[p[0] for p in PROTOCOLS])
def test_throttling_is_parsed_and_retried_by_botocore(load, client, service, call, kwargs, code, status):
    sb = load("healthy")
    signing = SIGNING_NAMES.get(service, service)
    sb.faults.throttle(1, service=signing)
    with pytest.raises(ClientError) as caught:
        getattr(client(service), call)(**kwargs)
    assert error_of(caught.value)[:2] == (code, status)
    assert sb.faults.throttled == 1

    sb.faults.throttle(2 if service == "ec2" else 1, service=signing)
    answer = getattr(client(service, STANDARD), call)(**kwargs)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["ResponseMetadata"]["RetryAttempts"] == (2 if service == "ec2" else 1)
    assert sb.faults.throttled == (3 if service == "ec2" else 2)
    assert [(i.fault, i.service, i.code) for i in sb.faults.injected] == [("throttled", signing, code)] * sb.faults.throttled


def test_throttling_budgets_across_services(load, client):
    sb = load("healthy")
    sb.faults.throttle(1, service="rds")
    sb.faults.throttle(2)
    for service, call in (("ec2", "describe_vpcs"), ("rds", "describe_db_instances"), ("apprunner", "list_services")):
        with pytest.raises(ClientError):
            getattr(client(service), call)()
    assert [i.service for i in sb.faults.injected] == ["ec2", "rds", "apprunner"]  # rds took its own budget
    client("ec2").describe_vpcs()
    client("rds").describe_db_instances()
    client("sts").get_caller_identity()
    assert sb.faults.throttled == 3
    assert [e["fault"] for e in fault_events(sb)] == ["throttled"] * 3


def test_throttling_is_thread_safe(load, raw):
    sb = load("healthy")
    sb.faults.throttle(15)
    statuses: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        status = raw("ListServices")[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=hit) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 25 + [429] * 15
    assert sb.faults.throttled == 15


# ---------------------------------------------------------------------- 3. access denied


def test_denied_ec2_action_is_not_applied(load, client):
    sb = load("field-report")
    ec2 = client("ec2")
    group = sb.ids["sg:default"]
    before = ingress_rules(ec2, group)
    sb.faults.deny("AuthorizeSecurityGroupIngress")
    for dry_run in (True, False):
        with pytest.raises(ClientError) as caught:
            ec2.authorize_security_group_ingress(GroupId=group, DryRun=dry_run, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": sb.ids["sg:connector-sg"]}]}])
        code, status, message = error_of(caught.value)
        assert (code, status) == ("UnauthorizedOperation", 403)
        assert message.startswith("You are not authorized to perform this operation. User: "
                                  "arn:aws:iam::123456789012:user/oncall is not authorized to perform: "
                                  "ec2:AuthorizeSecurityGroupIngress")
        assert "Encoded authorization failure message: " in message
    assert ingress_rules(ec2, group) == before  # reads still work, and nothing changed
    assert [e.kind for e in sb.history() if e.kind == "aws-call"] == []
    assert sb.faults.denied == 2

    sb.faults.allow("AuthorizeSecurityGroupIngress")
    assert open_6379(ec2, sb)["Return"] is True


def test_denied_app_runner_action_is_not_applied(load, client, raw, apprunner_model):
    sb = load("healthy")
    apprunner = client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    before = apprunner.describe_service(ServiceArn=arn)["Service"]
    sb.faults.deny("apprunner:UpdateService", principal="arn:aws:sts::123456789012:assumed-role/OnCall/alice")
    with pytest.raises(ClientError) as caught:
        apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "TCP"})
    code, status, message = error_of(caught.value)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == ("User: arn:aws:sts::123456789012:assumed-role/OnCall/alice is not authorized to perform: "
                       "apprunner:UpdateService because no identity-based policy allows the apprunner:UpdateService "
                       "action")
    # Not in App Runner's model: one of AWS's common errors, 400 like the model's own client errors.
    assert "AccessDeniedException" not in {shape.name for shape in apprunner_model.error_shapes}
    status, _, body = raw("UpdateService", {"ServiceArn": arn})
    assert status == 400 and set(body) == {"__type", "Message"} and body["__type"] == "AccessDeniedException"
    after = apprunner.describe_service(ServiceArn=arn)["Service"]
    assert after == before and sb.service_state("nerava-backend")["in_flight"] is None
    assert [e for e in sb.history() if e.kind == "apprunner-call"] == []


@pytest.mark.parametrize("service, pattern, call, code, status", [
    ("rds", "rds:*", "describe_db_instances", "AccessDenied", 403),
    ("elasticache", "elasticache:DescribeReplicationGroups", "describe_replication_groups", "AccessDenied", 403),
    ("logs", "logs:Describe*", "describe_log_groups", "AccessDeniedException", 400),
], ids=["rds", "elasticache", "logs"])
def test_denied_in_every_protocol(load, client, service, pattern, call, code, status):
    sb = load("healthy")
    sb.faults.deny(pattern)
    with pytest.raises(ClientError) as caught:
        getattr(client(service), call)()
    assert error_of(caught.value)[:2] == (code, status)
    assert f"is not authorized to perform: {service}:" in error_of(caught.value)[2]
    client("ec2").describe_vpcs()  # other services are untouched


def test_denied_ecs_action_is_not_applied(load, client):
    sb = load("ecs-healthy")
    ecs = client("ecs")
    before = ecs.describe_services(cluster="default", services=["nerava-backend"])["services"][0]
    sb.faults.deny("ecs:UpdateService")
    with pytest.raises(ecs.exceptions.AccessDeniedException) as caught:  # ECS's model declares it
        ecs.update_service(cluster="default", service="nerava-backend", forceNewDeployment=True)
    assert error_of(caught.value) == ("AccessDeniedException", 400, (
        "User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: ecs:UpdateService "
        "because no identity-based policy allows the ecs:UpdateService action"))
    status, headers, body = ecs_raw(sb, "UpdateService", {"service": "nerava-backend", "forceNewDeployment": True})
    assert (status, headers["content-type"]) == (400, "application/x-amz-json-1.1")
    assert set(json.loads(body)) == {"__type", "message"}
    after = ecs.describe_services(cluster="default", services=["nerava-backend"])["services"][0]
    assert after["deployments"] == before["deployments"]  # no new deployment
    assert sb.faults.denied == 2 and [e["action"] for e in fault_events(sb)] == ["UpdateService"] * 2

    sb.faults.throttle(1, service="ecs")
    status, headers, body = ecs_raw(sb, "ListClusters")
    assert (status, headers["content-type"], json.loads(body)) == (
        400, "application/x-amz-json-1.1", {"__type": "ThrottlingException", "message": "Rate exceeded"})

    sb.faults.allow("ecs:UpdateService")
    answer = ecs.update_service(cluster="default", service="nerava-backend", forceNewDeployment=True)
    assert len(answer["service"]["deployments"]) == len(before["deployments"]) + 1


# ---------------------------------------------------------------------- 4. flapping health


def test_flapping_health_never_gives_two_200s_in_a_row(load, get):
    sb = load("healthy")
    base = "http://" + sb.service_state("nerava-backend")["url"]
    sb.faults.flap("nerava-backend")
    answers = [get(base + "/healthz") for _ in range(6)]
    assert [a[0] for a in answers] == [200, 503] * 3
    status, headers, body = answers[1]
    assert headers["server"] == "envoy" and "x-envoy-upstream-service-time" in headers
    assert json.loads(body) == {"detail": "Service Unavailable"} and headers["content-type"] == "application/json"
    assert get(base + "/nope")[0] == 404  # other paths do not flap and do not advance the pattern
    assert get(base + "/healthz", "HEAD")[0] == 200
    assert get(base + "/healthz", "HEAD")[0] == 503
    sb.faults.flap("nerava-backend", pattern=(200, 200, 500))
    assert [get(base + "/healthz")[0] for _ in range(6)] == [200, 200, 500] * 2
    sb.faults.flap("nerava-backend", None)
    assert {get(base + "/healthz")[0] for _ in range(3)} == {200}
    assert sb.service_state("nerava-backend")["status"] == "RUNNING"


def test_flapping_starts_once_the_app_serves(load, client, get):
    sb = load("healthy")
    apprunner = client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    base = "http://" + sb.service_state("nerava-backend")["url"]
    apprunner.pause_service(ServiceArn=arn)
    assert sb.wait_idle("nerava-backend")["status"] == "PAUSED"
    sb.faults.flap("nerava-backend")
    for _ in range(3):
        status, headers, body = get(base + "/healthz")
        assert (status, body) == (404, b"") and "x-envoy-upstream-service-time" not in headers  # envoy's own
    apprunner.resume_service(ServiceArn=arn)
    assert sb.wait_idle("nerava-backend")["status"] == "RUNNING"
    assert [get(base + "/healthz")[0] for _ in range(4)] == [200, 503, 200, 503]


# ---------------------------------------------------------------------- 5. deployments that never finish


def test_hung_deployment_stays_in_progress_until_cleared(load, client):
    sb = load("field-report")  # CREATE_SERVICE in flight, ending DEPLOY_SECONDS after load
    apprunner = client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    sb.faults.hang_deployments("nerava-backend")
    time.sleep(sb.service_state("nerava-backend")["deploy_seconds"] + 0.4)
    newest = apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]
    assert (newest["Type"], newest["Status"]) == ("CREATE_SERVICE", "IN_PROGRESS") and "EndedAt" not in newest
    assert apprunner.describe_service(ServiceArn=arn)["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    assert [e.kind for e in sb.history() if e.kind == "operation-finished"] == []
    sb.faults.clear()  # lifted: it ends deploy_seconds from now
    state = sb.wait_idle("nerava-backend", timeout=10)
    assert state["status"] == "CREATE_FAILED" and state["operations"][0]["Status"] == "FAILED"


def test_hang_every_deployment_including_later_ones(load, client):
    sb = load("healthy")
    apprunner = client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    sb.faults.hang_deployments()
    operation_id = apprunner.start_deployment(ServiceArn=arn)["OperationId"]
    time.sleep(sb.service_state("nerava-backend")["deploy_seconds"] + 0.4)
    newest = apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]
    assert (newest["Id"], newest["Status"]) == (operation_id, "IN_PROGRESS")
    with pytest.raises(ClientError) as caught:
        apprunner.start_deployment(ServiceArn=arn)
    assert error_of(caught.value)[0] == "InvalidStateException"
    assert [e["fault"] for e in fault_events(sb)] == ["hang-deployments"]
    load("healthy")
    assert not sb.faults.hangs("nerava-backend")


# ---------------------------------------------------------------------- the sandbox itself is never faulted


def test_latency_holds_every_api_request_but_not_the_service_url(load, client, get):
    sb = load("healthy")
    base = "http://" + sb.service_state("nerava-backend")["url"]

    def timed(fn):
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    sb.faults.latency(0.3)
    assert timed(client("ec2").describe_vpcs) >= 0.3
    assert timed(client("apprunner").list_services) >= 0.3
    assert timed(client("ecs").list_clusters) >= 0.3
    assert timed(lambda: get(base + "/healthz")) < 0.3
    sb.faults.clear()
    assert timed(client("ec2").describe_vpcs) < 0.3


def test_faults_never_touch_the_sandbox_itself(load, client):
    sb = load("field-report")
    sb.faults.throttle(10_000)
    sb.faults.deny("ec2:*")
    sb.faults.deny("logs:*")
    state = sb.wait_idle("nerava-backend", timeout=10)  # judged against moto, logged to moto, regardless
    assert state["status"] == "CREATE_FAILED"
    assert sb.app_health("nerava-backend")[0] is False
    with pytest.raises(ClientError):
        client("ec2").describe_vpcs()
    sb.faults.clear()
    assert sb.faults.throttled == 0 and sb.faults.injected == []
    group = sb.ids["log-group:nerava-backend/service"]
    lines = [e["message"] for e in client("logs").filter_log_events(logGroupName=group)["events"]]
    assert "[AppRunner] Deployment failed. Failure reason: Health check failed." in lines


def test_load_lifts_every_fault(load, client, get):
    sb = load("healthy")
    sb.faults.throttle(5)
    sb.faults.deny("ec2:DescribeVpcs")
    sb.faults.flap("nerava-backend")
    sb.faults.hang_deployments()
    sb.faults.stop_aws_after("ListServices")
    sb.faults.latency(5)
    sb.stop_aws()
    load("healthy")
    assert sb.aws_up and sb.faults.throttled == 0
    started = time.perf_counter()
    client("ec2").describe_vpcs()
    assert time.perf_counter() - started < 5, "the latency outlived load()"
    client("apprunner").list_services()
    client("apprunner").list_services()
    base = "http://" + sb.service_state("nerava-backend")["url"]
    assert {get(base + "/healthz")[0] for _ in range(4)} == {200}
    assert sb.faults.injected == [] and fault_events(sb) == []
