"""Worlds written as the bundled `healthy` scenario with a few changes, and the list of those that are healthy.

`PASSING` (and `PASSING_FILES`, for scenario files) is the list test_healthy_worlds.py runs
`fix --yes` on: every world in it must come out with exit 0 and not one mutating call. A new kind of
world that the tool should judge healthy belongs there: add `"name": (mutate, ...)` (functions that
edit the scenario document in place), or `"name": path` to a scenario file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import yaml

from runbook_sandbox.scenario import SCENARIO_DIR

TESTS = Path(__file__).parent
HEALTHY = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text())

Mutate = Callable[[dict], None]


def service(doc: dict) -> dict:
    return doc["services"][0]


def write_world(tmp_path: Path, name: str, *mutations: Mutate) -> str:
    """`healthy` with `mutations` applied, saved as a scenario file; its path."""
    doc = copy.deepcopy(HEALTHY)
    for mutate in mutations:
        mutate(doc)
    doc["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


# -- the changes ------------------------------------------------------------------
def health_check_on(path: str, protocol: str = "HTTP") -> Mutate:
    """The service's health check on `path`, and the app serving its health there."""

    def mutate(doc: dict) -> None:
        service(doc)["health_check"] = {"protocol": protocol, "path": path} if protocol == "HTTP" else {"protocol": "TCP"}
        service(doc)["app"]["health_path"] = path

    return mutate


def app_serves(path: str) -> Mutate:
    return lambda doc: service(doc)["app"].update(health_path=path)


def redis_scheme(scheme: str, transit_encryption: bool) -> Mutate:
    def mutate(doc: dict) -> None:
        doc["caches"][0]["transit_encryption"] = transit_encryption
        env = service(doc)["env"]
        env["REDIS_URL"] = scheme + "://" + env["REDIS_URL"].split("://", 1)[1]

    return mutate


def nat_gateway(**fields) -> Mutate:
    """Change nat-a, the NAT gateway the connector subnets route to."""
    return lambda doc: doc["vpcs"]["main"]["nat_gateways"]["nat-a"].update(fields)


def nat_in_a_subnet_without_internet(doc: dict) -> None:
    """nat-a sits in a subnet whose route table sends 0.0.0.0/0 nowhere."""
    vpc = doc["vpcs"]["main"]
    vpc["subnets"]["nat-home"] = {"cidr": "10.0.9.0/24", "az": "us-east-1a", "route_table": "local-only"}
    vpc["route_tables"]["local-only"] = {"routes": []}
    vpc["nat_gateways"]["nat-a"]["subnet"] = "nat-home"


def connector_in_public_subnets(doc: dict) -> None:
    doc["vpcs"]["main"]["route_tables"]["private"]["routes"] = [{"destination": "0.0.0.0/0", "internet_gateway": "main-igw"}]


def default_egress(doc: dict) -> None:
    """No connector: EgressType DEFAULT; the database is public and reached over the internet."""
    service(doc)["connector"] = None
    doc["databases"][0]["publicly_accessible"] = True
    doc["databases"][0]["subnets"] = ["public-a", "public-b"]
    doc["vpcs"]["main"]["subnets"]["public-b"] = {"cidr": "10.0.3.0/24", "az": "us-east-1b", "route_table": "public"}


def public_rule(group: str, **rule) -> Mutate:
    return lambda doc: doc["security_groups"][group]["ingress"].append({"protocol": "tcp", "port": 5432, "cidr": "0.0.0.0/0", **rule})


def aurora(doc: dict) -> None:
    doc["databases"][0]["engine"] = "aurora-postgresql"


def vpc_cidr_admits_the_database(doc: dict) -> None:
    doc["security_groups"]["db-sg"]["ingress"] = [{"protocol": "tcp", "port": 5432, "cidr": "10.0.0.0/16"}]


def no_database_or_cache(doc: dict) -> None:
    env = service(doc)["env"]
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    service(doc)["app"]["needs"] = {}


# -- healthy worlds: `fix --yes` changes nothing on any of them -----------------------
PASSING: dict[str, tuple[Mutate, ...]] = {
    "healthy": (),
    # An HTTP health check on the app's own path, not the runbook's /healthz.
    "health-check-on-the-apps-own-path": (health_check_on("/health"),),
    "health-check-on-root": (health_check_on("/"),),
    # App Runner's default TCP health check; the app serves the runbook's /healthz.
    "tcp-health-check": (health_check_on("/healthz", protocol="TCP"),),
    "rediss-to-a-cache-with-tls": (redis_scheme("rediss", True),),
    "aurora-cluster": (aurora,),
    "database-admits-the-vpc-cidr": (vpc_cidr_admits_the_database,),
    "no-database-or-cache": (no_database_or_cache,),
    # The app's internet calls would fail, if it makes any: nat-egress warns, nothing is changed.
    "connector-in-public-subnets": (connector_in_public_subnets,),
    "private-nat-gateway": (nat_gateway(connectivity="private"),),
    "deleted-nat-gateway": (nat_gateway(state="deleted"),),
    # RDS and ElastiCache names resolve with DNS support alone: vpc-dns advises, nothing is changed.
    "dns-host-names-off": (lambda d: d["vpcs"]["main"].update(dns_hostnames=False),),
    # The last deployment rolled back and the service serves the version before it; nothing explains
    # the failure, so it is not redeployed (a mutable tag could ship a new image onto a working service).
    "rolled-back-and-serving": (lambda d: service(d).update(operations=[{"type": "CREATE_SERVICE", "status": "SUCCEEDED"},
                                                                        {"type": "START_DEPLOYMENT", "status": "ROLLBACK_SUCCEEDED"}]),),
}

PASSING_FILES: dict[str, str] = {
    "custom-nacl": str(TESTS / "sandbox" / "scenarios" / "nacl.yaml"),
}
