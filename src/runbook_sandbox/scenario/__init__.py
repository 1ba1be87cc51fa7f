"""Scenario files: a whole AWS world described by symbolic names, validated.

A scenario is YAML (format in docs/scenarios.md). :func:`load_scenario` reads
a bundled name or a path, checks every field and every cross-reference, and
returns a frozen :class:`Scenario`. Any problem is one line:
``scenario FILE: FIELD.PATH: what is wrong`` raised as
:class:`runbook.errors.UsageError`, never a traceback.

- :mod:`.model` - the world as frozen dataclasses;
- :mod:`.vocabulary` - the allowed values and name patterns;
- :mod:`.parse` - loading (a name, a path, text or data) and the whole-file parser, which reads each
  section with its own parser: :mod:`.network`, :mod:`.security_groups`, :mod:`.stores`, :mod:`.services`,
  all built on :mod:`.fields` (one field, one type, one line when it is wrong; shared with the runbook
  loader through :mod:`runbook.validation`).
"""

from runbook_sandbox.scenario.model import (
    App,
    Cache,
    CodeSource,
    Connector,
    Database,
    HealthCheck,
    NaclEntry,
    NatGateway,
    NetworkAcl,
    Operation,
    PrefixList,
    Proxy,
    ProxyEndpoint,
    Route,
    RouteTable,
    Scenario,
    Secret,
    SecretRef,
    SecurityGroup,
    Service,
    SgRule,
    Subnet,
    Vpc,
    VpcPeering,
    status_after,
)
from runbook_sandbox.scenario.parse import (
    SCENARIO_DIR,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
    scenario_from_data,
)
from runbook_sandbox.scenario.vocabulary import (
    CACHE_ENGINES,
    CACHE_MODES,
    CODE_RUNTIMES,
    DB_ENGINES,
    ENV_NAME,
    FOREIGN_GROUP,
    FOREIGN_PREFIX_LIST,
    IN_FLIGHT,
    OPERATION_STATUSES,
    OPERATION_TYPES,
    PLACEHOLDER,
    PLACEHOLDER_BODY,
    PROXY_ENGINE_FAMILIES,
    REGION,
    RESOURCE_ID,
    SECRET_STORES,
    SERVICE_NAME,
    SERVICE_STATUSES,
    SYMBOL,
)

__all__ = [
    "App",
    "CACHE_ENGINES",
    "CACHE_MODES",
    "CODE_RUNTIMES",
    "Cache",
    "CodeSource",
    "Connector",
    "DB_ENGINES",
    "Database",
    "ENV_NAME",
    "FOREIGN_GROUP",
    "FOREIGN_PREFIX_LIST",
    "HealthCheck",
    "IN_FLIGHT",
    "NaclEntry",
    "NatGateway",
    "NetworkAcl",
    "OPERATION_STATUSES",
    "OPERATION_TYPES",
    "Operation",
    "PLACEHOLDER",
    "PLACEHOLDER_BODY",
    "PROXY_ENGINE_FAMILIES",
    "PrefixList",
    "Proxy",
    "ProxyEndpoint",
    "REGION",
    "RESOURCE_ID",
    "Route",
    "RouteTable",
    "SCENARIO_DIR",
    "SECRET_STORES",
    "SERVICE_NAME",
    "SERVICE_STATUSES",
    "SYMBOL",
    "Scenario",
    "Secret",
    "SecretRef",
    "SecurityGroup",
    "Service",
    "SgRule",
    "Subnet",
    "Vpc",
    "VpcPeering",
    "bundled_scenarios",
    "load_scenario",
    "parse_scenario",
    "scenario_from_data",
    "status_after",
]
