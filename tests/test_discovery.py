"""Following DATABASE_URL to what it names: pure functions of discovery, on AWS-shaped answers."""

from __future__ import annotations

import pytest

from runbook.discovery import _database_target

CLUSTER = {
    "DBClusterIdentifier": "orders",
    "Endpoint": "orders.cluster-abc.us-east-1.rds.amazonaws.com",
    "ReaderEndpoint": "orders.cluster-ro-abc.us-east-1.rds.amazonaws.com",
    "CustomEndpoints": ["reports.cluster-custom-abc.us-east-1.rds.amazonaws.com"],
    "Port": 5432,
    "DBSubnetGroup": "orders-subnets",
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-db", "Status": "active"}],
    "DBClusterMembers": [{"DBInstanceIdentifier": "orders-1", "IsClusterWriter": True}],
}
MEMBER = {"DBInstanceIdentifier": "orders-1", "DBClusterIdentifier": "orders", "PubliclyAccessible": False,
          "Endpoint": {"Address": "orders-1.abc.us-east-1.rds.amazonaws.com", "Port": 5432}}
SUBNET_GROUPS = [
    {"DBSubnetGroupName": "other", "VpcId": "vpc-other", "Subnets": [{"SubnetIdentifier": "subnet-x"}]},
    {"DBSubnetGroupName": "orders-subnets", "VpcId": "vpc-1",
     "Subnets": [{"SubnetIdentifier": "subnet-a"}, {"SubnetIdentifier": "subnet-b"}]},
]


@pytest.mark.parametrize("host", ["orders.cluster-abc", "orders.cluster-ro-abc", "reports.cluster-custom-abc"])
def test_writer_reader_and_custom_cluster_endpoints_name_the_cluster(host):
    url = f"postgresql://u:p@{host.upper()}.us-east-1.rds.amazonaws.com:5432/orders"
    target = _database_target("DATABASE_URL", url, [MEMBER], [CLUSTER], SUBNET_GROUPS)
    assert target.resource_id == "orders" and target.source == "rds describe_db_clusters"
    assert target.security_group_ids == ("sg-db",) and target.endpoint_port == 5432
    assert target.subnet_ids == ("subnet-a", "subnet-b") and target.vpc_id == "vpc-1"
    assert target.resource["PubliclyAccessible"] is False


def test_a_publicly_accessible_member_makes_the_cluster_public():
    url = "postgresql://u:p@orders.cluster-abc.us-east-1.rds.amazonaws.com/orders"
    target = _database_target("DATABASE_URL", url, [{**MEMBER, "PubliclyAccessible": True}], [CLUSTER], SUBNET_GROUPS)
    assert target.resource["PubliclyAccessible"] is True


def test_a_member_instance_endpoint_is_still_an_instance():
    url = "postgresql://u:p@orders-1.abc.us-east-1.rds.amazonaws.com/orders"
    target = _database_target("DATABASE_URL", url, [MEMBER], [], [])
    assert target.resource_id == "orders-1" and target.source == "rds describe_db_instances"


def test_a_cluster_endpoint_this_account_lacks_says_where_it_looked():
    url = "postgresql://u:p@gone.cluster-abc.us-east-1.rds.amazonaws.com/orders"
    target = _database_target("DATABASE_URL", url, [MEMBER], [CLUSTER], SUBNET_GROUPS)
    assert target.resource_id is None and target.source == "rds describe_db_clusters"
