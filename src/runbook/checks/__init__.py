"""Pure checks: `detect(topology, params) -> Finding`, registered by name.

Importing this package registers every check module.
"""

from runbook.checks import apprunner, ecs, endpoints, http, logs, network, security_groups  # noqa: F401
