"""The environment's URLs, followed to the resources they name."""

from __future__ import annotations

from typing import Any, Mapping

from runbook.topology import Topology
from runbook.model import Evidence, Finding, Status
from runbook.registry import check

# Redis and Valkey URL schemes, each with its twin: `rediss://`/`valkeys://` speak TLS.
PLAIN_SCHEMES = {"redis": "rediss", "valkey": "valkeys"}
TLS_SCHEMES = {tls: plain for plain, tls in PLAIN_SCHEMES.items()}


@check("env.endpoints", params={"database_url_var": "DATABASE_URL", "redis_url_var": "REDIS_URL"})
def env_endpoints(topology: Topology, params: Mapping[str, Any]) -> Finding:
    """DATABASE_URL and REDIS_URL name the RDS instance (or Aurora cluster) and the ElastiCache group this account has, in the workload's VPC, on their ports.

    Example:
      - id: env-endpoints
        check: env.endpoints   # the variables are the runbook's params.database_url_var / redis_url_var
    """
    evidence, problems, unfollowed = [], [], []
    for kind, var in (("database", params["database_url_var"]), ("cache", params["redis_url_var"])):
        target = topology.targets.get(kind)
        if target is None:
            # A service without a cache (or a database) is not broken: there is nothing to follow.
            evidence.append(Evidence(topology.workload.source, f"{var} is not set: no {kind} to check"))
            continue
        if target.unread:
            # Not followed: a secret not read (or gone), or an environment no API returns.
            (problems if target.dangling else unfollowed).append(target.unread)
            evidence.append(Evidence(target.source, target.unread))
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
        if target.vpc_id and topology.client_vpc_ids and target.vpc_id not in topology.client_vpc_ids:
            problems.append(f"{var} names {target.resource_id} in {target.vpc_id}, another VPC than the {topology.workload.noun}'s")
        if kind == "cache" and target.transit_encryption is not None:
            # TLS must match both ways: each side refuses the other's handshake.
            tls = f"{target.resource_id} TransitEncryptionEnabled={target.transit_encryption}"
            # TransitEncryptionMode=preferred (a migration to TLS) accepts plain-text clients too.
            preferred = (target.resource or {}).get("TransitEncryptionMode") == "preferred"
            mismatch = None
            if target.transit_encryption and not preferred and target.scheme in PLAIN_SCHEMES:
                mismatch = f"{var} uses {target.scheme}:// but {tls}: the cache accepts only TLS; use {PLAIN_SCHEMES[target.scheme]}://"
            elif not target.transit_encryption and target.scheme in TLS_SCHEMES:
                mismatch = (f"{var} uses {target.scheme}:// but {tls}: the TLS handshake fails against a cache without TLS; "
                            f"use {TLS_SCHEMES[target.scheme]}://")
            if mismatch:
                problems.append(mismatch)
                evidence.append(Evidence(target.source, f"{var} scheme {target.scheme}://; {tls}"))
    if problems:
        return Finding(Status.FAIL, "; ".join(problems + unfollowed), tuple(evidence))
    if unfollowed:
        return Finding(Status.WARN, "; ".join(unfollowed), tuple(evidence))
    if not topology.targets:
        return Finding(Status.SKIPPED, "neither URL variable is set in the service environment", tuple(evidence))
    return Finding(Status.OK, "the URLs name resources of this account, on their ports", tuple(evidence))
