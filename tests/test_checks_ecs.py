"""ECS's own checks on hand-made snapshots: each rule failing and passing, from ECS-shaped answers
built into a workload by the platform's own pure functions (what discovery does with real ones)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runbook import registry
from runbook.model import Status
from runbook.platforms import ecs as platform
from runbook.probe import ProbeResult
from runbook.topology import Topology
from tests.topologies import rule

TASK_SG, MANAGED_SG, ALB_SG = "sg-0aaa000000000000a", "sg-0bbb000000000000b", "sg-0ccc000000000000c"
VPC = "vpc-0070057532e81973b"
ARN = "arn:aws:ecs:us-east-1:123456789012:service/default/nerava-backend"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nerava-tg/1"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nerava-alb/1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nerava/backend:latest"


def service(**changes):
    base = {
        "serviceName": "nerava-backend", "serviceArn": ARN, "status": "ACTIVE", "desiredCount": 2, "runningCount": 2,
        "pendingCount": 0, "taskDefinition": "arn:td/nerava-backend:1", "launchType": "FARGATE",
        "loadBalancers": [{"targetGroupArn": TG, "containerName": "app", "containerPort": 8000}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": [TASK_SG],
                                                         "assignPublicIp": "DISABLED"}},
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED", "runningCount": 2, "desiredCount": 2}],
    }
    return {**base, **changes}


TASK_DEFINITION = {"containerDefinitions": [{
    "name": "app", "image": IMAGE, "essential": True, "portMappings": [{"containerPort": 8000}],
    "environment": [{"name": "ENV", "value": "production"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/nerava-backend"}}}]}
TARGET_GROUP = {"TargetGroupArn": TG, "TargetGroupName": "nerava-tg", "Port": 8000, "HealthCheckProtocol": "HTTP",
                "HealthCheckPath": "/healthz", "HealthCheckPort": "traffic-port", "Matcher": {"HttpCode": "200"},
                "TargetType": "ip", "LoadBalancerArns": [LB]}
BALANCER = {"LoadBalancerArn": LB, "LoadBalancerName": "nerava-alb", "Scheme": "internet-facing", "DNSName": "nerava-alb-1.us-east-1.elb.amazonaws.com",
            "SecurityGroups": [ALB_SG], "AvailabilityZones": [{"SubnetId": "subnet-pa"}, {"SubnetId": "subnet-pb"}]}
LISTENERS = [{"Protocol": "HTTP", "Port": 80}]


def healthy_target(ip="10.0.1.10"):
    return {"Target": {"Id": ip, "Port": 8000}, "TargetHealth": {"State": "healthy"}}


def unhealthy_target(reason, description="", ip="10.0.1.10"):
    return {"Target": {"Id": ip, "Port": 8000}, "TargetHealth": {"State": "unhealthy", "Reason": reason, "Description": description}}


def answers(**changes):
    base = {
        "deployments": ([{"serviceDeploymentArn": "arn:sd/1", "status": "SUCCESSFUL"}], None),
        "stopped": ([], None),
        "endpoints": ([], None),
        "load_balancing": ({"target_groups": [TARGET_GROUP], "target_health": {TG: [healthy_target()]},
                            "load_balancers": [BALANCER], "listeners": {LB: LISTENERS}}, None),
        "groups": ([{"GroupId": TASK_SG, "Tags": []}], None),
        "log_group:/ecs/nerava-backend": (True, None),
    }
    return {**base, **{k: (v, None) if not (isinstance(v, tuple) and len(v) == 2) else v for k, v in changes.items()}}


SUBNETS = {s: {"SubnetId": s, "VpcId": VPC, "CidrBlock": c, "AvailabilityZone": z} for s, c, z in (
    ("subnet-a", "10.0.1.0/24", "us-east-1a"), ("subnet-b", "10.0.2.0/24", "us-east-1b"),
    ("subnet-pa", "10.0.100.0/24", "us-east-1a"), ("subnet-pb", "10.0.101.0/24", "us-east-1b"))}
PRIVATE = {"RouteTableId": "rtb-private", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-a"}, {"SubnetId": "subnet-b"}],
           "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]}
ALLOW_ALL_OUT = [rule(ALB_SG, "sgr-e1", egress=True, protocol="-1", cidr="0.0.0.0/0")]
LB_RULE = rule(TASK_SG, "sgr-lb", ports=(8000, 8000), source_group=ALB_SG)


def ecs(*, svc=None, task_definition=TASK_DEFINITION, task_rules=(LB_RULE,), alb_rules=tuple(ALLOW_ALL_OUT), route_tables=(PRIVATE,),
        params=None, broken=frozenset(), probe=None, **reads) -> Topology:
    found = {"cluster": "default", "service": svc or service(), "taskDefinition": task_definition}
    params = {"health_path": "/healthz", **(params or {})}
    workload = platform.completed(platform.workload(found, params), answers(**reads))
    return Topology(region="us-east-1", workload=workload, targets={}, subnets=SUBNETS, route_tables=list(route_tables),
                    sg_rules={TASK_SG: list(task_rules), ALB_SG: list(alb_rules)}, params=params,
                    broken_this_run=frozenset(broken), probe=probe, health_path=workload.health_path)


def detect(name, t, **params):
    spec = registry.get(name)
    return spec.detect(t, registry.step_params(spec, params))


def test_the_workload_reads_the_service_the_task_definition_and_the_load_balancer():
    w = ecs().workload
    assert (w.security_group_ids, w.subnet_ids) == ((TASK_SG,), ("subnet-a", "subnet-b"))
    assert w.peer_security_group_ids == (ALB_SG,) and w.peer_subnet_ids == ("subnet-pa", "subnet-pb")
    assert w.url == "http://nerava-alb-1.us-east-1.elb.amazonaws.com" and w.health_path == "/healthz"
    assert w.log_groups == ("/ecs/nerava-backend",) and w.env == {"ENV": "production"}
    # ECS's own group on an Express service goes last: a database rule names the customer's group.
    t = ecs(svc=service(networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-a"], "securityGroups": [MANAGED_SG, TASK_SG]}}),
            groups=[{"GroupId": MANAGED_SG, "Tags": [{"Key": "AmazonECSManaged", "Value": "true"}]}, {"GroupId": TASK_SG}])
    assert t.workload.security_group_ids == (TASK_SG, MANAGED_SG)
    https = ecs(load_balancing={"target_groups": [TARGET_GROUP], "target_health": {TG: []}, "load_balancers": [BALANCER],
                                "listeners": {LB: [{"Protocol": "HTTP", "Port": 80}, {"Protocol": "HTTPS", "Port": 443}]}})
    assert https.workload.url == "https://nerava-alb-1.us-east-1.elb.amazonaws.com" and "not on its certificate" in https.workload.tls_unchecked
    assert ecs().workload.tls_unchecked is None
    internal = ecs(load_balancing={"target_groups": [TARGET_GROUP], "target_health": {TG: []},
                                   "load_balancers": [{**BALANCER, "Scheme": "internal"}], "listeners": {LB: LISTENERS}})
    assert internal.workload.url is None and "internal" in internal.workload.unprobed


def test_an_internal_load_balancer_is_not_probed_and_target_health_stands_in_unproven():
    def internal(targets):
        return ecs(load_balancing={"target_groups": [TARGET_GROUP], "target_health": {TG: targets},
                                   "load_balancers": [{**BALANCER, "Scheme": "internal"}], "listeners": {LB: LISTENERS}})

    healthy = detect("http.healthz", internal([healthy_target(), healthy_target("10.0.2.9")]))
    assert healthy.status is Status.WARN  # never OK: nothing answered a probe
    assert "not probed (load balancer nerava-alb is internal" in healthy.summary and "2 of 2 target(s) healthy" in healthy.summary
    sick = detect("http.healthz", internal([healthy_target(), unhealthy_target("Target.Timeout")]))
    assert sick.status is Status.FAIL and "1 of 2" in sick.summary


@pytest.mark.parametrize("ref, expected", [
    ("nerava-backend", ("default", "nerava-backend")),
    ("prod/nerava-backend", ("prod", "nerava-backend")),
    (ARN, ("default", ARN)),
    ("arn:aws:ecs:us-east-1:123456789012:service/prod/api", ("prod", "arn:aws:ecs:us-east-1:123456789012:service/prod/api")),
])
def test_a_service_is_named_by_name_cluster_and_name_or_arn(ref, expected):
    assert platform.split_ref(ref) == expected


def test_service_status():
    assert detect("ecs.service-status", ecs()).status is Status.OK
    assert detect("ecs.service-status", ecs(svc=service(status="DRAINING"))).status is Status.FAIL
    assert detect("ecs.service-status", ecs(svc=service(desiredCount=0, runningCount=0))).status is Status.WARN


def test_deployment_in_flight_is_waited_for_and_a_failed_one_redeployed_only_with_a_cause():
    in_flight = detect("ecs.deployment", ecs(deployments=[{"serviceDeploymentArn": "arn:sd/2", "status": "IN_PROGRESS"}]))
    assert in_flight.status is Status.FAIL and in_flight.waits_for == "deployment" and not in_flight.changes
    rolled_back = [{"serviceDeploymentArn": "arn:sd/2", "status": "ROLLBACK_SUCCESSFUL"}]
    unexplained = detect("ecs.deployment", ecs(deployments=rolled_back))
    assert unexplained.status is Status.WARN and all(c.recommendation for c in unexplained.changes)
    explained = detect("ecs.deployment", ecs(deployments=rolled_back, broken={"redis-ingress"}))
    assert explained.status is Status.FAIL and [c.call.params.get("forceNewDeployment") for c in explained.changes] == [True]
    assert not explained.changes[0].recommendation
    # Without the service deployments API: the PRIMARY deployment's rolloutState.
    failed = [{"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "FAILED",
               "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start."}]
    unread = (None, "AccessDeniedException: no")
    nothing_runs = detect("ecs.deployment", ecs(svc=service(deployments=failed, runningCount=0), deployments=unread))
    assert nothing_runs.status is Status.FAIL and "rolloutState FAILED" in nothing_runs.summary
    # Still serving the tasks it had: the failure is told, and with no cause found nothing is redeployed.
    serving = detect("ecs.deployment", ecs(svc=service(deployments=failed), deployments=unread))
    assert serving.status is Status.WARN and "ended rolloutState FAILED" in serving.summary
    assert detect("ecs.deployment", ecs()).status is Status.OK


def test_stopped_tasks_of_the_newest_deployment_name_the_step_of_their_cause():
    stopped = [{"taskArn": "arn:task/default/t1", "startedBy": "ecs-svc/1", "stopCode": "TaskFailedToStart",
                "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): i/o timeout"},
               {"taskArn": "arn:task/default/t0", "startedBy": "ecs-svc/0", "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited"}]
    in_progress = service(deployments=[{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}])
    t = replace(ecs(svc=in_progress, stopped=stopped), steps=())
    found = detect("ecs.stopped-tasks", t)
    assert found.status is Status.FAIL and "the image could not be pulled" in found.summary and "1 more from earlier" in found.summary
    assert detect("ecs.stopped-tasks", ecs(stopped=stopped[1:])).status is Status.OK


def test_the_load_balancer_must_reach_the_tasks_on_the_container_port():
    assert detect("ecs.load-balancer-ingress", ecs()).status is Status.OK
    missing = detect("ecs.load-balancer-ingress", ecs(task_rules=()))
    assert missing.status is Status.FAIL
    (change,) = missing.changes
    assert change.call.params["GroupId"] == TASK_SG and change.call.operation == "authorize_security_group_ingress"
    assert change.call.params["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == ALB_SG
    assert change.call.params["IpPermissions"][0]["FromPort"] == 8000
    # A CIDR rule covering the load balancer's subnets admits it as well as a group rule.
    cidr = rule(TASK_SG, "sgr-c", ports=(8000, 8000), cidr="10.0.100.0/23")
    assert detect("ecs.load-balancer-ingress", ecs(task_rules=(cidr,))).status is Status.OK
    no_egress = detect("ecs.load-balancer-ingress", ecs(alb_rules=()))
    assert no_egress.status is Status.FAIL and no_egress.changes[0].call.operation == "authorize_security_group_egress"


def test_the_health_check_path_moves_only_when_the_app_answers_404_on_it():
    mismatch = {"target_groups": [{**TARGET_GROUP, "HealthCheckPath": "/ping"}],
                "target_health": {TG: [unhealthy_target("Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")]},
                "load_balancers": [BALANCER], "listeners": {LB: LISTENERS}}
    found = detect("ecs.target-health-check", ecs(load_balancing=mismatch))
    assert found.status is Status.FAIL
    (change,) = found.changes
    assert change.call.params == {"TargetGroupArn": TG, "HealthCheckPath": "/healthz"}
    assert change.inverse.params == {"TargetGroupArn": TG, "HealthCheckPath": "/ping"}
    # Already on the runbook's path: nothing shows a better one.
    same = {**mismatch, "target_groups": [TARGET_GROUP]}
    assert detect("ecs.target-health-check", ecs(load_balancing=same)).changes == ()
    timeout = {**mismatch, "target_health": {TG: [unhealthy_target("Target.Timeout", "Request timed out")]}}
    assert detect("ecs.target-health-check", ecs(load_balancing=timeout)).changes == ()
    assert detect("ecs.target-health-check", ecs()).status is Status.OK


def test_the_image_pull_path():
    assert detect("ecs.image-pull-path", ecs()).status is Status.OK
    public = {**PRIVATE, "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]}
    no_ip = detect("ecs.image-pull-path", ecs(route_tables=(public,)))
    assert no_ip.status is Status.FAIL
    (change,) = no_ip.changes
    sent = change.call.params["networkConfiguration"]["awsvpcConfiguration"]
    assert sent == {"subnets": ["subnet-a", "subnet-b"], "securityGroups": [TASK_SG], "assignPublicIp": "ENABLED"}
    assert change.inverse.params["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    with_ip = service(networkConfiguration={"awsvpcConfiguration": {**sent}})
    assert detect("ecs.image-pull-path", ecs(svc=with_ip, route_tables=(public,))).status is Status.OK
    isolated = {**PRIVATE, "Routes": []}
    closed = detect("ecs.image-pull-path", ecs(route_tables=(isolated,)))
    assert closed.status is Status.FAIL and all(c.recommendation for c in closed.changes)
    endpoints = [{"VpcId": VPC, "ServiceName": f"com.amazonaws.us-east-1.{n}", "VpcEndpointType": k, "State": "available",
                  **({"PrivateDnsEnabled": True} if k == "Interface" else {"RouteTableIds": ["rtb-private"]})}
                 for n, k in (("ecr.api", "Interface"), ("ecr.dkr", "Interface"), ("logs", "Interface"), ("s3", "Gateway"))]
    assert detect("ecs.image-pull-path", ecs(route_tables=(isolated,), endpoints=endpoints)).status is Status.OK
    # A public subnet without a public IP still pulls through the endpoints (Express Mode's way).
    assert detect("ecs.image-pull-path", ecs(route_tables=(public,), endpoints=endpoints)).status is Status.OK


def test_the_log_group():
    assert detect("ecs.log-group", ecs()).status is Status.OK
    missing = detect("ecs.log-group", ecs(**{"log_group:/ecs/nerava-backend": False}))
    assert missing.status is Status.FAIL
    assert [c.call.operation for c in missing.changes] == ["create_log_group"]
    assert missing.changes[0].inverse.operation == "delete_log_group"


def test_the_probe_tells_the_load_balancer_s_own_page_from_the_app_s():
    page = ProbeResult("http://x/healthz", 503, {"server": "awselb/2.0"}, front=platform.FRONT)
    app = ProbeResult("http://x/healthz", 200, {"server": "uvicorn"}, front=platform.FRONT)
    not_found = ProbeResult("http://x/healthz", 404, {"server": "uvicorn"}, front=platform.FRONT)
    assert not page.from_app and app.healthy and not_found.from_app
    found = detect("http.healthz", ecs(probe=page))
    assert found.status is Status.FAIL and "503 from the load balancer itself: no healthy target" in found.summary
    assert "404 from the application" in detect("http.healthz", ecs(probe=not_found)).summary


def test_undo_of_each_call_the_checks_send():
    from runbook.inverses import Refused

    mismatch = {"target_groups": [{**TARGET_GROUP, "HealthCheckPath": "/ping"}],
                "target_health": {TG: [unhealthy_target("Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")]},
                "load_balancers": [BALANCER], "listeners": {LB: LISTENERS}}
    (change,) = detect("ecs.target-health-check", ecs(load_balancing=mismatch)).changes
    assert platform.undo(change.call, dict(change.inverse.params)) == change.inverse
    with pytest.raises(Refused):
        platform.undo(change.call, {"TargetGroupArn": "arn:other", "HealthCheckPath": "/ping"})
    (create,) = detect("ecs.log-group", ecs(**{"log_group:/ecs/nerava-backend": False})).changes
    assert platform.undo(create.call, {}) == create.inverse
    redeploy = detect("ecs.deployment", ecs(deployments=[{"serviceDeploymentArn": "a", "status": "STOPPED"}], broken={"x"})).changes[0]
    assert platform.without_undo(redeploy.call)


def test_the_grace_period_is_advice_only_after_unanswered_health_checks():
    event = {"createdAt": 10.0, "message": "(service nerava-backend) (task t1) (port 8000) is unhealthy in (target-group "
                                           f"{TG}) due to (reason Request timed out)."}
    stopped = [{"taskArn": "arn:task/default/t1", "startedBy": "ecs-svc/1", "stopCode": "ServiceSchedulerInitiated",
                "stoppedReason": f"Task failed ELB health checks in (target-group {TG})"}]
    slow = service(events=[event], healthCheckGracePeriodSeconds=0)
    found = detect("ecs.grace-period", ecs(svc=slow, stopped=stopped))
    assert found.status is Status.WARN and all(c.recommendation for c in found.changes)
    (change,) = found.changes
    assert change.call.params["healthCheckGracePeriodSeconds"] == 120 and change.inverse.params["healthCheckGracePeriodSeconds"] == 0
    assert platform.undo(change.call, dict(change.inverse.params)) == change.inverse
    # A 404 is an answer: the app was up; no grace period helps.
    wrong_path = service(events=[{**event, "message": event["message"].replace("Request timed out", "Health checks failed with these codes: [404]")}])
    assert detect("ecs.grace-period", ecs(svc=wrong_path, stopped=stopped)).status is Status.OK
    assert detect("ecs.grace-period", ecs()).status is Status.OK


def test_express_mode_s_managed_resources_are_read_and_a_failed_one_named():
    express = service(resourceManagementType="ECS")
    managed = {"ingressPaths": [{"endpoint": "nerava-api.ecs.us-east-1.on.aws",
                                 "loadBalancer": {"arn": LB, "status": "ACTIVE"},
                                 "targetGroups": [{"arn": TG, "status": "ACTIVE", "healthCheckPath": "/ping"}],
                                 "certificate": {"arn": "arn:acm/c", "status": "FAILED", "statusReason": "validation timed out"}}]}
    found = detect("ecs.service-status", ecs(svc=express, managed=managed, express={"status": {"statusCode": "ACTIVE"}}))
    assert found.status is Status.FAIL and "its certificate (validation timed out)" in found.summary
    fine = {"ingressPaths": [{**managed["ingressPaths"][0], "certificate": {"arn": "arn:acm/c", "status": "ACTIVE"}}]}
    ok = detect("ecs.service-status", ecs(svc=express, managed=fine, express={"status": {"statusCode": "ACTIVE"}}))
    assert ok.status is Status.OK and ok.summary.startswith("Express Mode service")


class _Answers:
    """AWS's answers for the deployment poll, as fixed data (the sandbox lists a deployment at once,
    so it cannot show ListServiceDeployments lagging behind the deployment update_service started)."""

    def __init__(self, primary_created, listed):
        self.primary_created, self.listed = primary_created, listed

    def call(self, service, operation, /, **params):
        if operation == "describe_services":
            return {"services": [service_answer(self.primary_created)]}
        if operation == "list_service_deployments":
            return {"serviceDeployments": [{"serviceDeploymentArn": "arn:sd/1", "createdAt": 100.0, "status": self.listed}]}
        if operation == "describe_service_deployments":
            return {"serviceDeployments": [{"serviceDeploymentArn": "arn:sd/1", "createdAt": 100.0, "status": self.listed}]}
        raise AssertionError(operation)


def service_answer(created):
    return service(deployments=[{"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS", "createdAt": created}])


def test_the_wait_is_on_the_deployment_update_service_started_even_before_it_is_listed():
    w = ecs().workload
    done, state = platform.deployment(_Answers(primary_created=500.0, listed="ROLLBACK_SUCCESSFUL"), w)
    assert not done and "not yet listed" in state
    done, state = platform.deployment(_Answers(primary_created=100.0, listed="SUCCESSFUL"), w)
    assert done and state == "service deployment SUCCESSFUL"
