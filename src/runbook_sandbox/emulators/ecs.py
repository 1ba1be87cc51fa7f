"""An ECS (Fargate) emulator speaking AWS's JSON 1.1 wire protocol on loopback.

``POST /`` with ``X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>``;
answers shaped like botocore's ``ecs/2014-11-13`` model (the tests check every
answer with a strict recursive shape checker), errors as
``{"__type": ..., "message": ...}`` with HTTP 400 (500 for ``ServerException``).
Signatures are not verified; a request sees only the resources of the region
its ``Authorization`` credential scope names (unsigned: the emulator's region).

Operations: CreateCluster, DescribeClusters, ListClusters; RegisterTaskDefinition,
DescribeTaskDefinition, ListTaskDefinitions; CreateService, DescribeServices,
ListServices, UpdateService, DeleteService; ListTasks, DescribeTasks;
ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions;
Express Mode's CreateExpressGatewayService, DescribeExpressGatewayService,
UpdateExpressGatewayService, DeleteExpressGatewayService.

Semantics kept from AWS (the scheduler's in :mod:`ecs_scheduler`):

* ``cluster`` defaults to ``default``; an unknown one is ``ClusterNotFoundException``
  (Express Mode creates ``default`` when it is missing). Unknown services in
  ``DescribeServices`` and tasks in ``DescribeTasks`` land in ``failures``
  (``MISSING``); other calls on an unknown service are ``ServiceNotFoundException``,
  changes to a draining or inactive one ``ServiceNotActiveException``.
* ``networkConfiguration.awsvpcConfiguration`` is replaced whole by
  ``UpdateService``: an omitted ``assignPublicIp`` becomes ``DISABLED``. Its
  subnets must exist (the :data:`Network` callback) or the call is
  ``InvalidParameterException``.
* ``UpdateService`` starts a deployment when it is given ``taskDefinition``,
  ``networkConfiguration``, ``loadBalancers``, ``enableExecuteCommand`` or
  ``forceNewDeployment``; ``desiredCount``, ``healthCheckGracePeriodSeconds`` and
  ``deploymentConfiguration`` alone change the service in place.
* Every deployment has a service deployment (``service-deployment/`` ARN) and a
  service revision (``service-revision/``); ``currentServiceDeployment`` names
  the newest.
* ``DeleteService`` needs ``desiredCount`` 0 or ``force``; the service is
  ``DRAINING`` until its tasks are stopped, then ``INACTIVE`` (still described,
  no longer listed).
* Express Mode: an ordinary service with ``resourceManagementType`` ``ECS``, a task
  definition with one container ``Main``, the circuit breaker with rollback on,
  ``assignPublicIp`` ``DISABLED``, and managed resources (ALB, target group,
  security groups, log group) from an :class:`ExpressProvisioner` (by default
  fabricated ARNs; the sandbox plugs in one that creates them in moto). The
  canary rollout with its alarm is modelled as the rolling one.

Time: a task starts ``deploy_seconds`` after its launch; :meth:`EcsEmulator.settle`
runs the clock forward at once (scenario histories, tests that must not race).

Behind a load balancer (``target_health`` given), a task counts once its targets
are healthy and is stopped when they fail past the grace period (see
:mod:`ecs_scheduler`); without ``target_health`` a running task counts at once.

Faults (``runbook_sandbox.faults``, given as ``faults``) act on the HTTP listener as on App
Runner's (the handler is :class:`wire.JsonApiHandler`): latency holds a call, a throttle answers
it ``ThrottlingException`` (HTTP 400, which botocore retries), a denial ``AccessDeniedException``
(HTTP 400) naming ``ecs:<Operation>``, neither applied; every applied call counts towards
``stop_aws_after``. The listener can go down and come back (:meth:`EcsEmulator.stop_listener`, as
the sandbox's ``stop_aws`` does) while the scheduler's timers live on. Hung deployments and
flapping health are App Runner's only.

Not modelled: capacity providers, task sets, service connect, the EC2 launch type, ENIs in EC2.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from runbook_sandbox.emulators.ecs_express import (  # noqa: F401 - ExpressResources: for provisioners
    ExpressMode, ExpressProvisioner, ExpressResources, FabricatedExpress, managed_view,
)
from runbook_sandbox.emulators.ecs_params import (
    ApiError, integer_param, invalid, number_param, page, region_of, string_param, strings_param, tags_param,
)
from runbook_sandbox.emulators.ecs_scheduler import (
    ACCOUNT, Judge, Network, Observer, Scheduler, ServiceRecord, Subnet, TargetHealth, healthy,
)
from runbook_sandbox.emulators.wire import JsonApiHandler, Listening, Server
from runbook_sandbox.faults import Endpoint, Faults

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CLUSTER_NOT_FOUND = "Cluster not found."


def no_subnets(region: str, subnet_id: str) -> Subnet | None:
    """The default network: no subnet exists (give the emulator a real one)."""
    return None


# ---------------------------------------------------------------------- the emulator


class EcsEmulator(ExpressMode, Listening):
    """``judge`` decides each task (default: healthy); ``network(region, subnet_id)`` gives subnets
    (see :func:`ecs_scheduler.ec2_network`); ``deploy_seconds``: how long a task takes to start;
    ``faults``: the sandbox's, consulted on every call (none: no faults)."""

    def __init__(self, *, judge: Judge = healthy, network: Network = no_subnets, observer: Observer | None = None,
                 express: ExpressProvisioner | None = None, deploy_seconds: float = 10.0,
                 region: str = "us-east-1", target_health: TargetHealth | None = None,
                 faults: Faults | None = None) -> None:
        self.region = region
        self.faults = faults
        self.express = express or FabricatedExpress()
        self.clusters: dict[str, dict] = {}  # ARN -> {"name", "region", "createdAt", "tags"}
        self.task_definitions: dict[str, dict] = {}  # ARN -> TaskDefinition shape (plus "_tags")
        self.scheduler = Scheduler(judge, network, observer, self._task_definition, self._service_view)
        self.scheduler.deploy_seconds = deploy_seconds
        self.scheduler.target_health = target_health
        self.lock = self.scheduler.lock
        self._endpoint: Endpoint | None = None
        self.url = ""

    @property
    def deploy_seconds(self) -> float:
        return self.scheduler.deploy_seconds

    @deploy_seconds.setter
    def deploy_seconds(self, seconds: float) -> None:
        self.scheduler.deploy_seconds = seconds

    @property
    def judge(self) -> Judge:
        return self.scheduler.judge

    @judge.setter
    def judge(self, judge: Judge) -> None:
        self.scheduler.judge = judge

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._endpoint is not None:
            return
        handler = type("Handler", (_ApiHandler,), {"emulator": self})
        endpoint = Endpoint("ecs-emulator", lambda port: Server(("127.0.0.1", port), handler))
        endpoint.start()
        self._endpoint = endpoint
        self.url = endpoint.url

    def stop(self) -> None:
        self.reset(self.region)
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.stop()
        self.url = ""

    def reset(self, region: str) -> None:
        """Cancel every timer and forget everything."""
        with self.lock:
            self.scheduler.reset()
            self.clusters.clear()
            self.task_definitions.clear()
            self.region = region

    def settle(self, rounds: int = 100) -> bool:
        """See :meth:`Scheduler.settle`: every pending task judged and every rollback ended now."""
        return self.scheduler.settle(rounds)

    def recheck_targets(self) -> None:
        """See :meth:`Scheduler.recheck_targets`: ask the target health again after a change."""
        self.scheduler.recheck_targets()

    # ------------------------------------------------------------------ queries for the sandbox

    def find_service(self, name_or_arn: str, cluster: str = "default") -> ServiceRecord:
        with self.lock:
            for record in self.scheduler.services.values():
                if record.arn == name_or_arn or (record.name == name_or_arn and record.cluster_arn.endswith("/" + cluster)):
                    return record
        raise KeyError(name_or_arn)

    # ------------------------------------------------------------------ the API

    def call(self, operation: str, params: dict, region: str | None = None) -> dict:
        """Answer one request; ``region``: the one it is signed for (default: the emulator's)."""
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise ApiError("UnknownOperationException", f"Unknown operation {operation}")
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        with self.lock:
            return handler(params, region or self.region)

    # clusters

    def _cluster(self, params: dict, region: str, *, create_default: bool = False) -> str:
        name = string_param(params, "cluster") or "default"
        arn = name if name.startswith("arn:") else f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}"
        if arn not in self.clusters or region_of(arn) != region:
            if create_default and name == "default":
                return self._create_cluster("default", region, [])
            raise ApiError("ClusterNotFoundException", CLUSTER_NOT_FOUND)
        return arn

    def _create_cluster(self, name: str, region: str, tags: list) -> str:
        arn = f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}"
        self.clusters.setdefault(arn, {"name": name, "region": region, "tags": tags})
        return arn

    def _cluster_view(self, arn: str) -> dict:
        services = [s for s in self.scheduler.services.values() if s.cluster_arn == arn]
        tasks = [t for t in self.scheduler.tasks.values() if t.cluster_arn == arn]
        return {"clusterArn": arn, "clusterName": self.clusters[arn]["name"], "status": "ACTIVE",
                "registeredContainerInstancesCount": 0,
                "runningTasksCount": sum(1 for t in tasks if t.last_status == "RUNNING"),
                "pendingTasksCount": sum(1 for t in tasks if t.last_status == "PROVISIONING"),
                "activeServicesCount": sum(1 for s in services if s.status == "ACTIVE"),
                "statistics": [], "tags": copy.deepcopy(self.clusters[arn]["tags"]), "settings": [
                    {"name": "containerInsights", "value": "disabled"}],
                "capacityProviders": ["FARGATE", "FARGATE_SPOT"], "defaultCapacityProviderStrategy": []}

    def _op_CreateCluster(self, params: dict, region: str) -> dict:  # noqa: N802 - AWS's name
        name = string_param(params, "clusterName") or "default"
        return {"cluster": self._cluster_view(self._create_cluster(name, region, tags_param(params)))}

    def _op_DescribeClusters(self, params: dict, region: str) -> dict:  # noqa: N802
        clusters, failures = [], []
        for name in strings_param(params, "clusters") or ["default"]:
            try:
                clusters.append(self._cluster_view(self._cluster({"cluster": name}, region)))
            except ApiError:
                arn = name if name.startswith("arn:") else f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}"
                failures.append({"arn": arn, "reason": "MISSING"})
        return {"clusters": clusters, "failures": failures}

    def _op_ListClusters(self, params: dict, region: str) -> dict:  # noqa: N802
        arns = [arn for arn, c in self.clusters.items() if c["region"] == region]
        return page(arns, params, "clusterArns", default=100)

    # task definitions

    def _task_definition(self, arn: str) -> dict:
        view = copy.deepcopy(self.task_definitions[arn])
        view.pop("_tags", None)
        return view

    def _resolve_task_definition(self, ref: str, region: str, *, describing: bool = False) -> str:
        """``family``, ``family:revision`` or an ARN -> the ARN (a family alone: its newest ACTIVE revision).
        Unknown: ``ClientException`` when describing it, else (a service naming it) ``InvalidParameterException``."""
        if ref.startswith("arn:"):
            found = ref if ref in self.task_definitions and region_of(ref) == region else None
        else:
            family, _, revision = ref.partition(":")
            candidates = [td for td in self.task_definitions.values() if td["family"] == family
                          and region_of(td["taskDefinitionArn"]) == region
                          and (str(td["revision"]) == revision if revision else td["status"] == "ACTIVE")]
            found = max(candidates, key=lambda td: td["revision"])["taskDefinitionArn"] if candidates else None
        if found is None:
            if describing:
                raise ApiError("ClientException", "Unable to describe task definition.")
            raise invalid("TaskDefinition not found.")
        return found

    def _op_RegisterTaskDefinition(self, params: dict, region: str) -> dict:  # noqa: N802
        family = string_param(params, "family", required=True)
        containers = params.get("containerDefinitions")
        if not isinstance(containers, list) or not containers:
            raise ApiError("ClientException", "Container list cannot be empty.")
        out_containers = []
        for c in containers:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
                raise ApiError("ClientException", "Container.name should not be null or empty.")
            if not isinstance(c.get("image"), str) or not c["image"]:
                raise ApiError("ClientException", "Container.image should not be null or empty.")
            container = copy.deepcopy(c)
            container.setdefault("essential", True)
            for key in ("environment", "mountPoints", "volumesFrom", "portMappings"):
                container.setdefault(key, [])
            for mapping in container["portMappings"]:
                mapping.setdefault("protocol", "tcp")
                if params.get("networkMode") == "awsvpc" and "containerPort" in mapping:
                    mapping.setdefault("hostPort", mapping["containerPort"])
            out_containers.append(container)
        network_mode = params.get("networkMode", "bridge")
        if network_mode not in ("bridge", "host", "awsvpc", "none"):
            raise invalid(f"networkMode {network_mode!r} is not valid")
        requires = params.get("requiresCompatibilities") or []
        if "FARGATE" in requires and (network_mode != "awsvpc" or "cpu" not in params or "memory" not in params):
            raise ApiError("ClientException", "Fargate requires networkMode awsvpc and task-level cpu and memory.")
        revision = 1 + max((td["revision"] for td in self.task_definitions.values()
                            if td["family"] == family and region_of(td["taskDefinitionArn"]) == region), default=0)
        arn = f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family}:{revision}"
        td: dict[str, Any] = {
            "taskDefinitionArn": arn, "containerDefinitions": out_containers, "family": family,
            "networkMode": network_mode, "revision": revision, "volumes": copy.deepcopy(params.get("volumes", [])),
            "status": "ACTIVE", "placementConstraints": [], "compatibilities": ["EC2", "FARGATE"],
            "requiresCompatibilities": list(requires), "registeredAt": time.time(),
            "registeredBy": f"arn:aws:iam::{ACCOUNT}:root",
        }
        for key in ("taskRoleArn", "executionRoleArn", "cpu", "memory", "runtimePlatform", "ephemeralStorage"):
            if key in params:
                td[key] = copy.deepcopy(params[key])
        for key in ("cpu", "memory"):
            if key in td:
                td[key] = str(td[key])
        self.task_definitions[arn] = dict(td, _tags=tags_param(params))
        return {"taskDefinition": copy.deepcopy(td), "tags": tags_param(params)}

    def _op_DescribeTaskDefinition(self, params: dict, region: str) -> dict:  # noqa: N802
        arn = self._resolve_task_definition(string_param(params, "taskDefinition", required=True), region,
                                           describing=True)
        answer: dict[str, Any] = {"taskDefinition": self._task_definition(arn)}
        if "TAGS" in (params.get("include") or []):
            answer["tags"] = copy.deepcopy(self.task_definitions[arn]["_tags"])
        return answer

    def _op_ListTaskDefinitions(self, params: dict, region: str) -> dict:  # noqa: N802
        prefix = string_param(params, "familyPrefix")
        status = params.get("status", "ACTIVE")
        arns = [arn for arn, td in self.task_definitions.items() if region_of(arn) == region
                and td["family"].startswith(prefix) and td["status"] == status]
        if params.get("sort") == "DESC":
            arns.reverse()
        return page(arns, params, "taskDefinitionArns", default=100)

    # services

    def _service(self, params: dict, region: str, key: str = "service", *, active: bool = False) -> ServiceRecord:
        cluster = self._cluster(params, region)
        ref = string_param(params, key, required=True)
        record = self._lookup(cluster, ref)
        if record is None:
            raise ApiError("ServiceNotFoundException", "Service not found.")
        if active and record.status != "ACTIVE":
            raise ApiError("ServiceNotActiveException", "Service was not ACTIVE.")
        return record

    def _lookup(self, cluster_arn: str, ref: str) -> ServiceRecord | None:
        matches = [s for s in self.scheduler.services.values() if s.cluster_arn == cluster_arn
                   and (s.arn == ref or s.name == ref)]
        return next((s for s in reversed(matches) if s.status != "INACTIVE"), matches[-1] if matches else None)

    def _network(self, params: dict, region: str, *, required: bool) -> dict | None:
        net = params.get("networkConfiguration")
        if net is None:
            if required:
                raise invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
            return None
        vpc = net.get("awsvpcConfiguration") if isinstance(net, dict) else None
        if not isinstance(vpc, dict) or not isinstance(vpc.get("subnets"), list) or not vpc["subnets"]:
            raise invalid("subnets can not be empty.")
        groups = vpc.get("securityGroups", [])
        if not isinstance(groups, list) or len(groups) > 5 or not all(isinstance(g, str) and g for g in groups):
            raise invalid("securityGroups must be a list of at most 5 security group ids.")
        public = vpc.get("assignPublicIp", "DISABLED")  # omitted: DISABLED, even when it was ENABLED before
        if public not in ("ENABLED", "DISABLED"):
            raise invalid(f"assignPublicIp must be ENABLED or DISABLED, not {public!r}")
        for subnet in vpc["subnets"]:
            if not isinstance(subnet, str) or self.scheduler.subnet(region, subnet) is None:
                raise invalid(f"Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' "
                               "does not exist (Service: AmazonEC2; Status Code: 400; Error Code: "
                               "InvalidSubnetID.NotFound)")
        return {"awsvpcConfiguration": {"subnets": list(vpc["subnets"]), "securityGroups": list(groups),
                                        "assignPublicIp": public}}

    def _load_balancers(self, value: Any, task_definition: str) -> list[dict]:
        if not isinstance(value, list):
            raise invalid("loadBalancers must be a list")
        containers = {c["name"]: c for c in self.task_definitions[task_definition]["containerDefinitions"]}
        out = []
        for lb in value:
            if not isinstance(lb, dict) or not isinstance(lb.get("targetGroupArn"), str):
                raise invalid("loadBalancers need a targetGroupArn")
            name, port = lb.get("containerName"), lb.get("containerPort")
            if name not in containers:
                raise invalid(f"The container {name} does not exist in the task definition.")
            if port not in [m.get("containerPort") for m in containers[name].get("portMappings", [])]:
                raise invalid(f"The container {name} does not have a container port {port} defined.")
            out.append({"targetGroupArn": lb["targetGroupArn"], "containerName": name, "containerPort": port})
        return out

    def _deployment_configuration(self, value: Any, base: dict | None = None) -> dict:
        out = copy.deepcopy(base) if base else {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                                                "maximumPercent": 200, "minimumHealthyPercent": 100,
                                                "strategy": "ROLLING"}
        if value is None:
            return out
        if not isinstance(value, dict):
            raise invalid("deploymentConfiguration must be an object")
        breaker = value.get("deploymentCircuitBreaker")
        if breaker is not None:
            if not isinstance(breaker, dict) or not isinstance(breaker.get("enable"), bool) \
                    or not isinstance(breaker.get("rollback"), bool):
                raise invalid("deploymentCircuitBreaker needs enable and rollback")
            out["deploymentCircuitBreaker"] = copy.deepcopy(breaker)
        for key in ("maximumPercent", "minimumHealthyPercent"):
            if key in value:
                out[key] = integer_param(value, key, 0, 200)
        if value.get("strategy", "ROLLING") != "ROLLING":
            raise ApiError("UnsupportedFeatureException", "Only the ROLLING strategy is emulated.")
        return out

    def _op_CreateService(self, params: dict, region: str, *, management: str = "CUSTOMER",
                          express: dict | None = None) -> dict:  # noqa: N802
        cluster = self._cluster(params, region)
        name = string_param(params, "serviceName", required=True)
        existing = self._lookup(cluster, name)
        if existing is not None and existing.status != "INACTIVE":
            raise invalid("Creation of service was not idempotent.")
        task_definition = self._resolve_task_definition(string_param(params, "taskDefinition", required=True), region)
        network = self._network(params, region, required=self.task_definitions[task_definition]["networkMode"] == "awsvpc")
        load_balancers = self._load_balancers(params.get("loadBalancers", []), task_definition)
        config: dict[str, Any] = {
            "taskDefinition": task_definition, "desiredCount": integer_param(params, "desiredCount", 0, 10000, default=1),
            "loadBalancers": load_balancers, "launchType": params.get("launchType", "FARGATE"),
            "platformVersion": params.get("platformVersion", "LATEST"),
            "deploymentConfiguration": self._deployment_configuration(params.get("deploymentConfiguration")),
            "enableExecuteCommand": bool(params.get("enableExecuteCommand", False)),
            "tags": tags_param(params), "propagateTags": params.get("propagateTags", "NONE"),
            "enableECSManagedTags": bool(params.get("enableECSManagedTags", False)),
        }
        if network is not None:
            config["networkConfiguration"] = network
        if "healthCheckGracePeriodSeconds" in params:
            if not load_balancers:
                raise invalid("Health check grace period is only valid for services configured to use load balancers")
            config["healthCheckGracePeriodSeconds"] = integer_param(params, "healthCheckGracePeriodSeconds", 0, 2147483647)
        elif load_balancers:
            config["healthCheckGracePeriodSeconds"] = 0
        record = ServiceRecord(arn=f"arn:aws:ecs:{region}:{ACCOUNT}:service/{self.clusters[cluster]['name']}/{name}",
                               name=name, region=region, cluster_arn=cluster, created_at=time.time(), config=config,
                               management=management, express=express)
        self.scheduler.services[record.key] = record
        self.scheduler.deploy(record, reason="")
        return {"service": self._service_view(record)}

    def _service_view(self, record: ServiceRecord) -> dict:
        c = record.config
        deployments = []
        for d in record.deployments:
            running, pending = self.scheduler.counts(d)
            deployments.append({
                "id": d.id, "status": d.status, "taskDefinition": d.task_definition, "desiredCount": d.desired,
                "pendingCount": pending, "runningCount": running, "failedTasks": d.failed_tasks,
                "createdAt": d.created_at, "updatedAt": d.updated_at, "launchType": c.get("launchType", "FARGATE"),
                "platformVersion": "1.4.0", "platformFamily": "Linux",
                "networkConfiguration": {"awsvpcConfiguration": copy.deepcopy(d.network)},
                "rolloutState": d.rollout_state, "rolloutStateReason": d.rollout_reason})
        view: dict[str, Any] = {
            "serviceArn": record.arn, "serviceName": record.name, "clusterArn": record.cluster_arn,
            "loadBalancers": copy.deepcopy(c["loadBalancers"]), "serviceRegistries": [], "status": record.status,
            "desiredCount": c["desiredCount"], "runningCount": sum(d["runningCount"] for d in deployments),
            "pendingCount": sum(d["pendingCount"] for d in deployments), "launchType": c["launchType"],
            "platformVersion": c["platformVersion"], "platformFamily": "Linux", "taskDefinition": c["taskDefinition"],
            "deploymentConfiguration": copy.deepcopy(c["deploymentConfiguration"]), "deployments": deployments,
            "events": copy.deepcopy(record.events), "createdAt": record.created_at, "placementConstraints": [],
            "placementStrategy": [], "schedulingStrategy": "REPLICA", "deploymentController": {"type": "ECS"},
            "createdBy": f"arn:aws:iam::{ACCOUNT}:root", "enableECSManagedTags": c["enableECSManagedTags"],
            "propagateTags": c["propagateTags"], "enableExecuteCommand": c["enableExecuteCommand"],
            "availabilityZoneRebalancing": "ENABLED", "resourceManagementType": record.management,
        }
        for key in ("networkConfiguration", "healthCheckGracePeriodSeconds"):
            if key in c:
                view[key] = copy.deepcopy(c[key])
        if record.service_deployments:
            view["currentServiceDeployment"] = record.service_deployments[-1]["serviceDeploymentArn"]
        view["currentServiceRevisions"] = [
            {"arn": d.revision_arn, "requestedTaskCount": d.desired, "runningTaskCount": self.scheduler.counts(d)[0],
             "pendingTaskCount": self.scheduler.counts(d)[1]} for d in record.deployments]
        return view

    def _op_DescribeServices(self, params: dict, region: str) -> dict:  # noqa: N802
        cluster = self._cluster(params, region)
        refs = strings_param(params, "services", required=True)
        if not 1 <= len(refs) <= 10:
            raise invalid("services can have at most 10 items.")
        services, failures = [], []
        for ref in refs:
            record = self._lookup(cluster, ref)
            if record is None:
                arn = ref if ref.startswith("arn:") else \
                    f"arn:aws:ecs:{region}:{ACCOUNT}:service/{self.clusters[cluster]['name']}/{ref}"
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            view = self._service_view(record)
            if "TAGS" in (params.get("include") or []):
                view["tags"] = copy.deepcopy(record.config["tags"])
            services.append(view)
        return {"services": services, "failures": failures}

    def _op_ListServices(self, params: dict, region: str) -> dict:  # noqa: N802
        cluster = self._cluster(params, region)
        wanted = params.get("resourceManagementType")
        arns = [s.arn for s in self.scheduler.services.values() if s.cluster_arn == cluster and s.status != "INACTIVE"
                and (wanted is None or s.management == wanted)
                and params.get("launchType", s.config["launchType"]) == s.config["launchType"]]
        return page(arns, params, "serviceArns", default=10)

    def _op_UpdateService(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._service(params, region, active=True)
        config = copy.deepcopy(record.config)
        redeploy = bool(params.get("forceNewDeployment", False))
        if "taskDefinition" in params:
            config["taskDefinition"] = self._resolve_task_definition(string_param(params, "taskDefinition", required=True),
                                                                     region)
            redeploy = True
        network = self._network(params, region, required=False)
        if network is not None:
            config["networkConfiguration"] = network
            redeploy = True
        if "loadBalancers" in params:
            config["loadBalancers"] = self._load_balancers(params["loadBalancers"], config["taskDefinition"])
            redeploy = True
        elif "taskDefinition" in params:
            self._load_balancers(config["loadBalancers"], config["taskDefinition"])
        if "enableExecuteCommand" in params:
            config["enableExecuteCommand"] = bool(params["enableExecuteCommand"])
            redeploy = True
        if "healthCheckGracePeriodSeconds" in params:
            if not config["loadBalancers"]:
                raise invalid("Health check grace period is only valid for services configured to use load balancers")
            config["healthCheckGracePeriodSeconds"] = integer_param(params, "healthCheckGracePeriodSeconds", 0, 2147483647)
        config["deploymentConfiguration"] = self._deployment_configuration(params.get("deploymentConfiguration"),
                                                                           config["deploymentConfiguration"])
        if "desiredCount" in params:
            config["desiredCount"] = integer_param(params, "desiredCount", 0, 10000)
        record.config = config
        if redeploy:
            self.scheduler.deploy(record, reason="")
        else:
            self.scheduler.scale(record, config["desiredCount"])
        return {"service": self._service_view(record)}

    def _op_DeleteService(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._service(params, region)
        if record.status == "INACTIVE":
            raise ApiError("ServiceNotActiveException", "Service was not ACTIVE.")
        if record.config["desiredCount"] > 0 and not params.get("force"):
            raise invalid("The service cannot be stopped while it is scaled above 0.")
        record.config["desiredCount"] = 0
        self.scheduler.drain(record)
        return {"service": self._service_view(record)}

    # tasks

    def _op_ListTasks(self, params: dict, region: str) -> dict:  # noqa: N802
        cluster = self._cluster(params, region)
        desired = params.get("desiredStatus", "RUNNING")
        if desired not in ("RUNNING", "PENDING", "STOPPED"):
            raise invalid(f"desiredStatus must be RUNNING, PENDING or STOPPED, not {desired!r}")
        service_arn = None
        if "serviceName" in params:
            service_arn = self._service({"cluster": cluster, "service": params["serviceName"]}, region).arn
        family = string_param(params, "family")
        started_by = string_param(params, "startedBy")
        arns = [t.arn for t in self.scheduler.tasks.values() if t.cluster_arn == cluster
                and (t.desired_status == desired or desired == "PENDING" and t.last_status == "PROVISIONING")
                and (service_arn is None or t.service_arn == service_arn)
                and (not family or t.task_definition["family"] == family)
                and (not started_by or t.deployment_id == started_by)]
        return page(arns, params, "taskArns", default=100)

    def _op_DescribeTasks(self, params: dict, region: str) -> dict:  # noqa: N802
        cluster = self._cluster(params, region)
        refs = strings_param(params, "tasks", required=True)
        if not 1 <= len(refs) <= 100:
            raise invalid("tasks can have at most 100 items.")
        tasks, failures = [], []
        by_id = {t.id: t for t in self.scheduler.tasks.values() if t.cluster_arn == cluster}
        for ref in refs:
            task = by_id.get(ref.rsplit("/", 1)[-1])
            if task is None or (ref.startswith("arn:") and task.arn != ref):
                failures.append({"arn": ref if ref.startswith("arn:") else
                                 f"arn:aws:ecs:{region}:{ACCOUNT}:task/{self.clusters[cluster]['name']}/{ref}",
                                 "reason": "MISSING"})
            else:
                tasks.append(self.scheduler.task_view(task))
        return {"tasks": tasks, "failures": failures}

    # service deployments and revisions

    def _op_ListServiceDeployments(self, params: dict, region: str) -> dict:  # noqa: N802
        record = self._service(params, region)
        statuses = strings_param(params, "status")
        window = params.get("createdAt") or {}
        if not isinstance(window, dict):
            raise invalid("createdAt must be an object")
        briefs = []
        for sd in reversed(record.service_deployments):  # newest first
            if statuses and sd["status"] not in statuses:
                continue
            if "after" in window and sd["createdAt"] < number_param(window["after"]):
                continue
            if "before" in window and sd["createdAt"] > number_param(window["before"]):
                continue
            brief = {k: sd[k] for k in ("serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt",
                                        "finishedAt", "status", "statusReason") if k in sd}
            brief["targetServiceRevisionArn"] = self._target_revision(record, sd)
            briefs.append(brief)
        return page(briefs, params, "serviceDeployments", default=20)

    def _target_revision(self, record: ServiceRecord, sd: dict) -> str:
        return record.targets[sd["serviceDeploymentArn"]]

    def _service_deployment_view(self, record: ServiceRecord, sd: dict) -> dict:
        view = copy.deepcopy(sd)
        target = self._target_revision(record, sd)
        deployment = next((d for d in record.deployments if d.revision_arn == target), None)
        running, pending = self.scheduler.counts(deployment) if deployment else (0, 0)
        view["targetServiceRevision"] = {"arn": target, "requestedTaskCount": deployment.desired if deployment else 0,
                                         "runningTaskCount": running, "pendingTaskCount": pending}
        return view

    def _by_arn(self, arns: list[str], region: str, find) -> tuple[list[dict], list[dict]]:
        found, failures = [], []
        for arn in arns:
            item = None
            if region_of(arn) == region:
                for record in self.scheduler.services.values():
                    item = find(record, arn)
                    if item is not None:
                        break
            if item is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(item)
        return found, failures

    def _op_DescribeServiceDeployments(self, params: dict, region: str) -> dict:  # noqa: N802
        arns = strings_param(params, "serviceDeploymentArns", required=True)
        if not 1 <= len(arns) <= 20:
            raise invalid("serviceDeploymentArns can have at most 20 items.")

        def find(record: ServiceRecord, arn: str) -> dict | None:
            sd = record.service_deployment(arn)
            return self._service_deployment_view(record, sd) if sd is not None else None

        found, failures = self._by_arn(arns, region, find)
        return {"serviceDeployments": found, "failures": failures}

    def _op_DescribeServiceRevisions(self, params: dict, region: str) -> dict:  # noqa: N802
        arns = strings_param(params, "serviceRevisionArns", required=True)
        if not 1 <= len(arns) <= 20:
            raise invalid("serviceRevisionArns can have at most 20 items.")

        def find(record: ServiceRecord, arn: str) -> dict | None:
            revision = record.revisions.get(arn)
            if revision is None:
                return None
            view = copy.deepcopy(revision)
            if record.express is not None:
                view["ecsManagedResources"] = managed_view(record.express, arn)
            return view

        found, failures = self._by_arn(arns, region, find)
        return {"serviceRevisions": found, "failures": failures}


# ---------------------------------------------------------------------- HTTP


class _ApiHandler(JsonApiHandler):
    service = "ecs"
    target_prefix = TARGET_PREFIX
    content_type = "application/x-amz-json-1.1"
    message_key = "message"
    server_error = "ServerException"
    emulator: EcsEmulator
