"""Who says yes: a person at a terminal, `--yes`, or nobody (a script without `--yes`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from runbook.model import Change

ANSWERS = {"y": True, "yes": True, "n": False, "no": False}


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str


class Confirmer(Protocol):
    # True when a person answers: a change with an `offer` (advice otherwise) is then asked about too.
    asks_offers: bool

    def confirm(self, step_id: str, change: Change) -> Decision: ...


class AssumeYes:
    asks_offers = False

    def confirm(self, step_id: str, change: Change) -> Decision:
        return Decision(True, "approved by --yes")


class NonInteractive:
    """No terminal and no --yes: never prompt, never apply."""

    asks_offers = False

    def confirm(self, step_id: str, change: Change) -> Decision:
        return Decision(False, "no terminal to ask on; pass --yes to apply")


def discard_typeahead(terminal_input) -> None:
    """Drop keys typed before the question was shown: an Enter left from the last answer must not answer
    this one. Both buffers: the terminal's, and prompt_toolkit's, which hands keys read past the end of one
    prompt to the next."""
    import termios

    from prompt_toolkit.input.typeahead import clear_typeahead

    clear_typeahead(terminal_input)
    try:
        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (OSError, ValueError, termios.error):
        pass  # not a terminal: no line discipline buffers anything


def _validate(text: str) -> bool | str:
    return text.strip().lower() in ANSWERS or "answer yes or no (there is no default)"


class Interactive:
    """Asks on the terminal, never on stdout (stdout carries the report): an explicit yes or no, no default."""

    asks_offers = True

    def __init__(self, terminal=None):
        self.terminal = terminal  # the stream prompts are drawn on; stderr, or /dev/tty when stderr is redirected
        self._input = None
        self._screen = None

    def _output(self):
        from prompt_toolkit.output import create_output

        if self.terminal is None:
            if sys.stderr.isatty():
                self.terminal = sys.stderr
            else:
                try:
                    self.terminal = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the run)
                except OSError:
                    self.terminal = sys.stderr
        self._screen = self._screen or create_output(stdout=self.terminal)
        return self._screen

    def confirm(self, step_id: str, change: Change) -> Decision:
        import questionary
        from prompt_toolkit.input import create_input

        from runbook.errors import Interrupted

        question = (f"Also apply this change for step {step_id}, closing everything listed above?" if change.offer
                    else f"Apply this change for step {step_id}?")
        self._input = self._input or create_input(sys.stdin)
        discard_typeahead(self._input)
        # unsafe_ask raises KeyboardInterrupt on Ctrl-C instead of returning None.
        try:
            answer = questionary.text(
                f"{question} (yes/no)", validate=_validate, input=self._input, output=self._output()
            ).unsafe_ask()
        except KeyboardInterrupt:
            raise Interrupted("interrupted at the prompt") from None
        if ANSWERS[answer.strip().lower()]:
            return Decision(True, "approved at the prompt")
        return Decision(False, "declined at the prompt")
