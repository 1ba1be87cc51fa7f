"""Following DATABASE_URL to what it names: pure functions of discovery, on AWS-shaped answers."""

from __future__ import annotations

import pytest

from runbook.discovery import _database_target, _is_aurora_cluster_endpoint
from runbook.platforms.apprunner import running_since_ms as _running_since_ms

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


def test_a_url_urlsplit_refuses_is_a_target_without_a_resource_not_a_crash():
    target = _database_target("DATABASE_URL", "postgresql://u:pa[ss@orders.cluster-abc.us-east-1.rds.amazonaws.com/x",
                              [MEMBER], [CLUSTER], SUBNET_GROUPS)
    assert target.resource_id is None
    assert target.source == "rds describe_db_instances"  # no host could be read, so no cluster was looked for
    assert _is_aurora_cluster_endpoint("orders.cluster-ro-abc.us-east-1.rds.amazonaws.com")


@pytest.mark.parametrize("scheme, port", [("postgresql", 5432), ("postgresql+psycopg2", 5432), ("mysql", 3306),
                                          ("mysql+pymysql", 3306), ("mariadb", 3306)])
def test_the_default_port_follows_the_scheme(scheme, port):
    assert _database_target("DATABASE_URL", f"{scheme}://u:p@db.example.com/x", [], [], []).port == port


def test_the_running_version_started_with_the_newest_successful_operation():
    from datetime import datetime, timezone

    def at(minute):
        return datetime(2026, 11, 28, 22, minute, tzinfo=timezone.utc)

    ops = [  # newest first, as list_operations answers
        {"Status": "FAILED", "StartedAt": at(50), "EndedAt": at(55)},
        {"Status": "SUCCEEDED", "StartedAt": at(30), "EndedAt": at(40)},
        {"Status": "SUCCEEDED", "StartedAt": at(10), "EndedAt": at(20)},
    ]
    assert _running_since_ms(ops) == at(30).timestamp() * 1000
    assert _running_since_ms(ops[:1]) is None


class EmptyPagesForever:
    """FilterLogEvents as AWS documents it may answer: empty pages that still carry a nextToken.
    (moto always fills its pages, so the sandbox cannot serve this.)"""

    def __init__(self):
        self.calls = []

    def call(self, service, operation, /, **params):
        self.calls.append(params)
        return {"events": [], "nextToken": f"t{len(self.calls)}"}


def test_empty_log_pages_with_a_token_stop_at_the_call_limit_and_read_the_tail():
    from runbook.discovery import LOG_CALLS, _recent_log_events

    aws = EmptyPagesForever()
    events, unread = _recent_log_events(aws, "/aws/apprunner/x/y/application", since=0)
    assert events == [] and unread == "/aws/apprunner/x/y/application"
    assert len(aws.calls) == LOG_CALLS + 1 and "nextToken" not in aws.calls[-1]
    assert aws.calls[-1]["startTime"] > 0  # the tail: the last minutes, not the window again
