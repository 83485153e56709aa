"""What a call's stored events say, read once: utterances, signals, offers, talk time.

The scorecard and the statistics both start here, from the call's stored events decoded
back into typed events (``protocol.decode_events``), so either can be recomputed for any
stored call and a renamed field fails loudly instead of reading as empty. Pure and
deterministic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from agent_assist.core.events import (
    CallEnded,
    ComplianceWarning,
    Event,
    Numbered,
    OfferFeedback,
    PhaseChanged,
    SignalDetected,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.vocabulary import OFFER_SIGNALS

Message = Numbered[Event]
"""One stored event of a call, typed, with its sequence number."""

PUSH_RULES = ("compliance.push_after_no.", "compliance.pitch_during_cancellation.")
EMPATHY_WINDOW_MS = 30_000


@dataclass(frozen=True, slots=True)
class Moment:
    """A cited moment of the call: where, who, the words, and why it counts."""

    t_ms: int
    speaker: str
    quote: str
    note: str
    seq: int = 0
    utterance_id: str = ""
    rule_id: str = ""


# -- reading the events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Feedback:
    """The agent's or customer's answer to a suggestion, whatever the event is called."""

    seq: int
    t_ms: int
    suggestion_id: str
    action: str


def feedback_of(msg: Message) -> Feedback | None:
    """The agent's mark on a suggestion (``offer.feedback``); None for any other event."""
    e = msg.event
    if not isinstance(e, OfferFeedback):
        return None
    return Feedback(msg.seq, e.t_ms, e.suggestion_id, e.action)


@dataclass(frozen=True, slots=True)
class Utterance:
    seq: int
    utterance_id: str
    speaker: str
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class Sig:
    seq: int
    t_ms: int
    signal: str
    speaker: str
    rule_id: str
    quote: str
    utterance_id: str
    detail: str

    def moment(self, note: str) -> Moment:
        return Moment(
            self.t_ms, self.speaker, self.quote, note, self.seq, self.utterance_id, self.rule_id
        )


@dataclass(frozen=True)
class CallFacts:
    """A call's events sorted into what the scorecard and the statistics read."""

    call_id: str
    duration_ms: int
    utterances: tuple[Utterance, ...]
    signals: tuple[Sig, ...]
    suggestions: tuple[Numbered[Suggestion], ...]
    warnings: tuple[Numbered[ComplianceWarning], ...]
    phases: tuple[Numbered[PhaseChanged], ...]
    feedback: tuple[Feedback, ...]

    def offers(self) -> list[Sig]:
        """The agent's offers, one per utterance (an utterance may hold two offer signals)."""
        seen: set[str] = set()
        out: list[Sig] = []
        for s in self.of(*OFFER_SIGNALS, speaker="agent"):
            if s.utterance_id not in seen:
                seen.add(s.utterance_id)
                out.append(s)
        return out

    def of(self, *names: str, speaker: str | None = None) -> list[Sig]:
        return [
            s
            for s in self.signals
            if s.signal in names and (speaker is None or s.speaker == speaker)
        ]


def call_facts(messages: Iterable[Message]) -> CallFacts:
    msgs = sorted(messages, key=lambda m: m.seq)
    call_id, duration = "", 0
    utts: list[Utterance] = []
    sigs: list[Sig] = []
    sugg: list[Numbered[Suggestion]] = []
    warns: list[Numbered[ComplianceWarning]] = []
    phases: list[Numbered[PhaseChanged]] = []
    feedback: list[Feedback] = []
    for m in msgs:
        e, seq = m.event, m.seq
        call_id = call_id or e.call_id
        if isinstance(e, TranscriptFinal):
            utts.append(Utterance(seq, e.utterance_id, e.speaker, e.t_ms, e.end_ms, e.text))
            duration = max(duration, e.end_ms)
        elif isinstance(e, SignalDetected):
            sigs.append(
                Sig(
                    seq,
                    e.t_ms,
                    e.signal,
                    e.speaker,
                    e.rule_id,
                    e.evidence.quote,
                    e.evidence.utterance_id,
                    e.detail,
                )
            )
        elif isinstance(e, Suggestion):
            sugg.append(Numbered(seq, e, m.emitted_ms))
        elif isinstance(e, ComplianceWarning):
            warns.append(Numbered(seq, e, m.emitted_ms))
        elif isinstance(e, PhaseChanged):
            phases.append(Numbered(seq, e, m.emitted_ms))
        elif isinstance(e, CallEnded):
            duration = max(duration, e.duration_ms)
        elif (fb := feedback_of(m)) is not None:
            feedback.append(fb)
    return CallFacts(
        call_id,
        duration,
        tuple(utts),
        tuple(sigs),
        tuple(sugg),
        tuple(warns),
        tuple(phases),
        tuple(feedback),
    )


def evidence_moment(m: Numbered[ComplianceWarning], note: str) -> Moment:
    e = m.event
    ev = e.evidence
    return Moment(e.t_ms, ev.speaker, ev.quote, note, m.seq, ev.utterance_id, e.rule_id)


# -- talk time: share, silences, overlaps ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    start_ms: int
    end_ms: int
    speaker: str = ""
    """For an overlap: who started talking over the other (the interrupter)."""


@dataclass(frozen=True)
class TalkTimeline:
    duration_ms: int
    talk_ms: Mapping[str, int]
    silences: tuple[Span, ...]
    overlaps: tuple[Span, ...]

    @property
    def customer_share(self) -> float | None:
        total = sum(self.talk_ms.values())
        return self.talk_ms.get("customer", 0) / total if total else None


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def talk_timeline(facts: CallFacts, silence_ms: int = 3000, overlap_ms: int = 1000) -> TalkTimeline:
    """Who talked how long; silences (both quiet >= silence_ms), overlaps (both >= overlap_ms)."""
    by_speaker = {
        sp: _merge((u.start_ms, u.end_ms) for u in facts.utterances if u.speaker == sp)
        for sp in ("agent", "customer")
    }
    talk = {sp: sum(e - s for s, e in spans) for sp, spans in by_speaker.items()}
    overlaps: list[Span] = []
    for a0, a1 in by_speaker["agent"]:
        for c0, c1 in by_speaker["customer"]:
            start, end = max(a0, c0), min(a1, c1)
            if end - start >= overlap_ms:
                overlaps.append(Span(start, end, "agent" if a0 > c0 else "customer"))
    silences: list[Span] = []
    cursor = 0
    for start, end in _merge(s for spans in by_speaker.values() for s in spans):
        if start - cursor >= silence_ms:
            silences.append(Span(cursor, start))
        cursor = max(cursor, end)
    if facts.duration_ms - cursor >= silence_ms:
        silences.append(Span(cursor, facts.duration_ms))
    return TalkTimeline(facts.duration_ms, talk, tuple(silences), tuple(overlaps))


# -- offers and what became of them --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferOutcome:
    """One offer suggestion: was it used, and did the customer accept or decline it."""

    suggestion_id: str
    kind: str
    offer_id: str
    offer: str
    line: str
    rule_id: str
    t_ms: int
    seq: int
    used: bool
    outcome: Literal["accepted", "declined", "open"]
    known_from: Literal["feedback", "transcript", ""]


def offer_outcomes(facts: CallFacts) -> list[OfferOutcome]:
    """Per offer suggestion (retention cards are not offers): used, accepted, declined.

    Feedback events win; without them, an agent's offer after the card counts as "used",
    and the phase the customer's answer moved the call to tells accepted or declined.
    """
    offers = [s for s in facts.suggestions if s.event.kind != "retention"]
    agent_offers = facts.offers()
    answers = [p for p in facts.phases if p.event.to_phase in ("accepted", "declined")]
    out: list[OfferOutcome] = []
    for i, s in enumerate(offers):
        data = s.event
        seq = s.seq
        next_seq = offers[i + 1].seq if i + 1 < len(offers) else 1 << 62
        sid = data.suggestion_id
        fbs = [f for f in facts.feedback if f.suggestion_id == sid]
        made = [o for o in agent_offers if seq < o.seq < next_seq]
        used = any(f.action == "used" for f in fbs) or bool(made)
        outcome: Literal["accepted", "declined", "open"] = "open"
        known: Literal["feedback", "transcript", ""] = ""
        decided = [f for f in fbs if f.action in ("accepted", "declined")]
        if decided:
            outcome = "accepted" if decided[-1].action == "accepted" else "declined"
            known = "feedback"
        elif made:
            after = [p for p in answers if made[0].seq < p.seq < next_seq]
            if after:
                outcome = "accepted" if after[0].event.to_phase == "accepted" else "declined"
                known = "transcript"
        out.append(
            OfferOutcome(
                sid,
                data.kind,
                data.offer_id,
                data.offer,
                data.line,
                data.rule_id,
                data.t_ms,
                seq,
                used,
                outcome,
                known,
            )
        )
    return out
