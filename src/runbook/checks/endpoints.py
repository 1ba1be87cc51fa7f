"""The environment's URLs, followed to the resources they name."""

from __future__ import annotations

from typing import Any, Mapping

from runbook.discovery import Topology
from runbook.model import Evidence, Finding, Status
from runbook.registry import check


@check(
    "env.endpoints",
    permissions=("apprunner:DescribeService", "rds:DescribeDBInstances", "elasticache:DescribeReplicationGroups", "elasticache:DescribeCacheClusters"),
    params={"database_url_var": "DATABASE_URL", "redis_url_var": "REDIS_URL"},
)
def env_endpoints(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """DATABASE_URL and REDIS_URL name the RDS instance (or Aurora cluster) and the ElastiCache group this account has, in the connector's VPC, on their ports.

    Example:
      - id: env-endpoints
        check: env.endpoints   # the variables are the runbook's params.database_url_var / redis_url_var
    """
    evidence, problems = [], []
    for kind, var in (("database", params["database_url_var"]), ("cache", params["redis_url_var"])):
        target = topology.targets.get(kind)
        if target is None:
            # A service without a cache (or a database) is not broken: there is nothing to follow.
            evidence.append(Evidence("apprunner describe_service", f"{var} is not set: no {kind} to check"))
            continue
        if target.resource_id is None:
            problems.append(f"{var} points at {target.host or '(no host)'}, which is no {kind} endpoint this account has in {topology.region}")
            evidence.append(Evidence(target.source, f"{var}={target.url}: no endpoint Address matches {target.host}"))
            continue
        evidence.append(
            Evidence(target.source, f"{var}={target.url} -> {kind} {target.resource_id} (endpoint port {target.endpoint_port}, VPC {target.vpc_id or '?'})")
        )
        if target.endpoint_port and target.port != target.endpoint_port:
            problems.append(f"{var} uses port {target.port} but {target.resource_id} listens on {target.endpoint_port}")
        if target.vpc_id and topology.connector_vpc_ids and target.vpc_id not in topology.connector_vpc_ids:
            problems.append(f"{var} names {target.resource_id} in {target.vpc_id}, another VPC than the connector's")
        if kind == "cache" and target.transit_encryption and target.scheme == "redis":
            problems.append(f"{var} uses redis:// but {target.resource_id} has transit encryption on: use rediss://")
    if problems:
        return Finding(Status.FAIL, "; ".join(problems), tuple(evidence))
    if not topology.targets:
        return Finding(Status.SKIPPED, "neither URL variable is set in the service environment", tuple(evidence))
    return Finding(Status.OK, "the URLs name resources of this account, on their ports", tuple(evidence))
