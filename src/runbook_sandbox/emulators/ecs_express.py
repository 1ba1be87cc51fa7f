"""ECS Express Mode in the ECS emulator: its four operations and the resources it manages.

An Express service is an ordinary ECS service (``resourceManagementType`` ``ECS``)
on a task definition with one container, ``Main``, behind a load balancer whose
target group probes ``healthCheckPath`` (default ``/ping``) on
``primaryContainer.containerPort`` (default 80). ``assignPublicIp`` is
``DISABLED`` (Express cannot set it) and the circuit breaker rolls back. Each
update is a new task definition revision and a new deployment; blocks given
to ``UpdateExpressGatewayService`` replace the current ones whole
(``primaryContainer`` needs its ``image``). The ALB, target group, security
groups and log group come from an :class:`ExpressProvisioner`.
(Unverified: the cluster is named, not given as an ARN, in the ``cluster`` field;
the endpoint is ``<service>.ecs.<region>.on.aws``; cpu 256 / memory 512 by default, the model's.)
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from runbook_sandbox.emulators.ecs_params import ApiError, integer_param, invalid, region_of, string_param, tags_param
from runbook_sandbox.emulators.ecs_scheduler import ACCOUNT, ServiceRecord

CONTAINER = "Main"


@dataclass
class ExpressResources:
    """What Express Mode provisions around a service, as ``ecsManagedResources`` shows it."""

    load_balancer_arn: str
    target_group_arn: str
    load_balancer_security_groups: list[str]
    service_security_groups: list[str]  # added to the service's own groups (AWS tags them AmazonECSManaged)
    endpoint: str
    scheme: str = "internet-facing"
    access_type: str = "PUBLIC"
    listener_arn: str = ""
    rule_arn: str = ""
    certificate_arn: str = ""
    log_group: str = ""
    status: str = "ACTIVE"
    updated_at: float = field(default_factory=time.time)
    tags: list[dict] = field(default_factory=list)  # on each managed resource (a provisioner's own)


class ExpressProvisioner(Protocol):
    def provision(self, region: str, cluster: str, service_name: str, configuration: dict) -> ExpressResources: ...

    def reconfigure(self, region: str, resources: ExpressResources, configuration: dict) -> None:
        """The configuration changed (health path, container port): the target group must follow."""

    def deprovision(self, region: str, resources: ExpressResources) -> None: ...


class FabricatedExpress:
    """The default provisioner: ARNs and group ids that name nothing outside the emulator."""

    def provision(self, region: str, cluster: str, service_name: str, configuration: dict) -> ExpressResources:
        elb = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}"
        lb_id, tg_id = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
        alb = f"app/ecs-express-gateway-alb-{lb_id[:8]}/{lb_id}"
        logs = configuration["primaryContainer"].get("awsLogsConfiguration") or {}
        return ExpressResources(
            load_balancer_arn=f"{elb}:loadbalancer/{alb}",
            target_group_arn=f"{elb}:targetgroup/ecs-gateway-tg-{tg_id[:8]}/{tg_id}",
            load_balancer_security_groups=[f"sg-{uuid.uuid4().hex[:17]}"],
            service_security_groups=[f"sg-{uuid.uuid4().hex[:17]}"],
            endpoint=f"{service_name}.ecs.{region}.on.aws",
            listener_arn=f"{elb}:listener/{alb}/{uuid.uuid4().hex[:16]}",
            rule_arn=f"{elb}:listener-rule/{alb}/{uuid.uuid4().hex[:16]}/{uuid.uuid4().hex[:16]}",
            certificate_arn=f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{uuid.uuid4()}",
            log_group=logs.get("logGroup", f"/aws/ecs/{cluster}/{service_name}"))

    def reconfigure(self, region: str, resources: ExpressResources, configuration: dict) -> None:
        resources.updated_at = time.time()

    def deprovision(self, region: str, resources: ExpressResources) -> None:
        resources.status, resources.updated_at = "DELETED", time.time()


def _container(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("image"), str) or not value["image"]:
        raise invalid("primaryContainer.image can not be blank.")
    container = copy.deepcopy(value)
    container["containerPort"] = integer_param(value, "containerPort", 1, 65535, default=80)
    return container


def _express_network(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("subnets"), list) or not value["subnets"]:
        raise invalid("networkConfiguration.subnets can not be empty (the emulator has no default VPC).")
    return {"securityGroups": list(value.get("securityGroups") or []), "subnets": list(value["subnets"])}


def managed_view(express: dict, revision_arn: str) -> dict:
    """``ecsManagedResources`` of one revision of an Express service."""
    r: ExpressResources = express["resources"]
    config = express["configs"][revision_arn]
    port = config["primaryContainer"]["containerPort"]
    region = region_of(r.load_balancer_arn)

    def managed(arn: str, **more: Any) -> dict:
        return {"arn": arn, "status": r.status, "updatedAt": r.updated_at, **more}

    def group(sg: str) -> dict:
        return managed(f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/{sg}")

    scaling = config["scalingTarget"]
    return {
        "ingressPaths": [{
            "accessType": r.access_type, "endpoint": r.endpoint,
            "loadBalancer": managed(r.load_balancer_arn, scheme=r.scheme,
                                    subnetIds=list(config["networkConfiguration"]["subnets"]),
                                    securityGroupIds=list(r.load_balancer_security_groups)),
            "loadBalancerSecurityGroups": [group(sg) for sg in r.load_balancer_security_groups],
            "certificate": managed(r.certificate_arn, domainName=r.endpoint),
            "listener": managed(r.listener_arn), "rule": managed(r.rule_arn),
            "targetGroups": [managed(r.target_group_arn, healthCheckPath=config["healthCheckPath"],
                                     healthCheckPort=port, port=port)],
        }],
        "autoScaling": {"scalableTarget": managed(
            f"arn:aws:application-autoscaling:{region}:{ACCOUNT}:scalable-target/{uuid.uuid5(uuid.NAMESPACE_URL, r.endpoint).hex}",
            minCapacity=scaling.get("minTaskCount", 1), maxCapacity=scaling.get("maxTaskCount", 1))},
        "metricAlarms": [],
        "serviceSecurityGroups": [group(sg) for sg in r.service_security_groups],
        "logGroups": [managed(f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{r.log_group}", logGroupName=r.log_group)],
    }


class ExpressMode:
    """The Express operations of :class:`~runbook_sandbox.emulators.ecs.EcsEmulator` (a mixin)."""

    express: ExpressProvisioner
    clusters: dict[str, dict]
    task_definitions: dict[str, dict]

    def _express_configuration(self, params: dict, base: dict | None, region: str) -> dict:
        config = copy.deepcopy(base) if base else {"healthCheckPath": "/ping", "cpu": "256", "memory": "512",
                                                   "cpuArchitecture": "X86_64", "scalingTarget": {"minTaskCount": 1}}
        for key in ("executionRoleArn", "taskRoleArn", "healthCheckPath", "cpu", "memory"):
            if key in params:
                config[key] = string_param(params, key, required=True)
        if "cpuArchitecture" in params:
            if params["cpuArchitecture"] not in ("X86_64", "ARM64"):
                raise invalid("cpuArchitecture must be X86_64 or ARM64")
            config["cpuArchitecture"] = params["cpuArchitecture"]
        if "taskDefinitionArn" in params:
            td = self.task_definitions.get(self._resolve_task_definition(params["taskDefinitionArn"], region))
            main = next((c for c in td["containerDefinitions"] if c["name"] == CONTAINER), None) if td else None
            if main is None or not main.get("portMappings"):
                raise invalid(f"The task definition needs a container named {CONTAINER} with a port mapping.")
            config["primaryContainer"] = {"image": main["image"], "containerPort": main["portMappings"][0]["containerPort"]}
        if "primaryContainer" in params:
            config["primaryContainer"] = _container(params["primaryContainer"])
        if "primaryContainer" not in config:
            raise invalid("primaryContainer or taskDefinitionArn is required.")
        if "networkConfiguration" in params:
            config["networkConfiguration"] = _express_network(params["networkConfiguration"])
        if "networkConfiguration" not in config:
            raise invalid("networkConfiguration.subnets can not be empty (the emulator has no default VPC).")
        if "scalingTarget" in params:
            scaling = params["scalingTarget"]
            if not isinstance(scaling, dict):
                raise invalid("scalingTarget must be an object")
            config["scalingTarget"] = dict(copy.deepcopy(scaling), minTaskCount=integer_param(
                scaling, "minTaskCount", 0, 10000, default=1))
        return config

    def _express_task_definition(self, name: str, config: dict, log_group: str, region: str) -> str:
        container = config["primaryContainer"]
        definition: dict[str, Any] = {
            "name": CONTAINER, "image": container["image"], "essential": True,
            "portMappings": [{"containerPort": container["containerPort"], "protocol": "tcp",
                              "name": f"{CONTAINER.lower()}-{container['containerPort']}-tcp", "appProtocol": "http"}],
            "environment": copy.deepcopy(container.get("environment", [])),
            "secrets": copy.deepcopy(container.get("secrets", [])),
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group, "awslogs-region": region,
                "awslogs-stream-prefix": (container.get("awsLogsConfiguration") or {}).get("logStreamPrefix", "ecs")}},
        }
        if container.get("command"):
            definition["command"] = list(container["command"])
        params: dict[str, Any] = {"family": name, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                                  "cpu": config["cpu"], "memory": config["memory"], "containerDefinitions": [definition],
                                  "runtimePlatform": {"cpuArchitecture": config["cpuArchitecture"],
                                                      "operatingSystemFamily": "LINUX"}}
        for key in ("executionRoleArn", "taskRoleArn"):
            if key in config:
                params[key] = config[key]
        return self._op_RegisterTaskDefinition(params, region)["taskDefinition"]["taskDefinitionArn"]

    def _service_shape(self, config: dict, resources: ExpressResources, td_arn: str) -> dict:
        """What an Express configuration asks of the ECS service underneath."""
        net = config["networkConfiguration"]
        return {"taskDefinition": td_arn, "desiredCount": config["scalingTarget"]["minTaskCount"],
                "networkConfiguration": {"awsvpcConfiguration": {
                    "subnets": net["subnets"], "assignPublicIp": "DISABLED",
                    "securityGroups": net["securityGroups"] + [sg for sg in resources.service_security_groups
                                                               if sg not in net["securityGroups"]]}},
                "loadBalancers": [{"targetGroupArn": resources.target_group_arn, "containerName": CONTAINER,
                                   "containerPort": config["primaryContainer"]["containerPort"]}]}

    def _op_CreateExpressGatewayService(self, params: dict, region: str) -> dict:  # noqa: N802 - AWS's name
        role = string_param(params, "infrastructureRoleArn", required=True)
        name = string_param(params, "serviceName", required=True)
        cluster = self._cluster(params, region, create_default=True)
        existing = self._lookup(cluster, name)
        if existing is not None and existing.status != "INACTIVE":
            raise invalid("Creation of service was not idempotent.")
        config = self._express_configuration(params, None, region)
        cluster_name = self.clusters[cluster]["name"]
        resources = self.express.provision(region, cluster_name, name, config)
        config["ingressPaths"] = [{"accessType": resources.access_type, "endpoint": resources.endpoint}]
        config["taskDefinitionArn"] = self._express_task_definition(name, config, resources.log_group, region)
        now = time.time()
        express = {"infrastructureRoleArn": role, "resources": resources, "configs": {}, "createdAt": now,
                   "updatedAt": now, "tags": tags_param(params)}
        shape = self._service_shape(config, resources, config["taskDefinitionArn"])
        self._op_CreateService(dict(shape, cluster=cluster, serviceName=name, enableECSManagedTags=True,
                                    propagateTags="SERVICE", tags=express["tags"], deploymentConfiguration={
                                        "deploymentCircuitBreaker": {"enable": True, "rollback": True}}),
                               region, management="ECS", express=express)
        record = self._lookup(cluster, name)
        express["configs"][record.primary.revision_arn] = config
        return {"service": self._express_view(record, tags=True)}

    def _express_record(self, params: dict, region: str, *, missing: str, active: bool = False) -> ServiceRecord:
        arn = string_param(params, "serviceArn", required=True)
        record = next((s for s in reversed(list(self.scheduler.services.values()))
                       if s.arn == arn and s.express is not None and s.region == region), None)
        if record is None:
            raise ApiError(missing, "Service not found." if missing == "ServiceNotFoundException" else "Resource not found")
        if active and record.status != "ACTIVE":
            raise ApiError("ServiceNotActiveException", "Service was not ACTIVE.")
        return record

    def _configuration_view(self, record: ServiceRecord, revision_arn: str) -> dict:
        config = copy.deepcopy(record.express["configs"][revision_arn])
        return dict(config, serviceRevisionArn=revision_arn, createdAt=record.revisions[revision_arn]["createdAt"])

    def _express_view(self, record: ServiceRecord, *, tags: bool = False) -> dict:
        express = record.express
        view: dict[str, Any] = {
            "cluster": self.clusters[record.cluster_arn]["name"], "serviceName": record.name, "serviceArn": record.arn,
            "infrastructureRoleArn": express["infrastructureRoleArn"], "status": {"statusCode": record.status},
            "activeConfigurations": [self._configuration_view(record, d.revision_arn) for d in record.deployments
                                     if d.revision_arn in express["configs"]],
            "createdAt": express["createdAt"], "updatedAt": express["updatedAt"],
        }
        if record.service_deployments:
            view["currentDeployment"] = record.service_deployments[-1]["serviceDeploymentArn"]
        if tags:
            view["tags"] = copy.deepcopy(express["tags"])
        return view

    def _op_DescribeExpressGatewayService(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._express_record(params, region, missing="ResourceNotFoundException")
        return {"service": self._express_view(record, tags="TAGS" in (params.get("include") or []))}

    def _op_UpdateExpressGatewayService(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._express_record(params, region, missing="ServiceNotFoundException", active=True)
        express = record.express
        current = next(express["configs"][d.revision_arn] for d in record.deployments
                       if d.revision_arn in express["configs"])
        config = self._express_configuration(params, current, region)
        resources: ExpressResources = express["resources"]
        self.express.reconfigure(region, resources, config)
        config["taskDefinitionArn"] = self._express_task_definition(record.name, config, resources.log_group, region)
        shape = self._service_shape(config, resources, config["taskDefinitionArn"])
        self._op_UpdateService(dict(shape, cluster=record.cluster_arn, service=record.arn), region)
        express["configs"][record.primary.revision_arn] = config
        express["updatedAt"] = time.time()
        return {"service": {"serviceArn": record.arn, "cluster": self.clusters[record.cluster_arn]["name"],
                            "serviceName": record.name, "status": {"statusCode": record.status},
                            "targetConfiguration": self._configuration_view(record, record.primary.revision_arn),
                            "createdAt": express["createdAt"], "updatedAt": express["updatedAt"]}}

    def _op_DeleteExpressGatewayService(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._express_record(params, region, missing="ServiceNotFoundException", active=True)
        self._op_DeleteService({"cluster": record.cluster_arn, "service": record.arn, "force": True}, region)
        self.express.deprovision(region, record.express["resources"])
        record.express["updatedAt"] = time.time()
        return {"service": self._express_view(record)}
