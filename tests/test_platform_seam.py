"""The platform seam: the core names no platform, and a second platform runs through it unchanged.

The second platform lives here, in the tests: services are EC2 instances tagged with their name
and environment, in a moto world. Registering it is one entry in PLATFORMS; the shared checks and
the engine's loop run on it as they run on App Runner.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

import boto3
import pytest

from tests.helpers import Recorder, TEST_PACE
from runbook import platforms
from runbook import runbook as rb
from runbook.aws import Aws
from runbook.checks.security_groups import ingress_from_workload
from runbook.confirm import AssumeYes
from runbook.engine import Engine, Options
from runbook.errors import UsageError
from runbook.model import Status
from runbook.topology import Workload
from tests.topologies import CACHE_SG, topology

PRODUCT = Path(__file__).resolve().parents[1] / "src" / "runbook"
# The names of App Runner's world. Matched case-insensitively (so `VpcConnector`, `Connector` and
# `APPRUNNER` count too), in code, comments and docstrings alike.
PLATFORM_WORDS = re.compile(r"apprunner|connector|serviceurl", re.I)
# Where App Runner may be named: its platform module and its checks. The two registries name it
# only to register it (an import, the PLATFORMS entry); `apprunner-vpc` is the bundled runbook's
# file name, which CLI help and the demo use to name that runbook.
ALLOWED = {"platforms/apprunner.py", "checks/apprunner.py"}
REGISTRIES = {"platforms/__init__.py": re.compile(r"^(from runbook\.platforms import .*|PLATFORMS: .*)$"),
              "checks/__init__.py": re.compile(r"^from runbook\.checks import .*$")}


# The names of ECS's world, likewise: only its platform module, its checks and its runbook name them.
ECS_WORDS = re.compile(r"\becs\b|fargate|express|awselb|elbv2|task.definition|target.group", re.I)


def _named_outside(words: re.Pattern, allowed: set[str]) -> list[str]:
    found = []
    for path in sorted(PRODUCT.rglob("*")):
        relative = path.relative_to(PRODUCT).as_posix()
        if not path.is_file() or relative in allowed or "__pycache__" in relative:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not words.search(line.replace("apprunner-vpc", "").replace("ecs-service", "")):
                continue
            registry = REGISTRIES.get(relative)
            if registry is not None and registry.match(line.strip()):
                continue
            found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_only_the_ecs_modules_name_ecs():
    found = _named_outside(ECS_WORDS, {"platforms/ecs.py", "checks/ecs.py"})
    assert not found, "ECS named outside its own modules:\n" + "\n".join(found)


def test_only_the_app_runner_modules_name_app_runner():
    found = []
    for path in sorted(PRODUCT.rglob("*")):
        relative = path.relative_to(PRODUCT).as_posix()
        if not path.is_file() or relative in ALLOWED or "__pycache__" in relative:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.replace("apprunner-vpc", "")
            if not PLATFORM_WORDS.search(text):
                continue
            registry = REGISTRIES.get(relative)
            if registry is not None and registry.match(line.strip()):
                continue
            found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "App Runner named outside its own modules:\n" + "\n".join(found)


def test_the_guard_sees_what_it_guards():
    """The grep would pass on an empty tree: it must see the product's modules, and catch a leak."""
    assert (PRODUCT / "engine.py").is_file() and (PRODUCT / "platforms" / "apprunner.py").is_file()
    assert PLATFORM_WORDS.search("topology.connector") and PLATFORM_WORDS.search('aws.call("apprunner", ...)')
    assert PLATFORM_WORDS.search("service['ServiceUrl']") and PLATFORM_WORDS.search("VpcConnectorArn")
    assert not REGISTRIES["platforms/__init__.py"].match('if name == "apprunner":')


# -- a second platform, in the tests ---------------------------------------------------------------
class Ec2Instances:
    """Services as EC2 instances (found by Name tag or instance id): `env:VAR` tags are the environment,
    `url` its address; its security groups and subnet are where its traffic leaves from."""

    NAME = "ec2-instances"
    GROUPED_BY = None
    PERMISSIONS = ("ec2:DescribeInstances",)
    REDEPLOYS_AT_ONCE = 1
    SERVICES: tuple[str, ...] = ()  # its checks send no calls of their own
    READ_BACK: Mapping = {}

    def find(self, aws: Aws, ref: str) -> Mapping[str, Any]:
        by = {"InstanceIds": [ref]} if ref.startswith("i-") else {"Filters": [{"Name": "tag:Name", "Values": [ref]}]}
        reservations = aws.call("ec2", "describe_instances", **by)["Reservations"]
        instances = [i for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        if not instances:
            raise UsageError(f"no instance named {ref!r} in {aws.region}")
        return instances[0]

    def workload(self, instance: Mapping[str, Any], params: Mapping[str, Any]) -> Workload:
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        return Workload(
            platform=self.NAME, name=tags["Name"], id=instance["InstanceId"], status=instance["State"]["Name"],
            env={k[4:]: v for k, v in tags.items() if k.startswith("env:")}, url=tags.get("url"),
            health_path=params.get("health_path", "/healthz"),
            security_group_ids=tuple(g["GroupId"] for g in instance.get("SecurityGroups", [])),
            subnet_ids=(instance["SubnetId"],), noun="instance", client=f"instance {instance['InstanceId']}",
            client_source="ec2 describe_instances", rule_label=f"instance {tags['Name']}", source="ec2 describe_instances",
            payload=instance,
        )

    def reads(self, aws, workload):
        return {}

    def completed(self, workload, got):
        return workload

    def deployment(self, aws, workload):
        return True, "running"

    def refresh(self, aws, topology, call):
        return None

    def without_undo(self, call):
        return False

    def undo(self, call, kept):
        raise AssertionError("it sends no calls of its own")


SECOND = """
name: instance-to-cache
platform: ec2-instances
steps:
  - id: cache-ingress
    check: sg.ingress-from-workload
    with: {target: cache}
    title: The cache admits the instance
    why: Without it Redis connections time out.
  - id: egress
    check: sg.workload-egress
    title: The instance may reach the cache
    why: Security groups filter egress too.
  - id: healthz
    check: http.healthz
    after: [cache-ingress]
    title: The health path answers 200
    why: Only a 200 from the app shows it serves.
"""


@pytest.fixture
def second_platform(monkeypatch):
    monkeypatch.setitem(platforms.PLATFORMS, Ec2Instances.NAME, Ec2Instances())
    return platforms.PLATFORMS[Ec2Instances.NAME]


def test_a_runbook_names_a_registered_platform(tmp_path, second_platform):
    path = tmp_path / "rb.yaml"
    path.write_text(SECOND.replace("platform: ec2-instances", "platform: nomad"))
    with pytest.raises(UsageError, match=r"platform: unknown platform 'nomad' \(allowed: apprunner, ec2-instances, ecs\)"):
        rb.load(str(path))
    path.write_text(SECOND.replace("platform: ec2-instances\n", ""))
    with pytest.raises(UsageError, match=r"platform: missing \(allowed: apprunner, ec2-instances, ecs\)"):
        rb.load(str(path))


def test_a_platforms_own_checks_are_refused_in_another_platforms_runbook(tmp_path, second_platform):
    """apprunner.* checks read App Runner's payload: a runbook of another platform cannot name them."""
    path = tmp_path / "rb.yaml"
    path.write_text(SECOND + """  - id: deployment
    check: apprunner.deployment
    title: The deployment
    why: no such thing here
""")
    with pytest.raises(UsageError, match=r"step deployment.check: apprunner.deployment is a check of platform apprunner, "
                                         r"and this runbook's platform is ec2-instances"):
        rb.load(str(path))
    path.write_text(SECOND)
    assert rb.load(str(path)).platform == "ec2-instances"


def test_a_shared_check_reads_the_workload_of_another_platform(second_platform):
    """The security-group check on a hand-built snapshot whose workload is an instance's: it speaks of the
    instance, and admits it by the instance's own group."""
    base = topology()
    instance = Workload(platform=Ec2Instances.NAME, name="worker", id="i-1", security_group_ids=("sg-0aaa000000000000a",),
                        subnet_ids=("subnet-a",), noun="instance", client="instance i-1", client_source="ec2 describe_instances",
                        rule_label="instance worker")
    world = replace(base, workload=instance, sg_rules={**base.sg_rules, "sg-0aaa000000000000a": []}, steps=())
    finding = ingress_from_workload(world, {"target": "cache"})
    assert finding.status is Status.FAIL
    assert finding.summary == f"no rule on {CACHE_SG} admits the instance's sg-0aaa000000000000a on tcp/6379"
    (change,) = finding.changes
    assert change.call.params["IpPermissions"][0]["UserIdGroupPairs"] == [
        {"GroupId": "sg-0aaa000000000000a", "Description": "instance worker to cache nerava-redis"}]
    assert ingress_from_workload(replace(world, workload=replace(instance, outside_vpc="the instance has no VPC path")),
                                 {"target": "cache"}).summary == "the instance has no VPC path: its egress does not go through the VPC"


class _App(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b'{"ok": true}'
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("x-envoy-upstream-service-time", "1")  # the probe's sign of an answer from the app
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _worker(box, app: str, env_var: str = "REDIS_URL") -> str:
    """An instance named worker in the field report's VPC and connector group, its `env_var` naming the
    cache; its group's id."""
    ec2 = boto3.client("ec2")
    group = box.ids["sg:connector-sg"]
    subnet = next(s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [box.ids["vpc:main"]]}])["Subnets"]
                  if s["CidrBlock"] == "10.0.1.0/24")
    cache = boto3.client("elasticache").describe_replication_groups()["ReplicationGroups"][0]
    address = cache["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
    # The sandbox loads no AMI catalogue, and moto (like the shape of an id) is all run_instances asks for.
    ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[group],
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [
                          {"Key": "Name", "Value": "worker"}, {"Key": f"env:{env_var}", "Value": f"redis://{address}:6379/0"},
                          {"Key": "url", "Value": f"http://{app}"}]}])
    return group


def test_the_drift_guard_s_full_re_read_keeps_the_runbook_s_params(world, second_platform, app):
    """A call neither EC2's nor the platform's is re-read by a whole discovery: with the params the
    snapshot was read with (here the cache's variable), not the defaults."""
    from runbook.discovery import discover, refresh
    from runbook.model import ApiCall

    _worker(world("field-report"), app, env_var="CACHE_URL")
    aws = Aws(read_only=True)
    first = discover(aws, "worker", {"redis_url_var": "CACHE_URL"}, platform=second_platform)
    assert first.targets["cache"].resource_id == "nerava-redis"
    marked = replace(first, broken_this_run=frozenset({"cache-ingress"}))
    again = refresh(aws, marked, ApiCall("elasticache", "modify_replication_group", {"ReplicationGroupId": "nerava-redis"}))
    assert again.targets["cache"].resource_id == "nerava-redis" and again.params["redis_url_var"] == "CACHE_URL"
    assert again.broken_this_run == {"cache-ingress"}


def test_the_engine_fixes_a_service_of_another_platform_to_healthy(world, tmp_path, second_platform, app):
    """An instance in the field report's VPC, in the connector's group, whose REDIS_URL names the cache
    the group may not reach: the fix loop authorizes the rule, reads it back, and waits for the health
    path's N consecutive 200s, through the shared discovery, checks and engine alone."""
    box = world("field-report")
    ec2 = boto3.client("ec2")
    group = _worker(box, app)
    path = tmp_path / "instance-to-cache.yaml"
    path.write_text(SECOND)
    loaded = rb.load(str(path))
    recorder = Recorder()
    engine = Engine(Aws(), loaded, "worker", confirmer=AssumeYes(), reporter=recorder,
                    options=Options(timeout=60, **TEST_PACE))
    report = engine.fix()

    assert report.healthy and report.exit_code == 0, [(r.step.id, r.finding.status, r.finding.summary) for r in report.results]
    assert report.service == "worker"
    first = recorder.of("evaluated")[0][2]
    assert first["cache-ingress"] == "fail" and first["egress"] == "ok" and first["healthz"] == "ok"
    applied = recorder.of("applied")
    assert [(e[1], e[2], e[3]) for e in applied] == [("cache-ingress", "authorize_security_group_ingress", True)]
    assert report.health_streak == (3, 3)  # the engine proved the health path, as for App Runner
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [box.ids["sg:default"]]}])["SecurityGroupRules"]
    assert any((r.get("ReferencedGroupInfo") or {}).get("GroupId") == group and not r["IsEgress"] and r["FromPort"] == 6379
               for r in rules)
    assert "instance worker to cache nerava-redis" in recorder.of("proposing")[0][3]  # the platform's words for its side
    assert not any(call.startswith("apprunner:") for call in report.stats["api_calls"])


def test_the_iam_policy_floor_is_the_platform_s(second_platform, tmp_path):
    from runbook import policy

    path = tmp_path / "instance-to-cache.yaml"
    path.write_text(SECOND)
    read, write = policy.actions(rb.load(str(path)), fix=True)
    assert "ec2:DescribeInstances" in read and not any(a.startswith("apprunner:") for a in read + write)
    assert "ec2:AuthorizeSecurityGroupIngress" in write
    bundled_read, _ = policy.actions(rb.load("apprunner-vpc"), fix=False)
    assert {"apprunner:DescribeService", "apprunner:ListOperations", "apprunner:DescribeVpcConnector"} <= set(bundled_read)
