"""The call phase as one transition table, and the offer history it implies.

A trigger is ``"<speaker>:<signal>"``. The table is looked up with the current phase
first, then with ``"*"`` (any phase). "Pushed after a no" and "at most one downsell"
are read off the recorded history, not kept as loose flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from agent_assist.core.events import PhaseChanged, SignalDetected

Phase = Literal[
    "opening", "discovery", "offer_open", "declined", "accepted", "retention", "closing"
]

TRANSITIONS: dict[tuple[str, str], tuple[Phase, str]] = {
    # a need heard: the conversation is now about the customer's problem
    ("opening", "customer:speed_complaint"): ("discovery", "phase.need_heard.v1"),
    ("opening", "customer:price_objection"): ("discovery", "phase.need_heard.v1"),
    # an offer is on the table
    ("opening", "agent:offer_made"): ("offer_open", "phase.offer_made.v1"),
    ("discovery", "agent:offer_made"): ("offer_open", "phase.offer_made.v1"),
    ("declined", "agent:offer_made"): ("offer_open", "phase.offer_made.v1"),
    ("accepted", "agent:offer_made"): ("offer_open", "phase.offer_made.v1"),
    # the customer answers the offer
    ("offer_open", "customer:refusal"): ("declined", "phase.offer_declined.v1"),
    ("offer_open", "customer:price_objection"): ("declined", "phase.offer_declined.v1"),
    ("offer_open", "customer:agreement"): ("accepted", "phase.offer_accepted.v1"),
    # cancellation overrides everything else
    ("*", "customer:cancel_intent"): ("retention", "phase.cancel_intent.v1"),
}

TRIGGER_ORDER = ("customer:cancel_intent",)
"""Triggers applied last within one utterance, so they win over the rest."""


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """One offer put to the customer and how it ended."""

    t_ms: int
    kind: str  # "upsell", "downsell", ... or "agent" for an agent's own pitch
    outcome: str = "open"  # "open" | "declined" | "accepted"
    declined_on_price: bool = False


@dataclass
class CallState:
    """Phase plus offer history for one call. Mutated only through ``apply``."""

    phase: Phase = "opening"
    offers: list[OfferRecord] = field(default_factory=list)

    def apply(self, signals: Iterable[SignalDetected]) -> list[PhaseChanged]:
        """Move through the table for one utterance's signals; return the changes."""
        batch = list(signals)
        signal_names = {f"{s.speaker}:{s.signal}" for s in batch}
        ordered = sorted(batch, key=lambda s: f"{s.speaker}:{s.signal}" in TRIGGER_ORDER)
        changes: list[PhaseChanged] = []
        for sig in ordered:
            trigger = f"{sig.speaker}:{sig.signal}"
            target = TRANSITIONS.get((self.phase, trigger)) or TRANSITIONS.get(("*", trigger))
            if target is None or target[0] == self.phase:
                continue
            to_phase, rule_id = target
            self._record_offer_outcome(sig, to_phase, "customer:price_objection" in signal_names)
            changes.append(
                PhaseChanged(
                    call_id=sig.call_id,
                    t_ms=sig.t_ms,
                    from_phase=self.phase,
                    to_phase=to_phase,
                    rule_id=rule_id,
                    evidence=sig.evidence,
                )
            )
            self.phase = to_phase
        return changes

    def _record_offer_outcome(self, sig: SignalDetected, to_phase: Phase, on_price: bool) -> None:
        if to_phase == "offer_open":
            self.offers.append(OfferRecord(t_ms=sig.t_ms, kind="agent"))
        elif to_phase in ("declined", "accepted") and self.offers:
            last = self.offers[-1]
            outcome = "declined" if to_phase == "declined" else "accepted"
            self.offers[-1] = OfferRecord(last.t_ms, last.kind, outcome, on_price)

    @property
    def last_offer(self) -> OfferRecord | None:
        return self.offers[-1] if self.offers else None
