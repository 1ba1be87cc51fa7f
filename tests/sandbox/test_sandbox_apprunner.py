"""The App Runner emulator: wire shapes, boto3 parsing, pagination, errors, operation semantics."""

from __future__ import annotations

import datetime

import botocore.exceptions
import pytest

IMAGE = {
    "ImageIdentifier": "public.ecr.aws/sandbox/hello:latest",
    "ImageRepositoryType": "ECR_PUBLIC",
    "ImageConfiguration": {"Port": "8080"},
}


def _create(raw, name: str) -> dict:
    status, _, body = raw("CreateService", {"ServiceName": name, "SourceConfiguration": {"ImageRepository": IMAGE}})
    assert status == 200, body
    return body


# ---------------------------------------------------------------------- shapes on the wire


def test_read_operations_match_the_model(load, raw, check_output):
    sb = load("field-report")
    arn = sb.ids["service:nerava-backend"]
    calls = [
        ("DescribeService", {"ServiceArn": arn}),
        ("ListServices", {}),
        ("ListServices", {"MaxResults": 1}),
        ("ListOperations", {"ServiceArn": arn}),
        ("ListOperations", {"ServiceArn": arn, "MaxResults": 20}),
        ("DescribeVpcConnector", {"VpcConnectorArn": sb.ids["connector:nerava-vpc-connector"]}),
        ("ListVpcConnectors", {}),
    ]
    for operation, params in calls:
        status, headers, body = raw(operation, params)
        assert status == 200, body
        assert headers["Content-Type"] == "application/x-amz-json-1.0"
        check_output(operation, body)
    service = raw("DescribeService", {"ServiceArn": arn})[2]["Service"]
    assert isinstance(service["CreatedAt"], (int, float)) and isinstance(service["UpdatedAt"], (int, float))
    assert service["ServiceUrl"].startswith("127.0.0.1:") and "://" not in service["ServiceUrl"]
    assert service["ServiceArn"] == f"arn:aws:apprunner:us-east-1:123456789012:service/nerava-backend/{service['ServiceId']}"
    assert len(service["ServiceId"]) == 32 and int(service["ServiceId"], 16) >= 0
    connector_arn = sb.ids["connector:nerava-vpc-connector"]
    prefix = "arn:aws:apprunner:us-east-1:123456789012:vpcconnector/nerava-vpc-connector/1/"
    assert connector_arn.startswith(prefix) and len(connector_arn) == len(prefix) + 32


def test_write_operations_match_the_model(load, raw, check_output, waiter):
    sb = load("healthy")
    created = _create(raw, "shape-check")
    check_output("CreateService", created)
    arn = created["Service"]["ServiceArn"]
    waiter(lambda: sb.service_state("shape-check")["in_flight"] is None)
    for operation, params in [
        ("UpdateService", {"ServiceArn": arn, "InstanceConfiguration": {"Cpu": "1 vCPU", "Memory": "2 GB"}}),
        ("StartDeployment", {"ServiceArn": arn}),
        ("PauseService", {"ServiceArn": arn}),
        ("ResumeService", {"ServiceArn": arn}),
    ]:
        status, _, body = raw(operation, params)
        assert status == 200, (operation, body)
        check_output(operation, body)
        assert len(body["OperationId"]) == 36
        waiter(lambda: sb.service_state("shape-check")["in_flight"] is None)
    status, _, body = raw("ListOperations", {"ServiceArn": arn})
    check_output("ListOperations", body)
    assert [o["Type"] for o in body["OperationSummaryList"]] == [
        "RESUME_SERVICE", "PAUSE_SERVICE", "START_DEPLOYMENT", "UPDATE_SERVICE", "CREATE_SERVICE"]
    assert all(o["Status"] == "SUCCEEDED" and o["EndedAt"] >= o["StartedAt"] for o in body["OperationSummaryList"])
    assert raw("DescribeService", {"ServiceArn": arn})[2]["Service"]["InstanceConfiguration"] == {
        "Cpu": "1024", "Memory": "2048"}


def test_boto3_parses_every_answer(load):
    sb = load("field-report")
    apprunner = sb.client("apprunner")
    service = apprunner.describe_service(ServiceArn=sb.ids["service:nerava-backend"])["Service"]
    assert isinstance(service["CreatedAt"], datetime.datetime)
    assert service["AutoScalingConfigurationSummary"]["IsDefault"] is True
    summary = apprunner.list_services()["ServiceSummaryList"][0]
    assert summary["ServiceArn"] == service["ServiceArn"]
    op = apprunner.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"][0]
    assert isinstance(op["StartedAt"], datetime.datetime) and "EndedAt" not in op
    connectors = apprunner.list_vpc_connectors()["VpcConnectors"]
    assert [c["VpcConnectorName"] for c in connectors] == ["nerava-vpc-connector"]


# ---------------------------------------------------------------------- pagination


def test_list_services_pages_with_next_token(load, raw):
    sb = load("healthy")
    for i in range(22):
        _create(raw, f"svc-{i:02d}")
    apprunner = sb.client("apprunner")
    names, pages, token = [], [], None
    while True:
        kwargs = {"MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = apprunner.list_services(**kwargs)
        pages.append(len(page["ServiceSummaryList"]))
        names += [s["ServiceName"] for s in page["ServiceSummaryList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [5, 5, 5, 5, 3]
    assert len(names) == len(set(names)) == 23
    assert "nerava-backend" in names
    assert len(apprunner.list_services()["ServiceSummaryList"]) == 23  # no MaxResults: everything
    with pytest.raises(botocore.exceptions.ClientError) as err:
        apprunner.list_services(MaxResults=21)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        apprunner.list_services(NextToken="not-a-token")
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_list_operations_newest_first_with_pages(load, waiter):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    for _ in range(3):
        apprunner.start_deployment(ServiceArn=arn)
        waiter(lambda: sb.service_state("nerava-backend")["in_flight"] is None)
    first = apprunner.list_operations(ServiceArn=arn, MaxResults=2)
    second = apprunner.list_operations(ServiceArn=arn, MaxResults=2, NextToken=first["NextToken"])
    ops = first["OperationSummaryList"] + second["OperationSummaryList"]
    assert "NextToken" not in second
    assert [o["Type"] for o in ops] == ["START_DEPLOYMENT"] * 3 + ["CREATE_SERVICE"]
    started = [o["StartedAt"] for o in ops]
    assert started == sorted(started, reverse=True)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        apprunner.list_operations(ServiceArn=arn, MaxResults=21)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


# ---------------------------------------------------------------------- errors


def test_unknown_service_is_resource_not_found(load, raw, check_error):
    sb = load("healthy")
    missing = "arn:aws:apprunner:us-east-1:123456789012:service/nope/" + "0" * 32
    for operation in ("DescribeService", "ListOperations", "UpdateService", "StartDeployment"):
        status, _, body = raw(operation, {"ServiceArn": missing})
        check_error(operation, status, body, "ResourceNotFoundException")
    apprunner = sb.client("apprunner")
    with pytest.raises(apprunner.exceptions.ResourceNotFoundException) as err:
        apprunner.describe_service(ServiceArn=missing)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    status, _, body = raw("DescribeVpcConnector", {"VpcConnectorArn": missing.replace("service/", "vpcconnector/")})
    check_error("DescribeVpcConnector", status, body, "ResourceNotFoundException")


def test_changes_while_an_operation_is_in_flight_are_invalid_state(load, raw, check_error):
    sb = load("field-report")
    arn = sb.ids["service:nerava-backend"]
    apprunner = sb.client("apprunner")
    with pytest.raises(apprunner.exceptions.InvalidStateException):
        apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "TCP"})
    for operation in ("UpdateService", "StartDeployment", "PauseService", "ResumeService"):
        status, _, body = raw(operation, {"ServiceArn": arn})
        check_error(operation if operation != "StartDeployment" else "UpdateService", status, body,
                    "InvalidStateException")
    # Nothing changed, and the refused calls started no operation.
    state = sb.service_state("nerava-backend")
    assert state["config"]["HealthCheckConfiguration"]["Protocol"] == "HTTP"
    assert len(state["operations"]) == 1


def test_bad_requests_are_invalid_request(load, raw, check_error):
    sb = load("healthy")
    arn = sb.ids["service:nerava-backend"]
    for operation, params in [
        ("DescribeService", {}),
        ("UpdateService", {"ServiceArn": arn, "HealthCheckConfiguration": {"Interval": 60}}),
        ("UpdateService", {"ServiceArn": arn, "NetworkConfiguration": {"EgressConfiguration": {"EgressType": "VPC"}}}),
        ("UpdateService", {"ServiceArn": arn, "NetworkConfiguration": {
            "EgressConfiguration": {"EgressType": "VPC", "VpcConnectorArn": arn.replace("service/", "vpcconnector/")}}}),
        ("CreateService", {"ServiceName": "nerava-backend", "SourceConfiguration": {"ImageRepository": IMAGE}}),
        ("CreateService", {"ServiceName": "x", "SourceConfiguration": {"ImageRepository": IMAGE}}),
    ]:
        status, _, body = raw(operation, params)
        check_error(operation, status, body, "InvalidRequestException")
    status, _, body = raw("NoSuchThing", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"
    assert sb.service_state("nerava-backend")["in_flight"] is None


# ---------------------------------------------------------------------- semantics


def test_update_service_replaces_the_block_it_is_given(load, waiter):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    current = apprunner.describe_service(ServiceArn=arn)["Service"]
    assert current["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["RuntimeEnvironmentVariables"]
    answer = apprunner.update_service(ServiceArn=arn, SourceConfiguration={"ImageRepository": {
        "ImageIdentifier": current["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"],
        "ImageRepositoryType": "ECR_PUBLIC",
        "ImageConfiguration": {"Port": "8000"},
    }})
    assert answer["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    conf = answer["Service"]["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
    assert conf == {"Port": "8000"}  # the environment variables are gone, as on AWS
    healthy, reasons = sb.app_health("nerava-backend")
    assert not healthy and any("DATABASE_URL is not set" in r for r in reasons)
    state = sb.wait_idle("nerava-backend")
    # The app cannot start without its variables: the update rolls back to the previous configuration.
    assert [(o["Type"], o["Status"]) for o in state["operations"]][0] == ("UPDATE_SERVICE", "ROLLBACK_SUCCEEDED")
    assert state["status"] == "RUNNING" and state["serving"]
    assert "DATABASE_URL" in state["env"]


def test_failed_deployment_of_a_running_service_rolls_back_and_keeps_serving(load, get):
    sb = load("healthy")
    url = "http://" + sb.service_state("nerava-backend")["url"]
    assert get(url + "/healthz")[0] == 200
    ec2 = sb.client("ec2")
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [sb.ids["sg:cache-sg"]]}])["SecurityGroupRules"]
    ingress = [r["SecurityGroupRuleId"] for r in rules if not r["IsEgress"]]
    ec2.revoke_security_group_ingress(GroupId=sb.ids["sg:cache-sg"], SecurityGroupRuleIds=ingress)
    sb.client("apprunner").start_deployment(ServiceArn=sb.ids["service:nerava-backend"])
    assert sb.service_state("nerava-backend")["status"] == "OPERATION_IN_PROGRESS"
    assert get(url + "/healthz")[0] == 200  # the old version serves during the deployment
    state = sb.wait_idle("nerava-backend")
    assert state["operations"][0]["Type"] == "START_DEPLOYMENT"
    assert state["operations"][0]["Status"] == "ROLLBACK_SUCCEEDED"
    assert state["status"] == "RUNNING" and state["serving"]
    assert get(url + "/healthz")[0] == 200
    logs = sb.client("logs").filter_log_events(logGroupName=sb.ids["log-group:nerava-backend/application"])["events"]
    assert any(e["message"].startswith("redis.exceptions.ConnectionError: Error 110 connecting to ") for e in logs)


def test_health_check_path_drift_rolls_back_to_the_old_configuration(load):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/health"})
    healthy, reasons = sb.app_health("nerava-backend")
    assert not healthy and "/health" in reasons[0] and "404" in reasons[0]
    state = sb.wait_idle("nerava-backend")
    assert state["operations"][0]["Status"] == "ROLLBACK_SUCCEEDED"
    assert state["config"]["HealthCheckConfiguration"]["Path"] == "/healthz"
    service_log = sb.client("logs").filter_log_events(
        logGroupName=sb.ids["log-group:nerava-backend/service"])["events"]
    assert any(e["message"] == "[AppRunner] Health check failed on protocol `HTTP`[Path: '/health'], [Port: '8000']"
               for e in service_log)


def test_tcp_health_check_passes_when_the_port_matches(load):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "TCP"})
    state = sb.wait_idle("nerava-backend")
    assert state["operations"][0]["Status"] == "SUCCEEDED"
    assert state["config"]["HealthCheckConfiguration"] == {
        "Protocol": "TCP", "Path": "/", "Interval": 5, "Timeout": 2, "HealthyThreshold": 1, "UnhealthyThreshold": 5}


def test_pause_and_resume(load, get):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    url = "http://" + sb.service_state("nerava-backend")["url"] + "/healthz"
    apprunner.pause_service(ServiceArn=arn)
    assert sb.wait_idle("nerava-backend")["status"] == "PAUSED"
    status, headers, body = get(url)
    assert (status, body) == (404, b"") and "x-envoy-upstream-service-time" not in headers
    with pytest.raises(apprunner.exceptions.InvalidStateException):
        apprunner.start_deployment(ServiceArn=arn)
    apprunner.resume_service(ServiceArn=arn)
    assert sb.wait_idle("nerava-backend")["status"] == "RUNNING"
    assert get(url)[0] == 200


def test_every_mutating_call_is_in_the_history(load, waiter):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.start_deployment(ServiceArn=arn)
    sb.wait_idle("nerava-backend")
    apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/healthz"})
    sb.wait_idle("nerava-backend")
    calls = [(e.data["operation"], e.data["service"]) for e in sb.history() if e.kind == "apprunner-call"]
    assert calls == [("StartDeployment", "nerava-backend"), ("UpdateService", "nerava-backend")]
    finished = [(e.data["operation"], e.data["result"]) for e in sb.history() if e.kind == "operation-finished"]
    assert finished == [("START_DEPLOYMENT", "SUCCEEDED"), ("UPDATE_SERVICE", "SUCCEEDED")]
    events = sb.history()
    assert events == sorted(events, key=lambda e: e.time)


# ---------------------------------------------------------------------- App Runner's state rules (issue 10 §4)


def test_update_service_is_accepted_on_a_paused_service_and_refused_otherwise_in_app_runners_words(load, raw, check_error):
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.pause_service(ServiceArn=arn)
    assert sb.wait_idle("nerava-backend")["status"] == "PAUSED"
    answer = apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/healthz", "Interval": 10})
    assert answer["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "PAUSED" and not state["serving"]  # stored; nothing runs to be judged
    assert (state["operations"][0]["Type"], state["operations"][0]["Status"]) == ("UPDATE_SERVICE", "SUCCEEDED")
    assert state["config"]["HealthCheckConfiguration"]["Interval"] == 10
    # In flight: refused with App Runner's own text.
    apprunner.resume_service(ServiceArn=arn)
    status, _, body = raw("UpdateService", {"ServiceArn": arn, "HealthCheckConfiguration": {"Protocol": "TCP"}})
    check_error("UpdateService", status, body, "InvalidStateException")
    assert body["Message"] == "Service status must be RUNNING or PAUSED to be updated"


def test_update_service_on_a_delete_failed_service_is_refused(load, yaml_scenario, raw, check_error):
    sb = load(yaml_scenario(_ONE_SERVICE + "    status: DELETE_FAILED\n"))
    arn = sb.ids["service:lonely-svc"]
    assert sb.service_state("lonely-svc")["operations"][0]["Type"] == "DELETE_SERVICE"
    status, _, body = raw("UpdateService", {"ServiceArn": arn, "HealthCheckConfiguration": {"Protocol": "TCP"}})
    check_error("UpdateService", status, body, "InvalidStateException")
    assert body["Message"] == "Service status must be RUNNING or PAUSED to be updated"
    status, _, body = raw("StartDeployment", {"ServiceArn": arn})
    assert status == 400 and body["__type"] == "InvalidStateException"


def test_a_failed_deployment_is_rolling_back_before_it_has_rolled_back(load, waiter, check_output, raw):
    """A poller sees IN_PROGRESS, then ROLLBACK_IN_PROGRESS (service still OPERATION_IN_PROGRESS, the
    old version serving), then ROLLBACK_SUCCEEDED with the service RUNNING on its old configuration."""
    sb = load("healthy")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/nope"})
    seen = []

    def poll():
        op = apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]
        status = apprunner.describe_service(ServiceArn=arn)["Service"]["Status"]
        # Two calls are no snapshot: a transition between them would pair the operation with the
        # service's next status. Keep only pairs the operation held across both reads.
        if apprunner.list_operations(ServiceArn=arn)["OperationSummaryList"][0]["Status"] != op["Status"]:
            return False
        if not seen or seen[-1] != (op["Status"], status):
            seen.append((op["Status"], status))
            if op["Status"] == "ROLLBACK_IN_PROGRESS":
                check_output("ListOperations", raw("ListOperations", {"ServiceArn": arn})[2])
                assert "EndedAt" not in op
                assert sb.service_state("nerava-backend")["serving"]
        return op["Status"] == "ROLLBACK_SUCCEEDED"

    waiter(poll, timeout=15, interval=0.02)
    assert seen == [("IN_PROGRESS", "OPERATION_IN_PROGRESS"), ("ROLLBACK_IN_PROGRESS", "OPERATION_IN_PROGRESS"),
                    ("ROLLBACK_SUCCEEDED", "RUNNING")], seen
    assert apprunner.describe_service(ServiceArn=arn)["Service"]["HealthCheckConfiguration"]["Path"] == "/healthz"
    kinds = [e.kind for e in sb.history() if e.kind.startswith("operation-")]
    assert kinds == ["operation-rolling-back", "operation-finished"]


def test_delete_service_ends_deleted_and_unlisted(load, check_output, raw, get):
    sb = load("field-report")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    with pytest.raises(apprunner.exceptions.InvalidStateException):  # CREATE_SERVICE in flight
        apprunner.delete_service(ServiceArn=arn)
    sb.wait_idle("nerava-backend")
    assert sb.service_state("nerava-backend")["status"] == "CREATE_FAILED"
    status, _, body = raw("DeleteService", {"ServiceArn": arn})  # the documented way out of CREATE_FAILED
    assert status == 200, body
    check_output("DeleteService", body)
    assert body["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "DELETED"
    assert [(o["Type"], o["Status"]) for o in state["operations"]][0] == ("DELETE_SERVICE", "SUCCEEDED")
    described = raw("DescribeService", {"ServiceArn": arn})[2]
    check_output("DescribeService", described)
    assert described["Service"]["Status"] == "DELETED" and described["Service"]["DeletedAt"] >= described["Service"]["CreatedAt"]
    assert apprunner.list_services()["ServiceSummaryList"] == []
    for operation in ("DeleteService", "StartDeployment", "UpdateService", "PauseService"):
        assert raw(operation, {"ServiceArn": arn})[2]["__type"] == "InvalidStateException", operation


def test_a_client_of_another_region_sees_nothing_of_this_one(load, waiter):
    import boto3

    sb = load("healthy")
    arn = sb.ids["service:nerava-backend"]
    other = boto3.client("apprunner", endpoint_url=sb.env["AWS_ENDPOINT_URL_APPRUNNER"], region_name="eu-west-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    assert other.list_services()["ServiceSummaryList"] == []
    assert other.list_vpc_connectors()["VpcConnectors"] == []
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.describe_service(ServiceArn=arn)
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.describe_vpc_connector(VpcConnectorArn=sb.ids["connector:nerava-vpc-connector"])
    created = other.create_service(ServiceName="nerava-backend", SourceConfiguration={"ImageRepository": IMAGE})
    assert created["Service"]["ServiceArn"].startswith("arn:aws:apprunner:eu-west-1:")  # the same name, elsewhere
    assert [s["ServiceName"] for s in sb.client("apprunner").list_services()["ServiceSummaryList"]] == ["nerava-backend"]
    assert len(other.list_services()["ServiceSummaryList"]) == 1
    waiter(lambda: other.describe_service(ServiceArn=created["Service"]["ServiceArn"])["Service"]["Status"] == "RUNNING")
    with pytest.raises(other.exceptions.InvalidRequestException):  # a connector of us-east-1 is no connector here
        other.update_service(ServiceArn=created["Service"]["ServiceArn"], NetworkConfiguration={"EgressConfiguration": {
            "EgressType": "VPC", "VpcConnectorArn": sb.ids["connector:nerava-vpc-connector"]}})


def test_code_repository_services_keep_their_block_and_answer_in_shape(load, yaml_scenario, raw, check_output):
    sb = load(yaml_scenario(_ONE_SERVICE.replace("    image: public.ecr.aws/sandbox/lonely:latest\n", (
        "    code_repository: {url: 'https://github.com/nerava/backend', branch: main, runtime: PYTHON_311,\n"
        "                      build_command: pip install -r requirements.txt, start_command: python app.py}\n"
        "    env: {GREETING: hello}\n"))))
    arn = sb.ids["service:lonely-svc"]
    service = raw("DescribeService", {"ServiceArn": arn})[2]
    check_output("DescribeService", service)
    code = service["Service"]["SourceConfiguration"]["CodeRepository"]
    assert code["CodeConfiguration"]["CodeConfigurationValues"]["RuntimeEnvironmentVariables"] == {"GREETING": "hello"}
    apprunner = sb.client("apprunner")
    # Without CodeConfiguration the current one is kept (the model requires it only on CreateService) ...
    kept = {k: v for k, v in code.items() if k != "CodeConfiguration"}
    answer = apprunner.update_service(ServiceArn=arn, SourceConfiguration={
        "CodeRepository": kept, "AuthenticationConfiguration": service["Service"]["SourceConfiguration"]["AuthenticationConfiguration"]})
    values = answer["Service"]["SourceConfiguration"]["CodeRepository"]["CodeConfiguration"]["CodeConfigurationValues"]
    assert values["RuntimeEnvironmentVariables"] == {"GREETING": "hello"}
    assert sb.wait_idle("lonely-svc")["operations"][0]["Status"] == "SUCCEEDED"
    # ... values given replace the block: Port alone wipes the environment.
    answer = apprunner.update_service(ServiceArn=arn, SourceConfiguration={
        "CodeRepository": {**kept, "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": {
            "Runtime": "PYTHON_311", "Port": "8080"}}},
        "AuthenticationConfiguration": service["Service"]["SourceConfiguration"]["AuthenticationConfiguration"]})
    assert "RuntimeEnvironmentVariables" not in answer["Service"]["SourceConfiguration"]["CodeRepository"][
        "CodeConfiguration"]["CodeConfigurationValues"]
    with pytest.raises(apprunner.exceptions.InvalidRequestException):
        apprunner.update_service(ServiceArn=arn, SourceConfiguration={"CodeRepository": kept})  # no connection


_ONE_SERVICE = """
name: lonely
vpcs:
  main:
    cidr: 10.0.0.0/16
    subnets: {a: {cidr: 10.0.1.0/24}}
services:
  - name: lonely-svc
    image: public.ecr.aws/sandbox/lonely:latest
"""


def test_new_worlds_answer_in_the_models_shapes(load, yaml_scenario, raw, check_output):
    """An INACTIVE connector (DeletedAt), DEFAULT egress still naming a connector, secrets, a
    DELETE_FAILED service and a code repository service: every read answers in the model's shapes."""
    sb = load(yaml_scenario("""
name: shapes
vpcs:
  main:
    cidr: 10.0.0.0/16
    subnets: {a: {cidr: 10.0.1.0/24}}
security_groups: {sg: {}}
connectors:
  - {name: gone-connector, subnets: [a], security_groups: [sg], status: INACTIVE}
secrets:
  - {name: app/token, value: not-a-url}
  - {name: /app/param, store: ssm, value: also-not-a-url}
services:
  - name: default-egress
    connector: gone-connector
    egress: DEFAULT
    secrets: {TOKEN: app/token, PARAM: {secret: /app/param, by: name}}
  - name: delete-failed
    image: public.ecr.aws/sandbox/other:latest
    status: DELETE_FAILED
  - name: from-code
    code_repository: {url: "https://github.com/example/app", configuration_source: REPOSITORY}
"""))
    for name in ("default-egress", "delete-failed", "from-code"):
        body = raw("DescribeService", {"ServiceArn": sb.ids[f"service:{name}"]})[2]
        check_output("DescribeService", body)
        check_output("ListOperations", raw("ListOperations", {"ServiceArn": sb.ids[f"service:{name}"]})[2])
    check_output("ListServices", raw("ListServices", {})[2])
    connector = raw("DescribeVpcConnector", {"VpcConnectorArn": sb.ids["connector:gone-connector"]})[2]
    check_output("DescribeVpcConnector", connector)
    assert connector["VpcConnector"]["Status"] == "INACTIVE" and "DeletedAt" in connector["VpcConnector"]
    check_output("ListVpcConnectors", raw("ListVpcConnectors", {})[2])
    service = raw("DescribeService", {"ServiceArn": sb.ids["service:default-egress"]})[2]["Service"]
    assert service["NetworkConfiguration"]["EgressConfiguration"] == {
        "EgressType": "DEFAULT", "VpcConnectorArn": sb.ids["connector:gone-connector"]}
    secrets = service["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["RuntimeEnvironmentSecrets"]
    assert secrets == {"TOKEN": sb.ids["secret:app/token"], "PARAM": "/app/param"}
    assert service["InstanceConfiguration"]["InstanceRoleArn"].endswith(":role/default-egress-instance-role")
    code = raw("DescribeService", {"ServiceArn": sb.ids["service:from-code"]})[2]["Service"]["SourceConfiguration"]
    assert code["CodeRepository"]["CodeConfiguration"] == {"ConfigurationSource": "REPOSITORY"}


def test_an_inactive_connector_reaches_nothing(load):
    """INACTIVE: deleted, can't be used. The bundled healthy world with its connector INACTIVE cannot start."""
    import dataclasses

    from runbook_sandbox import load_scenario

    healthy = load_scenario("healthy")
    inactive = dataclasses.replace(healthy, connectors=tuple(dataclasses.replace(c, status="INACTIVE")
                                                             for c in healthy.connectors))
    sb = load(inactive)
    healthy_now, reasons = sb.app_health("nerava-backend")
    assert not healthy_now
    assert any("VPC connector nerava-vpc-connector (INACTIVE) does not exist or has no subnets" in r for r in reasons), reasons
