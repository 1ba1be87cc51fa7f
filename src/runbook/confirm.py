"""Who says yes: a person at a terminal, `--yes`, or nobody (a script without `--yes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from runbook.model import Change


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
        return Decision(False, "not applied: no terminal to ask on; pass --yes to apply")


class Interactive:
    asks_offers = True

    def confirm(self, step_id: str, change: Change) -> Decision:
        import questionary

        from runbook.errors import Interrupted

        question = (f"Also apply this change for step {step_id}, closing everything listed above?" if change.offer
                    else f"Apply this change for step {step_id}?")
        # unsafe_ask raises KeyboardInterrupt on Ctrl-C instead of returning None.
        try:
            answer = questionary.confirm(question, default=False).unsafe_ask()
        except KeyboardInterrupt:
            raise Interrupted("interrupted at the prompt") from None
        return Decision(True, "approved at the prompt") if answer else Decision(False, "declined at the prompt")
