"""The sandbox's source is outside this directory, in the repository's src/runbook_sandbox/.

hatchling copies a ``force-include`` into editable wheels too, which would freeze a copy of the
package in site-packages; added here for standard wheels only, an editable install keeps just
the ``dev-mode-dirs`` path to src/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "standard":
            source = Path(self.root).resolve().parents[1] / "src" / "runbook_sandbox"
            build_data["force_include"][str(source)] = "runbook_sandbox"
