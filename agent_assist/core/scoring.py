"""The supervisor's scorecard: each item scored from a call's stored events, moments cited.

Input is the call's wire messages exactly as stored (``{"type", "seq", "t_ms", "data"}``),
so a score can be recomputed from any stored call, and signals added later (greeting,
empathy, ...) light up items without a code change. An item whose evidence cannot exist
with the signal rules in use says "no evidence" and leaves the total alone, instead of
failing the agent for what nobody could hear. Pure and deterministic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agent_assist.core.call_facts import (
    EMPATHY_WINDOW_MS,
    PUSH_RULES,
    CallFacts,
    Message,
    Moment,
    TalkTimeline,
    call_facts,
    evidence_moment,
    talk_timeline,
)
from agent_assist.core.vocabulary import (
    COMPLAINT_SIGNALS,
    DISCOVERED_NEED_SIGNALS,
    REFUSAL_SIGNALS,
)

Status = Literal["scored", "no_evidence", "not_applicable"]

SCORECARD_VERSION = "scorecard.v1"

ITEM_TITLES: dict[str, str] = {
    "greeting_verification": "Greeting and verification",
    "needs_discovery": "Needs discovery",
    "listening": "Listening and talk share",
    "empathy": "Empathy on complaints",
    "offer_fit": "Offer fit and timing",
    "benefit_framing": "Benefit framing",
    "respect_for_no": "Respect for a refusal",
    "compliance": "Compliance",
    "closing": "Closing",
}
"""Every item the scorer knows, in scorecard order."""


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One scorecard item as configured: its weight, and whether a breach fails the call."""

    weight: float
    auto_fail: bool = False


def default_items() -> dict[str, ItemSpec]:
    return {
        "greeting_verification": ItemSpec(10),
        "needs_discovery": ItemSpec(15),
        "listening": ItemSpec(10),
        "empathy": ItemSpec(10),
        "offer_fit": ItemSpec(15),
        "benefit_framing": ItemSpec(10),
        "respect_for_no": ItemSpec(10),
        "compliance": ItemSpec(10, auto_fail=True),
        "closing": ItemSpec(10),
    }


@dataclass(frozen=True)
class Scorecard:
    """Items and weights (from ``[scorecard]`` in config.toml) and the timing thresholds."""

    items: Mapping[str, ItemSpec] = field(default_factory=default_items)
    silence_ms: int = 3000
    overlap_ms: int = 1000
    healthy_customer_share: float = 0.4
    fail_severities: frozenset[str] = frozenset({"high", "medium", "low"})
    """Warnings of these severities fail the compliance item; by default every warning does
    (a warning means a rule was broken, whatever its weight)."""


@dataclass(frozen=True, slots=True)
class Override:
    """A supervisor's score for one item (fraction 0..1) and the reason, kept beside the auto."""

    score: float
    reason: str
    by: str
    at: str


@dataclass(frozen=True, slots=True)
class ItemScore:
    item_id: str
    title: str
    weight: float
    auto_fail: bool
    status: Status
    auto: float | None
    """The automatic score as a fraction 0..1; None when there is no evidence to score."""
    summary: str
    moments: tuple[Moment, ...] = ()
    override: Override | None = None

    @property
    def final(self) -> float | None:
        return self.override.score if self.override is not None else self.auto

    @property
    def breached(self) -> bool:
        """An auto-fail item that ends at zero fails the whole call."""
        return self.auto_fail and self.final == 0


@dataclass(frozen=True, slots=True)
class CallScore:
    call_id: str
    version: str
    items: tuple[ItemScore, ...]

    @property
    def auto_total(self) -> float | None:
        return _total([(i.weight, i.auto, i.auto_fail and i.auto == 0) for i in self.items])

    @property
    def total(self) -> float | None:
        return _total([(i.weight, i.final, i.breached) for i in self.items])

    @property
    def failed(self) -> bool:
        return any(i.breached for i in self.items)

    def item(self, item_id: str) -> ItemScore:
        return next(i for i in self.items if i.item_id == item_id)


def _total(parts: Sequence[tuple[float, float | None, bool]]) -> float | None:
    """0-100 over the items that have evidence; any breached auto-fail item makes it 0."""
    if any(breached for _, _, breached in parts):
        return 0.0
    scored = [(w, s) for w, s, _ in parts if s is not None and w > 0]
    weight = sum(w for w, _ in scored)
    if weight == 0:
        return None
    return round(100 * sum(w * s for w, s in scored) / weight, 1)


# -- the items -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    facts: CallFacts
    card: Scorecard
    known: frozenset[str]
    timeline: TalkTimeline

    def can_hear(self, *signals: str) -> bool:
        return any(s in self.known for s in signals)


_Result = tuple[Status, float | None, str, tuple[Moment, ...]]


def _no_evidence(*signals: str) -> _Result:
    return (
        "no_evidence",
        None,
        f"no evidence: the signal rules in use cannot detect {' / '.join(signals)} yet",
        (),
    )


def _greeting(c: _Ctx) -> _Result:
    parts = ("greeting", "identity_verification")
    if not c.can_hear(*parts):
        return _no_evidence(*parts)
    found = {p: c.facts.of(p, speaker="agent") for p in parts if c.can_hear(p)}
    moments = tuple(s[0].moment(f"{p.replace('_', ' ')} heard") for p, s in found.items() if s)
    score = sum(1 for s in found.values() if s) / len(found)
    missing = [p.replace("_", " ") for p, s in found.items() if not s]
    summary = "greeting and verification done" if not missing else f"missing: {', '.join(missing)}"
    return "scored", score, summary, moments


def _first_offer_seq(c: _Ctx) -> int | None:
    offers = c.facts.offers()
    return offers[0].seq if offers else None


def _needs_discovery(c: _Ctx) -> _Result:
    first_offer = _first_offer_seq(c)
    if c.can_hear("needs_question"):
        questions = [
            s.moment("needs question") for s in c.facts.of("needs_question", speaker="agent")
        ]
    else:  # until the needs-question signal exists, an agent's question is the evidence
        questions = [
            Moment(
                u.start_ms,
                "agent",
                u.text,
                "question asked",
                u.seq,
                u.utterance_id,
                "scoring.agent_question.v1",
            )
            for u in c.facts.utterances
            if u.speaker == "agent" and u.text.rstrip().endswith(("?", "？", "か。", "か"))
        ]
    before = [q for q in questions if first_offer is None or q.seq < first_offer]
    if before:
        summary = f"{len(questions)} needs question(s), {len(before)} before any offer"
        return "scored", 1.0, summary, tuple(questions)
    if questions:
        return "scored", 0.5, "questions came only after the first offer", tuple(questions)
    return "scored", 0.0, "no needs-discovery question", ()


def _listening(c: _Ctx) -> _Result:
    tl = c.timeline
    share = tl.customer_share
    if share is None:
        return "not_applicable", None, "no speech in this call", ()
    healthy = c.card.healthy_customer_share
    score = min(1.0, share / healthy) if healthy > 0 else 1.0
    interruptions = [o for o in tl.overlaps if o.speaker == "agent"]
    score = max(0.0, score - 0.15 * len(interruptions))
    moments = tuple(
        Moment(
            o.start_ms,
            "agent",
            "",
            f"agent talked over the customer for {(o.end_ms - o.start_ms) / 1000:.1f} s",
        )
        for o in interruptions
    )
    summary = f"customer talk share {share:.0%}; {len(interruptions)} interruption(s)"
    return "scored", round(score, 3), summary, moments


def _empathy(c: _Ctx) -> _Result:
    complaints = c.facts.of(*COMPLAINT_SIGNALS, speaker="customer")
    if not complaints:
        return "not_applicable", None, "no complaint in this call", ()
    if not c.can_hear("empathy"):
        return _no_evidence("empathy")
    empathy = c.facts.of("empathy", speaker="agent")
    moments: list[Moment] = []
    met = 0
    for comp in complaints:
        reply = next(
            (e for e in empathy if comp.seq < e.seq and e.t_ms - comp.t_ms <= EMPATHY_WINDOW_MS),
            None,
        )
        if reply is not None:
            met += 1
            moments.append(reply.moment(f"empathy after {comp.signal.replace('_', ' ')}"))
        else:
            moments.append(comp.moment("complaint left without empathy"))
    return (
        "scored",
        met / len(complaints),
        f"{met} of {len(complaints)} complaint(s) met with empathy",
        tuple(moments),
    )


_NO_CREDIT_PHASES = {
    "retention": "offer made while the customer wants to leave",
    "declined": "offer made again after a no",
    "care": "offer made while the customer is upset",
}
"""An offer made in these phases never earns offer-fit credit, warning or not."""


def _phase_before(c: _Ctx, seq: int) -> str:
    """The call's phase just before the event numbered ``seq``."""
    phase = "opening"
    for p in c.facts.phases:
        if p.seq < seq:
            phase = p.event.to_phase
    return phase


def _offer_fit(c: _Ctx) -> _Result:
    offers = c.facts.offers()
    if not offers:
        return "not_applicable", None, "no offer made", ()
    needs = c.facts.of(*DISCOVERED_NEED_SIGNALS, speaker="customer")
    needs += c.facts.of("needs_question", speaker="agent")
    warned = {evidence_moment(w, "").utterance_id for w in c.facts.warnings}
    moments: list[Moment] = []
    fit = 0
    for offer in offers:
        phase = _phase_before(c, offer.seq)
        if offer.utterance_id in warned:
            moments.append(offer.moment("offer at the wrong time (a warning fired)"))
        elif phase in _NO_CREDIT_PHASES:
            moments.append(offer.moment(_NO_CREDIT_PHASES[phase]))
        elif not any(n.seq < offer.seq for n in needs):
            moments.append(offer.moment("offer before any need was heard or asked about"))
        else:
            fit += 1
            moments.append(offer.moment("offer matches a need the customer stated"))
    return (
        "scored",
        fit / len(offers),
        f"{fit} of {len(offers)} offer(s) fit a need and its moment",
        tuple(moments),
    )


def _benefit_framing(c: _Ctx) -> _Result:
    offers = c.facts.offers()
    centric = c.facts.of("company_centric", speaker="agent")
    moments = [s.moment("company-centric reason") for s in centric]
    if not c.can_hear("benefit_framing"):
        if centric:
            return "scored", 0.0, "company-centric reasons given", tuple(moments)
        return _no_evidence("benefit_framing")
    if not offers:
        return "not_applicable", None, "no offer made", ()
    framing = c.facts.of("benefit_framing", speaker="agent")
    framed = 0
    for offer in offers:
        hit = next(
            (
                f
                for f in framing
                if abs(f.seq - offer.seq) <= 8 and abs(f.t_ms - offer.t_ms) <= 15_000
            ),
            None,
        )
        if hit is not None:
            framed += 1
            moments.append(hit.moment("customer's gain named"))
    score = max(0.0, framed / len(offers) - 0.5 * len(centric))
    return (
        "scored",
        score,
        f"{framed} of {len(offers)} offer(s) framed as the customer's gain",
        tuple(moments),
    )


def _respect_for_no(c: _Ctx) -> _Result:
    refusals = c.facts.of(*REFUSAL_SIGNALS, speaker="customer")
    if not refusals:
        return "not_applicable", None, "the customer never said no", ()
    pushes = [w for w in c.facts.warnings if w.event.rule_id.startswith(PUSH_RULES)]
    # each no is cited with what the agent said next
    moments: list[Moment] = []
    for no in refusals:
        moments.append(no.moment("the customer said no"))
        reply = next(
            (u for u in c.facts.utterances if u.speaker == "agent" and u.seq > no.seq), None
        )
        if reply is not None:
            pushed = any(evidence_moment(w, "").utterance_id == reply.utterance_id for w in pushes)
            note = "the agent pushed again" if pushed else "the agent's next words"
            moments.append(
                Moment(reply.start_ms, "agent", reply.text, note, reply.seq, reply.utterance_id)
            )
    if pushes:
        moments += [evidence_moment(w, "pushed after the customer said no") for w in pushes]
        return "scored", 0.0, f"pushed after a no ({len(pushes)} time(s))", tuple(moments)
    return "scored", 1.0, "the no was respected", tuple(moments)


def _compliance(c: _Ctx) -> _Result:
    if not c.facts.warnings:
        return "scored", 1.0, "no compliance warning", ()
    breaches = [w for w in c.facts.warnings if w.event.severity in c.card.fail_severities]
    moments = tuple(evidence_moment(w, w.event.title) for w in c.facts.warnings)
    if breaches:
        return "scored", 0.0, f"{len(breaches)} compliance breach(es)", moments
    return "scored", 0.5, f"{len(moments)} minor warning(s)", moments


def _closing(c: _Ctx) -> _Result:
    if not c.can_hear("closing_summary"):
        return _no_evidence("closing_summary")
    summaries = c.facts.of("closing_summary", speaker="agent")
    if not summaries:
        return "scored", 0.0, "no closing summary", ()
    return "scored", 1.0, "closing summary given", (summaries[-1].moment("closing summary"),)


_ITEMS = {
    "greeting_verification": _greeting,
    "needs_discovery": _needs_discovery,
    "listening": _listening,
    "empathy": _empathy,
    "offer_fit": _offer_fit,
    "benefit_framing": _benefit_framing,
    "respect_for_no": _respect_for_no,
    "compliance": _compliance,
    "closing": _closing,
}


def score_call(
    messages: Iterable[Message],
    card: Scorecard | None = None,
    known_signals: Iterable[str] | None = None,
    overrides: Mapping[str, Override] | None = None,
) -> CallScore:
    """Score one call from its events. ``known_signals``: every signal the rules can detect
    (signals seen in the events always count as detectable)."""
    card = card or Scorecard()
    facts = call_facts(messages)
    known = frozenset(known_signals or ()) | {s.signal for s in facts.signals}
    ctx = _Ctx(facts, card, known, talk_timeline(facts, card.silence_ms, card.overlap_ms))
    items: list[ItemScore] = []
    for item_id, spec in card.items.items():
        status, auto, summary, moments = _ITEMS[item_id](ctx)
        items.append(
            ItemScore(
                item_id,
                ITEM_TITLES[item_id],
                spec.weight,
                spec.auto_fail,
                status,
                auto,
                summary,
                moments,
            )
        )
    score = CallScore(facts.call_id, SCORECARD_VERSION, tuple(items))
    return apply_overrides(score, overrides or {})


def apply_overrides(score: CallScore, overrides: Mapping[str, Override]) -> CallScore:
    return replace(
        score,
        items=tuple(replace(i, override=overrides.get(i.item_id)) for i in score.items),
    )


def score_to_json(score: CallScore) -> dict[str, Any]:
    """The scorecard as the review page and ``agent-assist score --json`` show it."""
    return {
        "call_id": score.call_id,
        "version": score.version,
        "total": score.total,
        "auto_total": score.auto_total,
        "failed": score.failed,
        "items": [
            {
                "item_id": i.item_id,
                "title": i.title,
                "weight": i.weight,
                "auto_fail": i.auto_fail,
                "status": i.status,
                "auto": i.auto,
                "final": i.final,
                "summary": i.summary,
                "override": None
                if i.override is None
                else {
                    "score": i.override.score,
                    "reason": i.override.reason,
                    "by": i.override.by,
                    "at": i.override.at,
                },
                "moments": [
                    {
                        "t_ms": m.t_ms,
                        "speaker": m.speaker,
                        "quote": m.quote,
                        "note": m.note,
                        "seq": m.seq,
                        "utterance_id": m.utterance_id,
                        "rule_id": m.rule_id,
                    }
                    for m in i.moments
                ],
            }
            for i in score.items
        ],
    }
