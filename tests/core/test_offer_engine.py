"""The offer engine and compliance checker on constructed signals, including signals the
detector does not have yet (anger, renewal, satisfaction...): what is shown, what is held
back and by which rule, and what the agent's marks change."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from agent_assist.core.customer import CustomerContext
from agent_assist.core.events import (
    ComplianceWarning,
    Decision,
    Event,
    Evidence,
    SignalDetected,
    Speaker,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.policy import PolicyBook
from agent_assist.core.session import CallSession
from agent_assist.crm import FileCustomerDirectory


class ScriptedDetector:
    """Returns the signals the test names for each utterance text (no NLP)."""

    def __init__(self, by_text: dict[str, list[tuple[str, str]]]) -> None:
        self.by_text = by_text

    def feed(self, final: TranscriptFinal) -> list[SignalDetected]:
        out = []
        for name, detail in self.by_text.get(final.text, []):
            ev = Evidence(final.utterance_id, final.speaker, final.text, 0, 1, final.text[:1])
            out.append(
                SignalDetected(
                    call_id=final.call_id,
                    t_ms=final.t_ms,
                    signal=name,
                    speaker=final.speaker,
                    rule_id=f"test.{name}.v1",
                    evidence=ev,
                    detail=detail,
                )
            )
        return out

    def read(self, final: TranscriptFinal) -> list[SignalDetected]:
        return self.feed(final)


class Call:
    def __init__(
        self,
        book: PolicyBook,
        customer: CustomerContext | None = None,
        language: str = "en",
        today: dt.date | None = None,
    ) -> None:
        self.detector = ScriptedDetector({})
        self.session = CallSession(
            self.detector,  # type: ignore[arg-type]
            book,
            language,
            customer=customer,
            today=today,
        )
        self.n = 0
        self.t = 0

    def say(self, speaker: Speaker, text: str, *signals: str, detail: str = "") -> list[Event]:
        self.n += 1
        self.t += 5000
        self.detector.by_text[text] = [(s, detail) for s in signals]
        final = TranscriptFinal(
            call_id="c",
            t_ms=self.t,
            utterance_id=f"u{self.n}",
            speaker=speaker,
            end_ms=self.t + 2000,
            language=self.session.language,
            text=text,
        )
        return self.session.feed(final)

    def mark(self, suggestion_id: str, action: str) -> list[Event]:
        fb = self.session.feedback_event("c", suggestion_id, action)  # type: ignore[arg-type]
        assert fb is not None
        return [fb, *self.session.feed(fb)]


def shown(events: list[Event]) -> list[tuple[str, str, str]]:
    out = []
    for e in events:
        if isinstance(e, Suggestion):
            out.append(("suggestion", e.rule_id, e.offer_id))
        elif isinstance(e, ComplianceWarning):
            out.append(("warning", e.rule_id, ""))
    return out


def held(events: list[Event]) -> dict[str, str]:
    return {e.rule_id: e.decided_by for e in events if isinstance(e, Decision)}


@pytest.fixture(scope="module")
def crm(policy_book: PolicyBook) -> FileCustomerDirectory:
    return FileCustomerDirectory.load(None, policy_book.catalog)


def customer(crm: FileCustomerDirectory, cid: str) -> CustomerContext:
    record = crm.lookup(cid)
    assert record is not None
    return record


def test_usage_rule_quotes_the_customers_numbers(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    call = Call(policy_book, customer(crm, "C-1001"))
    events = call.say("customer", "slow", "speed_complaint")
    (s,) = [e for e in events if isinstance(e, Suggestion)]
    assert (s.rule_id, s.offer_id) == ("offer.upsell_on_usage.v1", "data_50gb")
    assert "18.2 of your 20 GB" in s.line and "¥1,000 more" in s.line
    assert s.priority == 100 and s.expires_ms == s.t_ms + 90_000  # 90 + tier A bonus 10
    assert held(events)["offer.upsell_on_speed.v2"] == "suppress.lower_rank.v1"


def test_every_candidate_gets_exactly_one_decision(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    events = call.say("customer", "slow and too expensive", "speed_complaint", "price_objection")
    decisions = [e for e in events if isinstance(e, Decision)]
    assert len({d.rule_id for d in decisions}) == len(decisions)
    outcomes = {d.rule_id: (d.outcome, d.decided_by) for d in decisions}
    # a price objection in the same breath: no upsell past a stated budget; the downsell wins
    assert outcomes["offer.upsell_on_speed.v2"] == ("suppressed", "suppress.budget.v1")
    assert outcomes["offer.downsell_on_price.v2"][0] == "shown"
    assert outcomes["offer.upsell_on_usage.v1"] == ("suppressed", "suppress.customer_fit.v1")


def test_no_line_states_a_number_it_does_not_have(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    # Emily holds no mobile data cap: the usage rule does not fit, and no "you used" line
    call = Call(policy_book, customer(crm, "C-1003"))
    lines = [
        e.line for e in call.say("customer", "slow", "speed_complaint") if isinstance(e, Suggestion)
    ]
    assert lines and not any("used" in line for line in lines)
    # no customer: the generic line names catalogue facts only, never "your"
    anon = Call(policy_book)
    (s,) = [e for e in anon.say("customer", "slow", "speed_complaint") if isinstance(e, Suggestion)]
    assert "your" not in s.line.lower() and "¥1,000" in s.line


def test_an_angry_customer_gets_care_and_no_offer_until_calm(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    events = call.say("customer", "furious, it is slow", "anger", "speed_complaint")
    assert shown(events) == [("suggestion", "care.calm_on_anger.v1", "")]
    assert held(events)["offer.upsell_on_speed.v2"] == "suppress.upset.v1"
    warned = call.say("agent", "upgrade now", "offer_made")
    assert shown(warned) == [("warning", "compliance.pitch_during_complaint.v1", "")]
    assert call.session.state.phase == "care"
    call.say("customer", "ok")
    calm = call.say("customer", "fine")
    assert [e.to_phase for e in calm if hasattr(e, "to_phase")] == ["discovery"]
    again = call.say("customer", "still slow at night", "speed_complaint")
    assert ("suggestion", "offer.upsell_on_speed.v2", "fiber_1g") in shown(again)


def test_satisfaction_calms_an_upset_customer_at_once(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "angry", "anger")
    call.say("customer", "thanks, it works now", "satisfaction")
    assert call.session.state.phase == "discovery"


def test_renewal_window_needs_the_date_and_the_record(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    haruto = customer(crm, "C-1006")  # renews 2026-12-10, 15.4 of 20 GB, annual term
    near = Call(policy_book, haruto, today=dt.date(2026, 11, 22))
    near.say("agent", "how do you use it?", "needs_question")
    (s,) = [e for e in near.say("customer", "great", "satisfaction") if isinstance(e, Suggestion)]
    assert s.rule_id == "offer.upsell_at_renewal_window.v1"
    assert "18 days" in s.line and "¥1,000 more" in s.line  # keeps the annual discount
    far = Call(policy_book, haruto, today=dt.date(2026, 6, 1))
    far.say("agent", "how do you use it?", "needs_question")
    events = far.say("customer", "great", "satisfaction")
    assert held(events)["offer.upsell_at_renewal_window.v1"] == "suppress.customer_fit.v1"
    # satisfaction upsell wants a few turns of trust first
    assert held(events)["offer.upsell_on_satisfaction.v2"] == "suppress.customer_fit.v1"


def test_satisfaction_before_any_need_is_no_opening(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    call = Call(policy_book, customer(crm, "C-1001"), today=dt.date(2026, 6, 1))
    for text in ("a", "b"):
        call.say("customer", text)
    events = call.say("customer", "love it", "satisfaction")
    assert held(events)["offer.upsell_on_satisfaction.v2"] == "suppress.no_need_heard.v1"


def test_tier_d_and_churn_do_not_get_the_satisfaction_upsell(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    david = customer(crm, "C-1005")  # tier D, already on the top plan
    call = Call(policy_book, david, today=dt.date(2026, 6, 1))
    call.say("agent", "how do you use it?", "needs_question")
    for text in ("a", "b"):
        call.say("customer", text)
    events = call.say("customer", "love it", "satisfaction")
    assert held(events)["offer.upsell_on_satisfaction.v2"] == "suppress.customer_fit.v1"


def test_family_line_only_for_a_family_change(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    aoi = customer(crm, "C-1001")
    call = Call(policy_book, aoi, language="ja")
    events = call.say("customer", "子どもが生まれました", "life_change", detail="family")
    (s,) = [e for e in events if isinstance(e, Suggestion)]
    assert s.offer_id == "family_line" and "1,100円" in s.line and "20GBプラン" in s.line
    moved = Call(policy_book, aoi)
    assert shown(moved.say("customer", "we moved", "life_change", detail="move")) == []
    holder = Call(policy_book, replace(aoi, products=("family_line",)))
    events = holder.say("customer", "baby", "life_change", detail="family")
    assert held(events)["offer.family_line_on_life_change.v1"] == "suppress.no_target.v1"


def test_a_higher_ranked_current_card_holds_a_lower_one(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    first = call.say("customer", "slow", "speed_complaint")  # priority 80, current
    assert shown(first)[0][1] == "offer.upsell_on_speed.v2"
    events = call.say("customer", "we just had a baby", "life_change", detail="family")
    assert held(events)["offer.family_line_on_life_change.v1"] == "suppress.one_at_a_time.v1"


def test_an_expired_card_no_longer_holds_others(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "slow", "speed_complaint")
    call.t += 120_000  # past the 90 s expiry
    events = call.say("customer", "baby", "life_change", detail="family")
    assert ("suggestion", "offer.family_line_on_life_change.v1", "family_line") in shown(events)


def test_the_same_product_is_not_shown_twice_while_current(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "slow", "speed_complaint")
    events = call.say("customer", "so slow", "speed_complaint")
    assert shown(events) == []
    assert held(events)["offer.upsell_on_speed.v2"] == "suppress.one_at_a_time.v1"


def test_a_dismissed_offer_never_comes_back(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "slow", "speed_complaint")
    marked = call.mark("s-1", "dismissed")
    assert marked[0].TYPE == "offer.feedback" and len(marked) == 1
    call.t += 200_000
    events = call.say("customer", "still slow", "speed_complaint")
    assert (
        shown(events) == [] and held(events)["offer.upsell_on_speed.v2"] == "suppress.dismissed.v1"
    )


def test_accepted_mark_opens_the_cross_sell_window(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    call = Call(policy_book, customer(crm, "C-1003"))
    call.say("customer", "slow", "speed_complaint")
    events = call.mark("s-1", "accepted")
    assert call.session.state.phase == "accepted"
    assert ("suggestion", "offer.cross_sell_after_decision.v1", "mesh_wifi") in shown(events)
    accepted = call.session.state.last_accepted
    assert accepted is not None and accepted.product_id == "fiber_1g"


def test_cross_sell_without_a_known_decision_is_held_as_unrelated(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("agent", "how about this?", "offer_made")  # names no product, no card current
    events = call.say("customer", "ok, I'll take it", "agreement")
    assert held(events)["offer.cross_sell_after_decision.v1"] == "suppress.unrelated.v1"


def test_declined_mark_then_the_same_pitch_is_pushing(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "slow", "speed_complaint")
    call.mark("s-1", "declined")
    events = call.say("agent", "I recommend the fiber plan", "offer_made")
    assert shown(events) == [("warning", "compliance.push_after_no.v1", "")]


def test_one_downsell_after_a_price_no_then_stop(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("customer", "slow", "speed_complaint")
    call.say("agent", "I recommend the fiber plan", "offer_made")
    call.say("customer", "too expensive", "price_objection")
    ok = call.say("agent", "how about the light plan", "offer_made", "downsell_offer")
    assert shown(ok) == [] and held(ok)["compliance.push_after_no.v1"] == (
        "allow.downsell_after_price_no.v1"
    )
    call.say("customer", "no thanks", "refusal")
    again = call.say("agent", "an even cheaper option", "offer_made", "downsell_offer")
    assert shown(again) == [("warning", "compliance.push_after_no.v1", "")]


def test_competitor_mention_is_a_price_reason(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    call = Call(policy_book, customer(crm, "C-1002"))
    events = call.say("customer", "X is cheaper", "competitor_mention", "price_objection")
    assert ("suggestion", "offer.downsell_on_price.v2", "data_20gb") in shown(events)
    pitch = call.say("agent", "I recommend the unlimited plan", "offer_made", detail="upsell")
    assert shown(pitch) == [("warning", "compliance.past_budget.v2", "")]


def test_a_competitor_named_without_price_states_no_budget(
    policy_book: PolicyBook, crm: FileCustomerDirectory
) -> None:
    call = Call(policy_book, customer(crm, "C-1002"))
    call.say("customer", "my internet is with another company", "competitor_mention")
    pitch = call.say("agent", "I recommend the unlimited plan", "offer_made", detail="upsell")
    assert not call.session.state.budget_stated
    assert ("warning", "compliance.past_budget.v2", "") not in shown(pitch)


def test_closing_holds_new_offers(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    call.say("agent", "to summarise", "closing_summary")
    events = call.say("customer", "slow", "speed_complaint")
    assert shown(events) == [] and held(events)["offer.upsell_on_speed.v2"] == "suppress.closing.v1"


def test_unknown_feedback_and_customer_are_handled(policy_book: PolicyBook) -> None:
    call = Call(policy_book)
    assert call.session.feedback_event("c", "s-9", "used") is None
    (linked,) = call.session.link_customer("c", "C-404", None)
    assert linked.TYPE == "customer.linked" and not linked.known  # type: ignore[attr-defined]


def test_replays_are_identical(policy_book: PolicyBook, crm: FileCustomerDirectory) -> None:
    def run() -> list[Event]:
        call = Call(policy_book, customer(crm, "C-1001"), today=dt.date(2026, 11, 22))
        out = call.say("customer", "slow", "speed_complaint")
        out += call.mark("s-1", "accepted")
        out += call.say("agent", "to summarise", "closing_summary")
        return out

    assert run() == run()
