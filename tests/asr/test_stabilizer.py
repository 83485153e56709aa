"""The stabiliser commits only what successive hypotheses agree on, in Japanese too."""

from __future__ import annotations

import unicodedata

from agent_assist.asr.stabilizer import Stabilizer


def test_english_commits_agreed_words_and_holds_back_the_last() -> None:
    s = Stabilizer("en")
    assert not s.feed("I want to")
    assert s.text == ""
    assert s.feed("I want to cancel my")  # agrees on "I want to"; "to" is not the last unit
    assert s.text == "I want to"
    assert s.feed("i want to cancel my plan.")
    assert s.text == "I want to cancel my"


def test_a_contradicting_hypothesis_never_takes_words_back() -> None:
    s = Stabilizer("en")
    s.feed("the plan is too")
    s.feed("the plan is too expensive")
    assert s.text == "the plan is too"
    assert not s.feed("a plant is two expensive")
    assert s.text == "the plan is too"
    assert s.feed("the plan is too expensive for me")
    assert s.text == "the plan is too expensive"


def test_japanese_agrees_on_characters_not_spaces() -> None:
    s = Stabilizer("ja")
    s.feed("最近 ネットが")
    assert s.feed("最近ネットが遅くて")
    assert s.text == "最近ネットが"  # confirmed by a longer hypothesis; "遅くて" not yet
    s.feed("最近ネットが遅くて困って")
    assert s.text == "最近ネットが遅くて"
    assert " " not in s.text


def test_no_multibyte_character_is_split_or_garbled() -> None:
    s = Stabilizer("ja")
    decomposed = unicodedata.normalize("NFD", "プランを変更したい")  # プ as フ + ゜
    s.feed("プランを変更\ufffd")
    s.feed(decomposed)
    s.feed("プランを変更したいです")
    assert s.text.startswith("プランを変更した")
    assert "\ufffd" not in s.text
    assert s.text == unicodedata.normalize("NFC", s.text)
    s.reset()
    assert s.text == ""
