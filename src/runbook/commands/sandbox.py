"""`runbook sandbox` and `runbook demo`: a local twin of a broken deployment, served or fixed in one process.

The sandbox (moto and the emulators) is imported only here, and only when one of these commands runs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from runbook.commands.outputs import emit
from runbook.commands.run import run_fix
from runbook.console import make_console
from runbook.errors import Interrupted, UsageError

SANDBOX_INSTALL = "pip install -e . -e ./packaging/runbook-sandbox in a clone of runbook (or: make install)"


def require_sandbox(command: str) -> None:
    """The sandbox is a distribution of its own, which the product imports only in its two commands:
    when it or moto is missing, one line naming the install command (exit 2), not a traceback."""
    import importlib.util

    try:
        import runbook_sandbox  # noqa: F401
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("runbook_sandbox"):
            raise
        missing = "the sandbox package (runbook-sandbox)"
    else:
        if importlib.util.find_spec("moto") is not None:
            return
        missing = "moto (the sandbox's AWS)"
    raise UsageError(f"runbook {command} needs {missing}, which is not installed: {SANDBOX_INSTALL}")


def serve_sandbox(scenario: str, *, env_file: Optional[Path], deploy_seconds: Optional[float]) -> None:
    """Start the sandbox, print its export lines (and write them to `env_file`), serve until interrupted."""
    require_sandbox("sandbox")
    from runbook_sandbox import Sandbox, load_scenario

    loaded = load_scenario(scenario)
    console = make_console()
    box = Sandbox(deploy_seconds=deploy_seconds)
    try:
        box.start()
        box.load(loaded)
        lines = box.export_lines()
        for line in lines:
            typer.echo(line)
        sys.stdout.flush()
        if env_file:
            tmp = env_file.with_suffix(env_file.suffix + ".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(env_file)
        # Each simulated service with the bundled runbook that fixes it.
        runs = [f"runbook check {runbook} --service {ref}" for runbook, ref in bundled_runs(loaded)]
        names = ", ".join(ref for _, ref in bundled_runs(loaded)) or "none"
        console.print(f"sandbox {loaded.name} ready; services: {names}")
        if env_file:
            console.print(f"in another shell: source {env_file}")
        else:
            console.print("in another shell: paste the export lines above (or start with --env-file FILE, then: source FILE)")
        if runs:
            console.print(f"then: {runs[0]}")
        console.print("press Ctrl-C to stop")
        while True:
            time.sleep(3600)
    except Interrupted:
        console.print("sandbox stopping")
    finally:
        box.stop()


def run_demo(scenario: str, *, yes: bool, deploy_seconds: Optional[float], timeout: float, fmt: str) -> int:
    """Start the sandbox, fix its first service, print the report; the fix's exit code."""
    require_sandbox("demo")
    from runbook_sandbox import Sandbox, load_scenario

    loaded = load_scenario(scenario)
    runs = bundled_runs(loaded)
    if not runs:
        raise UsageError(f"scenario {scenario}: the demo needs a service to fix (services:, ecs_services: or ecs_express_services:)")
    import tempfile

    console = make_console()
    with tempfile.TemporaryDirectory(prefix="runbook-demo-") as tmp:
        # The sandbox's world ends with the demo: its runs could not be undone later, so they stay out of history.
        journal = Path(tmp) / "journal.jsonl"
        console.print(f"the demo's journal is temporary: {journal} is deleted with the sandbox when the demo ends")
        with Sandbox(deploy_seconds=deploy_seconds) as box:
            box.load(loaded)
            os.environ.update(box.env)
            runbook, service = runs[0]
            console.print(f"sandbox {loaded.name} is up; fixing service {service} with runbook {runbook}")
            report = run_fix(
                runbook, service, yes=yes, dry_run=False, timeout=timeout,
                journal_path=journal, region=None, profile=None,
            )
            report.run_id = report.journal = None  # a temporary journal, gone with the sandbox: no undo to offer
            emit(report, fmt, None)
    return report.exit_code


def bundled_runs(loaded) -> list[tuple[str, str]]:
    """(bundled runbook, --service value) for each service of a scenario, App Runner's first."""
    ecs = [*loaded.ecs_services, *getattr(loaded, "ecs_express_services", ())]
    return [("apprunner-vpc", s.name) for s in loaded.services] + [
        ("ecs-service", s.name if s.cluster == "default" else f"{s.cluster}/{s.name}") for s in ecs]
