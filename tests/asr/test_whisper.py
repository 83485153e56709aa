"""The real faster-whisper models on real speech, loaded only from the verified models/ folder."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
import soxr
from rapidfuzz.distance import Levenshtein

from agent_assist.asr.whisper import WhisperRecognizer
from tests.conftest import shared_audio

pytestmark = pytest.mark.model


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def edit_distance(a: list[str] | str, b: list[str] | str) -> int:
    return int(Levenshtein.distance(a, b))


def test_english_tiny_en_on_jfk(recognizer: WhisperRecognizer) -> None:
    data, rate = sf.read(shared_audio("en/jfk.flac"), dtype="float32")
    x = soxr.resample(data.mean(axis=1), rate, 16000).astype(np.float32)
    out = recognizer.transcribe(x, "en", offset_ms=1000)
    ref = words(
        "And so my fellow Americans, ask not what your country can do for you, "
        "ask what you can do for your country."
    )
    assert edit_distance(words(out.text), ref) / len(ref) <= 0.1
    assert out.words and out.words[0].start_ms >= 1000  # word times are in call time
    assert all(w.start_ms <= w.end_ms for w in out.words)


def test_japanese_base_on_common_voice(recognizer: WhisperRecognizer) -> None:
    x, _ = sf.read(shared_audio("ja/common_voice_ja_38853932_16k.flac"), dtype="float32")
    out = recognizer.transcribe(x, "ja", offset_ms=0)
    ref = "王もこのやり方は喜んでいません。それにもう一つ、これには困ることがあるのです。"
    strip = re.compile(r"[、。「」？！\s]")
    hyp, ref_chars = strip.sub("", out.text), strip.sub("", ref)
    assert edit_distance(hyp, ref_chars) / len(ref_chars) <= 0.25
    assert "\ufffd" not in out.text  # no broken multibyte characters


def test_language_detection(recognizer: WhisperRecognizer) -> None:
    ja, _ = sf.read(shared_audio("ja/common_voice_ja_38843402_16k.flac"), dtype="float32")
    en, _ = sf.read(shared_audio("en/stereo_diarization.wav"), dtype="float32")
    assert recognizer.detect_language(ja, ("ja", "en")) == "ja"
    assert recognizer.detect_language(en[:, 0].copy(), ("ja", "en")) == "en"


def test_silence_and_noise_give_no_words(recognizer: WhisperRecognizer) -> None:
    rng = np.random.default_rng(3)
    for x in (np.zeros(16000 * 5, np.float32), rng.normal(0, 0.03, 16000 * 5).astype(np.float32)):
        for language in ("en", "ja"):
            assert recognizer.transcribe(x, language, 0).text == ""
