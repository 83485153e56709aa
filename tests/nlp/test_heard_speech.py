"""Signals on text as a recogniser writes it: wrong kanji with the right sound, long
product names with a voicing slip, "about" heard as "I'm out"; and look-alikes that must
not match. Phrasings written for these tests only.
"""

from __future__ import annotations

import pytest

from agent_assist.core.events import Speaker, TranscriptFinal
from agent_assist.core.signals import SignalDetector
from agent_assist.nlp.spacy_analyzer import (
    KanaReadings,
    find_reading,
    heard_as_said,
    unvoiced,
)


def read(detector: SignalDetector, speaker: Speaker, language: str, text: str) -> set[str]:
    final = TranscriptFinal(
        call_id="c",
        t_ms=0,
        utterance_id="u1",
        speaker=speaker,
        end_ms=2000,
        language=language,
        text=text,
    )
    out = set()
    for s in detector.read(final):
        out.add(s.signal)
        if s.detail:
            out.add(f"{s.signal}:{s.detail}")
    return out


@pytest.mark.parametrize(
    ("speaker", "text", "signal"),
    [
        # 解約 written with other kanji of the same sound
        ("customer", "来月で回線を開約しようと思ってるんです", "cancel_intent"),
        ("customer", "妻の分も戒約したいんですが", "cancel_intent"),
        # 料金 heard as 両金 / 良金
        ("customer", "ちょっと両金高いんですよね、毎月", "price_objection"),
        # a product name with the wrong kanji and a voicing slip (回線 → 改善)
        ("agent", "ご実家用に家族改善を追加されてはいかがですか", "cue.product:cross_sell"),
        # 補償 as 保証 / 保障
        ("agent", "端末保障もおつけできますが", "cue.product:cross_sell"),
        # ノルマ split by the recogniser into の + ルマ
        ("agent", "今月のルマがきついので助けてください", "company_centric"),
        # この機会 written この機械
        ("agent", "この機械にぜひ上のプランへ", "cue.reask"),
        # 繋がらない spelt in pieces
        ("customer", "もう三日も全然つ ながらへんねん", "anger"),
    ],
)
def test_japanese_heard_with_other_kanji_still_matches(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str
) -> None:
    assert signal in read(detector, speaker, "ja", text)


@pytest.mark.parametrize(
    ("speaker", "text", "signal"),
    [
        ("customer", "教習所に通い始めました", "pressure_language"),
        ("agent", "教習所の帰りでもつながりますよ", "pressure_language"),
        ("customer", "箱を開封して設定しました", "cancel_intent"),
        ("customer", "会社の約束で出かけます", "cancel_intent"),
        ("agent", "電波の状況は改善しております", "cue.product:cross_sell"),
        ("customer", "両親が来月遊びに来ます", "price_objection"),
        ("agent", "お名前の漢字を確認いたします", "company_centric"),
    ],
)
def test_japanese_sound_alikes_that_are_other_words_do_not_match(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str
) -> None:
    assert signal not in read(detector, speaker, "ja", text)


def test_kanji_by_kanji_readings_and_voicing_fold() -> None:
    kana = KanaReadings()
    assert "カイ" in kana.kanji("開")
    lattice = [kana.candidates("開", "ヒラケ"), kana.candidates("約し", "ヤクシ")]
    assert find_reading(lattice, "カイヤク") == [(0, 2)]
    # short readings need the sound exactly; long ones forgive voicing
    assert find_reading([kana.candidates("改善", "カイゼン")], "カイセン") == []
    joined = [kana.candidates("家族", "カゾク"), kana.candidates("改善", "カイゼン")]
    assert find_reading(joined, "カゾクカイセン") == [(0, 2)]
    assert unvoiced("ギガプラン") == "キカフラン"


@pytest.mark.parametrize(
    ("heard", "said"),
    [
        ("ok let me think I'm out it", "ok let me think about it"),
        (
            "did you ever thought I'm outed the family line",
            "did you ever thought about the family line",
        ),
        ("what's there to talk im out", "what's there to talk about"),
    ],
)
def test_about_heard_as_im_out_is_read_as_about(heard: str, said: str) -> None:
    text, where = heard_as_said(heard)
    assert text == said
    assert where is not None and len(where) == len(text) + 1


@pytest.mark.parametrize(
    "text",
    [
        "I think I'm out of data again",
        "I'm out all day so I never use it",
        "I know I'm out already, that's why I called",
        "honestly I'm out, cancel it",
    ],
)
def test_im_out_that_means_im_out_is_kept(text: str) -> None:
    assert heard_as_said(text) == (text, None)


def test_english_soft_no_with_about_misheard(detector: SignalDetector) -> None:
    assert "cue.soft_no" in read(detector, "customer", "en", "hmm let me think I'm out it first")
    assert "cue.soft_no" not in read(detector, "customer", "en", "I think I'm out of data")


@pytest.mark.parametrize(
    ("speaker", "text", "signal"),
    [
        # contractions written without apostrophes, as recognisers and hurried notes do
        ("customer", "i dont need the extra data thanks", "cue.soft_no"),
        ("customer", "yeah ok id love that, thank you", "agreement"),
        # a yes in everyday words
        ("customer", "Alright, go on then, add it.", "agreement"),
        ("customer", "Yes, let's get that sorted today.", "agreement"),
        ("customer", "That's perfect, exactly what I was after.", "agreement"),
        # a worry or a repeated problem is a need said
        ("customer", "I'm a bit worried about my kids' tablets", "cue.need"),
        ("customer", "we keep losing signal upstairs", "cue.need"),
        # an allowance that will not last
        ("customer", "the 3 gig really won't cut it with the new job", "usage_limit"),
        ("customer", "im always out by the last week of the month", "usage_limit"),
        # content said
        ("customer", "the new router has been brilliant, honestly", "satisfaction"),
        # a product with "would" and what it does is proposed
        ("agent", "The 50 gig plan would sort that out for ¥4,480.", "cue.proposal"),
        # a bill too high in plain words
        ("customer", "my payments are getting a bit too much now", "price_objection"),
    ],
)
def test_english_constructions_said_plainly(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str
) -> None:
    assert signal in read(detector, speaker, "en", text)


@pytest.mark.parametrize(
    ("speaker", "text", "signal"),
    [
        # look-alikes: the words are there, the meaning is not
        ("customer", "I want a phone for my son, nothing fancy", "anger"),
        ("customer", "It's the third month I've been with you and all good", "anger"),
        ("customer", "the lag is driving me mad when I game", "anger"),
        (
            "agent",
            "If you end it early you'd lose the discount for the months left.",
            "pressure_language",
        ),
        ("agent", "I'll flag it so the charge is checked before it's billed.", "pressure_language"),
        ("agent", "You'd still have a good margin over what you use.", "company_centric"),
        ("agent", "No problem, we'll leave it at the fibre upgrade then.", "offer_made"),
        ("customer", "I need an ID check for my daughter's line", "agreement"),
    ],
)
def test_english_look_alikes_do_not_match(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str
) -> None:
    assert signal not in read(detector, speaker, "en", text)


def test_evidence_quotes_the_words_heard_not_the_restored_ones(detector: SignalDetector) -> None:
    final = TranscriptFinal(
        call_id="c",
        t_ms=0,
        utterance_id="u1",
        speaker="customer",
        end_ms=2000,
        language="en",
        text="ok id like that one",
    )
    agreement = [s for s in detector.read(final) if s.signal == "agreement"]
    assert agreement
    quote = agreement[0].evidence
    assert quote.quote == final.text[quote.start : quote.end]
    assert "'" not in quote.quote


@pytest.mark.parametrize(
    "text",
    [
        "Honestly our margins on the fibre bundle are much better.",
        "The margin on this one is higher for us.",
        "My commission goes up if you take it.",
        "It's a top-margin line for us, so I'd push it.",
    ],
)
def test_margins_of_the_company_are_company_centric(detector: SignalDetector, text: str) -> None:
    assert "company_centric" in read(detector, "agent", "en", text)


@pytest.mark.parametrize(
    ("speaker", "language", "text", "signal"),
    [
        # words run together into one unknown katakana spelling
        ("customer", "ja", "エエトソレニスル", "agreement"),
        ("customer", "ja", "じゃあそちらに帰ってもらえますか", "agreement"),
        ("customer", "ja", "朝からずっとネットつな がらないんですよ", "anger"),
        # the allowance word after a number, heard as another word
        ("customer", "en", "I hit the 50 good cap every single month", "usage_limit"),
        ("customer", "en", "it's just too high for me at the moment", "price_objection"),
    ],
)
def test_recognised_spellings_of_known_constructions(
    detector: SignalDetector, speaker: Speaker, language: str, text: str, signal: str
) -> None:
    assert signal in read(detector, speaker, language, text)


@pytest.mark.parametrize(
    ("speaker", "language", "text", "signal"),
    [
        ("customer", "ja", "ソレニスルカドウカハ夫ト相談シマス", "price_objection"),
        ("customer", "en", "there are 5 good reasons to stay", "usage_limit"),
        ("customer", "en", "the hedge is too high for the signal", "price_objection"),
    ],
)
def test_recognised_spellings_look_alikes(
    detector: SignalDetector, speaker: Speaker, language: str, text: str, signal: str
) -> None:
    assert signal not in read(detector, speaker, language, text)


@pytest.mark.parametrize(
    ("speaker", "language", "text", "signal"),
    [
        (
            "agent",
            "en",
            "I'll just pop the security pack on, it's 330",
            "cue.proposal",
        ),
        ("agent", "en", "shall I stick a family line on for your son?", "cue.proposal"),
        ("customer", "en", "I keep running out before payday", "usage_limit"),
        ("customer", "en", "we're always hitting the cap with the kids home", "usage_limit"),
        ("customer", "en", "fine, go on and switch it", "agreement"),
        ("agent", "ja", "補償もつけになりますと安心かと存じます", "cue.proposal"),
        ("customer", "ja", "いまの20GBでも高いんですよね", "price_objection"),
    ],
)
def test_more_everyday_constructions(
    detector: SignalDetector, speaker: Speaker, language: str, text: str, signal: str
) -> None:
    assert signal in read(detector, speaker, language, text)


@pytest.mark.parametrize(
    ("speaker", "language", "text", "signal"),
    [
        ("customer", "en", "I never run out, I barely use it", "usage_limit"),
        (
            "customer",
            "en",
            "my son keeps running out of the house",
            "usage_limit",
        ),
        ("agent", "en", "I'll pop you a text with the details", "offer_made"),
    ],
)
def test_more_everyday_look_alikes(
    detector: SignalDetector, speaker: Speaker, language: str, text: str, signal: str
) -> None:
    assert signal not in read(detector, speaker, language, text)


@pytest.mark.parametrize(
    ("speaker", "language", "text", "signal", "present"),
    [
        (
            "agent",
            "en",
            "honestly I'd lock it in right now, prices move",
            "pressure_language",
            True,
        ),
        ("agent", "en", "I can't guarantee the price past tonight", "pressure_language", True),
        ("agent", "en", "I wouldn't sleep on it if I were you", "pressure_language", True),
        ("agent", "en", "I can't promise an engineer before tomorrow", "pressure_language", False),
        (
            "agent",
            "en",
            "we'll ring you back while we're waiting on the part",
            "pressure_language",
            False,
        ),
        ("agent", "en", "my branch needs the upgrades this month", "company_centric", True),
        ("agent", "en", "we're pushing the mesh hard this month", "company_centric", True),
        ("agent", "en", "my team will sort the refund today", "company_centric", False),
        ("customer", "en", "I'll shop around first and get back to you", "cue.soft_no", True),
        ("customer", "en", "I want to compare a few offers", "cue.soft_no", True),
        ("customer", "en", "do it, I'm getting a new phone too", "cue.soft_no", False),
        ("customer", "en", "how come we're paying double now?", "price_objection", True),
        ("customer", "en", "why am I paying for a landline I never use?", "price_objection", False),
        ("customer", "ja", "これって高くないですか", "price_objection", True),
        ("customer", "ja", "よそだと同じので2,000円なんですよ", "price_objection", True),
        ("customer", "ja", "高くないです、十分です", "price_objection", False),
        ("customer", "ja", "他社の電波はひどかったんですよ", "price_objection", False),
    ],
)
def test_round_three_constructions(
    detector: SignalDetector, speaker: Speaker, language: str, text: str, signal: str, present: bool
) -> None:
    assert (signal in read(detector, speaker, language, text)) is present


@pytest.mark.parametrize(
    ("speaker", "text", "signal", "present"),
    [
        ("customer", "じゃあ、50ギガにしてください", "agreement", True),
        ("customer", "ほな、それ付けといてくれる？", "agreement", True),
        ("customer", "気にしてください", "agreement", False),
        ("customer", "早くしてくれる？", "agreement", False),
        ("customer", "いつも残りを気にしてます", "usage_limit", True),
        ("customer", "人の目を気にしてしまうんです", "usage_limit", False),
        ("agent", "今月の目標がかかっておりまして", "company_centric", True),
        ("agent", "ノルマまであと一件なんです", "company_centric", True),
        ("agent", "目標は速度の改善です", "company_centric", False),
    ],
)
def test_japanese_requests_watching_and_targets(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str, present: bool
) -> None:
    assert (signal in read(detector, speaker, "ja", text)) is present


@pytest.mark.parametrize(
    ("speaker", "text", "signal", "present"),
    [
        ("agent", "how's the new router been treating you?", "needs_question", True),
        ("agent", "how are you finding the 20 gig plan?", "needs_question", True),
        ("customer", "my data's usually gone by the 20th", "usage_limit", True),
        ("customer", "it has to be working before the 15th", "usage_limit", False),
        ("customer", "can you post it before the end of the week", "usage_limit", False),
    ],
)
def test_experience_questions_and_dates(
    detector: SignalDetector, speaker: Speaker, text: str, signal: str, present: bool
) -> None:
    assert (signal in read(detector, speaker, "en", text)) is present


def test_a_known_word_sounds_only_as_the_dictionary_reads_it(detector: SignalDetector) -> None:
    # 条件 read kanji by kanji could be ジョウゲン (上限): a known word is not misspelt
    assert "usage_limit" not in read(detector, "customer", "ja", "解約の条件だけ聞きたいです")
    assert "ジョウケン" in KanaReadings().candidates("条件", "ジョウケン").exact
    assert "リョウキン" in KanaReadings().candidates("両金", "リョウガネ").exact
