"""Silero VAD + the segmenter on real audio: one utterance per spoken turn, none from noise."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from agent_assist.asr.segmenter import UtteranceAudio, UtteranceSegmenter
from agent_assist.asr.vad import WINDOW, SileroVad
from agent_assist.config import VadConfig
from tests.conftest import shared_audio


def segment(vad: SileroVad, x: np.ndarray, chunk: int = 1600) -> list[UtteranceAudio]:
    stream, seg = vad.stream(), UtteranceSegmenter(VadConfig())
    out: list[UtteranceAudio] = []
    for i in range(0, len(x), chunk):
        windows, probs = stream.push(x[i : i + chunk].astype(np.float32))
        out += seg.push(windows, probs)
    return out + seg.flush()


def test_each_channel_of_a_stereo_call_is_one_utterance(vad: SileroVad) -> None:
    data, _ = sf.read(shared_audio("en/stereo_diarization.wav"), dtype="float32")
    left, right = segment(vad, data[:, 0]), segment(vad, data[:, 1])
    assert len(left) == 1 and len(right) == 1
    assert left[0].start_ms < 300 and left[0].end_ms > 4500
    assert 1500 < right[0].end_ms - right[0].start_ms < 3500


def test_chunking_does_not_change_the_result(vad: SileroVad) -> None:
    data, _ = sf.read(shared_audio("en/jfk.flac"), dtype="float32")
    x = soxr.resample(data.mean(axis=1), 44100, 16000)
    a = [(u.start_ms, u.end_ms) for u in segment(vad, x, chunk=WINDOW * 3)]
    b = [(u.start_ms, u.end_ms) for u in segment(vad, x, chunk=777)]
    assert a == b and len(a) >= 2  # JFK pauses between phrases


@pytest.mark.parametrize("kind", ["silence", "white_noise", "hum"])
def test_no_utterance_from_non_speech(vad: SileroVad, kind: str) -> None:
    rng = np.random.default_rng(7)
    n = 16000 * 30
    t = np.arange(n) / 16000
    x = {
        "silence": np.zeros(n),
        "white_noise": rng.normal(0, 0.05, n),
        "hum": 0.2 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 100 * t),
    }[kind]
    assert segment(vad, x.astype(np.float32)) == []


def test_long_speech_is_cut_at_the_maximum(vad: SileroVad) -> None:
    data, _ = sf.read(shared_audio("en/earnings22_1_4482311_3_62.flac"), dtype="float32")
    x = soxr.resample(data, 24000, 16000)
    utterances = segment(vad, x)
    assert utterances and all(u.end_ms - u.start_ms <= 20_000 for u in utterances)
