"""One call's understanding pipeline: final transcripts in, everything the agent sees out.

The same ``CallSession`` serves a live call, a replayed recording and a scripted call,
so a stored call can be replayed through exactly the code path that served it. Besides
transcripts it takes the agent's marks on suggestions (``OfferFeedback``) and the
customer's CRM record (``link_customer``).
"""

from __future__ import annotations

import datetime as dt

from agent_assist.core.acts import interpret, own_plan, visible
from agent_assist.core.catalog import Catalog
from agent_assist.core.compliance import ComplianceChecker
from agent_assist.core.customer import CustomerContext
from agent_assist.core.decisions import DecisionLog
from agent_assist.core.events import (
    LANGUAGES,
    CustomerLinked,
    Event,
    FeedbackAction,
    OfferFeedback,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.offer_engine import OfferEngine
from agent_assist.core.phases import CallState
from agent_assist.core.policy import PolicyBook
from agent_assist.core.script import ScriptedCall, ScriptFeedback, turn_final
from agent_assist.core.signals import SignalDetector


class CallSession:
    """Composes signal detection, call state, offer engine and compliance for one call."""

    def __init__(
        self,
        detector: SignalDetector,
        book: PolicyBook,
        language: str,
        *,
        customer: CustomerContext | None = None,
        today: dt.date | None = None,
    ) -> None:
        self._detector = detector
        self.book = book
        self.language = language
        self.customer = customer
        self.state = CallState()
        self.now_ms = 0
        """The latest audio time seen; feedback from the console is stamped with it."""
        log = DecisionLog()
        lang = self._lang = _lang(language)
        self._offers = OfferEngine(book, lang, customer, today, log)
        self._compliance = ComplianceChecker(book, lang, customer, log)

    def set_language(self, language: str) -> None:
        """Fix the language once detected (calls may start as ``auto``)."""
        self.language = language
        self._offers.language = self._compliance.language = self._lang = _lang(language)

    def set_today(self, today: dt.date) -> None:
        """The call's date (days to renewal); the runtime reads the clock, not the core."""
        self._offers.today = today

    def link_customer(
        self, call_id: str, customer_id: str, customer: CustomerContext | None
    ) -> list[Event]:
        """Use this CRM record from now on; the event says what the engine will reason on."""
        self.customer = customer
        self._offers.customer = self._compliance.customer = customer
        return [
            customer_linked(
                call_id, self.now_ms, customer_id, customer, self.book.catalog, self.language
            )
        ]

    def suggestion(self, suggestion_id: str) -> Suggestion | None:
        return self._offers.suggestion(suggestion_id)

    def feedback_event(
        self, call_id: str, suggestion_id: str, action: FeedbackAction
    ) -> OfferFeedback | None:
        """The event for the agent's mark on a suggestion; None when no such suggestion."""
        s = self._offers.suggestion(suggestion_id)
        if s is None:
            return None
        return OfferFeedback(
            call_id=call_id,
            t_ms=self.now_ms,
            suggestion_id=suggestion_id,
            offer_id=s.offer_id,
            kind=s.kind,
            action=action,
        )

    def feed(self, event: Event) -> list[Event]:
        """Process one event; return the derived events in the order they happened."""
        if isinstance(event, OfferFeedback):
            return self._feedback(event)
        if not isinstance(event, TranscriptFinal):
            return []
        self.now_ms = max(self.now_ms, event.end_ms)
        heard = self._detector.read(event)
        named = self.book.catalog.find_all_named(event.text, self._lang)
        self.state.note_mentioned(p.product_id for p, _, _ in reversed(named))
        if not heard:
            if event.speaker == "customer":
                return list(self.state.note_calm_turn(event.call_id, event.t_ms))
            return []
        # what the customer has, said in this very utterance, counts for its acts
        if self.customer is None:
            self.state.note_own_plan(own_plan(event, heard, self.book.catalog, self._lang))
        # cues (cue.*) are read in context here and never leave the session
        heard, bought = interpret(
            event, heard, self.state, self.book.catalog, self._lang, self._held()
        )
        signals = visible(heard)
        phase_before = self.state.phase
        if event.speaker == "agent":
            offer = self._offers.resolve_agent_offer(event, signals, self.state)
            contexts = self.state.contexts(phase_before)
            changes = self.state.apply(heard, "agent", offer)
            decided = self._compliance.check(signals, phase_before, self.state, offer, contexts)
        else:
            own = (bought.kind, bought.product_id, "") if bought else ("", "", "")
            changes = self.state.apply(heard, "customer", own)
            decided = self._offers.on_customer(signals, phase_before, self.state)
        return [*signals, *changes, *decided]

    def _held(self) -> frozenset[str]:
        """What the customer has (record, own words) or took in this call."""
        held = {o.product_id for o in self.state.offers if o.outcome == "accepted"}
        held.update(self.state.own_plans)
        if self.customer is not None:
            held.update([self.customer.plan_id, *self.customer.products])
        held.discard("")
        return frozenset(held)

    def _feedback(self, fb: OfferFeedback) -> list[Event]:
        s = self._offers.suggestion(fb.suggestion_id)
        if s is None:
            return []
        phase_before = self.state.phase
        changes = (
            []
            if s.kind == "retention"
            else self.state.apply_feedback(
                fb.action, fb.call_id, fb.t_ms, s.kind, s.offer_id, s.suggestion_id
            )
        )
        return [*changes, *self._offers.on_feedback(fb, phase_before, self.state)]


def customer_linked(
    call_id: str,
    t_ms: int,
    customer_id: str,
    c: CustomerContext | None,
    catalog: Catalog,
    language: str,
) -> CustomerLinked:
    """The record as the console shows it, with a one-line summary in the call's language."""
    lang = _lang(language)
    if c is None:
        summary = "CRM に記録がありません" if lang == "ja" else "no CRM record"
        return CustomerLinked(
            call_id=call_id,
            t_ms=t_ms,
            customer_id=customer_id,
            known=False,
            name="",
            plan_id="",
            plan="",
            monthly_price=0,
            usage_gb=None,
            cap_gb=None,
            renewal_date="",
            tenure_months=0,
            churn_risk="",
            tier="",
            summary=summary,
        )
    plan = catalog.get(c.plan_id)
    plan_name = plan.name[lang] if plan else c.plan_id
    cap = plan.data_gb if plan else None
    parts = [f"{plan_name} {catalog.money(c.monthly_price, lang)}"]
    if c.usage_gb is not None and cap:
        parts.append(
            f"先月 {c.usage_gb:g}/{cap:g}GB"
            if lang == "ja"
            else f"used {c.usage_gb:g} of {cap:g} GB"
        )
    if c.renewal_date is not None:
        parts.append(
            f"更新 {c.renewal_date.isoformat()}"
            if lang == "ja"
            else f"renews {c.renewal_date.isoformat()}"
        )
    parts.append(f"ランク {c.tier}" if lang == "ja" else f"tier {c.tier}")
    parts.append(f"解約リスク {c.churn_risk}" if lang == "ja" else f"churn risk {c.churn_risk}")
    return CustomerLinked(
        call_id=call_id,
        t_ms=t_ms,
        customer_id=customer_id,
        known=True,
        name=c.name,
        plan_id=c.plan_id,
        plan=plan_name,
        monthly_price=c.monthly_price,
        usage_gb=c.usage_gb,
        cap_gb=cap,
        renewal_date=c.renewal_date.isoformat() if c.renewal_date else "",
        tenure_months=c.tenure_months,
        churn_risk=c.churn_risk,
        tier=c.tier,
        summary=" · ".join(parts),
    )


def _lang(language: str) -> str:
    return language if language in LANGUAGES else "en"


def play_script(session: CallSession, script: ScriptedCall, call_id: str) -> list[Event]:
    """Feed a scripted call's turns and console marks in time order; return every event.

    The marks (``OfferFeedback``) are included in the output, as the server stores them.
    """
    out: list[Event] = []
    pending = list(script.feedback)
    for i, turn in enumerate(script.turns, start=1):
        while pending and pending[0].at_ms < turn.end_ms:
            out += _mark(session, call_id, pending.pop(0))
        out += session.feed(turn_final(call_id, i, turn, script.language))
    for mark in pending:
        out += _mark(session, call_id, mark)
    return out


def _mark(session: CallSession, call_id: str, mark: ScriptFeedback) -> list[Event]:
    fb = session.feedback_event(call_id, mark.suggestion_id, mark.action)
    return [] if fb is None else [fb, *session.feed(fb)]
