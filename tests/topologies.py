"""Small hand-made Topology snapshots for testing pure checks without any server.

The workload is App Runner's, built from App Runner-shaped answers by the platform's own pure
functions (what discovery does with the real answers); `apprunner(t, ...)` rebuilds it with some
of those answers changed.
"""

from __future__ import annotations

from dataclasses import replace

from runbook import runbook as rb
from runbook.platforms import apprunner as platform
from runbook.topology import Target, Topology

CONNECTOR_SG = "sg-00bc5ec63287eacdd"
CACHE_SG = "sg-0e4cc786d9053f05f"
DB_SG = "sg-0db0000000000000a"
VPC = "vpc-0070057532e81973b"
SERVICE = {"ServiceName": "nerava-backend", "ServiceArn": "arn:aws:apprunner:us-east-1:1:service/nerava-backend/abc",
           "ServiceId": "abc", "Status": "RUNNING", "ServiceUrl": "x.awsapprunner.com",
           "NetworkConfiguration": {"EgressConfiguration": {"EgressType": "VPC", "VpcConnectorArn": "arn:c"}}}
CONNECTOR = {"VpcConnectorName": "nerava-vpc-connector", "VpcConnectorArn": "arn:c", "Status": "ACTIVE",
             "Subnets": ["subnet-a", "subnet-b"], "SecurityGroups": [CONNECTOR_SG]}
_UNCHANGED = object()


def rule(group, rule_id, *, egress=False, protocol="tcp", ports=(6379, 6379), cidr=None, cidr6=None, source_group=None):
    body = {"SecurityGroupRuleId": rule_id, "GroupId": group, "IsEgress": egress, "IpProtocol": protocol,
            "FromPort": ports[0] if protocol != "-1" else -1, "ToPort": ports[1] if protocol != "-1" else -1}
    if cidr:
        body["CidrIpv4"] = cidr
    if cidr6:
        body["CidrIpv6"] = cidr6
    if source_group:
        body["ReferencedGroupInfo"] = {"GroupId": source_group}
    return body


def workload(service=SERVICE, operations=(), connector=CONNECTOR, params=None):
    """App Runner's workload from its answers: the connector is what the service's ARN describes."""
    return platform.completed(platform.workload(service, params or {}), {"operations": list(operations), "connector": connector})


def apprunner(t: Topology, *, service=_UNCHANGED, operations=_UNCHANGED, connector=_UNCHANGED) -> Topology:
    """The snapshot with its workload rebuilt from these App Runner answers (the others as they were)."""
    answers = platform.of(t)
    return replace(t, workload=workload(
        answers.service if service is _UNCHANGED else service,
        answers.operations if operations is _UNCHANGED else operations,
        answers.named_connector if connector is _UNCHANGED else connector,
        t.params,
    ))


def topology(cache_rules=(), db_rules=(), connector_rules=None, *, service=SERVICE, operations=(), connector=CONNECTOR,
             **overrides) -> Topology:
    subnets = {
        "subnet-a": {"SubnetId": "subnet-a", "VpcId": VPC, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"},
        "subnet-b": {"SubnetId": "subnet-b", "VpcId": VPC, "CidrBlock": "10.0.2.0/24", "AvailabilityZone": "us-east-1b"},
    }
    cache = Target("cache", "REDIS_URL", "redis://nerava-redis.x.cache.amazonaws.com:6379/0", "redis",
                   "nerava-redis.x.cache.amazonaws.com", 6379, "nerava-redis", {"ReplicationGroupId": "nerava-redis"},
                   6379, (CACHE_SG,), ("subnet-a", "subnet-b"), VPC, False, source="elasticache describe_replication_groups")
    db = Target("database", "DATABASE_URL", "postgresql://u:***@nerava-db.x.rds.amazonaws.com:5432/n", "postgresql",
                "nerava-db.x.rds.amazonaws.com", 5432, "nerava-db", {"DBInstanceIdentifier": "nerava-db", "PubliclyAccessible": False},
                5432, (DB_SG,), ("subnet-a", "subnet-b"), VPC, source="rds describe_db_instances")
    if connector_rules is None:
        connector_rules = [rule(CONNECTOR_SG, "sgr-egress-all", egress=True, protocol="-1", cidr="0.0.0.0/0")]
    values = dict(
        region="us-east-1",
        workload=workload(service, operations, connector),
        targets={"cache": cache, "database": db},
        security_groups={CACHE_SG: {"GroupId": CACHE_SG, "GroupName": "default", "VpcId": VPC},
                         DB_SG: {"GroupId": DB_SG, "GroupName": "nerava-db", "VpcId": VPC},
                         CONNECTOR_SG: {"GroupId": CONNECTOR_SG, "GroupName": "nerava-apprunner-vpc-connector", "VpcId": VPC}},
        sg_rules={CACHE_SG: list(cache_rules), DB_SG: list(db_rules), CONNECTOR_SG: list(connector_rules)},
        subnets=subnets,
        steps=rb.load("apprunner-vpc").steps,  # as the engine sets them: checks name the bundled runbook's steps
    )
    values.update(overrides)
    return Topology(**values)
