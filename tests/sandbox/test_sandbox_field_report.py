"""The bundled field-report scenario reproduces the seed report, and behaves like AWS over time."""

from __future__ import annotations

from urllib.parse import urlsplit

from runbook_sandbox import Sandbox, bundled_scenarios, load_scenario


def test_bundled_scenarios_are_listed():
    assert {"field-report", "healthy"} <= set(bundled_scenarios())


def test_every_bundled_scenario_loads_and_builds(load):
    for name in bundled_scenarios():
        scenario = load_scenario(name)
        sb = load(scenario)
        assert sb.ids[f"vpc:{scenario.vpcs[0].name}"].startswith("vpc-")
        for service in scenario.services:
            assert sb.ids[f"service:{service.name}"].startswith("arn:aws:apprunner:")
            assert sb.service_state(service.name)["status"] == service.status


def test_connector_group_has_no_6379_on_the_cache_group(load):
    sb = load("field-report")
    ec2 = sb.client("ec2")
    cluster = sb.client("elasticache").describe_cache_clusters(CacheClusterId="nerava-redis-001")["CacheClusters"][0]
    cache_groups = [g["SecurityGroupId"] for g in cluster["SecurityGroups"]]
    assert cache_groups == [sb.ids["sg:default"]]
    group = ec2.describe_security_groups(GroupIds=cache_groups)["SecurityGroups"][0]
    assert group["GroupName"] == "default"
    connector_sg = sb.ids["sg:connector-sg"]
    for perm in group["IpPermissions"]:
        covers_6379 = perm["IpProtocol"] == "-1" or perm.get("FromPort", 0) <= 6379 <= perm.get("ToPort", -1)
        names_connector = any(p["GroupId"] == connector_sg for p in perm["UserIdGroupPairs"])
        assert not (covers_6379 and names_connector), perm
    # ...while a rule from the connector group does exist (on 5432): the trap the report fell into.
    assert any(perm.get("FromPort") == 5432 and any(p["GroupId"] == connector_sg for p in perm["UserIdGroupPairs"])
               for perm in group["IpPermissions"])


def test_database_group_is_open_to_the_internet_on_5432(load):
    sb = load("field-report")
    db = sb.client("rds").describe_db_instances(DBInstanceIdentifier="nerava-db")["DBInstances"][0]
    group_id = db["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    rules = sb.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    assert any(not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0" and r["FromPort"] <= 5432 <= r["ToPort"]
               for r in rules)
    assert any(not r["IsEgress"] and r.get("ReferencedGroupInfo", {}).get("GroupId") == sb.ids["sg:connector-sg"]
               for r in rules)


def test_connector_matches_the_report(load):
    sb = load("field-report")
    connector = sb.client("apprunner").describe_vpc_connector(
        VpcConnectorArn=sb.ids["connector:nerava-vpc-connector"])["VpcConnector"]
    assert connector["Status"] == "ACTIVE"
    assert connector["Subnets"] == [sb.ids["subnet:private-a"], sb.ids["subnet:private-b"]]
    assert connector["SecurityGroups"] == [sb.ids["sg:connector-sg"]]
    group = sb.client("ec2").describe_security_groups(GroupIds=connector["SecurityGroups"])["SecurityGroups"][0]
    assert group["GroupName"] == "nerava-apprunner-vpc-connector"


def test_service_is_creating_with_a_password_in_database_url(load):
    sb = load("field-report")
    apprunner = sb.client("apprunner")
    service = apprunner.describe_service(ServiceArn=sb.ids["service:nerava-backend"])["Service"]
    assert service["Status"] == "OPERATION_IN_PROGRESS"
    assert service["NetworkConfiguration"]["EgressConfiguration"] == {
        "EgressType": "VPC", "VpcConnectorArn": sb.ids["connector:nerava-vpc-connector"]}
    ops = apprunner.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"]
    assert [(o["Type"], o["Status"]) for o in ops] == [("CREATE_SERVICE", "IN_PROGRESS")]
    image = service["SourceConfiguration"]["ImageRepository"]
    assert image["ImageRepositoryType"] == "ECR_PUBLIC"
    assert image["ImageConfiguration"]["Port"] == "8000"
    env = image["ImageConfiguration"]["RuntimeEnvironmentVariables"]
    db_url = urlsplit(env["DATABASE_URL"])
    assert db_url.password == "S3cr3t-pw" and db_url.username == "nerava_admin"
    rds_endpoint = sb.client("rds").describe_db_instances()["DBInstances"][0]["Endpoint"]
    assert (db_url.hostname, db_url.port) == (rds_endpoint["Address"], rds_endpoint["Port"])
    primary = sb.client("elasticache").describe_replication_groups()["ReplicationGroups"][0]["NodeGroups"][0]
    assert env["REDIS_URL"] == f"redis://{primary['PrimaryEndpoint']['Address']}:6379/0"
    assert service["HealthCheckConfiguration"]["Protocol"] == "HTTP"
    assert service["HealthCheckConfiguration"]["Path"] == "/healthz"


def test_logs_hold_the_report_signatures(load):
    sb = load("field-report")
    logs = sb.client("logs")
    service_id = sb.ids["service-id:nerava-backend"]
    app = logs.filter_log_events(logGroupName=f"/aws/apprunner/nerava-backend/{service_id}/application")["events"]
    redis_host = sb.client("elasticache").describe_replication_groups()["ReplicationGroups"][0][
        "NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert any(e["message"] == f"redis.exceptions.ConnectionError: Error 110 connecting to {redis_host}:6379. "
                               "Connection timed out." for e in app)
    service = logs.filter_log_events(logGroupName=f"/aws/apprunner/nerava-backend/{service_id}/service")["events"]
    assert any(e["message"] == "[AppRunner] Health check failed on protocol `HTTP`[Path: '/healthz'], [Port: '8000']"
               for e in service)
    assert not any("S3cr3t" in e["message"] for e in app + service)


def test_ground_truth_names_the_cache_rule(load):
    sb = load("field-report")
    healthy, reasons = sb.app_health("nerava-backend")
    assert not healthy
    assert len(reasons) == 1
    assert reasons[0].startswith("cache nerava-redis:6379 unreachable: no ingress on " + sb.ids["sg:default"])
    assert sb.ids["sg:connector-sg"] in reasons[0]
    verdicts = {v.label: v for v in sb.dependencies("nerava-backend")}
    assert verdicts["database"].reachable and not verdicts["cache"].reachable


def test_first_deployment_fails_without_the_rule(load, get):
    sb = load("field-report")
    url = "http://" + sb.service_state("nerava-backend")["url"]
    assert get(url + "/healthz")[0] == 404
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "CREATE_FAILED"
    assert [(o["Type"], o["Status"]) for o in state["operations"]] == [("CREATE_SERVICE", "FAILED")]
    assert state["serving"] is False
    logs = sb.client("logs")
    group = sb.ids["log-group:nerava-backend/service"]
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert "[AppRunner] Deployment failed. Failure reason: Health check failed." in messages
    finished = [e for e in sb.history() if e.kind == "operation-finished"]
    assert finished[-1].data["result"] == "FAILED"
    cache = [d for d in finished[-1].data["dependencies"] if d["label"] == "cache"][0]
    assert cache["reachable"] is False


def test_first_deployment_succeeds_when_the_rule_lands_in_time(load, get):
    sb: Sandbox = load("field-report")
    sb.client("ec2").authorize_security_group_ingress(
        GroupId=sb.ids["sg:default"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                        "UserIdGroupPairs": [{"GroupId": sb.ids["sg:connector-sg"]}]}],
    )
    assert sb.app_health("nerava-backend") == (True, [])
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "RUNNING" and state["serving"] is True
    assert state["operations"][0]["Status"] == "SUCCEEDED"
    status, headers, body = get("http://" + state["url"] + "/healthz")
    assert (status, body) == (200, b'{"status":"ok"}')
    assert headers["server"] == "envoy" and "x-envoy-upstream-service-time" in headers
    flips = [e.data for e in sb.history() if e.kind == "reachability" and e.data["label"] == "cache"]
    assert [f["reachable"] for f in flips] == [False, True], [(f["cause"], f["reasons"]) for f in flips]
    assert flips[1]["cause"] == "ec2:AuthorizeSecurityGroupIngress"


def test_rebuild_after_create_failed_needs_update_service(load):
    sb = load("field-report")
    sb.wait_idle("nerava-backend")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    try:
        apprunner.start_deployment(ServiceArn=arn)
    except apprunner.exceptions.InvalidStateException as err:
        assert "UpdateService" in str(err)
    else:
        raise AssertionError("StartDeployment on CREATE_FAILED must be refused")
    sb.client("ec2").authorize_security_group_ingress(
        GroupId=sb.ids["sg:default"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                        "UserIdGroupPairs": [{"GroupId": sb.ids["sg:connector-sg"]}]}],
    )
    current = apprunner.describe_service(ServiceArn=arn)["Service"]
    apprunner.update_service(ServiceArn=arn, SourceConfiguration={
        "ImageRepository": current["SourceConfiguration"]["ImageRepository"]})
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "RUNNING"
    assert [(o["Type"], o["Status"]) for o in state["operations"]] == [
        ("UPDATE_SERVICE", "SUCCEEDED"), ("CREATE_SERVICE", "FAILED")]


def test_failed_rebuild_stays_create_failed(load):
    sb = load("field-report")
    sb.wait_idle("nerava-backend")
    apprunner = sb.client("apprunner")
    arn = sb.ids["service:nerava-backend"]
    apprunner.update_service(ServiceArn=arn, HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/healthz"})
    state = sb.wait_idle("nerava-backend")
    assert state["status"] == "CREATE_FAILED"
    assert state["operations"][0]["Status"] == "FAILED"


def test_env_and_region_for_a_second_shell(load):
    sb = load("field-report")
    assert sb.env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert sb.env["AWS_ACCESS_KEY_ID"] == "testing" and sb.env["AWS_SECRET_ACCESS_KEY"] == "testing"
    lines = sb.export_lines()
    assert f"export AWS_ENDPOINT_URL={sb.env['AWS_ENDPOINT_URL']}" in lines
    assert f"export AWS_ENDPOINT_URL_APPRUNNER={sb.env['AWS_ENDPOINT_URL_APPRUNNER']}" in lines


def test_plain_boto3_with_sandbox_env_reaches_both_servers(load, monkeypatch):
    import boto3

    sb = load("field-report")
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in sb.env.items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session()
    assert session.client("apprunner").list_services()["ServiceSummaryList"][0]["ServiceName"] == "nerava-backend"
    assert session.client("ec2").describe_vpcs(VpcIds=[sb.ids["vpc:main"]])["Vpcs"]
