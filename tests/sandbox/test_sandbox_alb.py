"""ECS services behind an Application Load Balancer in the Sandbox: target health judged from live
EC2/ELBv2 state (the ``elbv2-target-health`` shim), the scheduler's ELB health stops, the awselb front
on the load balancer's DNS name, and the task judge's image pull path and log group. boto3's real
clients over HTTP on moto and the ECS emulator."""

from __future__ import annotations

import copy
import socket

import pytest
import yaml

from runbook.errors import UsageError
from runbook_sandbox.alb import AlbFronts, Backend
from runbook_sandbox.scenario import SCENARIO_DIR, scenario_from_data

SERVICE = "nerava-backend"


@pytest.fixture(scope="module")
def aws(sandbox):
    """aws("ecs"): one client per service for the module (a boto3 client costs ~0.1 s to make; the
    sandbox's endpoints keep their ports from one load to the next)."""
    made: dict[str, object] = {}

    def client(service: str):
        if service not in made:
            made[service] = sandbox.client(service)
        return made[service]

    return client


def healthy_data() -> dict:
    return yaml.safe_load((SCENARIO_DIR / "ecs-healthy.yaml").read_text())


def service_of(data: dict) -> dict:
    return data["ecs_services"][0]


def group_of(data: dict, name: str) -> dict:
    return data["security_groups"][name]


def describe(ecs) -> dict:
    return ecs.describe_services(cluster="default", services=[SERVICE])["services"][0]


def target_health(sb, elbv2) -> list[dict]:
    return elbv2.describe_target_health(TargetGroupArn=sb.ids["target-group:nerava-tg"])["TargetHealthDescriptions"]


def states(sb, elbv2) -> set[tuple]:
    return {(d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"), d["TargetHealth"].get("Description"))
            for d in target_health(sb, elbv2)}


def stopped(ecs) -> list[dict]:
    arns = ecs.list_tasks(cluster="default", serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []


def front(elbv2, get, path: str):
    (lb,) = elbv2.describe_load_balancers(Names=["nerava-alb"])["LoadBalancers"]
    return get(f"http://{lb['DNSName']}{path}")


def test_target_health_follows_live_rules_and_the_health_check(load, get, waiter, aws):
    """One world, flipped by live changes: no ALB rule (Timeout), then the wrong path (404), then right
    (healthy, the deployment completes); the ALB's egress, the health-check port, a target group on no
    load balancer. The grace period keeps the unhealthy tasks running meanwhile."""
    data = healthy_data()
    group_of(data, "task-sg")["ingress"] = [{"protocol": "tcp", "port": 8080, "source_group": "alb-sg"}]  # a wrong port
    service_of(data)["load_balancer"]["target_group"]["health_path"] = "/ping"
    service_of(data)["health_check_grace_period"] = 6000  # 60 s at the test pace: never over here
    service_of(data)["desired_count"] = 1
    sb = load(scenario_from_data(data))
    ecs, ec2, elbv2 = aws("ecs"), aws("ec2"), aws("elbv2")
    (lb,) = elbv2.describe_load_balancers(LoadBalancerArns=[sb.ids["load-balancer:nerava-alb"]])["LoadBalancers"]
    assert lb["DNSName"].startswith("127.0.0.1:") and lb["Scheme"] == "internet-facing"
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert listener["ListenerArn"] == sb.ids["listener:nerava-alb"] and listener["Port"] == 80
    (tg,) = elbv2.describe_target_groups(Names=["nerava-tg"])["TargetGroups"]
    assert (tg["TargetType"], tg["Port"], tg["HealthCheckPath"], tg["Matcher"]["HttpCode"]) == ("ip", 8000, "/ping", "200")
    service = describe(ecs)
    assert service["loadBalancers"] == [{"targetGroupArn": tg["TargetGroupArn"], "containerName": "app",
                                         "containerPort": 8000}]
    assert service["healthCheckGracePeriodSeconds"] == 6000

    waiter(lambda: describe(ecs)["runningCount"] == 1, timeout=10, interval=0.02)
    assert {s[0] for s in states(sb, elbv2)} <= {"initial", "unhealthy"}
    timeout = ("unhealthy", "Target.Timeout", "Request timed out")
    waiter(lambda: states(sb, elbv2) == {timeout}, timeout=5)
    status, headers, body = front(elbv2, get, "/healthz")
    assert (status, headers["server"]) == (503, "awselb/2.0")
    assert body.startswith(b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>")
    assert describe(ecs)["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # running, but not healthy

    ec2.authorize_security_group_ingress(GroupId=sb.ids["sg:task-sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": sb.ids["sg:alb-sg"]}]}])
    assert states(sb, elbv2) == {("unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")}
    elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/healthz")
    assert states(sb, elbv2) == {("healthy", None, None)}
    service = waiter(lambda: (s := describe(ecs))["deployments"][0]["rolloutState"] == "COMPLETED" and s, timeout=5)
    assert service["runningCount"] == 1 and not stopped(ecs)
    status, headers, body = front(elbv2, get, "/healthz")
    assert (status, headers["server"], body) == (200, "uvicorn", b'{"status":"ok"}')
    status, headers, body = front(elbv2, get, "/ping")
    assert (status, headers["server"], body) == (404, "uvicorn", b'{"detail":"Not Found"}')

    (egress,) = [r for r in ec2.describe_security_group_rules(Filters=[
        {"Name": "group-id", "Values": [sb.ids["sg:alb-sg"]]}])["SecurityGroupRules"] if r["IsEgress"]]
    ec2.revoke_security_group_egress(GroupId=sb.ids["sg:alb-sg"], SecurityGroupRuleIds=[egress["SecurityGroupRuleId"]])
    assert states(sb, elbv2) == {timeout}
    ec2.authorize_security_group_egress(GroupId=sb.ids["sg:alb-sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    assert states(sb, elbv2) == {("healthy", None, None)}

    elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPort="8080")
    assert states(sb, elbv2) == {("unhealthy", "Target.FailedHealthChecks", "Health checks failed")}  # nothing listens

    loose = elbv2.create_target_group(Name="loose-tg", Protocol="HTTP", Port=8000, VpcId=sb.ids["vpc:main"],
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    ip = target_health(sb, elbv2)[0]["Target"]["Id"]
    elbv2.register_targets(TargetGroupArn=loose, Targets=[{"Id": ip, "Port": 8000}])
    (health,) = elbv2.describe_target_health(TargetGroupArn=loose)["TargetHealthDescriptions"]
    assert (health["TargetHealth"]["State"], health["TargetHealth"]["Reason"]) == ("unused", "Target.NotInUse")
    assert [e for e in sb.history() if e.kind == "error"] == []


def test_tasks_failing_elb_health_checks_are_stopped_and_trip_the_circuit_breaker(load, get, waiter, aws):
    data = healthy_data()
    service_of(data)["load_balancer"]["target_group"]["health_path"] = "/"  # ELBv2's default; the app serves /healthz
    service_of(data)["desired_count"] = 3  # the breaker's threshold (3) fails in one round
    sb = load(scenario_from_data(data))
    ecs, elbv2 = aws("ecs"), aws("elbv2")
    service = waiter(lambda: (s := describe(ecs))["deployments"][0]["rolloutState"] == "FAILED" and s, timeout=15)
    primary = service["deployments"][0]
    assert primary["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert primary["failedTasks"] >= 3
    tg = sb.ids["target-group:nerava-tg"]
    tasks = stopped(ecs)
    assert len(tasks) >= 3
    for task in tasks:
        assert task["stopCode"] == "ServiceSchedulerInitiated"
        assert task["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})"
        assert task["startedAt"]  # it ran: only its target failed
    messages = [e["message"] for e in service["events"]]
    task_id = tasks[0]["taskArn"].rsplit("/", 1)[1]
    assert (f"(service {SERVICE}) (task {task_id}) (port 8000) is unhealthy in (target-group {tg}) due to "
            "(reason Health checks failed with these codes: [404]).") in messages
    assert any(m.startswith(f"(service {SERVICE}) deregistered 1 targets in (target-group {tg})") for m in messages)
    waiter(lambda: target_health(sb, elbv2) == [], timeout=5)  # the last tasks fail too, and every target goes
    status, headers, _ = front(elbv2, get, "/healthz")
    assert (status, headers["server"]) == (503, "awselb/2.0")
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[service["currentServiceDeployment"]])[
        "serviceDeployments"][0]
    assert sd["deploymentCircuitBreaker"]["failureCount"] >= 3


def test_image_pull_path_and_log_group_stop_tasks_before_they_start(load, waiter, aws):
    data = healthy_data()
    data["vpcs"]["main"]["route_tables"]["private"]["routes"] = []  # no NAT: the tasks' subnets have no way out
    service_of(data)["desired_count"] = 1
    service_of(data)["circuit_breaker"] = {"enable": False, "rollback": False}
    service_of(data)["load_balancer"].update(scheme="internal", subnets=["private-a", "private-b"])
    sb = load(scenario_from_data(data))
    ecs, ec2, logs = aws("ecs"), aws("ec2"), aws("logs")
    (lb,) = aws("elbv2").describe_load_balancers(Names=["nerava-alb"])["LoadBalancers"]
    host, port = lb["DNSName"].split(":")  # an internal ALB: no answer from outside its VPC
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)
    image = service_of(data)["task_definition"]["image"]

    def first_stop(deployment: str) -> dict:
        return waiter(lambda: next((t for t in stopped(ecs) if t["startedBy"] == deployment), None), timeout=10)

    task = first_stop(describe(ecs)["deployments"][0]["id"])
    assert task["stopCode"] == "TaskFailedToStart" and "startedAt" not in task
    assert task["stoppedReason"].startswith(
        f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {image}: ")
    assert task["stoppedReason"].endswith(":443: i/o timeout") and " dial tcp " in task["stoppedReason"]
    assert task["containers"][0]["reason"] == task["stoppedReason"]

    # ECR's endpoints and S3's gateway instead of a NAT: the image pulls; the log group is gone.
    region, vpc, table = "us-east-1", sb.ids["vpc:main"], sb.ids["rtb:private"]
    ec2.authorize_security_group_ingress(GroupId=sb.ids["sg:default"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": sb.ids["sg:task-sg"]}]}])
    for name in ("ecr.api", "ecr.dkr"):
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{region}.{name}", VpcEndpointType="Interface",
                                SubnetIds=[sb.ids["subnet:private-a"], sb.ids["subnet:private-b"]],
                                SecurityGroupIds=[sb.ids["sg:default"]], PrivateDnsEnabled=True)
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{region}.s3", VpcEndpointType="Gateway",
                            RouteTableIds=[table])
    logs.delete_log_group(logGroupName="/ecs/nerava-backend")
    deployment = ecs.update_service(cluster="default", service=SERVICE, forceNewDeployment=True)["service"][
        "deployments"][0]["id"]
    task = first_stop(deployment)
    assert (task["stopCode"], task["stoppedReason"]) == ("TaskFailedToStart", (
        "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
        "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. "
        ": exit status 1"))  # past the image pull: the endpoints let it through


def test_the_front_answers_503_without_a_target_and_the_app_behind_one(get):
    route: list[Backend | None] = [None]
    fronts = AlbFronts(lambda arn, port, host, path: route[0])
    try:
        address = fronts.open("arn:lb/public", internal=False, listener_port=80)
        assert fronts.address("arn:lb/public") == address and address.startswith("127.0.0.1:")
        status, headers, body = get(f"http://{address}/healthz")
        assert (status, headers["server"], headers["content-type"]) == (503, "awselb/2.0", "text/html")
        assert b"<center><h1>503 Service Temporarily Unavailable</h1></center>" in body
        route[0] = Backend("/healthz")
        assert get(f"http://{address}/healthz")[::2] == (200, b'{"status":"ok"}')
        status, headers, body = get(f"http://{address}/")
        assert (status, body) == (404, b'{"detail":"Not Found"}') and headers["server"] == "uvicorn"
        internal = fronts.open("arn:lb/internal", internal=True, listener_port=80)
        host, port = internal.split(":")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2)
    finally:
        fronts.close_all()
    assert fronts.address("arn:lb/public") is None


@pytest.mark.parametrize("change,expected", [
    (lambda lb: lb.update(subnets=["public-a"]), "ecs_services[0].load_balancer.subnets: needs at least 2 entries"),
    (lambda lb: lb.update(subnets=["public-a", "private-a"]),
     "ecs_services[0].load_balancer.subnets: an Application Load Balancer needs subnets in two availability zones"),
    (lambda lb: lb.update(scheme="public"), "ecs_services[0].load_balancer.scheme: must be one of internet-facing, internal"),
    (lambda lb: lb.update(security_groups=["nope"]), "ecs_services[0].load_balancer.security_groups[0]: no security group"),
    (lambda lb: lb.update(name="internal-x"), "ecs_services[0].load_balancer.name: a load balancer name cannot begin"),
    (lambda lb: lb.update(name="-bad"), "ecs_services[0].load_balancer.name: '-bad' is not a valid load balancer name"),
    (lambda lb: lb["target_group"].update(health_path="healthz"),
     "ecs_services[0].load_balancer.target_group.health_path: must start with '/'"),
    (lambda lb: lb["target_group"].update(matcher="ok"),
     "ecs_services[0].load_balancer.target_group.matcher: 'ok' is not an HTTP code list"),
    (lambda lb: lb["target_group"].pop("name"), "ecs_services[0].load_balancer.target_group.name: required"),
    (lambda lb: lb.update(listener_port=0), "ecs_services[0].load_balancer.listener_port: must be a port"),
])
def test_load_balancers_are_validated_in_one_line(change, expected):
    data = healthy_data()
    change(service_of(data)["load_balancer"])
    with pytest.raises(UsageError) as err:
        scenario_from_data(data, label="ecs.yaml")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"scenario ecs.yaml: {expected}"), str(err.value)


def test_load_balancer_defaults_and_the_grace_period_needs_one():
    data = healthy_data()
    lb = service_of(data)["load_balancer"]
    for key in ("scheme", "listener_port"):
        lb.pop(key)
    lb["target_group"] = {"name": "nerava-tg"}
    service_of(data).pop("health_check_grace_period")
    (service,) = scenario_from_data(data).ecs_services
    assert (service.load_balancer.scheme, service.load_balancer.listener_port) == ("internet-facing", 80)
    tg = service.load_balancer.target_group
    assert (tg.port, tg.health_path, tg.matcher, service.health_check_grace_period) == (8000, "/", "200", 0)
    bare = copy.deepcopy(data)
    service_of(bare).pop("load_balancer")
    service_of(bare)["health_check_grace_period"] = 60
    with pytest.raises(UsageError, match=r"^scenario ecs.yaml: ecs_services\[0\].health_check_grace_period: only valid "
                                         r"for a service with a load_balancer$"):
        scenario_from_data(bare, label="ecs.yaml")
