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
        final = TranscriptFinal(
            call_id="c",
            t_ms=0,
            utterance_id="u1",
            speaker="customer",
            end_ms=1,
            language=language,
            text=text,
        )
        for sig in detector.feed(final):  # no error, and evidence is a real span of the text
            ev = sig.evidence
            assert text[ev.start : ev.end] == ev.quote != ""


@pytest.mark.parametrize(
    ("language", "speaker", "text", "expected"),
    [
        ("en", "customer", "I always run out of data.", ["usage_limit"]),
        ("en", "customer", "My contract ends next month.", ["renewal_timing"]),
        ("en", "customer", "We're moving house in May.", ["life_change"]),
        ("en", "customer", "Another provider offered me a better deal.", ["competitor_mention"]),
        ("en", "customer", "It works great now.", ["satisfaction"]),
        ("en", "customer", "This is unacceptable!", ["anger"]),
        ("en", "customer", "Please close my bank account.", ["cancel_intent"]),
        ("en", "agent", "How often do you use it?", ["needs_question"]),
        ("en", "agent", "I'm so sorry to hear that.", ["empathy"]),
        ("en", "agent", "It is three times faster.", ["benefit_framing"]),
        ("en", "agent", "Good morning, this is Sam.", ["greeting"]),
        ("en", "agent", "Could you confirm your date of birth?", ["identity_verification"]),
        ("en", "agent", "To recap, the new plan starts Monday.", ["closing_summary"]),
        ("ja", "customer", "ギガが足りないんです。", ["usage_limit"]),
        ("ja", "customer", "来月で契約が満了します。", ["renewal_timing"]),
        ("ja", "customer", "来月引っ越すんです。", ["life_change"]),
        # a competitor is cheaper: a price objection by the definitions, and the competitor
        ("ja", "customer", "他社の方が安いんですよね。", ["competitor_mention", "price_objection"]),
        ("ja", "customer", "とても満足しています。", ["satisfaction"]),
        ("ja", "customer", "不満はありません。", ["satisfaction"]),
        ("ja", "customer", "いい加減にしてください！", ["anger"]),
        ("ja", "agent", "普段はどのようにお使いですか。", ["needs_question"]),
        ("ja", "agent", "ご不便をおかけして申し訳ございません。", ["empathy"]),
        ("ja", "agent", "速度は約三倍です。", ["benefit_framing"]),
        ("ja", "agent", "お電話ありがとうございます。", ["greeting"]),
        ("ja", "agent", "お客様番号をお願いします。", ["identity_verification"]),
        ("ja", "agent", "まとめますと、来月から変更になります。", ["closing_summary"]),
    ],
)
def test_every_signal_has_rules_in_both_languages(
    detector: SignalDetector, language: str, speaker: Speaker, text: str, expected: list[str]
) -> None:
    assert signals(detector, language, speaker, text) == expected


@pytest.mark.parametrize(
    ("language", "text", "detail"),
    [
        ("en", "How about our premium plan?", "upsell"),
        ("en", "Would you like to add a screen protector?", "cross_sell"),
        ("en", "We could put you on the Light plan instead.", "downsell"),
        ("ja", "上位プランへのアップグレードはいかがですか。", "upsell"),
        ("ja", "保護フィルムもご一緒にいかがですか。", "cross_sell"),
        ("ja", "ライトプランへの変更もできます。", "downsell"),
    ],
)
def test_offer_made_names_the_kind_of_offer(
    detector: SignalDetector, language: str, text: str, detail: str
) -> None:
    final = TranscriptFinal("c", 0, "u1", "agent", 1, language, text)
    (offer,) = [s for s in detector.feed(final) if s.signal == "offer_made"]
    assert offer.detail == detail


def test_the_existing_downsell_signal_stays(detector: SignalDetector) -> None:
    got = signals(detector, "en", "agent", "We could put you on the Light plan instead.")
    assert got == ["downsell_offer", "offer_made"]


@pytest.mark.parametrize(
    ("heard", "signal", "quote"),
    [
        ("改約します", "cancel_intent", "改約し"),  # 解約 heard right, written wrong
        ("おかげで回適になりました。", "satisfaction", "回適"),
        ("タシャだともっと安いんですよ", "competitor_mention", "タシャ"),
        ("ＭＮＰで移ります", "cancel_intent", "ＭＮＰ"),
    ],
)
def test_japanese_matches_survive_wrong_kanji_by_reading(
    detector: SignalDetector, heard: str, signal: str, quote: str
) -> None:
    final = TranscriptFinal("c", 0, "u1", "customer", 1, "ja", heard)
    found = {s.signal: s.evidence.quote for s in detector.feed(final)}
    assert found.get(signal) == quote


def test_look_alikes_are_not_the_signal(detector: SignalDetector) -> None:
    assert signals(detector, "en", "customer", "Can you cancel the last message I sent?") == []
    assert signals(detector, "en", "customer", "My card was declined at the shop.") == []
    assert signals(detector, "ja", "customer", "家にいないことが多いです。") == []


def test_full_width_and_capitals_are_folded_but_evidence_is_original(
    detector: SignalDetector,
) -> None:
    final = TranscriptFinal("c", 0, "u1", "customer", 1, "en", "I WANT TO CANCEL MY ＰＬＡＮ")
    (sig,) = detector.feed(final)
    assert sig.signal == "cancel_intent" and sig.evidence.quote == "CANCEL"
    assert signals(detector, "en", "customer", "The internet is so ｓｌｏｗ.") == [
        "speed_complaint"
    ]


def test_rule_files_are_validated_with_every_problem_listed() -> None:
    from agent_assist.core.rulebook import parse_signal_rules
    from agent_assist.errors import ConfigError

    doc = {
        "language": "ja",
        "negation": {"side": "after", "window": 4, "cues": ["ない"]},
        "rule": [
            {
                "id": "ja.x.v1",
                "signal": "refusal",
                "speakers": ["customer"],
                "detail": "upsell",
                "patterns": [[{"LEMMA": "a"}]],
            },
            {
                "id": "ja.y.v1",
                "signal": "cancel_intent",
                "speakers": ["customer"],
                "readings": ["かいやく"],
            },
            {
                "id": "ja.z.v1",
                "signal": "cancel_intent",
                "speakers": ["customer"],
                "veto": "yes",
                "readings": ["カイヤク"],
            },
        ],
    }
    with pytest.raises(ConfigError) as info:
        parse_signal_rules(doc, "bad.toml")
    text = str(info.value)
    assert "rule[0] (ja.x.v1).detail" in text
    assert "rule[1] (ja.y.v1).readings: must be katakana" in text
    assert "rule[2] (ja.z.v1).veto" in text
