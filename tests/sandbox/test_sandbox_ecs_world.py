"""ECS services in the Sandbox: built from a scenario's ``ecs_services``, their tasks judged by the
ground truth (reachability from the task's subnet and security groups), boto3's real client over
HTTP on the sandbox's ECS emulator and moto."""

from __future__ import annotations

import ipaddress

import pytest

from runbook.errors import UsageError
from runbook_sandbox.scenario import SCENARIO_DIR, load_scenario, scenario_from_data

SERVICE = "nerava-backend"
LOG_GROUP = "/ecs/nerava-backend"
ESSENTIAL = "Essential container in task exited"


def describe(ecs) -> dict:
    return ecs.describe_services(cluster="default", services=[SERVICE])["services"][0]


def tasks(ecs, status: str) -> list[dict]:
    arns = ecs.list_tasks(cluster="default", serviceName=SERVICE, desiredStatus=status)["taskArns"]
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []


def completed(ecs, deployment_id: str | None = None):
    def check() -> dict | None:
        service = describe(ecs)
        primary = service["deployments"][0]
        done = (len(service["deployments"]) == 1 and primary["rolloutState"] == "COMPLETED"
                and (deployment_id is None or primary["id"] == deployment_id))
        return service if done else None
    return check


def failed(ecs):
    def check() -> dict | None:
        service = describe(ecs)
        return service if service["deployments"][0]["rolloutState"] == "FAILED" else None
    return check


def eni(task: dict) -> dict[str, str]:
    (attachment,) = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    return {d["name"]: d["value"] for d in attachment["details"]}


def app_log(sb) -> list[str]:
    logs = sb.client("logs")
    lines: list[str] = []
    for stream in logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]:
        lines += [e["message"] for e in logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"])["events"]]
    return lines


def test_the_sandbox_exports_and_serves_its_ecs_endpoint(load):
    sb = load("ecs-healthy")
    url = sb.env["AWS_ENDPOINT_URL_ECS"]
    assert url.startswith("http://127.0.0.1:") and url != sb.env["AWS_ENDPOINT_URL_APPRUNNER"]
    assert f"export AWS_ENDPOINT_URL_ECS={url}" in sb.export_lines()
    ecs = sb.client("ecs")
    assert ecs.meta.endpoint_url == url
    assert ecs.list_services(cluster="default")["serviceArns"] == [sb.ids[f"ecs-service:{SERVICE}"]]
    td = ecs.describe_task_definition(taskDefinition="nerava-backend")["taskDefinition"]
    (container,) = td["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    address = sb.client("elasticache").describe_replication_groups(ReplicationGroupId="nerava-redis")[
        "ReplicationGroups"][0]["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    assert env["REDIS_URL"] == f"redis://{address}:6379/0"  # placeholders filled in from moto
    assert container["logConfiguration"]["options"]["awslogs-group"] == LOG_GROUP
    assert sb.client("logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]


def test_the_healthy_twin_completes_with_tasks_in_their_subnets(load, waiter, get):
    sb = load("ecs-healthy")
    ecs, ec2, elbv2 = sb.client("ecs"), sb.client("ec2"), sb.client("elbv2")
    service = waiter(completed(ecs), timeout=20)
    assert service["runningCount"] == service["desiredCount"] == 2
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert network["securityGroups"] == [sb.ids["sg:task-sg"]]
    assert network["assignPublicIp"] == "DISABLED"
    cidrs = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=network["subnets"])["Subnets"]}
    running = tasks(ecs, "RUNNING")
    assert len(running) == 2
    assert {eni(t)["subnetId"] for t in running} == {sb.ids["subnet:private-a"], sb.ids["subnet:private-b"]}
    for task in running:
        details = eni(task)
        assert ipaddress.ip_address(details["privateIPv4Address"]) in ipaddress.ip_network(cidrs[details["subnetId"]])
    assert not tasks(ecs, "STOPPED")
    targets = elbv2.describe_target_health(TargetGroupArn=sb.ids["target-group:nerava-tg"])["TargetHealthDescriptions"]
    assert sorted((t["Target"]["Id"], t["Target"]["Port"], t["TargetHealth"]["State"]) for t in targets) == sorted(
        (eni(t)["privateIPv4Address"], 8000, "healthy") for t in running)
    (lb,) = elbv2.describe_load_balancers(Names=["nerava-alb"])["LoadBalancers"]
    status, headers, body = get(f"http://{lb['DNSName']}/healthz")
    assert (status, headers["server"], body) == (200, "uvicorn", b'{"status":"ok"}')
    assert any("Application startup complete." in line for line in app_log(sb))
    assert [e for e in sb.history() if e.kind == "error"] == []


def test_the_field_reports_tasks_exit_on_the_cache_and_the_deployment_fails(load, waiter):
    sb = load("ecs-field-report")
    ecs = sb.client("ecs")
    service = waiter(failed(ecs), timeout=20)
    primary = service["deployments"][0]
    assert primary["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert primary["failedTasks"] >= 3 and primary["runningCount"] == service["runningCount"] == 0
    assert any("unable to consistently start tasks successfully" in e["message"] for e in service["events"])
    stopped = tasks(ecs, "STOPPED")
    assert len(stopped) >= 3
    for task in stopped:
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == ESSENTIAL
        assert task["containers"][0]["exitCode"] == 1
    lines = app_log(sb)
    assert any(line.startswith("redis.exceptions.ConnectionError: Error 110 connecting to ") for line in lines)
    assert "ERROR:    Application startup failed. Exiting." in lines
    assert not any("psycopg2" in line for line in lines)  # the database is reachable from the task group
    deployments = ecs.list_service_deployments(cluster="default", service=SERVICE)["serviceDeployments"]
    assert [d["status"] for d in deployments] == ["STOPPED"]  # rollback off: nothing rolls back
    stopped_events = [e for e in sb.history() if e.kind == "ecs-task" and e.data["status"] == "STOPPED"]
    assert stopped_events and all(e.data["stop_code"] == "EssentialContainerExited" for e in stopped_events)


def test_authorizing_6379_then_a_forced_deployment_completes(load, waiter):
    sb = load("ecs-field-report")
    ecs, ec2 = sb.client("ecs"), sb.client("ec2")
    waiter(failed(ecs), timeout=20)
    ec2.authorize_security_group_ingress(GroupId=sb.ids["sg:default"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
        "UserIdGroupPairs": [{"GroupId": sb.ids["sg:task-sg"]}]}])
    new = ecs.update_service(cluster="default", service=SERVICE, forceNewDeployment=True)["service"]
    new_id = new["deployments"][0]["id"]
    service = waiter(completed(ecs, new_id), timeout=20)
    assert service["runningCount"] == 2
    assert all(eni(t)["privateIPv4Address"] for t in tasks(ecs, "RUNNING"))
    statuses = [d["status"] for d in ecs.list_service_deployments(cluster="default", service=SERVICE)[
        "serviceDeployments"]]
    assert sorted(statuses) == ["STOPPED", "SUCCESSFUL"]


def test_a_task_group_kept_out_of_the_database_fails_too(load, yaml_scenario, waiter):
    """The judge reads the task's own group: the database's rule names another group."""
    text = (SCENARIO_DIR / "ecs-healthy.yaml").read_text()
    text = text.replace("{protocol: tcp, port: 5432, source_group: task-sg",
                        "{protocol: tcp, port: 5432, source_group: other-sg")
    text = text.replace("security_groups:\n  task-sg:", "security_groups:\n  other-sg:\n    description: unrelated\n"
                                                       "    ingress: []\n  task-sg:")
    sb = load(yaml_scenario(text))
    ecs = sb.client("ecs")
    waiter(failed(ecs), timeout=20)
    assert {t["stoppedReason"] for t in tasks(ecs, "STOPPED")} == {ESSENTIAL}
    assert any(line.startswith("psycopg2.OperationalError: connection to server at ") for line in app_log(sb))


def _data(name: str) -> dict:
    import yaml

    return yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text())


@pytest.mark.parametrize("change,expected", [
    (lambda s: s.update(subnets=["nowhere"]), "ecs_services[0].subnets[0]: no subnet 'nowhere'"),
    (lambda s: s.update(security_groups=["nope"]), "ecs_services[0].security_groups[0]: no security group 'nope'"),
    (lambda s: s.update(circuit_breaker={"enable": False, "rollback": True}),
     "ecs_services[0].circuit_breaker.rollback: a rollback needs enable: true"),
    (lambda s: s.update(desired_count=-1), "ecs_services[0].desired_count: must be between 0 and 100"),
    (lambda s: s.update(speed=3), "ecs_services[0].speed: unknown key"),
    (lambda s: s.pop("task_definition"), "ecs_services[0].task_definition: required"),
    (lambda s: s["task_definition"].update(port=70000), "ecs_services[0].task_definition.port: must be a port"),
    (lambda s: s["task_definition"]["environment"].update(X="${cache.gone.address}"),
     "ecs_services[0].task_definition.environment.X: ${cache.gone.address} names no cache 'gone'"),
    (lambda s: s["task_definition"].update(secrets={"TOKEN": "missing"}),
     "ecs_services[0].task_definition.secrets.TOKEN.secret: no secret 'missing'"),
    (lambda s: s["app"]["needs"].update(x="not a var"), "ecs_services[0].app.needs.x: 'not a var' is not"),
    (lambda s: s.update(name="bad name!"), "ecs_services[0].name: 'bad name!' is not a valid ECS service name"),
])
def test_ecs_services_are_validated_in_one_line(change, expected):
    data = _data("ecs-field-report")
    change(data["ecs_services"][0])
    with pytest.raises(UsageError) as err:
        scenario_from_data(data, label="ecs.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"scenario ecs.yaml: {expected}"), message


def test_ecs_services_defaults():
    data = _data("ecs-healthy")
    service = data["ecs_services"][0]
    for key in ("cluster", "assign_public_ip", "desired_count", "circuit_breaker"):
        service.pop(key)
    (parsed,) = scenario_from_data(data).ecs_services
    assert (parsed.cluster, parsed.assign_public_ip, parsed.desired_count) == ("default", False, 1)
    assert (parsed.circuit_breaker, parsed.rollback) == (False, False)
    assert parsed.app.port == "8000"  # the app listens on the container port unless told
    assert load_scenario("ecs-healthy").ecs_service(SERVICE).task_definition.log_stream_prefix == "ecs"


def test_one_image_is_one_app():
    import copy

    data = _data("ecs-healthy")
    twin = copy.deepcopy(data["ecs_services"][0])
    twin["name"] = "nerava-worker"
    twin["app"]["needs"] = {"cache": "REDIS_URL"}
    data["ecs_services"].append(twin)
    with pytest.raises(UsageError, match=r"^scenario ecs.yaml: ecs_services\[1\].task_definition.image: ECS service "
                                         r"'nerava-backend' runs the same image with a different app"):
        scenario_from_data(data, label="ecs.yaml")
    twin["app"] = copy.deepcopy(data["ecs_services"][0]["app"])
    assert [s.name for s in scenario_from_data(data).ecs_services] == ["nerava-backend", "nerava-worker"]


def test_stop_aws_takes_the_ecs_endpoint_down_and_back(load, waiter):
    import botocore.exceptions

    sb = load("ecs-healthy")
    ecs = sb.client("ecs")
    waiter(completed(ecs), timeout=20)
    sb.stop_aws()
    try:
        assert not sb.aws_up
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            sb.client("ecs").list_clusters()
    finally:
        sb.start_aws()
    assert sb.aws_up
    assert describe(sb.client("ecs"))["runningCount"] == 2  # same port, same world
