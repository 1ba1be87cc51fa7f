"""ECS Express Mode in the Sandbox: its managed resources made in moto (elbv2, ec2, acm, logs),
the bundled ecs-express worlds, boto3's real client over HTTP on the ECS emulator and moto."""

from __future__ import annotations

import dataclasses

import pytest

from runbook.errors import UsageError
from runbook_sandbox.scenario import load_scenario, scenario_from_data

SERVICE = "nerava-api"
ENDPOINT = "nerava-api.ecs.us-east-1.on.aws"


def express(ecs) -> dict:
    return ecs.describe_express_gateway_service(serviceArn=ecs.describe_services(
        cluster="default", services=[SERVICE])["services"][0]["serviceArn"])["service"]


def managed(ecs, revision_arn: str) -> dict:
    (revision,) = ecs.describe_service_revisions(serviceRevisionArns=[revision_arn])["serviceRevisions"]
    return revision["ecsManagedResources"]


def deployment_status(ecs) -> str:
    arn = express(ecs)["currentDeployment"]
    return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]["status"]


def ingress(ec2, group: str) -> list[tuple[int, str]]:
    (sg,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    return sorted((p["FromPort"], (p.get("UserIdGroupPairs") or [{}])[0].get("GroupId")
                   or p["IpRanges"][0]["CidrIp"]) for p in sg["IpPermissions"])


def test_express_resources_live_in_moto_and_follow_an_update(load, waiter):
    sb = load("ecs-express")
    ecs, elb, ec2 = sb.client("ecs"), sb.client("elbv2"), sb.client("ec2")
    service = express(ecs)
    (config,) = service["activeConfigurations"]
    (path,) = managed(ecs, config["serviceRevisionArn"])["ingressPaths"]
    assert path["endpoint"] == ENDPOINT and path["accessType"] == "PUBLIC"

    (lb,) = elb.describe_load_balancers(LoadBalancerArns=[path["loadBalancer"]["arn"]])["LoadBalancers"]
    assert lb["Scheme"] == path["loadBalancer"]["scheme"] == "internet-facing"  # public subnets
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted(config["networkConfiguration"]["subnets"])
    lb_sg = path["loadBalancerSecurityGroups"][0]["arn"].rsplit("/", 1)[1]
    assert lb["SecurityGroups"] == path["loadBalancer"]["securityGroupIds"] == [lb_sg]
    assert ingress(ec2, lb_sg) == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]

    (tg_view,) = path["targetGroups"]
    (tg,) = elb.describe_target_groups(TargetGroupArns=[tg_view["arn"]])["TargetGroups"]
    assert (tg["TargetType"], tg["Protocol"], tg["Port"], tg["HealthCheckPath"], tg["Matcher"]["HttpCode"]) == (
        "ip", "HTTP", 8000, "/ping", "200")
    assert (tg_view["healthCheckPath"], tg_view["port"]) == ("/ping", 8000)
    assert tg["LoadBalancerArns"] == [lb["LoadBalancerArn"]]

    (listener,) = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert listener["ListenerArn"] == path["listener"]["arn"] and (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"][0]["CertificateArn"] == path["certificate"]["arn"]
    assert sb.client("acm").describe_certificate(CertificateArn=path["certificate"]["arn"])["Certificate"][
        "DomainName"] == ENDPOINT
    rules = {r["RuleArn"]: r for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]}
    rule = rules[path["rule"]["arn"]]
    assert rule["Conditions"][0]["HostHeaderConfig"]["Values"] == [ENDPOINT]
    assert rule["Actions"] == [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
    (default,) = [r for r in rules.values() if r["IsDefault"]]
    assert default["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"

    # The managed group rides beside the customer's, tagged, admitting only the ALB's group on the port.
    mine = managed(ecs, config["serviceRevisionArn"])
    service_sg = mine["serviceSecurityGroups"][0]["arn"].rsplit("/", 1)[1]
    groups = ecs.describe_services(cluster="default", services=[SERVICE])["services"][0][
        "networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
    assert groups == [sb.ids["sg:task-sg"], service_sg]
    (sg,) = ec2.describe_security_groups(GroupIds=[service_sg])["SecurityGroups"]
    assert {"Key": "AmazonECSManaged", "Value": "true"} in sg["Tags"]
    assert ingress(ec2, service_sg) == [(8000, lb_sg)]
    assert sb.client("logs").describe_log_groups(logGroupNamePrefix="/ecs/nerava-api")["logGroups"]
    assert mine["logGroups"][0]["logGroupName"] == "/ecs/nerava-api"

    # Update: the health path reaches the target group in place and starts a new deployment.
    before = service["currentDeployment"]
    ecs.update_express_gateway_service(serviceArn=service["serviceArn"], healthCheckPath="/healthz")
    assert elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0][
        "HealthCheckPath"] == "/healthz"
    assert express(ecs)["currentDeployment"] != before
    # A new port cannot be modified on a target group: a new one, the rule and the managed ingress follow.
    updated = ecs.update_express_gateway_service(serviceArn=service["serviceArn"], primaryContainer=dict(
        config["primaryContainer"], containerPort=8080))["service"]["targetConfiguration"]
    (tg_now,) = managed(ecs, updated["serviceRevisionArn"])["ingressPaths"][0]["targetGroups"]
    assert tg_now["arn"] != tg["TargetGroupArn"] and tg_now["port"] == 8080
    (moved,) = elb.describe_target_groups(TargetGroupArns=[tg_now["arn"]])["TargetGroups"]
    assert (moved["Port"], moved["HealthCheckPath"]) == (8080, "/healthz")
    assert elb.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"][0]["TargetGroupArn"] == tg_now["arn"]
    assert ingress(ec2, service_sg) == [(8080, lb_sg)]
    assert ecs.describe_services(cluster="default", services=[SERVICE])["services"][0]["loadBalancers"][0][
        "targetGroupArn"] == tg_now["arn"]

    # New subnets move the load balancer.
    ecs.update_express_gateway_service(serviceArn=service["serviceArn"], networkConfiguration={
        "subnets": [sb.ids["subnet:public-b"], sb.ids["subnet:data-a"]], "securityGroups": [sb.ids["sg:task-sg"]]})
    assert sorted(z["SubnetId"] for z in elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])[
        "LoadBalancers"][0]["AvailabilityZones"]) == sorted([sb.ids["subnet:public-b"], sb.ids["subnet:data-a"]])

    # Delete: everything but the log group goes.
    ecs.delete_express_gateway_service(serviceArn=service["serviceArn"])
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    with pytest.raises(ec2.exceptions.ClientError):
        ec2.describe_security_groups(GroupIds=[service_sg])


def stopped(ecs, since: int = 0) -> list[dict]:
    arns = ecs.list_tasks(cluster="default", serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"][since:] if arns else []


def probe(sb, get, host: str | None, path: str = "/healthz"):
    """The product's probe: connect to the ALB's DNSName, with the Express endpoint as Host."""
    (lb,) = sb.client("elbv2").describe_load_balancers(LoadBalancerArns=[sb.ids[f"load-balancer:{SERVICE}"]])[
        "LoadBalancers"]
    return get(f"http://{lb['DNSName']}{path}", headers={"Host": host} if host else None)


def test_the_express_world_fails_for_the_cache_then_the_health_path(load, get, waiter):
    """End to end on one world: tasks exit on Redis; with 6379 admitted they run but fail the target
    group's /ping (404); Express's own update to /healthz moves the target group and succeeds."""
    sb = load("ecs-express")
    ecs, elb, ec2 = sb.client("ecs"), sb.client("elbv2"), sb.client("ec2")
    waiter(lambda: deployment_status(ecs) == "ROLLBACK_FAILED", timeout=20)  # nothing earlier to roll back to
    first = stopped(ecs)
    assert first and all(t["stopCode"] == "EssentialContainerExited" for t in first)
    logs = sb.client("logs")
    lines = [e["message"] for s in logs.describe_log_streams(logGroupName="/ecs/nerava-api")["logStreams"]
             for e in logs.get_log_events(logGroupName="/ecs/nerava-api", logStreamName=s["logStreamName"])["events"]]
    assert any(line.startswith("redis.exceptions.ConnectionError") for line in lines)
    assert not any("psycopg2" in line for line in lines)
    status, headers, _ = probe(sb, get, ENDPOINT)
    assert (status, headers["server"]) == (503, "awselb/2.0")  # no healthy target behind the rule

    # The cache rule names the customer's group; the tasks now run, and fail the health path.
    ec2.authorize_security_group_ingress(GroupId=sb.ids["sg:cache-sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": sb.ids["sg:task-sg"]}]}])
    ecs.update_service(cluster="default", service=SERVICE, forceNewDeployment=True)
    tg = sb.ids[f"target-group:{SERVICE}"]
    seen = waiter(lambda: [d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=tg)[
        "TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "unhealthy"], timeout=20)
    assert seen[0]["Reason"] == "Target.ResponseCodeMismatch"
    assert seen[0]["Description"] == "Health checks failed with these codes: [404]"
    waiter(lambda: deployment_status(ecs) in ("ROLLBACK_FAILED", "STOPPED"), timeout=20)
    assert any(t["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})"
               for t in stopped(ecs, len(first)))

    # Express's update: the target group follows, and a new deployment succeeds.
    before = express(ecs)["currentDeployment"]
    ecs.update_express_gateway_service(serviceArn=sb.ids[f"ecs-service:{SERVICE}"], healthCheckPath="/healthz")
    assert elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]["HealthCheckPath"] == "/healthz"
    assert express(ecs)["currentDeployment"] != before
    waiter(lambda: deployment_status(ecs) == "SUCCESSFUL", timeout=20)
    assert probe(sb, get, ENDPOINT)[::2] == (200, b'{"status":"ok"}')


def test_the_healthy_express_twin_succeeds_and_routes_by_host(load, get, waiter):
    sb = load("ecs-express-healthy")
    ecs = sb.client("ecs")
    waiter(lambda: deployment_status(ecs) == "SUCCESSFUL", timeout=20)
    service = ecs.describe_services(cluster="default", services=[SERVICE])["services"][0]
    assert service["runningCount"] == 2 and service["resourceManagementType"] == "ECS"
    status, headers, body = probe(sb, get, ENDPOINT)
    assert (status, headers["server"], body) == (200, "uvicorn", b'{"status":"ok"}')  # the app's answer
    assert probe(sb, get, ENDPOINT.upper() + ":443", "/")[0] == 404  # the app's 404: Host matched, port ignored
    for host in (None, "other.ecs.us-east-1.on.aws"):  # the raw DNS name, or a Host no rule names
        status, headers, body = probe(sb, get, host)
        assert (status, headers["server"], body) == (404, "awselb/2.0", b"Not Found")
    assert [e for e in sb.history() if e.kind == "error"] == []


def test_private_subnets_give_an_internal_load_balancer_and_bad_input_is_one_line(load):
    data = load_scenario("ecs-express-healthy")
    # In-memory edit of the bundled twin: the tasks in the data subnets (no route to an IGW).
    (svc,) = data.ecs_express_services
    scenario = dataclasses.replace(data, ecs_express_services=(dataclasses.replace(svc, subnets=("data-a", "data-b")),))
    sb = load(scenario)
    (config,) = express(sb.client("ecs"))["activeConfigurations"]
    assert config["ingressPaths"][0]["accessType"] == "PRIVATE"
    (lb,) = sb.client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert lb["Scheme"] == "internal"

    base = {"vpcs": {"v": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.0.0/24"}}}},
            "security_groups": {"t": {"ingress": []}}}
    item = {"name": "api", "image": "img", "subnets": ["a"], "security_groups": ["t"]}
    assert scenario_from_data(dict(base, ecs_express_services=[item])).ecs_express_services[0].health_check_path == "/ping"
    for bad, message in (({"health_check_path": "ping"}, "health_check_path: must start with '/'"),
                         ({"subnets": ["nope"]}, "no subnet 'nope'"),
                         ({"task_definition": {}}, "task_definition")):
        with pytest.raises(UsageError) as err:
            scenario_from_data(dict(base, ecs_express_services=[dict(item, **bad)]))
        assert message in str(err.value) and "\n" not in str(err.value)


def test_vpc_endpoints_are_read_and_validated_in_one_line():
    data = load_scenario("ecs-express").vpc_endpoints
    assert [(e.service, e.type, e.private_dns) for e in data] == [
        ("ecr.api", "Interface", True), ("ecr.dkr", "Interface", True), ("logs", "Interface", True),
        ("s3", "Gateway", True)]
    assert data[3].route_tables == ("public",) and data[0].security_groups == ("endpoint-sg",)
    base = {"vpcs": {"v": {"cidr": "10.0.0.0/16", "subnets": {"a": {"cidr": "10.0.0.0/24"}}}},
            "security_groups": {"t": {"ingress": []}}}
    for bad, message in (({"service": "s3", "subnets": ["a"]}, "vpc_endpoints[0].subnets: a s3 endpoint is a Gateway"),
                         ({"service": "s3", "route_tables": ["nope"]}, "vpc_endpoints[0].route_tables[0]: no route table"),
                         ({"service": "ecr.api", "route_tables": ["main"]}, "vpc_endpoints[0].route_tables: an Interface"),
                         ({"service": "ecr.api", "subnets": ["a"]}, "vpc_endpoints[0].security_groups: "),
                         ({"service": "ECR API"}, "vpc_endpoints[0].service: 'ECR API' is not a service name")):
        with pytest.raises(UsageError) as err:
            scenario_from_data(dict(base, vpc_endpoints=[bad]))
        assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
