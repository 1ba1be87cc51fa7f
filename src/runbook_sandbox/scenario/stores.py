"""The data stores of a scenario: RDS databases, ElastiCache caches, RDS proxies and their endpoints."""

from __future__ import annotations

from typing import Any

from runbook.validation import join
from runbook_sandbox.scenario.fields import Fields
from runbook_sandbox.scenario.model import Cache, Database, Proxy, ProxyEndpoint, SecurityGroup, Subnet
from runbook_sandbox.scenario.vocabulary import CACHE_ENGINES, CACHE_MODES, DB_ENGINES, PROXY_ENGINE_FAMILIES, RESOURCE_ID


class StoreParser(Fields):
    """databases:, caches:, proxies:."""

    def databases(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Database, ...]:
        out: list[Database] = []
        for i, item in enumerate(self.seq(value, "databases")):
            path = join("databases", i)
            b = self.mapping(item, path, ("id", "engine", "port", "subnets", "security_groups",
                                          "publicly_accessible", "master_username", "master_password",
                                          "db_name", "instance_class", "subnet_group"),
                             required=("id", "subnets", "security_groups"))
            ident = self.string(b["id"], join(path, "id"))
            if not RESOURCE_ID.match(ident) or "--" in ident or ident.endswith("-"):
                raise self.fail(join(path, "id"), f"{ident!r} is not a valid DB instance identifier")
            if any(d.id == ident for d in out):
                raise self.fail(join(path, "id"), f"database {ident!r} is defined twice")
            engine = self.choice(b.get("engine"), join(path, "engine"), tuple(DB_ENGINES), default="postgres")
            port = self.integer(b.get("port"), join(path, "port"), default=DB_ENGINES[engine], lo=1150, hi=65535)
            names, sgs, _ = self.placement(b, path, subnets, groups)
            password = self.string(b.get("master_password"), join(path, "master_password"), default="sandbox-pass")
            if len(password) < 8:
                raise self.fail(join(path, "master_password"), "must be at least 8 characters")
            out.append(Database(
                id=ident,
                engine=engine,
                port=port,
                subnets=names,
                security_groups=sgs,
                publicly_accessible=self.boolean(b.get("publicly_accessible"), join(path, "publicly_accessible"), False),
                master_username=self.string(b.get("master_username"), join(path, "master_username"), default="dbadmin"),
                master_password=password,
                db_name=self.opt_string(b.get("db_name"), join(path, "db_name")),
                instance_class=self.string(b.get("instance_class"), join(path, "instance_class"), default="db.t3.micro"),
                subnet_group=self.symbol(b.get("subnet_group", f"{ident}-subnets"), join(path, "subnet_group")),
            ))
        return tuple(out)

    def caches(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup]) -> tuple[Cache, ...]:
        out: list[Cache] = []
        for i, item in enumerate(self.seq(value, "caches")):
            path = join("caches", i)
            b = self.mapping(item, path, ("id", "engine", "port", "subnets", "security_groups",
                                          "transit_encryption", "auth_token", "node_type", "subnet_group",
                                          "replicas", "mode"),
                             required=("id", "subnets", "security_groups"))
            mode = self.choice(b.get("mode"), join(path, "mode"), CACHE_MODES, default="replication-group")
            self.cache_mode_fields(b, path, mode)
            ident = self.string(b["id"], join(path, "id"))
            if not RESOURCE_ID.match(ident) or len(ident) > 40 or "--" in ident or ident.endswith("-"):
                raise self.fail(join(path, "id"), f"{ident!r} is not a valid replication group id")
            if any(c.id == ident for c in out):
                raise self.fail(join(path, "id"), f"cache {ident!r} is defined twice")
            names, sgs, _ = self.placement(b, path, subnets, groups)
            transit = self.boolean(b.get("transit_encryption"), join(path, "transit_encryption"), mode == "serverless")
            token = self.opt_string(b.get("auth_token"), join(path, "auth_token"))
            if token is not None and not transit:
                raise self.fail(join(path, "auth_token"), "an AUTH token needs transit_encryption: true")
            if token is not None and not 16 <= len(token) <= 128:
                raise self.fail(join(path, "auth_token"), "must be 16 to 128 characters")
            subnet_group = b.get("subnet_group", f"{ident}-subnets")
            subnet_group = self.symbol(subnet_group, join(path, "subnet_group"))
            for other in out:
                if other.subnet_group == subnet_group and set(other.subnets) != set(names):
                    raise self.fail(join(path, "subnet_group"),
                                    f"subnet group {subnet_group!r} is already defined with other subnets")
            out.append(Cache(
                id=ident,
                engine=self.choice(b.get("engine"), join(path, "engine"), CACHE_ENGINES, default="redis"),
                port=self.integer(b.get("port"), join(path, "port"), default=6379, lo=1, hi=65535),
                subnets=names,
                security_groups=sgs,
                transit_encryption=transit,
                auth_token=token,
                node_type=self.string(b.get("node_type"), join(path, "node_type"), default="cache.t3.micro"),
                subnet_group=subnet_group,
                replicas=self.integer(b.get("replicas"), join(path, "replicas"), default=0, lo=0, hi=5),
                mode=mode,
            ))
        return tuple(out)

    def cache_mode_fields(self, b: dict, path: str, mode: str) -> None:
        """What a standalone cluster or a serverless cache cannot have."""
        if mode != "replication-group" and b.get("replicas"):
            raise self.fail(join(path, "replicas"), f"a {mode} cache has no read replicas")
        if mode == "serverless":
            for key in ("port", "node_type", "subnet_group", "auth_token"):
                if b.get(key) is not None:
                    raise self.fail(join(path, key), f"a serverless cache has no {key} (port 6379, TLS, access by user group)")
            if b.get("transit_encryption") is False:
                raise self.fail(join(path, "transit_encryption"), "a serverless cache accepts TLS connections only")

    def proxies(self, value: Any, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                databases: tuple[Database, ...]) -> tuple[Proxy, ...]:
        by_id = {d.id: d for d in databases}
        out: list[Proxy] = []
        for i, item in enumerate(self.seq(value, "proxies")):
            path = join("proxies", i)
            b = self.mapping(item, path, ("name", "engine_family", "database", "subnets", "security_groups", "endpoints"),
                             required=("name", "database", "subnets", "security_groups"))
            name = self.string(b["name"], join(path, "name"))
            if not RESOURCE_ID.match(name) or "--" in name or name.endswith("-"):
                raise self.fail(join(path, "name"), f"{name!r} is not a valid DB proxy name")
            if any(p.name == name for p in out) or name in by_id:
                raise self.fail(join(path, "name"), f"{name!r} is already used by a proxy or database")
            database = self.string(b["database"], join(path, "database"))
            if database not in by_id:
                raise self.fail(join(path, "database"), f"no database {database!r} (defined: {', '.join(by_id) or 'none'})")
            family = self.choice(b.get("engine_family"), join(path, "engine_family"), tuple(PROXY_ENGINE_FAMILIES),
                                 default=next(f for f, engines in PROXY_ENGINE_FAMILIES.items() if by_id[database].engine in engines))
            if by_id[database].engine not in PROXY_ENGINE_FAMILIES[family]:
                raise self.fail(join(path, "engine_family"), f"database {database!r} is {by_id[database].engine}, not {family}")
            names, sgs, _ = self.placement(b, path, subnets, groups, min_subnets=2)
            taken = {p.name for p in out} | {e.name for p in out for e in p.endpoints} | set(by_id) | {name}
            endpoints = self.proxy_endpoints(b.get("endpoints"), join(path, "endpoints"), subnets, groups, taken)
            out.append(Proxy(name, family, database, names, sgs, endpoints))
        return tuple(out)

    def proxy_endpoints(self, value: Any, path: str, subnets: dict[str, Subnet], groups: dict[str, SecurityGroup],
                        taken: set[str]) -> tuple[ProxyEndpoint, ...]:
        out: list[ProxyEndpoint] = []
        for i, item in enumerate(self.seq(value, path)):
            ep = join(path, i)
            b = self.mapping(item, ep, ("name", "subnets", "security_groups", "target_role"),
                             required=("name", "subnets", "security_groups"))
            name = self.string(b["name"], join(ep, "name"))
            if not RESOURCE_ID.match(name) or "--" in name or name.endswith("-") or name == "default":
                raise self.fail(join(ep, "name"), f"{name!r} is not a valid DB proxy endpoint name")
            if name in taken or any(e.name == name for e in out):
                raise self.fail(join(ep, "name"), f"{name!r} is already used by a proxy, endpoint or database")
            names, sgs, _ = self.placement(b, ep, subnets, groups, min_subnets=2)
            role = self.choice(b.get("target_role"), join(ep, "target_role"), ("READ_WRITE", "READ_ONLY"), default="READ_WRITE")
            out.append(ProxyEndpoint(name, names, sgs, role))
        return tuple(out)

    def unique_store_ids(self, databases: tuple[Database, ...], caches: tuple[Cache, ...]) -> None:
        db_ids = {d.id for d in databases}
        for i, cache in enumerate(caches):
            if cache.id in db_ids:
                raise self.fail(join(join("caches", i), "id"), f"{cache.id!r} is also a database id")
