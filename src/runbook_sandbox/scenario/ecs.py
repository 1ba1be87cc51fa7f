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
    EcsExpressService, EcsLoadBalancer, EcsService, EcsTargetGroup, EcsTaskDefinition, Secret, SecurityGroup, Subnet,
)
from runbook_sandbox.scenario.network import NetworkParser
from runbook_sandbox.scenario.services import ServiceParser

ECS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")  # services, clusters, families, containers
ELB_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,32}(?<!-)$")  # load balancers and target groups
HTTP_CODES = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")  # Matcher.HttpCode: 200, 200,202, 200-299
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
                                          "assign_public_ip", "desired_count", "circuit_breaker", "app",
                                          "load_balancer", "health_check_grace_period"),
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
            load_balancer = None
            if b.get("load_balancer") is not None:
                load_balancer = self.ecs_load_balancer(b["load_balancer"], join(path, "load_balancer"), subnets, groups,
                                                       subnets[subnet_names[0]].vpc, td.port)
                for other in out:  # one load balancer (or target group) may serve several services, as it is
                    lb = other.load_balancer
                    if lb is None or lb == load_balancer:
                        continue
                    if lb.name == load_balancer.name:
                        raise self.fail(join(join(path, "load_balancer"), "name"),
                                        f"load balancer {lb.name!r} of ECS service {other.name!r} is defined otherwise there")
                    if lb.target_group.name == load_balancer.target_group.name:
                        raise self.fail(join(join(join(path, "load_balancer"), "target_group"), "name"),
                                        f"target group {lb.target_group.name!r} belongs to load balancer {lb.name!r}")
            grace_path = join(path, "health_check_grace_period")
            grace = self.integer(b.get("health_check_grace_period"), grace_path, default=0, lo=0, hi=2147483647)
            if b.get("health_check_grace_period") is not None and load_balancer is None:
                raise self.fail(grace_path, "only valid for a service with a load_balancer")
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
                load_balancer=load_balancer,
                health_check_grace_period=grace,
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
            log_group, cpu = self.log_group(b, path), self.fargate_cpu(b, path)
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

    def ecs_load_balancer(self, value: Any, path: str, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                          vpc: str, container_port: int) -> EcsLoadBalancer:
        b = self.mapping(value, path, ("name", "scheme", "subnets", "security_groups", "listener_port", "target_group"),
                         required=("name", "subnets", "security_groups"))
        name = self.elb_name(b["name"], join(path, "name"), "load balancer")
        if name.lower().startswith("internal-"):
            raise self.fail(join(path, "name"), "a load balancer name cannot begin with 'internal-'")
        subnet_names, sgs, lb_vpc = self.placement(b, path, subnets, groups, min_subnets=2)
        if lb_vpc != vpc:
            raise self.fail(join(path, "subnets"), f"the load balancer is in vpc {lb_vpc!r}, the service in {vpc!r}")
        if len({subnets[s].az for s in subnet_names}) < 2:
            raise self.fail(join(path, "subnets"), "an Application Load Balancer needs subnets in two availability zones")
        tg_path = join(path, "target_group")
        tg = self.mapping(b.get("target_group"), tg_path, ("name", "port", "health_path", "matcher"), required=("name",))
        health_path = self.string(tg.get("health_path"), join(tg_path, "health_path"), default="/")
        if not health_path.startswith("/"):
            raise self.fail(join(tg_path, "health_path"), f"must start with '/', got {health_path!r}")
        raw = tg.get("matcher")  # YAML reads an unquoted 200 as a number
        matcher = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else \
            self.string(raw, join(tg_path, "matcher"), default="200")
        if not HTTP_CODES.match(matcher) or not all(200 <= int(c) <= 499 for c in re.findall(r"\d{3}", matcher)):
            raise self.fail(join(tg_path, "matcher"), f"{matcher!r} is not an HTTP code list such as 200, 200,202 or 200-299")
        return EcsLoadBalancer(
            name=name,
            scheme=self.choice(b.get("scheme"), join(path, "scheme"), ("internet-facing", "internal"),
                               default="internet-facing"),
            subnets=subnet_names,
            security_groups=sgs,
            listener_port=int(self.port_string(b.get("listener_port"), join(path, "listener_port"), "80")),
            target_group=EcsTargetGroup(
                name=self.elb_name(tg["name"], join(tg_path, "name"), "target group"),
                port=int(self.port_string(tg.get("port"), join(tg_path, "port"), str(container_port))),
                health_path=health_path,
                matcher=matcher,
            ),
        )

    def elb_name(self, value: Any, path: str, what: str) -> str:
        text = self.string(value, path)
        if not ELB_NAME.match(text):
            raise self.fail(path, f"{text!r} is not a valid {what} name (letters, digits and '-', up to 32, "
                                  "not beginning or ending with '-')")
        return text

    def ecs_name(self, value: Any, path: str, what: str) -> str:
        text = self.string(value, path)
        if not ECS_NAME.match(text):
            raise self.fail(path, f"{text!r} is not a valid ECS {what} name (letters, digits, '-', '_'; up to 255)")
        return text

    def log_group(self, b: dict, path: str) -> str | None:
        """The block's optional CloudWatch log group name."""
        log_group = self.opt_string(b.get("log_group"), join(path, "log_group"))
        if log_group is not None and not LOG_GROUP.match(log_group):
            raise self.fail(join(path, "log_group"), f"{log_group!r} is not a valid CloudWatch log group name")
        return log_group

    def fargate_cpu(self, b: dict, path: str) -> str:
        """The block's Fargate cpu units (256 by default)."""
        cpu = self.port_string(b.get("cpu"), join(path, "cpu"), "256")
        if cpu not in FARGATE_CPU:
            raise self.fail(join(path, "cpu"), f"must be one of {', '.join(FARGATE_CPU)}")
        return cpu

    def ecs_task_definition(self, value: Any, path: str, databases: set[str], caches: set[str],
                            secrets: dict[str, Secret]) -> EcsTaskDefinition:
        b = self.mapping(value, path, ("family", "container", "image", "port", "environment", "secrets",
                                       "log_group", "log_group_exists", "log_stream_prefix", "cpu", "memory"),
                         required=("family", "image"))
        image = self.string(b["image"], join(path, "image"))
        if any(c.isspace() for c in image):
            raise self.fail(join(path, "image"), f"{image!r} is not an image reference")
        secret_refs = self.secret_refs(b.get("secrets"), join(path, "secrets"), secrets)
        env_names = {str(k) for k in self.mapping(b.get("environment"), join(path, "environment"))}
        for var, _ in secret_refs:
            if var in env_names:
                raise self.fail(join(join(path, "secrets"), var), "also set in environment: a variable comes from one place")
        log_group, cpu = self.log_group(b, path), self.fargate_cpu(b, path)
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
            log_group_exists=self._log_group_exists(b, path, log_group),
        )

    def _log_group_exists(self, b: dict, path: str, log_group: str | None) -> bool:
        exists = self.boolean(b.get("log_group_exists"), join(path, "log_group_exists"), True)
        if not exists and log_group is None:
            raise self.fail(join(path, "log_group_exists"), "needs a log_group: there is no group to leave uncreated")
        return exists
