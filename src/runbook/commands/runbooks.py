"""The commands that read runbook files alone, with no AWS: list, show and iam-policy."""

from __future__ import annotations

import typer

from runbook.console import make_console


def list_runbooks() -> None:
    from runbook import runbook as rb

    for name, path in rb.bundled().items():
        loaded = rb.load(str(path))
        typer.echo(f"{name}\t{loaded.title}")


def show_runbook(runbook: str) -> None:
    """Each step: what it checks, after which steps, and why."""
    from rich.markup import escape

    from runbook import runbook as rb

    loaded = rb.load(runbook)
    console = make_console(stderr=False)
    console.print(f"[bold]{escape(loaded.name)}[/bold]: {escape(loaded.title)}")
    console.print(f"[dim]platform:[/dim] {escape(loaded.platform)} (--service takes its service name or id)")
    if loaded.description:
        console.print(escape(loaded.description.strip()))
    for number, step in enumerate(loaded.steps, 1):
        after = f" (after {', '.join(step.after)})" if step.after else ""
        console.print(f"\n{number}. [bold]{escape(step.id)}[/bold] [dim]{escape(step.check)}{escape(after)}[/dim]")
        console.print(f"   {escape(step.title)}")
        console.print(f"   [dim]why:[/dim] {escape(step.why)}")


def print_policy(runbook: str, *, fix: bool, read_secrets: bool) -> None:
    import json

    from runbook import policy
    from runbook import runbook as rb

    loaded = rb.with_secrets_read(rb.load(runbook), read_secrets)
    typer.echo(json.dumps(policy.for_runbook(loaded, fix=fix), indent=2))
