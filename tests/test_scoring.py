"""The scorecard from events: scripted calls with expected item scores, and hand-built calls
that exercise each item's evidence directly (greeting, empathy, closing ...)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from agent_assist.config import parse_config
from agent_assist.core.call_facts import call_facts, feedback_of, offer_outcomes, talk_timeline
from agent_assist.core.events import (
    CallEnded,
    CallStarted,
    Event,
    Evidence,
    Numbered,
    OfferFeedback,
    PhaseChanged,
    SignalDetected,
    Speaker,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.policy import PolicyBook
from agent_assist.core.scoring import ItemSpec, Override, Scorecard, score_call
from agent_assist.core.script import parse_script, turn_final
from agent_assist.core.session import CallSession
from agent_assist.core.signals import SignalDetector
from agent_assist.core.vocabulary import SIGNAL_NAMES
from agent_assist.errors import ConfigError, ProtocolError
from agent_assist.protocol import decode_events, encode_event
from tests.conftest import CALLS

TODAY = SIGNAL_NAMES


def scripted_messages(
    path: Path, detector: SignalDetector, book: PolicyBook
) -> list[Numbered[Event]]:
    """A scripted call's events exactly as the server would store them, read back."""
    script = parse_script(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
    session = CallSession(detector, book, script.language)
    events: list[Event] = []
    for i, turn in enumerate(script.turns, start=1):
        final = turn_final("c-test", i, turn, script.language)
        events += [final, *session.feed(final)]
    return decode_events(
        json.loads(encode_event(e, seq, 0)) for seq, e in enumerate(events, start=1)
    )


# item -> expected automatic fraction (None: no evidence / not applicable)
EXPECTED = {
    "en_demo": {
        "greeting_verification": 0.5,  # greeted, identity never verified
        "needs_discovery": 1.0,
        "listening": 0.89,
        "empathy": 0.5,  # the speed complaint met with empathy, the cancellation not
        "offer_fit": 0.5,
        "benefit_framing": 0.5,  # "three times faster" framed; the deadline pitch not
        "respect_for_no": 0.0,
        "compliance": 0.0,
        "closing": 0.0,
    },
    "en_downsell_after_price_no": {
        "needs_discovery": 0.0,  # the first offer came before any needs question
        # only the first offer fits: the cheaper one (allowed) and the push both came after
        # a no, and an offer after a no never earns offer-fit credit
        "offer_fit": 1 / 3,
        "respect_for_no": 0.0,
        "compliance": 0.0,
    },
    "en_negated_complaint": {
        "needs_discovery": 0.0,
        "listening": 1.0,
        "empathy": 0.0,  # the real complaint at the end is left without empathy
        "offer_fit": None,
        "respect_for_no": None,
        "compliance": 1.0,
    },
    "ja_demo": {"needs_discovery": 1.0, "offer_fit": 0.5, "compliance": 0.0},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scripted_calls_score_as_expected(
    name: str, detector: SignalDetector, policy_book: PolicyBook
) -> None:
    score = score_call(
        scripted_messages(CALLS / f"{name}.toml", detector, policy_book), None, TODAY
    )
    got = {k: score.item(k).auto for k in EXPECTED[name]}
    assert got == pytest.approx(EXPECTED[name], abs=0.001)


def test_demo_call_fails_on_compliance_with_cited_moments(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    score = score_call(
        scripted_messages(CALLS / "en_demo.toml", detector, policy_book), None, TODAY
    )
    compliance = score.item("compliance")
    assert compliance.breached and score.failed and score.total == 0.0
    assert [m.quote for m in compliance.moments] == [
        "upgrade",
        "upgrade",
        "upgrade",
        "only available today",
    ]
    assert all(m.t_ms == 26700 and m.speaker == "agent" for m in compliance.moments)
    greeting = score.item("greeting_verification")
    assert greeting.status == "scored" and greeting.auto == 0.5
    assert "identity verification" in greeting.summary  # greeted, never verified


def test_offer_fit_gives_no_credit_in_retention_or_after_a_no(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    score = score_call(
        scripted_messages(CALLS / "en_retention_second_downsell.toml", detector, policy_book),
        None,
        TODAY,
    )
    fit = score.item("offer_fit")
    assert fit.auto == 0.0
    notes = {m.note for m in fit.moments}
    assert "offer made while the customer wants to leave" in notes
    assert "offer made again after a no" in notes or any("warning" in n for n in notes)
    no = score.item("respect_for_no")
    assert no.auto == 0.0
    assert {"the customer said no", "the agent pushed again"} <= {m.note for m in no.moments}


def test_a_clean_call_totals_over_the_items_with_evidence(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    score = score_call(
        scripted_messages(CALLS / "en_negated_complaint.toml", detector, policy_book), None, TODAY
    )
    # greeting 0/10, needs discovery 0/15, listening 10/10, empathy 0/10, compliance 10/10,
    # closing 0/10: 20 of 65 points; offer fit, framing and respect for a no do not apply
    assert not score.failed and score.total == pytest.approx(100 * 20 / 65, abs=0.1)


# -- hand-built calls: future signals light their items up -------------------------------

SEQ = iter(range(1, 10_000))


def utt(uid: str, speaker: Speaker, start: int, end: int, text: str) -> Numbered[Event]:
    final = TranscriptFinal("c-h", start, uid, speaker, end, "en", text)
    return Numbered(next(SEQ), final)


def sig(name: str, speaker: Speaker, uid: str, t_ms: int, quote: str = "x") -> Numbered[Event]:
    evidence = Evidence(uid, speaker, quote, 0, len(quote), quote)
    return Numbered(
        next(SEQ), SignalDetected("c-h", t_ms, name, speaker, f"en.{name}.v1", evidence)
    )


def good_call() -> list[Numbered[Event]]:
    """Greeting, verification, a needs question, empathy, a framed fitting offer, a summary."""
    started = CallStarted("c-h", 0, "en", ("agent", "customer"), "", None, "text", "")
    return [
        Numbered(next(SEQ), started),
        utt("agent-0001", "agent", 0, 3000, "Hello, Nova Mobile, Sam speaking."),
        sig("greeting", "agent", "agent-0001", 0, "Hello"),
        utt("agent-0002", "agent", 3500, 6000, "May I have your date of birth?"),
        sig("identity_verification", "agent", "agent-0002", 3500, "date of birth"),
        utt("customer-0003", "customer", 6500, 14000, "My internet is slow and it annoys me."),
        sig("speed_complaint", "customer", "customer-0003", 6500, "slow"),
        utt("agent-0004", "agent", 14500, 17000, "I'm sorry. How do you use it?"),
        sig("empathy", "agent", "agent-0004", 14500, "I'm sorry"),
        sig("needs_question", "agent", "agent-0004", 14500, "How do you use it"),
        utt("customer-0005", "customer", 17500, 25000, "Streaming and games every evening."),
        utt("agent-0006", "agent", 25500, 30000, "I'd recommend fiber: three times faster."),
        sig("offer_made", "agent", "agent-0006", 25500, "recommend"),
        sig("benefit_framing", "agent", "agent-0006", 25500, "three times faster"),
        utt("customer-0007", "customer", 30500, 34000, "OK, I'll take it."),
        sig("agreement", "customer", "customer-0007", 30500, "I'll take it"),
        utt("agent-0008", "agent", 34500, 38000, "So: fiber from Monday. Thanks for calling!"),
        sig("closing_summary", "agent", "agent-0008", 34500, "So: fiber from Monday"),
        Numbered(next(SEQ), CallEnded("c-h", 38000, "hangup", 38000)),
    ]


def test_future_signals_light_up_their_items() -> None:
    score = score_call(good_call())  # no known_signals: what the events show is detectable
    by_item = {i.item_id: (i.status, i.auto) for i in score.items}
    assert by_item == {
        "greeting_verification": ("scored", 1.0),
        "needs_discovery": ("scored", 1.0),
        "listening": ("scored", 1.0),
        "empathy": ("scored", 1.0),
        "offer_fit": ("scored", 1.0),
        "benefit_framing": ("scored", 1.0),
        "respect_for_no": ("not_applicable", None),
        "compliance": ("scored", 1.0),
        "closing": ("scored", 1.0),
    }
    assert score.total == 100.0
    assert score.item("empathy").moments[0].quote == "I'm sorry"


def test_a_detectable_signal_that_never_fired_scores_zero_not_no_evidence() -> None:
    events = [
        e for e in good_call() if getattr(e.event, "signal", None) not in ("greeting", "empathy")
    ]
    score = score_call(events, known_signals=TODAY | {"greeting", "empathy"})
    assert score.item("greeting_verification").auto == 0.5  # verified, not greeted
    empathy = score.item("empathy")
    assert empathy.auto == 0.0 and empathy.moments[0].note == "complaint left without empathy"


def test_talk_timeline_silences_and_overlaps() -> None:
    events = [
        utt("agent-0001", "agent", 0, 4000, "a"),
        utt("customer-0002", "customer", 3500, 6000, "b"),  # 0.5 s overlap: too short
        utt("agent-0003", "agent", 9000, 12000, "c"),  # 3 s silence before it
        utt("customer-0004", "customer", 10000, 14000, "d"),  # 2 s overlap, customer over agent
        utt("agent-0005", "agent", 12500, 15000, "e"),  # agent over customer, 1.5 s
    ]
    tl = talk_timeline(call_facts(events), silence_ms=3000, overlap_ms=1000)
    assert [(s.start_ms, s.end_ms) for s in tl.silences] == [(6000, 9000)]
    assert [(o.start_ms, o.end_ms, o.speaker) for o in tl.overlaps] == [
        (10000, 12000, "customer"),
        (12500, 14000, "agent"),
    ]
    assert tl.talk_ms == {"agent": 9500, "customer": 6500}
    listening = score_call(events).item("listening")
    assert len(listening.moments) == 1 and "talked over" in listening.moments[0].note


def test_feedback_events_are_read_through_one_mapping() -> None:
    mark = OfferFeedback("c-h", 5, "s-1", "fiber_1g", "upsell", "used")
    fb = feedback_of(Numbered(9, mark))
    assert fb is not None and (fb.seq, fb.t_ms, fb.suggestion_id, fb.action) == (
        9,
        5,
        "s-1",
        "used",
    )
    assert feedback_of(sig("agreement", "customer", "customer-0001", 0)) is None


def test_offer_outcomes_prefer_feedback_then_the_transcript() -> None:
    base = good_call()
    card = Suggestion(
        "c-h", 6500, "s-1", "upsell", "fiber_1g", "Fiber 1G", "L", "r", "offer.fiber.v1",
        Evidence("customer-0003", "customer", "slow", 0, 4, "slow"),
    )  # fmt: skip
    suggestion = Numbered(base[6].seq, card)
    accepted = Numbered(
        base[-2].seq + 1, PhaseChanged("c-h", 30500, "offer_open", "accepted", "phase.v1", None)
    )
    events = sorted([*base, suggestion, accepted], key=lambda e: e.seq)
    (o,) = offer_outcomes(call_facts(events))
    assert (o.used, o.outcome, o.known_from) == (True, "accepted", "transcript")
    declined = Numbered(
        10_000, OfferFeedback("c-h", 40000, "s-1", "fiber_1g", "upsell", "declined")
    )
    (o,) = offer_outcomes(call_facts([*events, declined]))
    assert (o.outcome, o.known_from) == ("declined", "feedback")


def test_a_stored_event_missing_a_field_fails_instead_of_scoring_zero() -> None:
    stored = [json.loads(encode_event(e.event, e.seq, 0)) for e in good_call()]
    for m in stored:
        if m["type"] == "signal":
            m["data"]["name"] = m["data"].pop("signal")  # a renamed field
    with pytest.raises(ProtocolError, match="signal"):
        score_call(decode_events(stored))


def test_override_keeps_the_automatic_score_beside_it_and_can_lift_an_auto_fail(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    msgs = scripted_messages(CALLS / "en_demo.toml", detector, policy_book)
    over = {"compliance": Override(1.0, "the deadline was a real promotion", "sup", "t")}
    score = score_call(msgs, None, TODAY, over)
    item = score.item("compliance")
    assert item.auto == 0.0 and item.final == 1.0 and not score.failed
    assert score.auto_total == 0.0 and score.total is not None and score.total > 0


def test_weights_and_items_come_from_config(tmp_path: Path) -> None:
    doc = {
        "scorecard": {
            "silence_ms": 4000,
            "fail_severities": ["high"],
            "items": {
                "compliance": {"weight": 50, "auto_fail": False},
                "listening": {"weight": 50},
            },
        }
    }
    card = parse_config(doc, "t", tmp_path).scorecard
    assert card.silence_ms == 4000 and card.fail_severities == frozenset({"high"})
    assert card.items == {"compliance": ItemSpec(50, False), "listening": ItemSpec(50, False)}
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"scorecard": {"items": {"charm": {"weight": 1}, "closing": {"weight": -1}}}},
            "t",
            tmp_path,
        )
    assert any("charm" in p for p in info.value.problems)
    assert any("closing.weight" in p for p in info.value.problems)


def test_medium_warnings_do_not_fail_when_only_high_severity_fails(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    msgs = scripted_messages(CALLS / "en_company_centric.toml", detector, policy_book)
    card = Scorecard(fail_severities=frozenset({"high"}))
    score = score_call(msgs, card, TODAY)
    assert score.item("compliance").auto == 0.5 and not score.failed
