"""Signal detection on real spaCy pipelines: speaker-aware, negation-scoped, robust."""

from __future__ import annotations

import pytest

from agent_assist.core.events import Speaker, TranscriptFinal
from agent_assist.core.signals import SignalDetector


def signals(detector: SignalDetector, language: str, speaker: Speaker, text: str) -> list[str]:
    final = TranscriptFinal(
        call_id="c",
        t_ms=0,
        utterance_id="u1",
        speaker=speaker,
        end_ms=1,
        language=language,
        text=text,
    )
    return [s.signal for s in detector.feed(final)]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "The connection is so slow, it keeps buffering.", ["speed_complaint"]),
        ("en", "It isn't slow anymore.", []),
        ("en", "That's way too expensive for us.", ["price_objection"]),
        ("en", "Sorry, I can't afford that.", ["price_objection"]),
        ("en", "I want to cancel my contract.", ["cancel_intent"]),
        ("en", "I don't want to cancel.", []),
        ("en", "No thanks.", ["refusal"]),
        ("en", "OK, I'll take it.", ["agreement"]),
        ("ja", "ネットが遅くて困っています", ["speed_complaint"]),
        ("ja", "遅くはないです", []),
        ("ja", "遅くないです", []),
        ("ja", "料金が高すぎます", ["price_objection"]),
        ("ja", "解約したいです", ["cancel_intent"]),
        ("ja", "解約はしません", []),
        ("ja", "解約したくないです", []),
        ("ja", "いえ、結構です", ["refusal"]),
        ("ja", "じゃあ、それにします", ["agreement"]),
    ],
)
def test_customer_signals(
    detector: SignalDetector, language: str, text: str, expected: list[str]
) -> None:
    assert signals(detector, language, "customer", text) == expected


def test_signals_are_speaker_aware(detector: SignalDetector) -> None:
    assert signals(detector, "ja", "agent", "解約の手続きをご案内します") == []
    assert signals(detector, "en", "agent", "I will help you with the cancellation.") == []
    assert signals(detector, "en", "customer", "You should upgrade now") == []
    assert signals(detector, "en", "agent", "You should upgrade now") == ["offer_made"]


def test_negation_scope_stops_at_a_clause_break(detector: SignalDetector) -> None:
    # the "not" belongs to the first clause; the complaint in the second one stands
    assert signals(detector, "en", "customer", "It's not the price, but the internet is slow.") == [
        "speed_complaint"
    ]
    assert signals(detector, "ja", "customer", "安くはないけど、遅いのが困ります") == [
        "speed_complaint"
    ]


def test_evidence_points_at_the_words(detector: SignalDetector) -> None:
    text = "最近、家のインターネットが遅くて困っています。"
    final = TranscriptFinal(
        call_id="c",
        t_ms=5000,
        utterance_id="customer-0001",
        speaker="customer",
        end_ms=9000,
        language="ja",
        text=text,
    )
    (sig,) = detector.feed(final)
    assert sig.rule_id == "ja.speed_complaint.v1"
    assert sig.evidence.quote == "遅く" == text[sig.evidence.start : sig.evidence.end]
    assert sig.t_ms == 5000 and sig.evidence.utterance_id == "customer-0001"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀😀😀",
        "ＡＢＣ１２３　全角",
        "slow 遅い mixed 解約",
        "x" * 50_000,
        "\x00\u200b\ufeff",
        "遅" * 5000,
    ],
)
def test_odd_input_never_raises(detector: SignalDetector, text: str) -> None:
    for language in ("ja", "en", "fr"):
        signals(detector, language, "customer", text)
