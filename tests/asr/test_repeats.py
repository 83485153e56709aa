"""Hypotheses that repeat themselves are decoded again on a full window: which ones."""

from __future__ import annotations

import pytest

from agent_assist.asr.whisper import _loops


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ありがとうございますありがとうございます", "ja"),
        ("そうですか?そうですか?", "ja"),
        ("承知しました。承知しました。承知しました。", "ja"),
        ("thank you so much. thank you so much.", "en"),
        ("I see I see I see I see", "en"),
    ],
)
def test_a_phrase_said_again_and_nothing_else_is_a_loop(text: str, language: str) -> None:
    assert _loops(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("はいはい", "ja"),
        ("いいえ、大丈夫です。ありがとうございました。", "ja"),
        ("そうですか。そうですか、それは困りましたね。", "ja"),  # said again, then more
        ("no no", "en"),
        ("That's too expensive. Honestly, I want to cancel my contract.", "en"),
        ("very very slow", "en"),
    ],
)
def test_speech_that_repeats_a_little_is_not(text: str, language: str) -> None:
    assert not _loops(text, language)
