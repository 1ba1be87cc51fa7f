"""Turn a Report into text (Rich), JSON (the contract in design.md) or Markdown.

Every string passes through the report's Scrubber (secrets masked, terminal control characters
made visible), and every call is shown, CLI twin included, as the Scrubber masks it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from runbook.engine import Report
from runbook.model import AppliedChange, Change, Status, StepResult
from runbook.secrets import Scrubber

STATUS_STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.ERROR: "bold red",
    Status.SKIPPED: "dim",
}


def change_dict(change: Change, region: str, applied: AppliedChange | None = None, held_by=(), scrubber: Scrubber | None = None) -> dict[str, Any]:
    """A change as the report shows it: its parameters and CLI twins built from the masked call."""
    scrubber = scrubber or Scrubber()
    call = scrubber.call(change.call)
    doc: dict[str, Any] = {
        "service": call.service,
        "operation": call.operation,
        "params": dict(call.params),
        "cli": call.cli(region),
        "applied": bool(applied and applied.applied),
        "description": change.description,
    }
    if applied:
        doc["outcome"] = applied.outcome
    if held_by:
        doc["held_until"] = list(held_by)
    if change.inverse:
        doc["undo"] = {"operation": change.inverse.operation, "cli": scrubber.call(change.inverse).cli(region)}
    return doc


def step_changes(result: StepResult, region: str, scrubber: Scrubber | None = None) -> list[dict[str, Any]]:
    changes = [change_dict(a.change, region, a, scrubber=scrubber) for a in result.applied]
    # A change declined (or not sent) is still proposed by the check: shown once, with its outcome.
    changes += [change_dict(c, region, scrubber=scrubber) for c in result.finding.changes
                if all(a.change.call != c.call for a in result.applied)]
    changes += [change_dict(c, region, held_by=result.held_by, scrubber=scrubber) for c in result.held]
    return changes


def to_document(report: Report) -> dict[str, Any]:
    doc = {
        "runbook": report.runbook.name,
        "service": report.service,
        "region": report.region,
        "healthy": report.healthy,
        "exit_code": report.exit_code,
        "stopped": report.stopped,
        "steps": [
            {
                "id": r.step.id,
                "title": r.step.title,
                "status": r.finding.status.value,
                "summary": r.finding.summary,
                "evidence": [
                    {"source": e.source, "observation": e.observation, **({"data": dict(e.data)} if e.data else {})}
                    for e in r.finding.evidence
                ],
                "changes": step_changes(r, report.region, report.scrubber),
            }
            for r in report.results
        ],
        "stats": report.stats,
    }
    # Where `history` and `undo` find this run; both null when it recorded nothing (check, a dry run, nothing to do).
    doc.update(run_id=report.run_id, journal=report.journal)
    return report.scrubber.data(doc)


def to_json(report: Report) -> str:
    return json.dumps(to_document(report), indent=2, default=str) + "\n"


def to_text(report: Report, *, color: bool = False, width: int = 120) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False, emoji=False)
    print_text(report, console)
    return buffer.getvalue()


def print_text(report: Report, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    doc = to_document(report)
    verdict = "[green]healthy[/green]" if report.healthy else "[red]not healthy[/red]"
    why = "" if doc["stopped"] == "healthy" else f"; {escape(doc['stopped'])}"
    console.print(f"[bold]{escape(doc['runbook'])}[/bold] on [bold]{escape(doc['service'])}[/bold] ({doc['region']}): {verdict}{why}")
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("title", ratio=1)
    table.add_column("summary", ratio=2, overflow="fold")
    for step in doc["steps"]:
        status = Status(step["status"])
        table.add_row(f"[{STATUS_STYLE[status]}]{status.value}[/]", escape(step["id"]), escape(step["title"]), escape(step["summary"]))
    console.print(table)
    for step in doc["steps"]:
        if step["status"] == "ok" and not step["changes"]:
            continue
        console.print(f"\n[bold]{escape(step['id'])}[/bold]: {escape(step['title'])}")
        for evidence in step["evidence"]:
            console.print(f"  [dim]{escape(evidence['source'])}[/dim]\n    {escape(evidence['observation'])}")
        for change in step["changes"]:
            if change["applied"]:
                state = f"[green]applied[/green]: {escape(change.get('outcome', ''))}"
            elif "held_until" in change:
                state = f"[yellow]held until {', '.join(change['held_until'])} pass[/yellow]"
            elif "outcome" in change:
                state = f"[red]not applied[/red]: {escape(change['outcome'])}"
            else:
                state = "[yellow]proposed[/yellow]"
            console.print(f"  change ({state}): {escape(change['description'])}")
            console.print(f"    {escape(change['cli'])}", soft_wrap=True)
            if "undo" in change:
                console.print(f"    [dim]undo: {escape(change['undo']['cli'])}[/dim]", soft_wrap=True)


def to_markdown(report: Report) -> str:
    doc = to_document(report)
    lines = [
        f"# {doc['runbook']}: {doc['service']} ({doc['region']})",
        "",
        f"**Verdict:** {'healthy' if doc['healthy'] else 'not healthy'} ({doc['stopped']})",
        "",
        "| step | status | summary |",
        "|---|---|---|",
    ]
    for step in doc["steps"]:
        lines.append(f"| {step['id']} | {step['status']} | {_md_cell(step['summary'])} |")
    for step in doc["steps"]:
        lines += ["", f"## {step['id']}: {step['title']}", "", f"**{step['status']}**: {step['summary']}", ""]
        for evidence in step["evidence"]:
            lines.append(f"- `{evidence['source']}`: {evidence['observation']}")
        for change in step["changes"]:
            state = "applied" if change["applied"] else ("held" if "held_until" in change else "not applied")
            lines += ["", f"Change ({state}{': ' + change['outcome'] if change.get('outcome') else ''}): {change['description']}", "", "```sh", change["cli"], "```"]
            if "undo" in change:
                lines += ["Undo:", "", "```sh", change["undo"]["cli"], "```"]
    lines += ["", "## What remains", ""]
    remaining = remaining_items(doc)
    lines += remaining or ["Nothing: every step passes."]
    return "\n".join(lines) + "\n"


def remaining_items(doc: dict[str, Any]) -> list[str]:
    """Markdown list lines: steps still failing, and under each the changes not applied (advice included)."""
    items = []
    for step in doc["steps"]:
        pending = [c for c in step["changes"] if not c["applied"]]
        if step["status"] in ("fail", "error", "warn") or pending:
            items.append(f"- **{step['id']}** ({step['status']}): {step['summary']}")
        for change in pending:
            why = " (held until " + ", ".join(change["held_until"]) + " pass)" if "held_until" in change else ""
            items.append(f"  - {change['description']}{why}: `{change['cli']}`")
    return items


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    return to_text(report, color=color)
