"""The ECS emulator: every answer checked against botocore's ECS model, boto3's real client over HTTP.

Each test runs its own emulator on loopback with short timers; subnets come
from an injected network (one test reads them from moto's EC2 instead).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import boto3
import botocore.session
import pytest

from runbook_sandbox.emulators.ecs import EcsEmulator
from runbook_sandbox.emulators.ecs_scheduler import StopReason, Subnet, ec2_network

MODEL = botocore.session.get_session().get_service_model("ecs")
SUBNETS = {
    ("us-east-1", "subnet-aaa"): Subnet("subnet-aaa", "10.0.1.0/24", "us-east-1a", "vpc-1"),
    ("us-east-1", "subnet-bbb"): Subnet("subnet-bbb", "10.0.2.0/28", "us-east-1b", "vpc-1"),
    ("us-west-2", "subnet-www"): Subnet("subnet-www", "172.16.0.0/24", "us-west-2a", "vpc-2"),
}
IMAGE_V1 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1"
IMAGE_V2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2"
PULL_FAILURE = StopReason(
    "TaskFailedToStart",
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    f"{IMAGE_V2}: dial tcp 52.94.1.1:443: i/o timeout",
    container_reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)")
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def network(region: str, subnet_id: str) -> Subnet | None:
    return SUBNETS.get((region, subnet_id))


class Judge:
    """Fails tasks whose image is in ``failing``; records every call."""

    def __init__(self) -> None:
        self.failing: dict[str, StopReason] = {}
        self.calls: list[tuple[dict, dict, Subnet, str]] = []
        self.lock = threading.Lock()

    def __call__(self, service: dict, task_definition: dict, subnet: Subnet, assign_public_ip: str) -> StopReason | None:
        with self.lock:
            self.calls.append((service, task_definition, subnet, assign_public_ip))
        return self.failing.get(task_definition["containerDefinitions"][0]["image"])


@pytest.fixture
def judge() -> Judge:
    return Judge()


@pytest.fixture
def emulator(judge: Judge):
    emu = EcsEmulator(judge=judge, network=network, deploy_seconds=0.15)
    emu.start()
    yield emu
    emu.stop()


# ---------------------------------------------------------------------- the strict shape checker


def shape_errors(shape: Any, value: Any, path: str = "$") -> list[str]:
    """Every way ``value`` (raw JSON) strays from the botocore ``shape``: unknown or missing
    members, wrong types, enum values, length and range limits."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object for {shape.name}, got {type(value).__name__}"]
        errors = [f"{path}.{k}: not a member of {shape.name}" for k in value if k not in shape.members]
        errors += [f"{path}.{k}: required member of {shape.name} missing" for k in shape.required_members
                   if k not in value]
        for key, item in value.items():
            if key in shape.members:
                errors += shape_errors(shape.members[key], item, f"{path}.{key}")
        return errors
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected list for {shape.name}"]
        return [e for i, item in enumerate(value) for e in shape_errors(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected map for {shape.name}"]
        return [e for k, item in value.items()
                for e in shape_errors(shape.key, k, f"{path}<key>") + shape_errors(shape.value, item, f"{path}[{k!r}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string for {shape.name}, got {type(value).__name__}"]
        errors = [f"{path}: {value!r} not in enum {shape.name}"] if shape.enum and value not in shape.enum else []
        if "min" in meta and len(value) < meta["min"] or "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: length {len(value)} outside {meta.get('min')}..{meta.get('max')}")
        return errors
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected integer for {shape.name}, got {type(value).__name__}"]
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            return [f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean, got {type(value).__name__}"]
    if kind in ("timestamp", "double", "float"):
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        return [] if ok else [f"{path}: expected a number for {kind}, got {type(value).__name__}"]
    return [f"{path}: unchecked shape type {kind}"]


def check_answer(operation: str, status: int, body: dict) -> list[str]:
    """A 200 answer against the operation's output shape; an error against its exception shape,
    which must be one the operation (or every ECS operation) may raise."""
    op = MODEL.operation_model(operation)
    if status == 200:
        return shape_errors(op.output_shape, body)
    if set(body) != {"__type", "message"}:
        return [f"error body {body}"]
    errors = [] if body["__type"] in {e.name for e in op.error_shapes} else [
        f"{operation} may not raise {body['__type']}"]
    return errors + shape_errors(MODEL.shape_for(body["__type"]), {"message": body["message"]})


def checked_client(url: str, region: str, problems: list[str]):
    """A boto3 ECS client on ``url`` whose every raw answer is shape-checked into ``problems``."""

    def check(http_response, model, **_: Any) -> None:
        problems.extend(f"{model.name}: {e}" for e in check_answer(
            model.name, http_response.status_code, json.loads(http_response.content or b"{}")))

    client = boto3.client("ecs", endpoint_url=url, region_name=region, aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # noqa: S106 - moto's dummy credentials
    client.meta.events.register("after-call.ecs", check)
    return client


@pytest.fixture
def ecs(emulator: EcsEmulator) -> Callable[..., Any]:
    """ecs(region="us-east-1"): a boto3 ECS client on the emulator; every raw answer it gets is shape-checked."""
    problems: list[str] = []
    yield lambda region="us-east-1": checked_client(emulator.url, region, problems)
    assert not problems, "\n".join(problems)


@pytest.fixture
def raw(emulator: EcsEmulator) -> Callable[[str, dict], tuple[int, dict, dict]]:
    def call(operation: str, params: dict) -> tuple[int, dict, dict]:
        request = urllib.request.Request(emulator.url + "/", data=json.dumps(params).encode(), method="POST", headers={
            "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}",
            "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), json.loads(err.read())

    return call


def register(client, image: str = IMAGE_V1, family: str = "app", **more: Any) -> str:
    return client.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        containerDefinitions=[{
            "name": "web", "image": image, "portMappings": [{"containerPort": 8000}],
            "environment": [{"name": "REDIS_URL", "value": "redis://cache.internal:6379/0"}],
            "secrets": [{"name": "DATABASE_URL",
                         "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/app", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}}}],
        **more)["taskDefinition"]["taskDefinitionArn"]


def create(client, name: str = "web", *, desired: int = 1, subnets=("subnet-aaa",), public: str | None = "ENABLED",
           cluster: str = "default", **more: Any) -> dict:
    vpc: dict[str, Any] = {"subnets": list(subnets), "securityGroups": ["sg-task"]}
    if public is not None:
        vpc["assignPublicIp"] = public
    return client.create_service(cluster=cluster, serviceName=name, taskDefinition="app", desiredCount=desired,
                                 networkConfiguration={"awsvpcConfiguration": vpc}, **more)["service"]


def describe(client, name: str = "web", cluster: str = "default") -> dict:
    return client.describe_services(cluster=cluster, services=[name])["services"][0]


def settled(client, name: str = "web", cluster: str = "default") -> Callable[[], dict | None]:
    """A waiter predicate: the service once its PRIMARY deployment is COMPLETED and it is alone."""
    def check() -> dict | None:
        service = describe(client, name, cluster)
        done = len(service["deployments"]) == 1 and service["deployments"][0]["rolloutState"] == "COMPLETED"
        return service if done else None
    return check


def tasks(client, name: str = "web", status: str = "RUNNING") -> list[dict]:
    arns = client.list_tasks(cluster="default", serviceName=name, desiredStatus=status)["taskArns"]
    return client.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []


def details(task: dict) -> dict[str, str]:
    (eni,) = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    return {d["name"]: d["value"] for d in eni["details"]}


# ---------------------------------------------------------------------- shapes on the wire


def test_every_operation_answers_in_the_models_shape(emulator, ecs, raw, waiter):
    client = ecs()
    client.create_cluster(clusterName="default")
    register(client)
    create(client, desired=2, subnets=("subnet-aaa", "subnet-bbb"), deploymentConfiguration=BREAKER)
    waiter(settled(client))
    service = describe(client)
    task_arn = tasks(client)[0]["taskArn"]
    sd_arn = service["currentServiceDeployment"]
    express = client.create_express_gateway_service(
        serviceName="exp", infrastructureRoleArn="arn:aws:iam::123456789012:role/ecsInfrastructureRole",
        primaryContainer={"image": IMAGE_V1}, networkConfiguration={"subnets": ["subnet-aaa"]})["service"]
    calls = [
        ("CreateCluster", {"clusterName": "other"}), ("DescribeClusters", {}), ("DescribeClusters", {"clusters": ["nope"]}),
        ("ListClusters", {}), ("DescribeTaskDefinition", {"taskDefinition": "app:1", "include": ["TAGS"]}),
        ("ListTaskDefinitions", {}), ("DescribeServices", {"cluster": "default", "services": ["web", "nope"]}),
        ("ListServices", {}), ("ListTasks", {"serviceName": "web"}),
        ("DescribeTasks", {"tasks": [task_arn, "0" * 32]}),
        ("ListServiceDeployments", {"service": "web"}),
        ("DescribeServiceDeployments", {"serviceDeploymentArns": [sd_arn]}),
        ("DescribeServiceRevisions", {"serviceRevisionArns": [service["currentServiceRevisions"][0]["arn"]]}),
        ("DescribeExpressGatewayService", {"serviceArn": express["serviceArn"], "include": ["TAGS"]}),
        ("DescribeServiceRevisions", {"serviceRevisionArns": [express["activeConfigurations"][0]["serviceRevisionArn"]]}),
        ("UpdateService", {"service": "web", "forceNewDeployment": True}),
        ("UpdateExpressGatewayService", {"serviceArn": express["serviceArn"], "healthCheckPath": "/healthz"}),
        ("UpdateService", {"service": "web", "desiredCount": 0}),
        ("DeleteService", {"service": "web"}),
        ("DeleteExpressGatewayService", {"serviceArn": express["serviceArn"]}),
    ]
    for operation, params in calls:
        status, headers, body = raw(operation, params)
        assert status == 200, (operation, body)
        assert headers["Content-Type"] == "application/x-amz-json-1.1"
        assert check_answer(operation, status, body) == [], operation
    assert service["serviceArn"] == "arn:aws:ecs:us-east-1:123456789012:service/default/web"
    assert service["taskDefinition"] == "arn:aws:ecs:us-east-1:123456789012:task-definition/app:1"
    assert service["deployments"][0]["id"].startswith("ecs-svc/")
    assert sd_arn.startswith("arn:aws:ecs:us-east-1:123456789012:service-deployment/default/web/")
    status, _, body = raw("NoSuchThing", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"


def test_task_definitions_keep_what_the_app_needs(ecs):
    client = ecs()
    first = register(client)
    second = register(client, IMAGE_V2)
    assert (first.rsplit(":", 1)[1], second.rsplit(":", 1)[1]) == ("1", "2")
    latest = client.describe_task_definition(taskDefinition="app")["taskDefinition"]
    assert latest["taskDefinitionArn"] == second and latest["networkMode"] == "awsvpc"
    (web,) = client.describe_task_definition(taskDefinition=first)["taskDefinition"]["containerDefinitions"]
    assert web["image"] == IMAGE_V1 and web["essential"] is True
    assert web["portMappings"] == [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}]
    assert web["environment"] == [{"name": "REDIS_URL", "value": "redis://cache.internal:6379/0"}]
    assert web["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")
    assert web["logConfiguration"]["options"]["awslogs-group"] == "/ecs/app"
    with pytest.raises(client.exceptions.ClientException):
        client.describe_task_definition(taskDefinition="app:3")


# ---------------------------------------------------------------------- the scheduler


def test_a_healthy_service_completes_with_tasks_in_their_subnets(ecs, judge, waiter):
    client = ecs()
    client.create_cluster()
    register(client)
    created = create(client, desired=3, subnets=("subnet-aaa", "subnet-bbb"), deploymentConfiguration=BREAKER)
    assert created["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert created["pendingCount"] == 3 and created["runningCount"] == 0
    service = waiter(settled(client))
    (primary,) = service["deployments"]
    assert (service["runningCount"], service["pendingCount"], primary["failedTasks"]) == (3, 0, 0)
    assert primary["rolloutStateReason"] == f"ECS deployment {primary['id']} completed."
    messages = [e["message"] for e in service["events"]]
    assert messages[0] == "(service web) has reached a steady state."
    assert messages[1] == f"(service web) (deployment {primary['id']}) deployment completed."
    running = tasks(client)
    assert len(running) == 3 and {t["lastStatus"] for t in running} == {"RUNNING"}
    seen = set()
    for task in running:
        d = details(task)
        subnet = SUBNETS[("us-east-1", d["subnetId"])]
        assert ipaddress.ip_address(d["privateIPv4Address"]) in ipaddress.ip_network(subnet.cidr)
        assert d["networkInterfaceId"].startswith("eni-") and task["availabilityZone"] == subnet.availability_zone
        assert task["group"] == "service:web" and task["startedBy"] == primary["id"]
        seen.add(d["privateIPv4Address"])
    assert len(seen) == 3
    assert {details(t)["subnetId"] for t in running} == {"subnet-aaa", "subnet-bbb"}
    (brief,) = client.list_service_deployments(service="web")["serviceDeployments"]
    assert brief["status"] == "SUCCESSFUL"
    assert brief["targetServiceRevisionArn"] == service["currentServiceRevisions"][0]["arn"]
    (sd,) = client.describe_service_deployments(serviceDeploymentArns=[brief["serviceDeploymentArn"]])["serviceDeployments"]
    assert sd["targetServiceRevision"]["runningTaskCount"] == 3
    assert sd["deploymentCircuitBreaker"] == {"status": "MONITORING_COMPLETE", "failureCount": 0, "threshold": 3}
    # What the judge saw: the service, its task definition, each task's subnet and public IP setting.
    svc, td, subnet, public = judge.calls[0]
    assert svc["serviceName"] == "web" and td["containerDefinitions"][0]["image"] == IMAGE_V1
    assert subnet.subnet_id in ("subnet-aaa", "subnet-bbb") and public == "ENABLED"


def test_failing_tasks_trip_the_circuit_breaker_and_roll_back(emulator, ecs, judge, waiter):
    emulator.deploy_seconds = 0.4  # the rollback is visible for a deploy_seconds
    client = ecs()
    client.create_cluster()
    register(client)
    create(client, deploymentConfiguration=BREAKER)
    first = waiter(settled(client))["deployments"][0]
    first_revision = describe(client)["currentServiceRevisions"][0]["arn"]
    old_task = tasks(client)[0]["taskArn"]
    judge.failing[IMAGE_V2] = PULL_FAILURE
    v2 = register(client, IMAGE_V2)
    updated = client.update_service(cluster="default", service="web", taskDefinition=v2)["service"]
    second = updated["deployments"][0]
    assert (second["status"], second["taskDefinition"], updated["deployments"][1]["id"]) == ("PRIMARY", v2, first["id"])

    def rolling_back() -> dict | None:
        service = describe(client)
        return service if service["deployments"][0]["id"] == first["id"] and len(service["deployments"]) == 2 else None

    during = waiter(rolling_back, timeout=20)
    restored, failed = during["deployments"]
    assert restored["status"] == "PRIMARY" and restored["rolloutState"] == "IN_PROGRESS"
    assert failed == dict(failed, id=second["id"], status="ACTIVE", desiredCount=0, rolloutState="FAILED",
                          rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.", failedTasks=3)
    (brief, _) = client.list_service_deployments(service="web")["serviceDeployments"]
    assert brief["status"] == "ROLLBACK_IN_PROGRESS"
    service = waiter(settled(client), timeout=20)
    assert service["taskDefinition"].endswith("app:1") and service["deployments"][0]["id"] == first["id"]
    assert service["runningCount"] == 1 and tasks(client)[0]["taskArn"] == old_task  # it served all along
    messages = [e["message"] for e in service["events"]]
    assert f"(service web) (deployment {second['id']}) deployment failed: tasks failed to start." in messages
    assert f"(service web) rolling back to deployment {first['id']}." in messages
    assert messages.index("(service web) has reached a steady state.") == 0
    assert messages.index(f"(service web) rolling back to deployment {first['id']}.") < \
        messages.index(f"(service web) (deployment {second['id']}) deployment failed: tasks failed to start.")
    stopped = tasks(client, status="STOPPED")
    assert len(stopped) == 3
    for task in stopped:
        assert (task["lastStatus"], task["stopCode"], task["stoppedReason"]) == (
            "STOPPED", "TaskFailedToStart", PULL_FAILURE.stopped_reason)
        assert task["containers"][0]["reason"] == PULL_FAILURE.container_reason and "exitCode" not in task["containers"][0]
        assert task["taskDefinitionArn"] == v2 and "startedAt" not in task
        assert ipaddress.ip_address(details(task)["privateIPv4Address"]) in ipaddress.ip_network("10.0.1.0/24")
    briefs = client.list_service_deployments(service="web")["serviceDeployments"]
    assert [b["status"] for b in briefs] == ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]
    (sd,) = client.describe_service_deployments(serviceDeploymentArns=[briefs[0]["serviceDeploymentArn"]])[
        "serviceDeployments"]
    assert sd["rollback"]["serviceRevisionArn"] == first_revision and "circuit breaker" in sd["rollback"]["reason"]
    assert sd["deploymentCircuitBreaker"] == {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}
    assert sd["sourceServiceRevisions"][0]["arn"] == first_revision and "finishedAt" in sd
    assert client.list_service_deployments(service="web", status=["SUCCESSFUL"])["serviceDeployments"] == briefs[1:]


def test_a_failing_first_deployment_has_nothing_to_roll_back_to(ecs, judge, waiter):
    client = ecs()
    client.create_cluster()
    judge.failing[IMAGE_V1] = StopReason("EssentialContainerExited", "Essential container in task exited",
                                         exit_code=1)
    register(client)
    create(client, deploymentConfiguration=BREAKER)

    def failed() -> dict | None:
        service = describe(client)
        return service if service["deployments"][0]["rolloutState"] == "FAILED" else None

    (deployment,) = waiter(failed)["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["failedTasks"] == 3 and deployment["runningCount"] == 0
    stopped = tasks(client, status="STOPPED")
    assert len(stopped) == 3  # and no more: a FAILED deployment launches nothing
    assert {(t["stopCode"], t["stoppedReason"], t["containers"][0]["exitCode"]) for t in stopped} == {
        ("EssentialContainerExited", "Essential container in task exited", 1)}
    assert all("startedAt" in t for t in stopped)  # the app ran, then exited
    (brief,) = client.list_service_deployments(service="web")["serviceDeployments"]
    assert brief["status"] == "ROLLBACK_FAILED"


def test_without_a_circuit_breaker_ecs_keeps_trying(ecs, judge, waiter):
    client = ecs()
    client.create_cluster()
    judge.failing[IMAGE_V1] = PULL_FAILURE
    register(client)
    create(client)
    unstable = ("(service web) is unable to consistently start tasks successfully. For more information, "
                "see the Troubleshooting section of the Amazon ECS Developer Guide.")
    waiter(lambda: len(tasks(client, status="STOPPED")) >= 5)
    service = describe(client)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS" and service["deployments"][0]["failedTasks"] >= 5
    assert [e["message"] for e in service["events"]].count(unstable) == 1
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}


def test_a_new_deployment_supersedes_one_in_flight(ecs, judge, waiter):
    client = ecs()
    client.create_cluster()
    judge.failing[IMAGE_V1] = PULL_FAILURE
    register(client)
    create(client)
    waiter(lambda: tasks(client, status="STOPPED"))
    stuck = describe(client)["deployments"][0]
    judge.failing.clear()  # the cause is fixed: redeploy
    client.update_service(cluster="default", service="web", forceNewDeployment=True)
    service = waiter(settled(client))
    assert service["deployments"][0]["id"] != stuck["id"] and service["runningCount"] == 1
    new, old = client.list_service_deployments(service="web")["serviceDeployments"]
    assert (new["status"], old["status"]) == ("SUCCESSFUL", "STOPPED")
    assert old["finishedAt"] <= new["finishedAt"]


def test_force_new_deployment_starts_a_new_primary(ecs, waiter):
    client = ecs()
    client.create_cluster()
    register(client)
    create(client, desired=2)
    first = waiter(settled(client))["deployments"][0]
    old = {t["taskArn"] for t in tasks(client)}
    updated = client.update_service(cluster="default", service="web", forceNewDeployment=True)["service"]
    assert [(d["status"], d["rolloutState"]) for d in updated["deployments"]] == [
        ("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")]
    assert updated["deployments"][1]["id"] == first["id"] and updated["deployments"][1]["runningCount"] == 2
    service = waiter(settled(client))
    assert service["deployments"][0]["id"] not in (first["id"],)
    assert service["deployments"][0]["taskDefinition"] == first["taskDefinition"]
    new = {t["taskArn"] for t in tasks(client)}
    assert len(new) == 2 and not new & old
    stopped = {t["taskArn"]: t for t in tasks(client, status="STOPPED")}
    assert set(stopped) == old
    assert {t["stopCode"] for t in stopped.values()} == {"ServiceSchedulerInitiated"}
    assert {t["stoppedReason"] for t in stopped.values()} == {
        f"Scaling activity initiated by (deployment {service['deployments'][0]['id']})"}
    assert len(client.list_service_deployments(service="web")["serviceDeployments"]) == 2


def test_update_service_replaces_the_awsvpc_configuration_whole(ecs, judge, waiter):
    client = ecs()
    client.create_cluster()
    register(client)
    create(client, public="ENABLED")
    first = waiter(settled(client))["deployments"][0]
    assert first["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    updated = client.update_service(cluster="default", service="web", networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-bbb"], "securityGroups": ["sg-task"]}})["service"]
    assert updated["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-bbb"], "securityGroups": ["sg-task"], "assignPublicIp": "DISABLED"}
    assert updated["deployments"][0]["id"] != first["id"]
    waiter(settled(client))
    assert details(tasks(client)[0])["subnetId"] == "subnet-bbb"
    assert judge.calls[-1][2].subnet_id == "subnet-bbb" and judge.calls[-1][3] == "DISABLED"


def test_in_place_changes_start_no_deployment(ecs, waiter):
    client = ecs()
    client.create_cluster()
    register(client)
    target_group = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
    create(client, desired=2, loadBalancers=[{"targetGroupArn": target_group, "containerName": "web",
                                              "containerPort": 8000}])
    first = waiter(settled(client))["deployments"][0]
    assert describe(client)["healthCheckGracePeriodSeconds"] == 0
    updated = client.update_service(cluster="default", service="web", healthCheckGracePeriodSeconds=180,
                                    desiredCount=1, deploymentConfiguration=BREAKER)["service"]
    assert updated["healthCheckGracePeriodSeconds"] == 180
    assert updated["deploymentConfiguration"]["deploymentCircuitBreaker"] == BREAKER["deploymentCircuitBreaker"]
    assert updated["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert [d["id"] for d in updated["deployments"]] == [first["id"]] and updated["runningCount"] == 1
    assert len(tasks(client, status="STOPPED")) == 1
    messages = [e["message"] for e in describe(client)["events"]]
    assert f"(service web) registered 1 targets in (target-group {target_group})" in messages
    assert f"(service web) deregistered 1 targets in (target-group {target_group})" in messages
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.update_service(cluster="default", service="web", loadBalancers=[
            {"targetGroupArn": target_group, "containerName": "web", "containerPort": 8080}])


def test_behind_a_load_balancer_tasks_count_once_healthy_and_go_when_unhealthy(emulator, ecs, waiter):
    """With a target health plugged in: RUNNING is not enough; a target unhealthy past the grace period
    (0 here) stops its task, in ECS's words."""
    answer = {"state": "initial", "reason": "Elb.InitialHealthChecking", "description": "Initial health checks in progress"}
    emulator.scheduler.target_health = lambda service, task, lbs: [dict(answer, targetGroupArn=lb["targetGroupArn"])
                                                                   for lb in lbs]
    client = ecs()
    client.create_cluster()
    register(client)
    target_group = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
    create(client, loadBalancers=[{"targetGroupArn": target_group, "containerName": "web", "containerPort": 8000}])
    waiter(lambda: describe(client)["runningCount"] == 1)
    time.sleep(emulator.deploy_seconds)  # initial checks over, still answering initial
    assert describe(client)["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    answer.update(state="healthy", reason=None, description=None)
    emulator.recheck_targets()
    assert describe(client)["deployments"][0]["rolloutState"] == "COMPLETED"
    (task,) = tasks(client)
    answer.update(state="unhealthy", reason="Target.Timeout", description="Request timed out")
    emulator.deploy_seconds = 30  # the replacement stays pending while this test reads
    emulator.recheck_targets()
    (gone,) = tasks(client, status="STOPPED")
    assert (gone["taskArn"], gone["stopCode"]) == (task["taskArn"], "ServiceSchedulerInitiated")
    assert gone["stoppedReason"] == f"Task failed ELB health checks in (target-group {target_group})"
    task_id = task["taskArn"].rsplit("/", 1)[1]
    service = describe(client)
    assert (f"(service web) (task {task_id}) (port 8000) is unhealthy in (target-group {target_group}) due to "
            "(reason Request timed out).") in [e["message"] for e in service["events"]]
    assert service["deployments"][0]["failedTasks"] == 1 and service["pendingCount"] == 1  # its replacement


def test_settle_runs_the_clock_forward(emulator, ecs, judge):
    emulator.deploy_seconds = 3600  # no timer fires during this test
    client = ecs()
    client.create_cluster()
    register(client)
    create(client, desired=2, deploymentConfiguration=BREAKER)
    assert describe(client)["pendingCount"] == 2
    assert emulator.settle() is True
    first = describe(client)["deployments"]
    assert [(d["rolloutState"], d["runningCount"]) for d in first] == [("COMPLETED", 2)]
    judge.failing[IMAGE_V2] = PULL_FAILURE
    client.update_service(service="web", taskDefinition=register(client, IMAGE_V2))
    assert emulator.settle() is True
    service = describe(client)
    assert [d["id"] for d in service["deployments"]] == [first[0]["id"]] and service["runningCount"] == 2
    assert [b["status"] for b in client.list_service_deployments(service="web")["serviceDeployments"]] == [
        "ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]
    client.update_service(service="web", taskDefinition="app:2", deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": False, "rollback": False}})
    assert emulator.settle(rounds=5) is False  # without a circuit breaker ECS never gives up
    assert describe(client)["deployments"][0]["failedTasks"] >= 5


# ---------------------------------------------------------------------- errors


def test_unknown_things_are_not_found(ecs, raw):
    client = ecs()
    with pytest.raises(client.exceptions.ClusterNotFoundException):
        client.list_services()
    client.create_cluster()
    register(client)
    for call in (lambda: client.update_service(service="nope", desiredCount=1),
                 lambda: client.list_tasks(serviceName="nope"),
                 lambda: client.list_service_deployments(service="nope"),
                 lambda: client.delete_service(service="nope")):
        with pytest.raises(client.exceptions.ServiceNotFoundException):
            call()
    missing = client.describe_services(services=["nope"])
    assert missing["services"] == [] and missing["failures"] == [
        {"arn": "arn:aws:ecs:us-east-1:123456789012:service/default/nope", "reason": "MISSING"}]
    assert client.describe_tasks(tasks=["f" * 32])["failures"][0]["reason"] == "MISSING"
    with pytest.raises(client.exceptions.InvalidParameterException) as err:
        create(client, subnets=("subnet-nope",))
    assert "subnet-nope" in err.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.create_service(serviceName="web", taskDefinition="app")  # awsvpc needs a network configuration
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.create_service(serviceName="web", taskDefinition="nope:9", networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-aaa"]}})
    create(client)
    with pytest.raises(client.exceptions.InvalidParameterException):
        create(client)  # not idempotent
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.delete_service(service="web")  # scaled above 0
    client.delete_service(service="web", force=True)
    with pytest.raises(client.exceptions.ServiceNotActiveException):
        client.update_service(service="web", forceNewDeployment=True)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_express_gateway_service(serviceArn="arn:aws:ecs:us-east-1:123456789012:service/default/web")
    with pytest.raises(client.exceptions.ServiceNotFoundException):
        client.update_express_gateway_service(serviceArn="arn:aws:ecs:us-east-1:123456789012:service/default/x",
                                              healthCheckPath="/")
    status, _, body = raw("DescribeServices", {"cluster": "nope", "services": ["web"]})
    assert (status, body) == (400, {"__type": "ClusterNotFoundException", "message": "Cluster not found."})


def test_a_deleted_service_drains_then_is_inactive(ecs, waiter):
    client = ecs()
    client.create_cluster()
    register(client)
    create(client)
    waiter(settled(client))
    assert client.delete_service(service="web", force=True)["service"]["status"] in ("DRAINING", "INACTIVE")
    waiter(lambda: describe(client)["status"] == "INACTIVE")
    assert client.list_services()["serviceArns"] == []
    assert tasks(client) == [] and tasks(client, status="STOPPED")[0]["stopCode"] == "ServiceSchedulerInitiated"
    create(client)  # the name is free again
    assert describe(client)["status"] == "ACTIVE"


# ---------------------------------------------------------------------- pagination and regions


def test_lists_page_with_next_token(ecs):
    client = ecs()
    client.create_cluster()
    register(client)
    for i in range(23):
        create(client, f"svc-{i:02d}", desired=0)
    first = client.list_services()
    assert len(first["serviceArns"]) == 10 and first["nextToken"]  # ECS's default page: 10
    pages = [len(p["serviceArns"]) for p in client.get_paginator("list_services").paginate(
        PaginationConfig={"PageSize": 7})]
    assert pages == [7, 7, 7, 2]
    names = [a.rsplit("/", 1)[1] for p in client.get_paginator("list_services").paginate() for a in p["serviceArns"]]
    assert names == [f"svc-{i:02d}" for i in range(23)]
    for bad in ({"maxResults": 101}, {"maxResults": 0}, {"nextToken": "not-a-token"}):
        with pytest.raises(client.exceptions.InvalidParameterException):
            client.list_services(**bad)
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.describe_services(services=[f"svc-{i:02d}" for i in range(11)])


def test_each_region_sees_its_own_resources(ecs, waiter):
    east, west = ecs("us-east-1"), ecs("us-west-2")
    east.create_cluster()
    west.create_cluster()
    register(east)
    with pytest.raises(east.exceptions.InvalidParameterException):
        create(east, subnets=("subnet-www",))  # a subnet of another region
    with pytest.raises(west.exceptions.ClientException):
        west.describe_task_definition(taskDefinition="app")
    register(west)
    created = create(west, subnets=("subnet-www",))
    assert created["serviceArn"] == "arn:aws:ecs:us-west-2:123456789012:service/default/web"
    assert east.list_services()["serviceArns"] == []
    waiter(settled(west))
    assert ipaddress.ip_address(details(west.describe_tasks(tasks=west.list_tasks()["taskArns"])["tasks"][0])[
        "privateIPv4Address"]) in ipaddress.ip_network("172.16.0.0/24")
    assert east.describe_service_deployments(serviceDeploymentArns=[created["currentServiceDeployment"]])[
        "failures"][0]["reason"] == "MISSING"
    assert [c.rsplit("/", 1)[1] for c in west.list_clusters()["clusterArns"]] == ["default"]


# ---------------------------------------------------------------------- Express Mode


def test_express_mode_service_and_its_managed_resources(ecs, judge, waiter):
    client = ecs()
    created = client.create_express_gateway_service(
        serviceName="api", infrastructureRoleArn="arn:aws:iam::123456789012:role/ecsInfrastructureRole",
        executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        primaryContainer={"image": IMAGE_V1, "environment": [{"name": "PORT", "value": "80"}]},
        networkConfiguration={"subnets": ["subnet-aaa", "subnet-bbb"], "securityGroups": ["sg-task"]},
        tags=[{"key": "team", "value": "backend"}])["service"]
    assert created["status"] == {"statusCode": "ACTIVE"} and created["cluster"] == "default"
    (config,) = created["activeConfigurations"]
    assert (config["healthCheckPath"], config["primaryContainer"]["containerPort"]) == ("/ping", 80)
    assert config["ingressPaths"] == [{"accessType": "PUBLIC", "endpoint": "api.ecs.us-east-1.on.aws"}]
    service = waiter(settled(client, "api"))
    assert service["resourceManagementType"] == "ECS" and service["currentServiceDeployment"] == created[
        "currentDeployment"]
    vpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["assignPublicIp"] == "DISABLED" and vpc["securityGroups"][0] == "sg-task" and len(vpc["securityGroups"]) == 2
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    (lb,) = service["loadBalancers"]
    assert (lb["containerName"], lb["containerPort"]) == ("Main", 80)
    td = client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert td["containerDefinitions"][0]["name"] == "Main" and td["cpu"] == "256"
    assert td["containerDefinitions"][0]["environment"] == [{"name": "PORT", "value": "80"}]
    (revision,) = client.describe_service_revisions(serviceRevisionArns=[config["serviceRevisionArn"]])["serviceRevisions"]
    managed = revision["ecsManagedResources"]
    (path,) = managed["ingressPaths"]
    (tg,) = path["targetGroups"]
    assert (tg["arn"], tg["healthCheckPath"], tg["port"]) == (lb["targetGroupArn"], "/ping", 80)
    assert path["loadBalancer"]["subnetIds"] == ["subnet-aaa", "subnet-bbb"]
    assert managed["serviceSecurityGroups"][0]["arn"].endswith("/" + vpc["securityGroups"][1])
    assert managed["logGroups"][0]["logGroupName"] == "/aws/ecs/default/api"
    assert client.list_services(resourceManagementType="ECS")["serviceArns"] == [service["serviceArn"]]
    assert client.list_services(resourceManagementType="CUSTOMER")["serviceArns"] == []

    # An update resends whole blocks: the health path alone keeps the container; a new container block replaces it.
    updated = client.update_express_gateway_service(serviceArn=created["serviceArn"], healthCheckPath="/healthz",
                                                    primaryContainer={"image": IMAGE_V1, "containerPort": 8000})["service"]
    target = updated["targetConfiguration"]
    assert target["healthCheckPath"] == "/healthz" and target["primaryContainer"] == {"image": IMAGE_V1,
                                                                                     "containerPort": 8000}
    assert target["networkConfiguration"] == config["networkConfiguration"]
    during = client.describe_express_gateway_service(serviceArn=created["serviceArn"])["service"]
    assert [c["healthCheckPath"] for c in during["activeConfigurations"]] == ["/healthz", "/ping"]
    waiter(settled(client, "api"))
    after = client.describe_express_gateway_service(serviceArn=created["serviceArn"], include=["TAGS"])["service"]
    assert [c["healthCheckPath"] for c in after["activeConfigurations"]] == ["/healthz"]
    assert after["tags"] == [{"key": "team", "value": "backend"}]
    assert describe(client, "api")["loadBalancers"][0]["containerPort"] == 8000
    assert judge.calls[-1][1]["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 8000

    deleted = client.delete_express_gateway_service(serviceArn=created["serviceArn"])["service"]
    assert deleted["status"]["statusCode"] in ("DRAINING", "INACTIVE")
    waiter(lambda: client.describe_express_gateway_service(serviceArn=created["serviceArn"])["service"][
        "status"]["statusCode"] == "INACTIVE")
    with pytest.raises(client.exceptions.ServiceNotActiveException):
        client.update_express_gateway_service(serviceArn=created["serviceArn"], healthCheckPath="/")
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.create_express_gateway_service(serviceName="bad", infrastructureRoleArn="arn:aws:iam::1:role/x",
                                              primaryContainer={"image": IMAGE_V1})  # no subnets


def test_an_express_rollback_restores_the_previous_configuration(ecs, judge, waiter):
    client = ecs()
    arn = client.create_express_gateway_service(
        serviceName="api", infrastructureRoleArn="arn:aws:iam::123456789012:role/ecsInfrastructureRole",
        primaryContainer={"image": IMAGE_V1}, networkConfiguration={"subnets": ["subnet-aaa"]})["service"]["serviceArn"]
    waiter(settled(client, "api"))
    judge.failing[IMAGE_V2] = PULL_FAILURE
    client.update_express_gateway_service(serviceArn=arn, primaryContainer={"image": IMAGE_V2})
    waiter(lambda: client.list_service_deployments(service="api")["serviceDeployments"][0]["status"]
           == "ROLLBACK_SUCCESSFUL", timeout=20)
    (config,) = client.describe_express_gateway_service(serviceArn=arn)["service"]["activeConfigurations"]
    assert config["primaryContainer"]["image"] == IMAGE_V1


# ---------------------------------------------------------------------- subnets from moto's EC2


def test_subnets_come_from_ec2(sandbox, waiter):
    ec2 = sandbox.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.3.0/24")["Subnet"]
    emu = EcsEmulator(network=ec2_network(lambda region: ec2), deploy_seconds=0.1)
    emu.start()
    problems: list[str] = []
    try:
        client = checked_client(emu.url, "us-east-1", problems)
        client.create_cluster()
        register(client)
        create(client, subnets=(subnet["SubnetId"],))
        waiter(settled(client))
        d = details(tasks(client)[0])
        assert d["subnetId"] == subnet["SubnetId"]
        assert ipaddress.ip_address(d["privateIPv4Address"]) in ipaddress.ip_network("10.77.3.0/24")
        with pytest.raises(client.exceptions.InvalidParameterException):
            create(client, "other", subnets=("subnet-0000000000000000",))
    finally:
        emu.stop()
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=vpc)
    assert not problems, "\n".join(problems)
