"""Every place where the sandbox makes moto 5.2 answer more like AWS, one module per service.

The sandbox builds its world only through boto3 calls against the moto server;
these modules are the one exception. They patch moto's in-process models where
moto stores a fact but does not return it, or never creates something AWS
creates on its own. :func:`apply` installs all shims once, before the server
starts (the server runs in-process, in a thread, so the patches reach it).
Each shim is small, keyed on moto's own attribute names, documented in its
module's docstring by name, and checked by ``tests/sandbox/test_sandbox_moto.py``.

- :mod:`.ec2` - the default group's self rule, custom ACLs' deny entries,
  blackhole routes, groups of other accounts, prefix lists this account cannot see.
- :mod:`.elbv2` - target health judged by the sandbox, load balancer DNS names on loopback.
- :mod:`.elasticache` - member clusters, their security groups and nodes,
  subnet AZs, ElastiCache Serverless.
- :mod:`.rds` - RDS Proxy custom endpoints.
"""

from __future__ import annotations

import threading

from runbook_sandbox.shims import ec2, elasticache, elbv2, rds

MODULES = (elasticache, ec2, rds, elbv2)
SHIMS = tuple(name for module in MODULES for name in module.SHIMS)

_lock = threading.Lock()
_applied = False


def apply() -> None:
    """Install every shim (idempotent, thread-safe)."""
    global _applied
    with _lock:
        if _applied:
            return
        for module in MODULES:
            module.apply()
        _applied = True
