"""The App Runner side of a scenario: VPC connectors, services (image or code, operations,
environment, health check, the simulated app, logs) and the secrets they reference."""

from __future__ import annotations

import re
from typing import Any

from runbook.validation import join
from runbook.validation import kind as _kind
from runbook_sandbox.scenario.fields import Fields
from runbook_sandbox.scenario.model import (
    App,
    CodeSource,
    Connector,
    HealthCheck,
    Operation,
    Secret,
    SecretRef,
    SecurityGroup,
    Service,
    Subnet,
    status_after,
)
from runbook_sandbox.scenario.vocabulary import (
    CODE_RUNTIMES,
    ENV_NAME,
    IN_FLIGHT,
    OPERATION_STATUSES,
    OPERATION_TYPES,
    PLACEHOLDER,
    PLACEHOLDER_BODY,
    SECRET_STORES,
    SERVICE_NAME,
    SERVICE_STATUSES,
)


class ServiceParser(Fields):
    """connectors:, secrets:, services:."""

    def connectors(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Connector, ...]:
        out: list[Connector] = []
        for i, item in enumerate(self.seq(value, "connectors")):
            path = join("connectors", i)
            b = self.mapping(item, path, ("name", "subnets", "security_groups", "status"),
                             required=("name", "subnets", "security_groups"))
            name = self.string(b["name"], join(path, "name"))
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9-_]{3,39}$", name):
                raise self.fail(join(path, "name"), f"{name!r} is not a valid VPC connector name (4-40 characters)")
            if any(c.name == name for c in out):
                raise self.fail(join(path, "name"), f"connector {name!r} is defined twice")
            names, sgs, _ = self.placement(b, path, subnets, groups)
            status = self.choice(b.get("status"), join(path, "status"), ("ACTIVE", "INACTIVE"), default="ACTIVE")
            out.append(Connector(name, names, sgs, status))
        return tuple(out)

    def secrets(self, value: Any, databases: set[str], caches: set[str]) -> tuple[Secret, ...]:
        import json

        out: list[Secret] = []
        for i, item in enumerate(self.seq(value, "secrets")):
            path = join("secrets", i)
            b = self.mapping(item, path, ("name", "store", "value"), required=("name", "value"))
            name = self.string(b["name"], join(path, "name"))
            store = self.choice(b.get("store"), join(path, "store"), SECRET_STORES, default="secretsmanager")
            pattern = r"^[A-Za-z0-9/_+=.@-]{1,512}$" if store == "secretsmanager" else r"^/?[A-Za-z0-9_.\-/]{1,1011}$"
            if not re.match(pattern, name):
                raise self.fail(join(path, "name"), f"{name!r} is not a valid {store} name")
            if any(s.name == name for s in out):
                raise self.fail(join(path, "name"), f"secret {name!r} is defined twice")
            raw = b["value"]
            vp = join(path, "value")
            if isinstance(raw, dict):  # a JSON secret: {"url": "...", "password": "..."}
                fields = self.mapping(raw, vp)
                for key, text in fields.items():
                    self.string(text, join(vp, key), allow_empty=True)
                    self.placeholders(text, join(vp, key), databases, caches)
                text = json.dumps(fields)
            else:
                text = self.string(raw, vp)
                self.placeholders(text, vp, databases, caches)
            out.append(Secret(name, store, text))
        return tuple(out)

    def secret_refs(self, value: Any, path: str, secrets: dict[str, Secret]) -> tuple[tuple[str, SecretRef], ...]:
        spec = self.mapping(value, path)
        out: list[tuple[str, SecretRef]] = []
        for var, raw in spec.items():
            vp = join(path, var)
            if not ENV_NAME.match(var):
                raise self.fail(vp, "not a valid environment variable name")
            if var.startswith("AWSAPPRUNNER"):
                raise self.fail(vp, "names starting with AWSAPPRUNNER are reserved by App Runner")
            if isinstance(raw, str) and raw.startswith("arn:"):
                out.append((var, SecretRef(None, literal=raw)))  # as written: it may name nothing
                continue
            ref = self.mapping({"secret": raw} if isinstance(raw, str) else raw, vp, ("secret", "json_key", "by"),
                               required=("secret",))
            name = self.string(ref["secret"], join(vp, "secret"))
            if name not in secrets:
                known = ", ".join(sorted(secrets)) or "none"
                raise self.fail(join(vp, "secret"), f"no secret {name!r} (defined: {known})")
            json_key = self.opt_string(ref.get("json_key"), join(vp, "json_key"))
            by = self.choice(ref.get("by"), join(vp, "by"), ("arn", "name"), default="arn")
            if json_key is not None and secrets[name].store != "secretsmanager":
                raise self.fail(join(vp, "json_key"), "only a Secrets Manager secret has JSON keys")
            if by == "name" and secrets[name].store != "ssm":
                raise self.fail(join(vp, "by"), "App Runner takes a Secrets Manager secret by full ARN only")
            out.append((var, SecretRef(name, json_key=json_key, by_name=by == "name")))
        return tuple(out)

    def code_source(self, value: Any, path: str) -> CodeSource:
        b = self.mapping(value, path, ("url", "branch", "runtime", "configuration_source", "build_command",
                                       "start_command"), required=("url",))
        url = self.string(b["url"], join(path, "url"))
        if not url.startswith("https://"):
            raise self.fail(join(path, "url"), f"{url!r} is not an https:// repository URL")
        return CodeSource(
            url=url,
            branch=self.string(b.get("branch"), join(path, "branch"), default="main"),
            runtime=self.choice(b.get("runtime"), join(path, "runtime"), CODE_RUNTIMES, default="PYTHON_311"),
            configuration_source=self.choice(b.get("configuration_source"), join(path, "configuration_source"),
                                             ("API", "REPOSITORY"), default="API"),
            build_command=self.opt_string(b.get("build_command"), join(path, "build_command")),
            start_command=self.opt_string(b.get("start_command"), join(path, "start_command")),
        )

    # -- services -----------------------------------------------------------------

    def services(self, value: Any, connectors: set[str], databases: set[str], caches: set[str],
                 secrets: dict[str, Secret] | None = None) -> tuple[Service, ...]:
        out: list[Service] = []
        for i, item in enumerate(self.seq(value, "services")):
            path = join("services", i)
            b = self.mapping(item, path, ("name", "connector", "egress", "image", "code_repository", "port", "status",
                                          "operations", "env", "secrets", "health_check", "app", "deploy_seconds",
                                          "logs", "cpu", "memory", "public"),
                             required=("name",))
            name = self.string(b["name"], join(path, "name"))
            if not SERVICE_NAME.match(name):
                raise self.fail(join(path, "name"), f"{name!r} is not a valid App Runner service name (4-40 characters)")
            if any(s.name == name for s in out):
                raise self.fail(join(path, "name"), f"service {name!r} is defined twice")
            connector = b.get("connector")
            if connector is not None:
                connector = self.string(connector, join(path, "connector"))
                if connector not in connectors:
                    known = ", ".join(sorted(connectors)) or "none"
                    raise self.fail(join(path, "connector"), f"no connector {connector!r} (defined: {known})")
            egress = self.choice(b.get("egress"), join(path, "egress"), ("DEFAULT", "VPC"),
                                 default="VPC" if connector else "DEFAULT")
            if egress == "VPC" and connector is None:
                raise self.fail(join(path, "egress"), "VPC egress needs a connector")
            code = None
            if b.get("code_repository") is not None:
                if b.get("image") is not None:
                    raise self.fail(join(path, "code_repository"), "a service runs an image or a code repository, not both")
                code = self.code_source(b["code_repository"], join(path, "code_repository"))
                image = code.url
            else:
                image = self.string(b.get("image"), join(path, "image"), default="public.ecr.aws/sandbox/app:latest")
                if not (image.startswith("public.ecr.aws/")
                        or re.match(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/", image)):
                    raise self.fail(join(path, "image"), f"{image!r} is not an ECR or ECR Public image")
            secret_refs = self.secret_refs(b.get("secrets"), join(path, "secrets"), secrets or {})
            env_names = {str(k) for k in self.mapping(b.get("env"), join(path, "env"))}
            for var, _ in secret_refs:
                if var in env_names:
                    raise self.fail(join(join(path, "secrets"), var), "also set in env: a variable comes from one place")
            port = self.port_string(b.get("port"), join(path, "port"), "8080")
            status, operations = self.operations(b, path)
            env = self.env(b.get("env"), join(path, "env"), databases, caches)
            health = self.health_check(b.get("health_check"), join(path, "health_check"))
            app = self.app(b.get("app"), join(path, "app"), port)
            for other in out:
                if other.image == image and other.app != app:
                    raise self.fail(join(path, "image"), f"service {other.name!r} runs the same image with a "
                                                          "different app; give each app its own image")
            logs = self.mapping(b.get("logs"), join(path, "logs"), ("service", "application"))
            service_logs = self.lines(logs.get("service"), join(join(path, "logs"), "service"), databases, caches)
            app_logs = self.lines(logs.get("application"), join(join(path, "logs"), "application"), databases, caches)
            cpu = self.port_string(b.get("cpu"), join(path, "cpu"), "1024")
            if cpu not in ("256", "512", "1024", "2048", "4096"):
                raise self.fail(join(path, "cpu"), "must be one of 256, 512, 1024, 2048, 4096")
            memory = self.port_string(b.get("memory"), join(path, "memory"), "2048")
            if memory not in ("512", "1024", "2048", "3072", "4096", "6144", "8192", "10240", "12288"):
                raise self.fail(join(path, "memory"), "must be a valid App Runner memory size in MB, e.g. 2048")
            out.append(Service(
                name=name,
                connector=connector,
                image=image,
                port=port,
                status=status,
                operations=operations,
                env=env,
                health_check=health,
                app=app,
                deploy_seconds=self.number(b.get("deploy_seconds"), join(path, "deploy_seconds"), 20.0),
                service_logs=service_logs,
                application_logs=app_logs,
                cpu=cpu,
                memory=memory,
                public=self.boolean(b.get("public"), join(path, "public"), True),
                egress=egress,
                secrets=secret_refs,
                code=code,
            ))
        return tuple(out)

    def operations(self, b: dict, path: str) -> tuple[str, tuple[Operation, ...]]:
        status = b.get("status")
        if status is not None:
            status = self.choice(status, join(path, "status"), SERVICE_STATUSES)
        ops: list[Operation] = []
        op_path = join(path, "operations")
        for i, item in enumerate(self.seq(b.get("operations"), op_path)):
            ip = join(op_path, i)
            o = self.mapping(item, ip, ("type", "status"), required=("type", "status"))
            ops.append(Operation(
                self.choice(o["type"], join(ip, "type"), OPERATION_TYPES),
                self.choice(o["status"], join(ip, "status"), OPERATION_STATUSES),
            ))
        if not ops:
            synth = {
                None: [("CREATE_SERVICE", "SUCCEEDED")],
                "RUNNING": [("CREATE_SERVICE", "SUCCEEDED")],
                "CREATE_FAILED": [("CREATE_SERVICE", "FAILED")],
                "OPERATION_IN_PROGRESS": [("CREATE_SERVICE", "IN_PROGRESS")],
                "PAUSED": [("CREATE_SERVICE", "SUCCEEDED"), ("PAUSE_SERVICE", "SUCCEEDED")],
                "DELETE_FAILED": [("CREATE_SERVICE", "SUCCEEDED"), ("DELETE_SERVICE", "FAILED")],
            }[status]
            ops = [Operation(t, s) for t, s in synth]
        if ops[0].type != "CREATE_SERVICE":
            raise self.fail(join(join(op_path, 0), "type"), "a service's first operation is CREATE_SERVICE (list oldest first)")
        for i, op in enumerate(ops[1:], start=1):
            if op.type == "CREATE_SERVICE":
                raise self.fail(join(join(op_path, i), "type"), "only the first operation can be CREATE_SERVICE")
        for i, op in enumerate(ops[:-1]):
            if op.status in IN_FLIGHT:
                raise self.fail(join(join(op_path, i), "status"),
                                f"{op.status}: only the newest (last) operation can still be in flight")
        for i, op in enumerate(ops):
            if op.type == "DELETE_SERVICE" and op.status == "SUCCEEDED":
                raise self.fail(join(join(op_path, i), "status"),
                                "a deleted service is gone (ListServices omits it): leave the service out")
            if op.type == "DELETE_SERVICE" and op.status not in ("FAILED", *IN_FLIGHT):
                raise self.fail(join(join(op_path, i), "status"), "a deletion either fails or is in flight")
            after_delete = [o for o in ops[i + 1:] if o.type != "DELETE_SERVICE"]
            if op.type == "DELETE_SERVICE" and after_delete:
                raise self.fail(join(join(op_path, i + 1), "type"),
                                "after a deletion only DELETE_SERVICE again (UpdateService is refused)")
        last = ops[-1]
        if last.status in IN_FLIGHT:
            if status is None:
                status = "OPERATION_IN_PROGRESS"
            elif status != "OPERATION_IN_PROGRESS":
                raise self.fail(join(path, "status"),
                                f"must be OPERATION_IN_PROGRESS while operation {last.type} is {last.status}")
            if last.status == "ROLLBACK_IN_PROGRESS" and last.type not in ("START_DEPLOYMENT", "UPDATE_SERVICE"):
                raise self.fail(join(join(op_path, len(ops) - 1), "status"),
                                "only START_DEPLOYMENT and UPDATE_SERVICE roll back")
        else:
            derived = status_after(ops)
            if status is None:
                status = derived
            elif status != derived and status != "OPERATION_IN_PROGRESS":
                raise self.fail(join(path, "status"),
                                f"{status} contradicts the operations, which leave the service {derived}")
        return status, tuple(ops)

    def env(self, value: Any, path: str, databases: set[str], caches: set[str]) -> tuple[tuple[str, str], ...]:
        spec = self.mapping(value, path)
        out: list[tuple[str, str]] = []
        for key, raw in spec.items():
            kp = join(path, key)
            if not ENV_NAME.match(key):
                raise self.fail(kp, "not a valid environment variable name")
            if key.startswith("AWSAPPRUNNER"):
                raise self.fail(kp, "names starting with AWSAPPRUNNER are reserved by App Runner")
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise self.fail(kp, f"expected a string, got {_kind(raw)} (quote it)")
            text = str(raw)
            self.placeholders(text, kp, databases, caches)
            out.append((key, text))
        return tuple(out)

    def lines(self, value: Any, path: str, databases: set[str], caches: set[str]) -> tuple[str, ...]:
        out: list[str] = []
        for i, line in enumerate(self.seq(value, path)):
            text = self.string(line, join(path, i))
            self.placeholders(text, join(path, i), databases, caches)
            out.append(text)
        return tuple(out)

    def placeholders(self, text: str, path: str, databases: set[str], caches: set[str]) -> None:
        for match in PLACEHOLDER.finditer(text):
            body = match.group(1)
            m = PLACEHOLDER_BODY.match(body)
            if not m:
                raise self.fail(path, f"unknown placeholder ${{{body}}} (use ${{database.ID.address}}, "
                                      "${database.ID.port}, ${cache.ID.address}, ${cache.ID.port}, "
                                      "${proxy.NAME.address} or ${proxy.NAME.port})")
            kind, ident = m.group(1), m.group(2)
            pool = {"database": databases, "cache": caches, "proxy": getattr(self, "proxy_names", set())}[kind]
            if ident not in pool:
                known = ", ".join(sorted(pool)) or "none"
                raise self.fail(path, f"${{{body}}} names no {kind} {ident!r} (defined: {known})")
        if "${" in PLACEHOLDER.sub("", text):
            raise self.fail(path, "unterminated ${ placeholder")

    def health_check(self, value: Any, path: str) -> HealthCheck:
        b = self.mapping(value, path, ("protocol", "path", "interval", "timeout", "healthy_threshold",
                                       "unhealthy_threshold"))
        protocol = self.choice(b.get("protocol"), join(path, "protocol"), ("TCP", "HTTP"), default="TCP",
                               message="must be TCP or HTTP")
        hc_path = self.string(b.get("path"), join(path, "path"), default="/")
        if not hc_path.startswith("/"):
            raise self.fail(join(path, "path"), f"must start with '/', got {hc_path!r}")
        return HealthCheck(
            protocol=protocol,
            path=hc_path,
            interval=self.integer(b.get("interval"), join(path, "interval"), default=5, lo=1, hi=20),
            timeout=self.integer(b.get("timeout"), join(path, "timeout"), default=2, lo=1, hi=20),
            healthy_threshold=self.integer(b.get("healthy_threshold"), join(path, "healthy_threshold"),
                                           default=1, lo=1, hi=20),
            unhealthy_threshold=self.integer(b.get("unhealthy_threshold"), join(path, "unhealthy_threshold"),
                                             default=5, lo=1, hi=20),
        )

    def app(self, value: Any, path: str, service_port: str) -> App:
        b = self.mapping(value, path, ("health_path", "port", "needs", "startup_error"))
        health_path = self.string(b.get("health_path"), join(path, "health_path"), default="/")
        if not health_path.startswith("/"):
            raise self.fail(join(path, "health_path"), f"must start with '/', got {health_path!r}")
        needs_spec = self.mapping(b.get("needs"), join(path, "needs"))
        needs: list[tuple[str, str]] = []
        for label, var in needs_spec.items():
            np_ = join(join(path, "needs"), label)
            self.symbol(label, np_)
            var = self.string(var, np_)
            if not ENV_NAME.match(var):
                raise self.fail(np_, f"{var!r} is not an environment variable name")
            needs.append((label, var))
        return App(
            health_path=health_path,
            port=self.port_string(b.get("port"), join(path, "port"), service_port),
            needs=tuple(needs),
            startup_error=self.opt_string(b.get("startup_error"), join(path, "startup_error")),
        )
