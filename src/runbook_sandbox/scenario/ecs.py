"""The ECS side of a scenario: ``ecs_services:``, Fargate services with one container each,
their placement (subnets, security groups, public IP), rollout (desired count, circuit breaker)
and the simulated app (the same model as App Runner's services); ``ecs_express_services:``,
Express Mode services (image, container port, health path, placement, app), whose load
balancer, target group and managed security group Express makes."""

from __future__ import annotations

import re
from typing import Any

from runbook.validation import join
from runbook_sandbox.scenario.model import (
    EcsExpressService, EcsService, EcsTaskDefinition, Secret, SecurityGroup, Subnet,
)
from runbook_sandbox.scenario.network import NetworkParser
from runbook_sandbox.scenario.services import ServiceParser

ECS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")  # services, clusters, families, containers
LOG_GROUP = re.compile(r"^[A-Za-z0-9_\-/.#]{1,512}$")
FARGATE_CPU = ("256", "512", "1024", "2048", "4096")


class EcsServiceParser(ServiceParser, NetworkParser):
    """ecs_services:."""

    def ecs_services(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                     databases: set[str], caches: set[str], secrets: dict[str, Secret]) -> tuple[EcsService, ...]:
        out: list[EcsService] = []
        for i, item in enumerate(self.seq(value, "ecs_services")):
            path = join("ecs_services", i)
            b = self.mapping(item, path, ("name", "cluster", "task_definition", "subnets", "security_groups",
                                          "assign_public_ip", "desired_count", "circuit_breaker", "app"),
                             required=("name", "task_definition", "subnets", "security_groups"))
            name = self.ecs_name(b["name"], join(path, "name"), "service")
            cluster = self.ecs_name(b.get("cluster", "default"), join(path, "cluster"), "cluster")
            if any(s.name == name and s.cluster == cluster for s in out):
                raise self.fail(join(path, "name"), f"ECS service {name!r} is defined twice in cluster {cluster!r}")
            subnet_names, sgs, _ = self.placement(b, path, subnets, groups)
            td = self.ecs_task_definition(b["task_definition"], join(path, "task_definition"), databases, caches,
                                          secrets)
            app = self.app(b.get("app"), join(path, "app"), str(td.port))
            for other in out:
                if other.task_definition.image == td.image and other.app != app:
                    raise self.fail(join(join(path, "task_definition"), "image"),
                                    f"ECS service {other.name!r} runs the same image with a different app; "
                                    "give each app its own image")
            breaker = self.mapping(b.get("circuit_breaker"), join(path, "circuit_breaker"), ("enable", "rollback"))
            enable = self.boolean(breaker.get("enable"), join(join(path, "circuit_breaker"), "enable"), False)
            rollback = self.boolean(breaker.get("rollback"), join(join(path, "circuit_breaker"), "rollback"), False)
            if rollback and not enable:
                raise self.fail(join(join(path, "circuit_breaker"), "rollback"), "a rollback needs enable: true")
            out.append(EcsService(
                name=name,
                cluster=cluster,
                task_definition=td,
                subnets=subnet_names,
                security_groups=sgs,
                assign_public_ip=self.boolean(b.get("assign_public_ip"), join(path, "assign_public_ip"), False),
                desired_count=self.integer(b.get("desired_count"), join(path, "desired_count"), default=1,
                                           lo=0, hi=100),
                circuit_breaker=enable,
                rollback=rollback,
                app=app,
            ))
        return tuple(out)

    def ecs_express_services(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                             databases: set[str], caches: set[str], secrets: dict[str, Secret],
                             ecs_services: tuple[EcsService, ...]) -> tuple[EcsExpressService, ...]:
        out: list[EcsExpressService] = []
        for i, item in enumerate(self.seq(value, "ecs_express_services")):
            path = join("ecs_express_services", i)
            b = self.mapping(item, path, ("name", "cluster", "image", "container_port", "health_check_path",
                                          "environment", "secrets", "log_group", "subnets", "security_groups",
                                          "min_tasks", "cpu", "memory", "app"),
                             required=("name", "image", "subnets", "security_groups"))
            name = self.ecs_name(b["name"], join(path, "name"), "service")
            cluster = self.ecs_name(b.get("cluster", "default"), join(path, "cluster"), "cluster")
            if any(s.name == name and s.cluster == cluster for s in (*ecs_services, *out)):
                raise self.fail(join(path, "name"), f"ECS service {name!r} is defined twice in cluster {cluster!r}")
            subnet_names, sgs, _ = self.placement(b, path, subnets, groups)
            image = self.string(b["image"], join(path, "image"))
            if any(c.isspace() for c in image):
                raise self.fail(join(path, "image"), f"{image!r} is not an image reference")
            port = self.port_string(b.get("container_port"), join(path, "container_port"), "80")
            health = self.string(b.get("health_check_path"), join(path, "health_check_path"), default="/ping")
            if not health.startswith("/"):
                raise self.fail(join(path, "health_check_path"), f"must start with '/', got {health!r}")
            secret_refs = self.secret_refs(b.get("secrets"), join(path, "secrets"), secrets)
            env_names = {str(k) for k in self.mapping(b.get("environment"), join(path, "environment"))}
            for var, _ in secret_refs:
                if var in env_names:
                    raise self.fail(join(join(path, "secrets"), var),
                                    "also set in environment: a variable comes from one place")
            log_group = self.opt_string(b.get("log_group"), join(path, "log_group"))
            if log_group is not None and not LOG_GROUP.match(log_group):
                raise self.fail(join(path, "log_group"), f"{log_group!r} is not a valid CloudWatch log group name")
            cpu = self.port_string(b.get("cpu"), join(path, "cpu"), "256")
            if cpu not in FARGATE_CPU:
                raise self.fail(join(path, "cpu"), f"must be one of {', '.join(FARGATE_CPU)}")
            app = self.app(b.get("app"), join(path, "app"), port)
            for other in (*[(s.name, s.task_definition.image, s.app) for s in ecs_services],
                          *[(s.name, s.image, s.app) for s in out]):
                if other[1] == image and other[2] != app:
                    raise self.fail(join(path, "image"), f"ECS service {other[0]!r} runs the same image with a "
                                                         "different app; give each app its own image")
            out.append(EcsExpressService(
                name=name, cluster=cluster, image=image, container_port=int(port), health_check_path=health,
                environment=self.env(b.get("environment"), join(path, "environment"), databases, caches),
                secrets=secret_refs, log_group=log_group, subnets=subnet_names, security_groups=sgs,
                min_tasks=self.integer(b.get("min_tasks"), join(path, "min_tasks"), default=1, lo=1, hi=100),
                cpu=cpu, memory=self.port_string(b.get("memory"), join(path, "memory"), "512"), app=app,
            ))
        return tuple(out)

    def ecs_name(self, value: Any, path: str, what: str) -> str:
        text = self.string(value, path)
        if not ECS_NAME.match(text):
            raise self.fail(path, f"{text!r} is not a valid ECS {what} name (letters, digits, '-', '_'; up to 255)")
        return text

    def ecs_task_definition(self, value: Any, path: str, databases: set[str], caches: set[str],
                            secrets: dict[str, Secret]) -> EcsTaskDefinition:
        b = self.mapping(value, path, ("family", "container", "image", "port", "environment", "secrets",
                                       "log_group", "log_stream_prefix", "cpu", "memory"),
                         required=("family", "image"))
        image = self.string(b["image"], join(path, "image"))
        if any(c.isspace() for c in image):
            raise self.fail(join(path, "image"), f"{image!r} is not an image reference")
        secret_refs = self.secret_refs(b.get("secrets"), join(path, "secrets"), secrets)
        env_names = {str(k) for k in self.mapping(b.get("environment"), join(path, "environment"))}
        for var, _ in secret_refs:
            if var in env_names:
                raise self.fail(join(join(path, "secrets"), var), "also set in environment: a variable comes from one place")
        log_group = self.opt_string(b.get("log_group"), join(path, "log_group"))
        if log_group is not None and not LOG_GROUP.match(log_group):
            raise self.fail(join(path, "log_group"), f"{log_group!r} is not a valid CloudWatch log group name")
        cpu = self.port_string(b.get("cpu"), join(path, "cpu"), "256")
        if cpu not in FARGATE_CPU:
            raise self.fail(join(path, "cpu"), f"must be one of {', '.join(FARGATE_CPU)}")
        return EcsTaskDefinition(
            family=self.ecs_name(b["family"], join(path, "family"), "task definition family"),
            container=self.ecs_name(b.get("container", "app"), join(path, "container"), "container"),
            image=image,
            port=int(self.port_string(b.get("port"), join(path, "port"), "80")),
            environment=self.env(b.get("environment"), join(path, "environment"), databases, caches),
            secrets=secret_refs,
            log_group=log_group,
            log_stream_prefix=self.ecs_name(b.get("log_stream_prefix", "ecs"), join(path, "log_stream_prefix"),
                                            "log stream prefix"),
            cpu=cpu,
            memory=self.port_string(b.get("memory"), join(path, "memory"), "512"),
        )
