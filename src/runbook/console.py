"""The terminal side of a run: progress, the live status line, and the proposed calls.

Everything here goes to stderr (the terminal); stdout carries the report alone,
so `runbook fix … > report.txt` still shows its questions and progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook.model import Status

if TYPE_CHECKING:
    from runbook.model import AppliedChange, Change, StepResult

# The colour of each verdict, on the progress lines and in the report's table alike.
STATUS_STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.ERROR: "bold red",
    Status.SKIPPED: "dim",
}


def make_console(stderr: bool = True):
    """The Rich console a command prints on: stderr for progress and questions, stdout for a report."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, emoji=False)  # ":secret:" in an ARN is no emoji
    # Progress lines are not wrapped for logs and grep of a script's output (whole lines); on a
    # terminal they are, at spaces, so that no id is cut by the terminal's own wrap.
    console.soft_wrap = stderr and not console.is_terminal
    return console


def shell_words(command: str) -> list[str]:
    """Split a command at the spaces outside quotes, each word kept exactly as written."""
    words, current, quote = [], [], None
    for char in command:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == " ":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def _json_pieces(word: str) -> list[str] | None:
    """A single-quoted JSON argument cut after its commas outside JSON strings, or None if it is not one.
    A line break there is JSON whitespace inside the shell quotes: the pasted command is the same."""
    if not (len(word) > 2 and word[0] == "'" and word[-1] == "'" and word[1] in "[{" and "'" not in word[1:-1]):
        return None
    pieces, start, in_string, escaped = [], 0, False, False
    for index, char in enumerate(word):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == ",":
            pieces.append(word[start:index + 1])
            start = index + 1
    pieces.append(word[start:])
    return pieces


def _units(words: list[str]) -> list[str]:
    """Words with an option and a short value joined (`--region us-east-1`), so a break falls between options."""
    units: list[str] = []
    for word in words:
        if units and units[-1].startswith("--") and " " not in units[-1] and not word.startswith("-") and len(word) <= 40:
            units[-1] += " " + word
        else:
            units.append(word)
    return units


def wrap_command(command: str, width: int, indent: str = "") -> list[str]:
    """Lines of a command that fit `width`, broken only between words (each line but the last ending in
    ` \\`) or after a comma of a JSON argument, so that the lines paste as the same command. Nothing
    else is cut: a word longer than the line (an ARN) keeps a line of its own."""
    lines: list[str] = []
    line = indent
    continued = indent + "    "
    for word in _units(shell_words(command)):
        if line.strip() and len(line) + 1 + len(word) + 2 > width:
            lines.append(line + " \\")
            line = continued
        if len(line) + len(word) > width and (pieces := _json_pieces(word)):
            for piece in pieces:
                if len(line) + len(piece) > width and line.strip():
                    lines.append(line)  # inside the quotes: no backslash, the break is JSON whitespace
                    line = continued + "  "
                line += piece
            continue
        line = f"{line} {word}" if line.strip() else line + word
    lines.append(line)
    return lines


def print_command(console, command: str, indent: str = "  ", style: str = "") -> None:
    """A command on the console: on a terminal wrapped to its width where pasting it is unchanged,
    elsewhere on one line (for grep and for logs)."""
    from rich.text import Text

    lines = wrap_command(command, console.width, indent) if console.is_terminal else [indent + command]
    for line in lines:
        console.print(Text(line, style=style), soft_wrap=True, overflow="ignore", crop=False)


class ConsoleReporter:
    """Shows progress on stderr: a live status line on a terminal, plain lines otherwise.

    `step_lines=False` leaves the steps to the report (check on a terminal: each step shown once).
    Call `close()` when the command ends, however it ends: it clears the status line.
    """

    def __init__(self, console, *, region: str | None = None, profile: str | None = None, step_lines: bool = True):
        self.console = console
        self.region, self.profile = region, profile
        self.step_lines = step_lines
        self._last: dict[str, str] = {}
        self._status = None
        self._last_wait = ("", "")

    def _end_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._end_status()

    def __enter__(self) -> "ConsoleReporter":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def _show_status(self, text: str) -> None:
        from rich.markup import escape

        if self._status is None:
            self._status = self.console.status(escape(text))
            self._status.start()
        else:
            self._status.update(escape(text))

    def busy(self, text: str) -> None:
        """A transient line for work that prints nothing by itself (discovery)."""
        if self.console.is_terminal:
            self._show_status(text)

    def evaluated(self, results: "list[StepResult]", round_no: int) -> None:
        from rich.markup import escape

        self._end_status()
        if not self.step_lines:
            return
        for result in results:
            line = f"{result.finding.status.value}: {result.finding.summary}"
            if self._last.get(result.step.id) != line:
                self._last[result.step.id] = line
                style = STATUS_STYLE.get(result.finding.status, "dim")
                self.console.print(f"[{style}]{result.finding.status.value:>7}[/] {escape(result.step.id)}: {escape(result.finding.summary)}")

    def proposing(self, step_id: str, change: "Change") -> None:
        from rich.markup import escape

        self._end_status()
        self.console.print(f"\n[bold]{escape(step_id)}[/bold] proposes: {escape(change.description)}")
        params = ", ".join(f"{k}={v!r}" for k, v in change.call.params.items())
        self.console.print(f"  [dim]API:[/dim] {change.call.service}.{change.call.operation}({escape(params)})")
        self.console.print("  [dim]CLI:[/dim]")
        print_command(self.console, change.call.cli(self.region, self.profile), indent="    ")
        if change.inverse:
            self.console.print("  [dim]undo:[/dim]")
            print_command(self.console, change.inverse.cli(self.region, self.profile), indent="    ", style="dim")
        if change.offer:
            self.console.print("  [bold]advice, applied only if you say so; it closes all of this:[/bold]")
            for line in change.offer:
                self.console.print(f"    - {escape(line)}")

    def applied(self, step_id: str, applied: "AppliedChange") -> None:
        from rich.markup import escape

        if applied.outcome.startswith("unknown"):  # sent, and may or may not have landed: never said applied
            self.console.print(f"  [yellow]unknown[/yellow]{escape(applied.outcome[len('unknown'):])}")
        elif applied.applied:
            self.console.print(f"  [green]applied[/green]: {escape(applied.outcome)}")
        elif applied.declined:
            self.console.print(f"  [yellow]not applied[/yellow] ({escape(applied.outcome)})")
        else:
            self.console.print(f"  [yellow]not applied[/yellow]: {escape(applied.outcome)}")

    def waiting(self, what: str, state: str, elapsed: float, budget: float) -> None:
        from rich.markup import escape

        text = f"waiting for {what}: {state} ({elapsed:.0f}s of {budget:.0f}s)"
        if self.console.is_terminal:
            self._show_status(text)
        elif self._last_wait != (what, state):
            self._last_wait = (what, state)
            self.console.print(escape(text))

    def note(self, message: str) -> None:
        from rich.markup import escape

        self._end_status()
        self.console.print(escape(message))


class SilentReporter:
    """A reporter for a read-only look that prints nothing."""

    def evaluated(self, results, round_no): ...
    def proposing(self, step_id, change): ...
    def applied(self, step_id, applied): ...
    def waiting(self, what, state, elapsed, budget): ...
    def note(self, message): ...
