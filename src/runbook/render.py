"""Turn a Report into text (Rich), JSON (the contract in design.md) or Markdown.

Every string passes through the report's Scrubber (secrets masked, terminal control characters
made visible), and every call is shown, CLI twin included, as the Scrubber masks it.
"""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path
from typing import Any

from runbook import registry
from runbook.console import STATUS_STYLE, print_command
from runbook.engine import Report
from runbook.model import AppliedChange, Change, Status, StepResult
from runbook.secrets import Scrubber


def change_dict(change: Change, region: str, applied: AppliedChange | None = None, held_by=(), scrubber: Scrubber | None = None,
                profile: str | None = None) -> dict[str, Any]:
    """A change as the report shows it: its parameters and CLI twins built from the masked call."""
    scrubber = scrubber or Scrubber()
    call = scrubber.call(change.call)
    doc: dict[str, Any] = {
        "service": call.service,
        "operation": call.operation,
        "params": dict(call.params),
        "cli": call.cli(region, profile),
        "applied": bool(applied and applied.applied),
        "description": change.description,
    }
    if change.recommendation:
        doc["advice"] = True  # shown as advice, never applied
    if applied:
        doc["outcome"] = applied.outcome
        if applied.declined:
            doc["declined"] = True
    if held_by:
        doc["held_until"] = list(held_by)
    if change.inverse:
        doc["undo"] = {"operation": change.inverse.operation, "cli": scrubber.call(change.inverse).cli(region, profile)}
    return doc


def step_changes(result: StepResult, region: str, scrubber: Scrubber | None = None, profile: str | None = None) -> list[dict[str, Any]]:
    """Each change once: what was done with it, else proposed or held (a declined change is still
    proposed by the check; its record stands for it, as does the last record of a change asked twice)."""
    records: dict[str, AppliedChange] = {}
    for record in result.applied:
        records[_call_key(record.change)] = record
    changes = [change_dict(a.change, region, a, scrubber=scrubber, profile=profile) for a in records.values()]
    changes += [change_dict(c, region, scrubber=scrubber, profile=profile) for c in result.finding.changes if _call_key(c) not in records]
    changes += [change_dict(c, region, held_by=result.held_by, scrubber=scrubber, profile=profile)
                for c in result.held if _call_key(c) not in records]
    return changes


def _call_key(change: Change) -> str:
    return json.dumps(change.call.as_dict(), sort_keys=True, default=str)


def to_document(report: Report) -> dict[str, Any]:
    doc = {
        "runbook": report.runbook.name,
        "service": report.service,
        "region": report.region,
        "healthy": report.healthy,
        "exit_code": report.exit_code,
        "stopped": report.stopped,
        "summary": summary(report),
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
                "changes": step_changes(r, report.region, report.scrubber, report.profile),
            }
            for r in report.results
        ],
        "stats": report.stats,
    }
    # Where `history` and `undo` find this run; both null when it recorded nothing (check, a dry run, nothing to do).
    doc.update(run_id=report.run_id, journal=report.journal)
    return report.scrubber.data(doc)


def _runbook_ref(report: Report) -> str:
    from runbook import runbook as rb

    bundled = rb.bundled().get(report.runbook.name)
    if bundled and Path(report.runbook.source).resolve() == bundled.resolve():
        return report.runbook.name
    return report.runbook.source


def command(report: Report, verb: str, *extra: str) -> str:
    """A runbook command for the same runbook, service, region and profile, ready to paste."""
    parts = ["runbook", verb, _runbook_ref(report), "--service", report.service_ref or report.service, "--region", report.region]
    if report.profile:
        parts += ["--profile", report.profile]
    if verb == "fix":
        parts += report.rerun_args  # the same steps selected as this run
    return " ".join(shlex.quote(p) for p in [*parts, *extra])


def _health(report: Report) -> str:
    probe = next((r for r in report.results if registry.get(r.step.check).proves_health), None)
    if report.health_streak and report.health_streak[0] >= report.health_streak[1]:
        return f"{probe.step.params.get('health_path', 'health path') if probe else 'health path'} answered 200 " \
               f"{report.health_streak[0]} times in a row"
    if probe is None:
        return "not probed (no health step)"
    last = f" (last wait: {report.health_streak[0]}/{report.health_streak[1]} consecutive 200s)" if report.health_streak else ""
    return f"{probe.finding.summary}{last}"


def summary(report: Report) -> dict[str, Any]:
    """What the run did and where it leaves the service: the closing lines of every report."""
    from runbook import journal as journal_mod

    applied = failed = proposed = held = advice = skipped = 0
    left = set(report.left_by_skip)
    for result in report.results:
        records = {_call_key(a.change): a for a in result.applied}
        applied += sum(1 for a in records.values() if a.applied)
        failed += sum(1 for a in records.values() if not a.applied and not a.declined)
        for change in result.finding.changes:
            if _call_key(change) in records:
                continue
            if change.recommendation:
                advice += 1
            elif result.step.id in left:
                skipped += 1
            else:
                proposed += 1
        advice += sum(1 for c in result.held if c.recommendation)
        held += sum(1 for c in result.held if not c.recommendation)
    held_by_step: dict[str, list[str]] = {}
    for result in report.results:
        for blocker in result.held_by:
            held_by_step.setdefault(blocker, []).append(result.step.id)
    declined = [
        {
            "step": step_id,
            "description": record.change.description,
            "holds": held_by_step.get(step_id, []),
            "skip": f"--skip {step_id}",
        }
        for step_id, record in report.declined
    ]
    by_id = {r.step.id: r for r in report.results}
    doc: dict[str, Any] = {
        "mode": report.mode,
        "applied": applied,
        "declined": len(declined),
        "skipped": skipped,
        "held": held,
        "advice": advice,
        "proposed": proposed,
        "failed": failed,
        "service_status": report.service_status,
        "health": _health(report),
        "healthy": report.healthy,
        "declined_changes": declined,
        "left_by_skip": [
            {"step": s, "status": by_id[s].finding.status.value, "summary": by_id[s].finding.summary} for s in report.left_by_skip
        ],
        "run": report.run_id,
        "journal": report.journal,
        "undo": None,
        "next": _next_command(report, declined, proposed + held),
    }
    if report.run_id:
        undo = ["runbook", "undo", report.run_id]
        if report.journal and Path(report.journal) != journal_mod.default_path():
            undo += ["--journal", report.journal]
        doc["undo"] = " ".join(shlex.quote(p) for p in undo)
    return doc


def _next_command(report: Report, declined: list[dict[str, Any]], waiting: int) -> list[dict[str, str]]:
    """The command(s) to run next, each with why, when the service is not healthy (none when it is)."""
    if report.healthy:
        return []
    if report.timed_out:
        return [{"why": "re-run to keep waiting", "command": command(report, "fix")}]
    if report.mode == "check":
        if waiting:
            return [{"why": "apply the proposed changes, each shown and confirmed", "command": command(report, "fix")}]
        return [{"why": "nothing here is fixed automatically: see the failing steps above, then check again",
                 "command": command(report, "check")}]
    if report.mode == "dry-run":
        return [{"why": "apply the plan above, each change confirmed", "command": command(report, "fix")}]
    if declined:
        skips = [word for d in declined for word in d["skip"].split()]
        return [{"why": "be asked again", "command": command(report, "fix")},
                {"why": "or leave the declined change(s) and go on", "command": command(report, "fix", *skips)}]
    if report.mode == "apply":
        return [{"why": "a new plan of what remains", "command": command(report, "fix", "--dry-run", "--plan-out", "plan.json")}]
    return [{"why": "see the failing steps above; once fixed by hand, check again", "command": command(report, "check")}]


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
    # Narrow terminals: the titles go (they are repeated under each step below), so that the summaries,
    # and the ids in them, keep room enough not to be folded.
    titled = console.width >= 110
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("step", no_wrap=True)
    if titled:
        table.add_column("title", ratio=1)
    table.add_column("summary", ratio=2, overflow="fold")
    for step in doc["steps"]:
        status = Status(step["status"])
        title = (escape(step["title"]),) if titled else ()
        table.add_row(f"[{STATUS_STYLE[status]}]{status.value}[/]", escape(step["id"]), *title, escape(step["summary"]))
    console.print(table)
    for step in doc["steps"]:
        history = any(e.get("data", {}).get("history") for e in step["evidence"])
        if step["status"] == "ok" and not step["changes"] and not history:
            continue
        console.print(f"\n[bold]{escape(step['id'])}[/bold]: {escape(step['title'])}")
        for evidence in step["evidence"]:
            console.print(f"  [dim]{escape(evidence['source'])}[/dim]\n    {escape(evidence['observation'])}")
        for change in step["changes"]:
            console.print(f"  {_label(change, rich=True)}: {escape(change['description'])}")
            print_command(console, change["cli"], indent="    ")
            if "undo" in change:
                print_command(console, "undo: " + change["undo"]["cli"], indent="    ", style="dim")
    console.print()
    print_summary(report, console, doc["summary"])


def _label(change: dict[str, Any], *, rich: bool = False) -> str:
    """What became of a change, in words: applied, declined, held, advice, or proposed."""
    def style(text: str, color: str) -> str:
        return f"[{color}]{text}[/{color}]" if rich else text

    # An offer (advice asked about at a terminal) that was declined is shown as what happened to it.
    if change.get("declined") and change["outcome"].startswith("declined"):
        return "change (" + style(_esc(change["outcome"], rich), "yellow") + ")"
    if change.get("advice"):
        held = f"; held until {', '.join(change['held_until'])} pass" if "held_until" in change else ""
        return style("advice, never applied", "cyan") + held
    if change["applied"]:
        return "change (" + style("applied", "green") + f": {_esc(change.get('outcome', ''), rich)})"
    if "held_until" in change:
        return "change (" + style(f"held until {', '.join(change['held_until'])} pass", "yellow") + ")"
    if "outcome" in change:
        return "change (" + style("not applied", "red") + f": {_esc(change['outcome'], rich)})"
    return "change (" + style("proposed", "yellow") + ")"


def _esc(text: str, rich: bool) -> str:
    from rich.markup import escape

    return escape(text) if rich else text


_MODE_TITLE = {"check": "Check", "dry-run": "Plan", "fix": "Fix", "apply": "Apply"}


def summary_lines(report: Report, doc: dict[str, Any] | None = None) -> list[tuple[str, str, str | None]]:
    """The closing lines as (label, text, command to paste or None): counts, service, declined, skipped, run, next."""
    doc = doc or report.scrubber.data(summary(report))
    if doc["mode"] in ("check", "dry-run"):
        counts = [f"{doc['proposed']} to apply", f"{doc['held']} held", f"{doc['advice']} advice (never applied)"]
        tail = "; nothing applied (read-only)" if doc["mode"] == "check" else "; nothing applied (dry run)"
    else:
        counts = [f"{doc['applied']} applied", f"{doc['declined']} declined", f"{doc['skipped']} skipped",
                  f"{doc['held']} held", f"{doc['advice']} advice (never applied)"]
        if doc["failed"]:
            counts.append(f"{doc['failed']} not applied")
        if doc["proposed"]:
            counts.append(f"{doc['proposed']} still proposed")
        tail = ""
    lines: list[tuple[str, str, str | None]] = [
        (f"{_MODE_TITLE.get(doc['mode'], doc['mode'].title())}:", ", ".join(counts) + tail + ".", None)
    ]
    lines.append(("service:", f"{report.service} {doc['service_status'] or '(status unknown)'}; health: {doc['health']}", None))
    if doc["healthy"]:
        verdict = "healthy" + (" (what --skip left aside is listed below)" if doc["left_by_skip"] else "")
    else:
        verdict = report.stopped if report.timed_out else f"not healthy: {report.stopped}"  # a timeout says so itself
    lines.append(("result:", verdict, None))
    for declined in doc["declined_changes"]:
        holds = (f"it holds back the changes of {', '.join(declined['holds'])}" if declined["holds"]
                 else "no other step's change waits on it")
        lines.append(("declined:", f"{declined['step']}: {declined['description']}; {holds}; "
                                   f"to leave it next time, pass {declined['skip']}", None))
    for left in doc["left_by_skip"]:
        lines.append(("left by --skip:", f"{left['step']} ({left['status']}: {left['summary']})", None))
    if doc["run"]:
        lines.append(("run:", f"{doc['run']} (journal {doc['journal']}); to undo it:", doc["undo"]))
    for step in doc["next"]:
        lines.append(("next:", step["why"] + ":", step["command"]))
    return lines


def print_summary(report: Report, console, doc: dict[str, Any] | None = None) -> None:
    from rich.markup import escape

    for label, text, paste in summary_lines(report, doc):
        console.print(f"[bold]{escape(label)}[/bold] {escape(text)}")
        if paste:
            print_command(console, paste, indent="  ")


def print_undo_summary(console, run_id: str, done: list[AppliedChange], undo_run: str | None, *, runbook: str,
                       service: str, region: str, profile: str | None = None) -> None:
    """The closing lines of `runbook undo`: what was undone, the undo's own run, and how to look at the service now."""
    from rich.markup import escape

    from runbook import runbook as rb

    undone = sum(1 for d in done if d.applied)
    declined = sum(1 for d in done if d.declined and d.outcome.startswith("declined"))
    failed = len(done) - undone - declined
    console.print()
    console.print(f"[bold]Undo:[/bold] {undone} undone, {declined} declined, {failed} not undone, "
                  f"of {len(done)} change(s) of run {escape(run_id)}.")
    if undo_run:
        console.print(f"[bold]run:[/bold] {escape(undo_run)} (journaled; `runbook history` lists it)")
    if failed:
        console.print("[bold]next:[/bold] the changes not undone are named above, with AWS's answer")
    check = ["runbook", "check", runbook if runbook in rb.bundled() else "RUNBOOK", "--service", service, "--region", region]
    if profile:
        check += ["--profile", profile]
    console.print(f"[bold]service:[/bold] {escape(service)}: see where it stands with:")
    print_command(console, " ".join(shlex.quote(p) for p in check), indent="  ")


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
            lines += ["", f"{_label(change)[0].upper()}{_label(change)[1:]}: {change['description']}", "", "```sh", change["cli"], "```"]
            if "undo" in change:
                lines += ["Undo:", "", "```sh", change["undo"]["cli"], "```"]
    lines += ["", "## What remains", ""]
    remaining = remaining_items(doc)
    lines += remaining or ["Nothing: every step passes."]
    lines += ["", "## Summary", ""]
    for label, text, paste in summary_lines(report, doc["summary"]):
        lines.append(f"- **{label}** {text}" + (f" `{paste}`" if paste else ""))
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
            advice = " (advice, never applied)" if change.get("advice") else ""
            items.append(f"  - {change['description']}{advice}{why}: `{change['cli']}`")
    return items


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    return to_text(report, color=color)
