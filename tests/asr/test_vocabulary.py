"""Product names from config reach Whisper as prompt context, without being invented.

A prompt invites Whisper to write its words into noise, and how much it writes depends on
the CPU's int8 rounding. The property tested is the recogniser's, not one decode: with the
vocabulary as prompt, no clip without speech gives text (several noise kinds, levels and
seeds, both languages), and real speech still does.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import Config
from tests.conftest import shared_audio

pytestmark = pytest.mark.model

SECONDS = 4
N = 16000 * SECONDS


def _noises() -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Silence, a mains hum, white and pink noise from faint to loud, several seeds."""
    t = np.arange(N) / 16000
    out = [
        ("silence", np.zeros(N)),
        ("hum", 0.05 * np.sin(2 * np.pi * 50 * t)),
    ]
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for sigma in (0.005, 0.02, 0.1, 0.3):
            out.append((f"white σ{sigma} seed{seed}", rng.normal(0, sigma, N)))
            spectrum = np.fft.rfft(rng.normal(0, 1, N)) / np.sqrt(np.arange(1, N // 2 + 2))
            pink = np.fft.irfft(spectrum, N)
            out.append((f"pink σ{sigma} seed{seed}", pink / pink.std() * sigma))
    return [(name, np.clip(x, -1, 1).astype(np.float32)) for name, x in out]


@pytest.fixture(scope="module")
def prompted(config: Config) -> WhisperRecognizer:
    languages = {
        "ja": replace(config.asr.languages["ja"], vocabulary=("ノヴァモバイル", "光1ギガ")),
        "en": replace(config.asr.languages["en"], vocabulary=("Nova Mobile", "Fiber 1 Gbps")),
    }
    return WhisperRecognizer(
        replace(config.asr, languages=languages), config.resolve(config.models.dir), config.vad
    )


def test_vocabulary_goes_to_whisper_as_previous_text(prompted: WhisperRecognizer) -> None:
    lang = prompted._langs["ja"]
    assert lang.prompt[0] == lang.tokenizer.sot_prev
    assert "ノヴァモバイル" in lang.tokenizer.decode(
        lang.prompt[1 : -len(lang.tokenizer.sot_sequence)]
    )


@pytest.mark.parametrize("language", ["ja", "en"])
def test_no_text_from_noise_or_silence_even_with_a_prompt(
    prompted: WhisperRecognizer, language: str
) -> None:
    noises = _noises()
    results = prompted.transcribe_batch([(x, 0) for _, x in noises], language)
    invented = {name: r.text for (name, _), r in zip(noises, results, strict=True) if r.text}
    assert invented == {}
    partials = prompted.transcribe_batch([(x, 0) for _, x in noises], language, partial=True)
    assert [r.text for r in partials if r.text] == []


def test_real_speech_is_still_heard_with_a_prompt_and_beside_noise(
    prompted: WhisperRecognizer,
) -> None:
    ja, _ = sf.read(shared_audio("ja/common_voice_ja_38853932_16k.flac"), dtype="float32")
    stereo, rate = sf.read(shared_audio("en/jfk.flac"), dtype="float32")
    en = soxr.resample(stereo[:, 0], rate, 16000).astype(np.float32)
    noisy = (ja + np.random.default_rng(0).normal(0, 0.01, ja.size)).astype(np.float32)
    for clip in (ja, noisy):
        text = re.sub(r"[、。\s]", "", prompted.transcribe(clip, "ja", 0).text)
        assert text.startswith("王もこのやり方は") and "困る" in text
    english = prompted.transcribe(en, "en", 0).text.lower()
    assert "ask not what your country can do for you" in english
    assert prompted.hears_speech(ja) and not prompted.hears_speech(np.zeros(N, np.float32))
