"""Red team for the ECS platform (issue 14): each test showed one wrong verdict, unsafe change, loose
undo or untrue sentence in the code as first reviewed (each comment says what was wrong and what AWS
does, with a source where one exists); they pass since the fixes. Pure snapshots built the way
tests/test_checks_ecs.py builds them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runbook.model import Status
from runbook.platforms import ecs as platform
from tests import test_checks_ecs as base

ecs, detect, service = base.ecs, base.detect, base.service
TG, LB, TASK_SG = base.TG, base.LB, base.TASK_SG


def _stopped(reason, stop_code="TaskFailedToStart", containers=()):
    return [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/default/t1", "startedBy": "ecs-svc/1",
             "stopCode": stop_code, "stoppedReason": reason, "containers": list(containers)}]


IN_PROGRESS = service(deployments=[{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "IN_PROGRESS",
                                    "runningCount": 0, "desiredCount": 2}], runningCount=0)


# -- stopped tasks: the cause each reason is tied to ---------------------------------------------------
def test_a_secrets_manager_access_denied_is_not_blamed_on_the_image_pull_path():
    # WRONG: _STOP_CAUSES' first pattern ends in `.*(ECR|registry)` with re.I, and "secret" contains
    # "ecr" (s-ECR-et). AWS's own wording for a secret the execution role may not read
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/resource-initialization-error.html):
    reason = ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
              "unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret "
              "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf from secrets manager: AccessDeniedException: "
              "User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/abc is not authorized to perform: "
              "secretsmanager:GetSecretValue")
    found = detect("ecs.stopped-tasks", ecs(svc=IN_PROGRESS, stopped=_stopped(reason)))
    assert found.status is Status.FAIL
    assert "the image could not be pulled" not in found.summary, found.summary


def test_a_timeout_reaching_cloudwatch_logs_is_not_a_missing_log_group():
    # WRONG: "failed to validate logger args" is mapped to "the awslogs group is missing". The same
    # prefix comes with a network failure to logs.<region>.amazonaws.com (no NAT/endpoint: failure mode 1
    # of domain-ecs.md), where the group exists and creating it fixes nothing.
    reason = ("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
              "failed to create Cloudwatch log stream: RequestError: send request failed caused by: Post "
              "\"https://logs.us-east-1.amazonaws.com/\": dial tcp 10.0.0.2:443: i/o timeout : exit status 1")
    found = detect("ecs.stopped-tasks", ecs(svc=IN_PROGRESS, stopped=_stopped(reason)))
    assert "the awslogs group is missing" not in found.summary, found.summary


def test_tasks_killed_for_failing_their_container_health_check_are_failures():
    # WRONG verdict (OK): only stopCode TaskFailedToStart/EssentialContainerExited or "failed ELB health
    # checks" count. A task whose container healthCheck fails is stopped by the scheduler with stopCode
    # ServiceSchedulerInitiated and "Task failed container health checks"
    # (https://repost.aws/knowledge-center/ecs-task-stopped, "Failed container health checks").
    stopped = _stopped("Task failed container health checks", stop_code="ServiceSchedulerInitiated",
                       containers=[{"name": "app", "healthStatus": "UNHEALTHY", "lastStatus": "STOPPED"}])
    found = detect("ecs.stopped-tasks", ecs(svc=IN_PROGRESS, stopped=stopped))
    assert found.status is not Status.OK, found.summary


# -- target health -------------------------------------------------------------------------------------
def _balancing(targets, *, groups=None, listeners=None, balancers=None):
    return {"target_groups": groups or [base.TARGET_GROUP], "target_health": targets,
            "load_balancers": balancers or [base.BALANCER], "listeners": {LB: listeners or base.LISTENERS}}


def test_targets_not_in_use_are_a_failure_not_still_being_checked():
    # WRONG verdict and sentence: `reasons` is read only from State == unhealthy. State `unused` with
    # Target.NotInUse means the target's AZ is not enabled on the load balancer (or the group serves no
    # LB): it never turns healthy (domain-ecs.md, ELBv2 TargetHealth; ALB guide "target health status").
    # The check says WARN "the load balancer is still checking them", a passing status.
    unused = [{"Target": {"Id": "10.0.1.10", "Port": 8000},
               "TargetHealth": {"State": "unused", "Reason": "Target.NotInUse",
                                "Description": "Target is in an Availability Zone that is not enabled for the load balancer"}}]
    found = detect("ecs.target-health-check", ecs(load_balancing=_balancing({TG: unused})))
    assert "still checking" not in found.summary, found.summary
    assert found.status is Status.FAIL


def test_an_unhealthy_second_target_group_is_not_ignored():
    # WRONG verdict (OK): serving_target_group() takes the first group with a load balancer and every
    # check reads that one only. ECS registers each task in every target group of loadBalancers[] and
    # replaces it when it fails any of them
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/register-multiple-targetgroups.html).
    tg2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nerava-admin/2"
    second = {**base.TARGET_GROUP, "TargetGroupArn": tg2, "TargetGroupName": "nerava-admin", "Port": 9000,
              "HealthCheckPath": "/admin/ping"}
    svc = service(loadBalancers=[{"targetGroupArn": TG, "containerName": "app", "containerPort": 8000},
                                 {"targetGroupArn": tg2, "containerName": "app", "containerPort": 9000}])
    bad = [base.unhealthy_target("Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")]
    t = ecs(svc=svc, load_balancing=_balancing({TG: [base.healthy_target()], tg2: bad}, groups=[base.TARGET_GROUP, second]))
    found = detect("ecs.target-health-check", t)
    assert found.status is not Status.OK, found.summary


def test_unreadable_target_groups_are_not_reported_as_no_load_balancer():
    # UNTRUE sentences and a run judged healthy: when DescribeTargetGroups fails (AccessDenied, a
    # deleted group), target_groups is [] so serving_target_group() is None, and lb-ingress,
    # target-health and healthz all say SKIPPED "the service has no load balancer" although
    # describe_services' loadBalancers[] names one. target_health_check's reads_failed branch is
    # unreachable (it is tested after `group is None`). SKIPPED passes, so the run can exit 0.
    # A deleted target group (TargetGroupNotFound) reads the same, and there ECS cannot register any task.
    from runbook import runbook as rb
    from runbook.engine import evaluate
    from runbook.next_action import is_healthy

    t = ecs(load_balancing=(None, "AccessDeniedException: not authorized to perform elasticloadbalancing:DescribeTargetGroups"))
    for check in ("ecs.target-health-check", "ecs.load-balancer-ingress", "http.healthz"):
        found = detect(check, t)
        assert "no load balancer" not in found.summary, (check, found.summary)
        assert found.status is not Status.SKIPPED, (check, found.summary)
    loaded = rb.load("ecs-service")
    assert not is_healthy(evaluate(loaded, replace(t, steps=loaded.steps))), "the whole run is judged healthy (exit 0)"


def test_an_https_listener_is_not_probed_by_the_load_balancer_s_own_dns_name():
    # WRONG verdict: _entry() prefers an HTTPS listener and probes https://<ALB DNSName>. An ALB's
    # certificate is the customer's (ACM cannot issue for *.elb.amazonaws.com), so urllib's verification
    # fails on the hostname and healthz says "the service URL did not answer at all" for a healthy app.
    # The usual ALB (HTTP:80 redirecting to HTTPS:443) hits it; HTTP alone gives the redirect instead.
    listeners = [{"Protocol": "HTTP", "Port": 80, "DefaultActions": [{"Type": "redirect"}]},
                 {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}]}]
    w = ecs(load_balancing=_balancing({TG: [base.healthy_target()]}, listeners=listeners)).workload
    # The fix chosen: the HTTPS listener is probed on that name without checking the certificate, and said so.
    assert not (w.url or "").startswith(f"https://{base.BALANCER['DNSName']}") or w.tls_unchecked, w.url


# -- the container the service's traffic reaches --------------------------------------------------------
def test_the_environment_and_logs_are_the_load_balanced_container_s_not_the_first_sidecar_s():
    # WRONG: essential_container() takes the first essential container. A sidecar listed first
    # (X-Ray, a log router, envoy; all essential by default) hides the app's DATABASE_URL/REDIS_URL, so
    # the database and cache steps skip, and the image and log group checked are the sidecar's. The
    # container the service serves is named by loadBalancers[].containerName.
    sidecar = {"name": "xray", "image": "public.ecr.aws/xray/aws-xray-daemon:latest", "portMappings": [{"containerPort": 2000}]}
    app = {**base.TASK_DEFINITION["containerDefinitions"][0],
           "environment": [{"name": "DATABASE_URL", "value": "postgresql://app@db.example.internal:5432/app"}]}
    w = ecs(task_definition={"containerDefinitions": [sidecar, app]}).workload
    assert "DATABASE_URL" in w.env, w.env
    assert w.log_groups == ("/ecs/nerava-backend",)


def test_a_log_group_in_another_region_is_not_created_in_this_one():
    # WRONG verdict and a change on a working service: awslogs-region sends the logs to that region, but
    # log_group_exists() reads the runbook's region; the check says FAIL "no task can start" and proposes
    # logs create_log_group in the wrong region
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html, awslogs-region).
    td = {"containerDefinitions": [{**base.TASK_DEFINITION["containerDefinitions"][0], "logConfiguration": {
        "logDriver": "awslogs", "options": {"awslogs-group": "/ecs/nerava-backend", "awslogs-region": "eu-west-1"}}}]}
    # What the product read in us-east-1: no such group there.
    found = detect("ecs.log-group", ecs(task_definition=td, **{"log_group:/ecs/nerava-backend": False}))
    assert not found.changes, [c.call for c in found.changes]
    assert found.status is not Status.FAIL, found.summary


# -- image pull path -------------------------------------------------------------------------------------
ISOLATED = {**base.PRIVATE, "Routes": []}


def _endpoints(**overrides):
    made = []
    for name, kind in (("ecr.api", "Interface"), ("ecr.dkr", "Interface"), ("s3", "Gateway")):
        e = {"VpcId": base.VPC, "ServiceName": f"com.amazonaws.us-east-1.{name}", "VpcEndpointType": kind, "State": "available"}
        if kind == "Interface":
            e.update(PrivateDnsEnabled=True, Groups=[{"GroupId": "sg-0eee000000000000e"}])
        else:
            e.update(RouteTableIds=["rtb-private"])
        e.update(overrides.get(name, {}))
        made.append(e)
    return made


def test_an_s3_gateway_endpoint_on_another_route_table_is_no_way_to_the_layers():
    # WRONG verdict (OK): a gateway endpoint serves only the route tables it is associated with
    # (it adds the prefix-list route there: https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html).
    # ECR's layers come from S3, so isolated subnets whose table lacks it cannot pull.
    t = ecs(route_tables=(ISOLATED,), endpoints=_endpoints(s3={"RouteTableIds": ["rtb-someone-else"]}))
    found = detect("ecs.image-pull-path", t)
    assert found.status is not Status.OK, found.summary


def test_an_ecr_endpoint_without_private_dns_is_no_way_to_the_registry():
    # WRONG verdict (OK): without PrivateDnsEnabled, <acct>.dkr.ecr.<region>.amazonaws.com still resolves
    # to ECR's public addresses, which isolated subnets cannot reach
    # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html: private DNS is required).
    t = ecs(route_tables=(ISOLATED,), endpoints=_endpoints(**{"ecr.dkr": {"PrivateDnsEnabled": False}}))
    found = detect("ecs.image-pull-path", t)
    assert found.status is not Status.OK, found.summary


def test_an_endpoint_group_that_does_not_admit_the_tasks_on_443_is_no_way_to_the_registry():
    # WRONG verdict (OK): failure mode 3 of domain-ecs.md. Interface endpoints are reached on tcp/443 and
    # their security groups must admit the task group
    # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html; the Express best
    # practices page shows the egress rule). The endpoint group here admits nothing; the check never reads it.
    t = ecs(route_tables=(ISOLATED,), endpoints=_endpoints())
    t = replace(t, sg_rules={**t.sg_rules, "sg-0eee000000000000e": []})
    found = detect("ecs.image-pull-path", t)
    assert found.status is not Status.OK, found.summary


def test_isolated_subnets_without_a_logs_endpoint_cannot_start_an_awslogs_task():
    # WRONG verdicts (both OK): with no route out, the awslogs driver needs the logs interface endpoint
    # (and secrets need secretsmanager/ssm): "ResourceInitializationError: failed to validate logger args"
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/verify-connectivity.html). Only
    # ecr.api, ecr.dkr and s3 are looked for, and no other step reads the endpoints.
    t = ecs(route_tables=(ISOLATED,), endpoints=_endpoints())
    verdicts = {name: detect(name, t) for name in ("ecs.image-pull-path", "ecs.log-group")}
    assert any(f.status is not Status.OK for f in verdicts.values()), {k: f.summary for k, f in verdicts.items()}


def test_unread_endpoints_do_not_justify_giving_the_tasks_public_ips():
    # CHANGE WITHOUT EVIDENCE: a public subnet, assignPublicIp DISABLED, and DescribeVpcEndpoints
    # denied: the ecr/s3 endpoints that make this work (the Express layout) could not be seen, yet the
    # check proposes update_service assignPublicIp=ENABLED (a deployment, and public IPs on every task)
    # as a real change. The "could not be read" WARN covers only the no-route case. Here the service even
    # runs its tasks and its targets are healthy: the pull path demonstrably works.
    public = {**base.PRIVATE, "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]}
    found = detect("ecs.image-pull-path", ecs(route_tables=(public,), endpoints=(None, "UnauthorizedOperation: ec2:DescribeVpcEndpoints")))
    real = [c for c in found.changes if not c.recommendation]
    assert not real, [c.call.params for c in real]


# -- deployment ------------------------------------------------------------------------------------------
def test_a_deployment_without_rollout_state_and_no_task_running_is_not_ok():
    # WRONG verdict and sentence: with no service deployment listed (an old service, the API empty) and a
    # PRIMARY deployment without rolloutState (CODE_DEPLOY/EXTERNAL controllers, or a circuit breaker off:
    # rolloutState is reported for the rolling ECS controller only), failed and open are both False and
    # the check says OK "the newest deployment is rolloutState None, 0/2 running".
    svc = service(runningCount=0, deployments=[{"id": "ecs-svc/1", "status": "PRIMARY", "runningCount": 0, "desiredCount": 2,
                                                "failedTasks": 6}])
    found = detect("ecs.deployment", ecs(svc=svc, deployments=[]))
    assert "None" not in found.summary, found.summary
    assert found.status is not Status.OK, found.summary


# -- undo ------------------------------------------------------------------------------------------------
def _public_ip_change():
    public = {**base.PRIVATE, "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]}
    (change,) = detect("ecs.image-pull-path", ecs(route_tables=(public,))).changes
    return change


def test_undo_of_the_public_ip_update_recomputes_its_inverse_instead_of_trusting_the_journal():
    # LOOSE UNDO: platforms/ecs.py undo() only checks the recorded inverse's keys, then sends its values.
    # inverses.py's contract: never send an inverse because the journal names it (a journal is an
    # editable file). The inverse of assignPublicIp=ENABLED is fully determined by the call: the same
    # subnets and groups with DISABLED. An edited journal moves the service to other subnets and groups
    # (and keeps public IPs), and undo sends it.
    from runbook.inverses import Refused

    change = _public_ip_change()
    assert platform.undo(change.call, dict(change.inverse.params)) == change.inverse
    tampered = {"cluster": "default", "service": base.ARN, "networkConfiguration": {"awsvpcConfiguration": {
        "subnets": ["subnet-attacker"], "securityGroups": ["sg-0fff00000000000ff"], "assignPublicIp": "ENABLED"}}}
    # The journal's path: inverses.undo_of compares the journal's inverse with platform.undo's, which is
    # built from that same inverse, so the comparison cannot fail.
    from runbook.inverses import undo_of

    with pytest.raises(Refused):
        undo_of(change.call.as_dict(), {"service": "ecs", "operation": "update_service", "params": tampered})


def test_undo_refuses_calls_and_values_runbook_never_sends():
    # LOOSE UNDO: no check sends healthCheckGracePeriodSeconds or a Matcher, yet undo accepts them and
    # sends whatever the journal recorded (a string grace period, a dict path).
    from runbook.inverses import Refused

    grace = platform.ApiCall("ecs", "update_service", {"cluster": "default", "service": base.ARN, "healthCheckGracePeriodSeconds": 300})
    with pytest.raises(Refused):
        platform.undo(grace, {"cluster": "default", "service": base.ARN, "healthCheckGracePeriodSeconds": "0; rm -rf"})
    path = platform.ApiCall("elbv2", "modify_target_group", {"TargetGroupArn": TG, "HealthCheckPath": "/healthz"})
    with pytest.raises(Refused):
        platform.undo(path, {"TargetGroupArn": TG, "HealthCheckPath": {"not": "a path"}})


def test_the_express_health_path_inverse_is_express_s_own_old_path():
    # INEXACT INVERSE: update_express_gateway_service(healthCheckPath) changes Express's setting, whose
    # old value is activeConfigurations[0].healthCheckPath; the inverse takes the target group's path.
    # They differ once someone changed the group directly (Express keeps such changes: domain-ecs.md,
    # express-service-advanced-customization), and undo then writes the group's path into Express.
    express = {"serviceArn": base.ARN, "status": {"statusCode": "ACTIVE"},
               "activeConfigurations": [{"healthCheckPath": "/ping", "ingressPaths": []}]}
    group = {**base.TARGET_GROUP, "HealthCheckPath": "/status"}
    bad = [base.unhealthy_target("Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")]
    t = ecs(svc=service(resourceManagementType="ECS"), express=express,
            load_balancing=_balancing({TG: bad}, groups=[group]))
    (change,) = detect("ecs.target-health-check", t).changes
    assert change.call.operation == "update_express_gateway_service"
    assert change.inverse.params["healthCheckPath"] == "/ping", change.inverse.params


# -- after a circuit-breaker rollback ---------------------------------------------------------------------
# With rollback on, "the service is rolled back to the last deployment that completed successfully"
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentCircuitBreaker.html): once it
# is steady, deployments[] holds one PRIMARY deployment, COMPLETED, on the old revision (the sandbox's
# scheduler models it so: ecs_scheduler.py _trip/_steady), and the failed deployment's tasks carry its id.
RESTORED = service(deployments=[{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED",
                                 "rolloutStateReason": "ECS deployment ecs-svc/1 completed.", "runningCount": 2, "desiredCount": 2}],
                   events=[{"id": "e3", "createdAt": 300, "message": "(service nerava-backend) has reached a steady state."},
                           {"id": "e2", "createdAt": 200, "message": "(service nerava-backend) rolling back to deployment ecs-svc/1."},
                           {"id": "e1", "createdAt": 190, "message": "(service nerava-backend) (deployment ecs-svc/2) deployment "
                                                                     "failed: tasks failed to start."}])


def test_a_completed_rollback_is_a_failure_without_the_service_deployments_api():
    # WRONG verdict (OK): with ListServiceDeployments denied (reads_failed) the check falls back to the
    # PRIMARY deployment's rolloutState, which after the rollback is the restored COMPLETED one. The
    # evidence that the newest deployment failed is left only in events[] ("deployment failed: tasks
    # failed to start.", "rolling back to deployment"), which the check never reads. Failure mode 12.
    found = detect("ecs.deployment", ecs(svc=RESTORED, deployments=(None, "AccessDeniedException: ecs:ListServiceDeployments")))
    assert found.status is not Status.OK, found.summary


def test_the_failed_deployment_s_stopped_tasks_are_not_called_earlier_ones_after_a_rollback():
    # WRONG verdict (OK) and UNTRUE sentence: stopped-tasks keeps the tasks startedBy the PRIMARY
    # deployment, which after a rollback is the restored older one; the tasks of the deployment that
    # just failed (the newest, ROLLBACK_SUCCESSFUL) are called "from earlier deployments".
    stopped = [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/default/t9", "startedBy": "ecs-svc/2",
                "stopCode": "TaskFailedToStart", "stoppedAt": 195,
                "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): i/o timeout"}]
    t = ecs(svc=RESTORED, stopped=stopped, deployments=[{"serviceDeploymentArn": "arn:sd/2", "status": "ROLLBACK_SUCCESSFUL"},
                                                        {"serviceDeploymentArn": "arn:sd/1", "status": "SUCCESSFUL"}])
    assert detect("ecs.deployment", t).status is not Status.OK  # the deployment check sees it
    found = detect("ecs.stopped-tasks", t)
    assert "earlier deployments" not in found.summary, found.summary
    assert found.status is not Status.OK, found.summary


# -- bad input ---------------------------------------------------------------------------------------------
def test_an_arn_in_an_unknown_cluster_is_not_told_to_pass_cluster(world):
    # UNTRUE advice: find() answers ClusterNotFoundException with "(pass --cluster NAME)", but an ARN names
    # its cluster and commands/run.py service_ref() refuses --cluster beside an ARN ("drop --cluster").
    from runbook.aws import Aws
    from runbook.errors import UsageError

    world("ecs-healthy")
    with pytest.raises(UsageError) as raised:
        platform.find(Aws(None, None, read_only=True), "arn:aws:ecs:us-east-1:123456789012:service/nope/nerava-backend")
    assert "pass --cluster" not in str(raised.value), str(raised.value)
