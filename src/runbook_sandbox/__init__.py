"""A local, faithful twin of a broken AWS deployment, for tests and demos.

moto (EC2, RDS, ElastiCache, CloudWatch Logs) and an App Runner emulator, both
real HTTP servers on 127.0.0.1, plus one simulated service URL per App Runner
service. A scenario file describes the world with symbolic names; the sandbox
builds it through boto3 and judges, with its own reachability model, whether
the simulated app would be healthy. It shares no logic with the tool's checks.

    from runbook_sandbox import Sandbox, load_scenario

    with Sandbox(deploy_seconds=1) as sandbox:
        sandbox.load(load_scenario("field-report"))
        os.environ.update(sandbox.env)   # boto3 now talks to the sandbox
        sandbox.faults.throttle(2)        # fault injection: see runbook_sandbox.faults
"""

__version__ = "0.1.0"

from runbook_sandbox.faults import Faults
from runbook_sandbox.sandbox import Event, Sandbox
from runbook_sandbox.scenario import Scenario, bundled_scenarios, load_scenario, parse_scenario

__all__ = ["Event", "Faults", "Sandbox", "Scenario", "bundled_scenarios", "load_scenario", "parse_scenario"]
