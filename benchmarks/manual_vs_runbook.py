"""Benchmark: the field report's manual procedure against `runbook check`, on one sandbox.

(a) the `aws` CLI commands the field report ran (awscli from PyPI, pointed at the
    sandbox) plus its curl health probes, one after another;
(b) `runbook check apprunner-vpc --service nerava-backend`.
And the same incident on ECS (ecs-field-report): the describes an engineer runs for an
ECS service behind a load balancer, against `runbook check ecs-service`.

Prints the median wall time of each over several runs, the ratio (a)/(b), the
API calls of each, and the latency between the sandbox finishing a deployment
and `runbook fix` noticing it. Run it with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from runbook_sandbox import Sandbox, load_scenario

HERE = Path(sys.executable).parent


def aws_cli() -> str:
    found = shutil.which("aws", path=str(HERE)) or shutil.which("aws")
    if not found:
        sys.exit("the aws CLI is not installed: run `make bench`, which installs the bench extra")
    return found


def manual_commands(box: Sandbox) -> list[list[str]]:
    """What the engineer of the field report typed, in order (ids as the sandbox made them)."""
    service_arn = box.ids["service:nerava-backend"]
    connector_arn = box.ids["connector:nerava-vpc-connector"]
    vpc = box.ids["vpc:main"]
    default_sg = box.ids["sg:default"]
    groups = box.ids.get("log-group:nerava-backend/application")
    member = box.client("elasticache").describe_replication_groups(ReplicationGroupId="nerava-redis")["ReplicationGroups"][0]["MemberClusters"][0]
    return [
        ["apprunner", "list-services"],
        ["apprunner", "describe-service", "--service-arn", service_arn],
        ["apprunner", "describe-vpc-connector", "--vpc-connector-arn", connector_arn],
        ["rds", "describe-db-instances", "--db-instance-identifier", "nerava-db"],
        ["elasticache", "describe-replication-groups", "--replication-group-id", "nerava-redis"],
        ["elasticache", "describe-cache-clusters", "--cache-cluster-id", member, "--show-cache-node-info"],
        ["elasticache", "describe-cache-subnet-groups", "--cache-subnet-group-name", "default"],
        ["ec2", "describe-security-groups", "--filters", "Name=group-name,Values=default", f"Name=vpc-id,Values={vpc}",
         "--query", "SecurityGroups[0].GroupId", "--output", "text"],
        ["ec2", "describe-security-groups", "--group-ids", default_sg, "--query", "SecurityGroups[0].IpPermissions[?FromPort==`6379`]"],
        ["ec2", "describe-security-groups", "--group-ids", default_sg, "--query", "SecurityGroups[0].IpPermissions[?FromPort==`5432`]"],
        ["ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc}"],
        ["logs", "filter-log-events", "--log-group-name", groups, "--limit", "50"],
    ]


def manual_ecs_commands(box: Sandbox) -> list[list[str]]:
    """What an engineer types for the same incident on ECS: the service, its task definition, its
    stopped tasks, the load balancer and its targets, the database, the cache, the groups, the logs."""
    ecs = box.client("ecs")
    service = ecs.describe_services(cluster="default", services=["nerava-backend"])["services"][0]
    target_group = service["loadBalancers"][0]["targetGroupArn"]
    stopped = ecs.list_tasks(cluster="default", serviceName="nerava-backend", desiredStatus="STOPPED")["taskArns"][:10] or ["none"]
    lb = box.ids["load-balancer:nerava-alb"]
    vpc = box.ids["vpc:main"]
    member = box.client("elasticache").describe_replication_groups(ReplicationGroupId="nerava-redis")["ReplicationGroups"][0]["MemberClusters"][0]
    groups = [box.ids["sg:task-sg"], box.ids["sg:default"], box.ids["sg:alb-sg"]]
    return [
        ["ecs", "describe-services", "--cluster", "default", "--services", "nerava-backend"],
        ["ecs", "describe-task-definition", "--task-definition", service["taskDefinition"]],
        ["ecs", "list-tasks", "--cluster", "default", "--service-name", "nerava-backend", "--desired-status", "STOPPED"],
        ["ecs", "describe-tasks", "--cluster", "default", "--tasks", *stopped],
        ["elbv2", "describe-target-groups", "--target-group-arns", target_group],
        ["elbv2", "describe-target-health", "--target-group-arn", target_group],
        ["elbv2", "describe-load-balancers", "--load-balancer-arns", lb],
        ["rds", "describe-db-instances", "--db-instance-identifier", "nerava-db"],
        ["elasticache", "describe-replication-groups", "--replication-group-id", "nerava-redis"],
        ["elasticache", "describe-cache-clusters", "--cache-cluster-id", member, "--show-cache-node-info"],
        ["ec2", "describe-security-groups", "--group-ids", *groups],
        ["ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc}"],
        ["ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vpc}"],
        ["logs", "filter-log-events", "--log-group-name", "/ecs/nerava-backend", "--limit", "50"],
    ]


def curl(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# (scenario, the runbook, the manual commands, the base URL the engineer curls)
PROCEDURES = {
    "apprunner": ("field-report", "apprunner-vpc", manual_commands,
                  lambda box: f"http://{box.service_state('nerava-backend')['url']}"),
    "ecs": ("ecs-field-report", "ecs-service", manual_ecs_commands,
            lambda box: "http://" + box.client("elbv2").describe_load_balancers()["LoadBalancers"][0]["DNSName"]),
}


def run_manual(box: Sandbox, env: dict[str, str], platform: str) -> tuple[float, int]:
    aws = aws_cli()
    _, _, commands_of, base_of = PROCEDURES[platform]
    commands = commands_of(box)
    base = base_of(box)
    started = time.perf_counter()
    for command in commands:
        # awscli v1 does not read AWS_ENDPOINT_URL: name the sandbox endpoint as an engineer would.
        own = {"apprunner": "AWS_ENDPOINT_URL_APPRUNNER", "ecs": "AWS_ENDPOINT_URL_ECS"}.get(command[0])
        endpoint = env[own] if own else env["AWS_ENDPOINT_URL"]
        subprocess.run([aws, "--endpoint-url", endpoint, *command], env=env, check=True, capture_output=True)
    for path in ("/healthz", "/v1/healthz", "/health", "/"):  # the report's curls
        curl(base + path)
    return time.perf_counter() - started, len(commands)


def run_tool(env: dict[str, str], platform: str) -> tuple[float, int]:
    runbook = PROCEDURES[platform][1]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "runbook", "check", runbook, "--service", "nerava-backend", "--format", "json"],
        env=env, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        sys.exit(f"runbook check failed ({result.returncode}): {result.stderr}")
    return elapsed, json.loads(result.stdout)["stats"]["api_calls_total"]


def notice_latency(box: Sandbox, deploy_seconds: float) -> float:
    """Seconds from the sandbox finishing the deployment to `fix` seeing it finished."""
    from runbook import runbook as rb
    from runbook.aws import Aws
    from runbook.confirm import AssumeYes
    from runbook.engine import Engine, Options

    box.deploy_seconds = deploy_seconds
    box.load(load_scenario("field-report"))
    os.environ.update(box.env)
    seen: dict[str, float] = {}

    class Watch:
        def evaluated(self, results, round_no): ...
        def proposing(self, step_id, change): ...
        def applied(self, step_id, applied): ...
        def note(self, message): ...

        def waiting(self, what, state, elapsed, budget):
            if what == "deployment" and "IN_PROGRESS" not in state and "deployment" not in seen:
                seen["deployment"] = time.time()

    engine = Engine(Aws(), rb.load("apprunner-vpc"), "nerava-backend", confirmer=AssumeYes(), reporter=Watch(),
                    options=Options(timeout=deploy_seconds + 60))
    report = engine.fix()
    finished = next(e.time for e in box.history() if e.kind == "operation-finished")
    if not report.healthy or "deployment" not in seen:
        sys.exit(f"fix did not converge: {report.stopped}")
    return seen["deployment"] - finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="also measure with every API request held this long, as a round trip to a region")
    parser.add_argument("--deploy-seconds", type=float, default=8.0, help="deployment time for the latency runs")
    parser.add_argument("--notice-runs", type=int, default=3,
                        help="fix runs for the deployment latency, with deployments spread over one poll interval")
    args = parser.parse_args()

    rows = []
    # A deployment that outlasts the timing runs keeps the world still while it is measured.
    with Sandbox(deploy_seconds=3600) as box:
        for platform, (scenario, *_rest) in PROCEDURES.items():
            box.load(load_scenario(scenario))
            env = {**os.environ, **box.env, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
            for latency_ms in sorted({0.0, args.latency_ms}):
                box.faults.latency(latency_ms / 1000)
                manual, tool = [], []
                for _ in range(args.runs):
                    seconds, manual_calls = run_manual(box, env, platform)
                    manual.append(seconds)
                    seconds, tool_calls = run_tool(env, platform)
                    tool.append(seconds)
                rows.append((platform, latency_ms, statistics.median(manual), manual_calls, statistics.median(tool), tool_calls))
            box.faults.latency(0)
    with Sandbox(deploy_seconds=args.deploy_seconds) as box:
        # Deployments of different lengths land at different points of the poll cycle.
        from runbook.engine import Options

        spread = Options().poll_max / args.notice_runs
        noticed = [notice_latency(box, args.deploy_seconds + i * spread) for i in range(args.notice_runs)]

    print(f"{'platform':<11}{'API latency':<13}{'(a) by hand s':>15}{'calls':>7}{'(b) runbook check s':>21}{'calls':>7}{'(a)/(b)':>9}")
    for platform, latency_ms, a, a_calls, b, b_calls in rows:
        print(f"{platform:<11}{f'{latency_ms:.0f} ms':<13}{a:>15.2f}{a_calls:>7}{b:>21.2f}{b_calls:>7}{a / b:>9.1f}")
    print(f"(a): the incident's aws CLI commands + 4 curls; (b): runbook check apprunner-vpc / ecs-service; "
          f"median of {args.runs} runs; target (a)/(b) >= 5")
    print(f"deployment finished -> fix noticed: median {statistics.median(noticed):.2f} s, worst {max(noticed):.2f} s "
          f"of {len(noticed)} (polls back off to {Options().poll_max:.0f} s plus jitter)")


if __name__ == "__main__":
    main()
