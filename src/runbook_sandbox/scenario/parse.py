"""Loading a scenario: a bundled name or a path, YAML text, or parsed data, into a validated
:class:`~runbook_sandbox.scenario.model.Scenario`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runbook import validation, yamlfile
from runbook.errors import UsageError
from runbook_sandbox.scenario.ecs import EcsServiceParser
from runbook_sandbox.scenario.model import Scenario
from runbook_sandbox.scenario.network import NetworkParser
from runbook_sandbox.scenario.security_groups import SecurityGroupParser
from runbook_sandbox.scenario.services import ServiceParser
from runbook_sandbox.scenario.stores import StoreParser
from runbook_sandbox.scenario.vocabulary import REGION

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package, sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load and validate a bundled scenario (by name) or a YAML file (by path)."""
    label = str(name_or_path)
    path = Path(name_or_path)
    try:
        is_file, exists = path.is_file(), path.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise UsageError(f"scenario {validation.shorten(label)}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if str(name_or_path) in bundled_scenarios() and not is_file:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    elif not is_file:
        known = ", ".join(bundled_scenarios()) or "none"
        if exists:
            raise UsageError(f"scenario {label}: not a file")
        raise UsageError(f"scenario {label}: no such file or bundled scenario (bundled: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"scenario {label}: cannot read: {exc}") from None
    return parse_scenario(text, label=label, default_name=path.stem)


def parse_scenario(text: str, *, label: str = "<string>", default_name: str = "scenario") -> Scenario:
    """Validate scenario YAML text; ``label`` names the file in error messages."""
    try:
        data = yamlfile.parse(text)  # no duplicate keys, bounded nesting
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise UsageError(f"scenario {label}: not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"scenario {label}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return scenario_from_data(data, label=label, default_name=default_name)


def scenario_from_data(data: Any, *, label: str = "<data>", default_name: str = "scenario") -> Scenario:
    """Validate already-parsed YAML data (what :func:`parse_scenario` does after parsing)."""
    return ScenarioParser(label).scenario(data, default_name)


class ScenarioParser(EcsServiceParser, ServiceParser, StoreParser, SecurityGroupParser, NetworkParser):
    """The whole file: each section read by its own parser, cross-references checked in order."""

    def scenario(self, data: Any, default_name: str) -> Scenario:
        if data is None:
            raise self.fail("", "the file is empty")
        top = self.mapping(
            data,
            "",
            ("name", "description", "region", "vpcs", "security_groups", "databases", "caches",
             "connectors", "services", "secrets", "prefix_lists", "vpc_peerings", "proxies", "ecs_services",
             "ecs_express_services", "vpc_endpoints"),
            required=("vpcs",),
        )
        name = self.string(top.get("name"), "name", default=default_name)
        description = self.string(top.get("description"), "description", default="", allow_empty=True)
        region = self.string(top.get("region"), "region", default="us-east-1")
        if not REGION.match(region):
            raise self.fail("region", f"{region!r} is not an AWS region name like us-east-1")

        vpcs = self.vpcs(top["vpcs"], region)
        subnets = {s.name: s for v in vpcs for s in v.subnets}
        peerings = self.vpc_peerings(top.get("vpc_peerings"), vpcs)
        prefix_lists = self.prefix_lists(top.get("prefix_lists"))
        self.peered = {frozenset(p.vpcs) for p in peerings}
        self.prefix_list_names = {p.name for p in prefix_lists}
        groups = self.security_groups(top.get("security_groups"), vpcs)
        group_map = {g.name: g for g in groups}
        vpc_endpoints = self.vpc_endpoints(top.get("vpc_endpoints"), vpcs, subnets, group_map)
        databases = self.databases(top.get("databases"), subnets, group_map)
        caches = self.caches(top.get("caches"), subnets, group_map)
        connectors = self.connectors(top.get("connectors"), subnets, group_map)
        proxies = self.proxies(top.get("proxies"), subnets, group_map, databases)
        self.proxy_names = {p.name for p in proxies} | {e.name for p in proxies for e in p.endpoints}
        secrets = self.secrets(top.get("secrets"), {d.id for d in databases}, {c.id for c in caches})
        services = self.services(top.get("services"), {c.name for c in connectors},
                                 {d.id for d in databases}, {c.id for c in caches}, {s.name: s for s in secrets})
        ecs_services = self.ecs_services(top.get("ecs_services"), subnets, group_map, {d.id for d in databases},
                                         {c.id for c in caches}, {s.name: s for s in secrets})
        ecs_express_services = self.ecs_express_services(
            top.get("ecs_express_services"), subnets, group_map, {d.id for d in databases},
            {c.id for c in caches}, {s.name: s for s in secrets}, ecs_services)
        self.unique_store_ids(databases, caches)
        return Scenario(
            name=name,
            description=description,
            region=region,
            vpcs=vpcs,
            security_groups=groups,
            databases=databases,
            caches=caches,
            connectors=connectors,
            services=services,
            secrets=secrets,
            source=self.label,
            prefix_lists=prefix_lists,
            peerings=peerings,
            proxies=proxies,
            ecs_services=ecs_services,
            ecs_express_services=ecs_express_services,
            vpc_endpoints=vpc_endpoints,
        )
