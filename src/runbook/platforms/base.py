"""What a platform answers, whatever runs the service (in the spirit of pre-commit's `Language`).

A platform is a module (or any object) with these names; `runbook.platforms.PLATFORMS` lists them
by the name a runbook's `platform:` gives. The core asks a platform, never a platform's API:
  find       the service by name or by its id (an ARN: Workload.id, which a re-read passes); a
             UsageError listing what exists when it is not there;
  workload   what the service's description names (pure): environment, health, logs, payload;
  reads      the platform's own describes that go with the targets' in discovery's second round;
  completed  the workload once those answers are in: the client security groups and subnets;
  deployment one poll of the deployment state, for the engine's wait: (finished, what it shows);
  refresh    the snapshot re-read after one of its own calls (None: not its call);
  without_undo / undo  whether one of its own calls has an undo, and that exact undo recomputed
             from the bodies the journal recorded (`runbook.inverses` asks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from runbook.aws import Aws
    from runbook.model import ApiCall
    from runbook.topology import Topology, Workload


class Platform(Protocol):
    NAME: str
    # What a service is named within (a "cluster", which --cluster gives), or None: names are the region's.
    GROUPED_BY: str | None
    # IAM actions its discovery, refresh and waits read: part of every runbook's policy floor.
    PERMISSIONS: tuple[str, ...]
    # How many redeploys may run at once (App Runner runs one operation at a time).
    REDEPLOYS_AT_ONCE: int
    # The AWS services whose calls it sends (its checks' changes): their undo is its own.
    SERVICES: tuple[str, ...]
    # (service, operation, parameter) -> (the describe call, its id parameter, the --query of the value):
    # parameters resent as the platform described them, which a CLI twin reads back instead of printing.
    READ_BACK: Mapping[tuple[str, str, str], tuple[str, str, str]]

    def find(self, aws: Aws, ref: str) -> Mapping[str, Any]: ...

    def workload(self, service: Mapping[str, Any], params: Mapping[str, Any]) -> Workload: ...

    def reads(self, aws: Aws, workload: Workload) -> dict[str, Callable[[], Any]]: ...

    def completed(self, workload: Workload, got: Mapping[str, Any]) -> Workload: ...

    def deployment(self, aws: Aws, workload: Workload) -> tuple[bool, str]: ...

    def refresh(self, aws: Aws, topology: Topology, call: ApiCall) -> Topology | None: ...

    def without_undo(self, call: ApiCall) -> bool: ...

    def undo(self, call: ApiCall, kept: Mapping[str, Any]) -> ApiCall: ...
