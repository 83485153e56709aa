"""Product names from config reach Whisper as prompt context, without being invented."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import Config
from tests.conftest import shared_audio

pytestmark = pytest.mark.model


def test_vocabulary_is_a_prompt_and_never_text_from_silence(config: Config) -> None:
    ja = replace(config.asr.languages["ja"], vocabulary=("ノヴァモバイル", "光1ギガ"))
    asr = replace(config.asr, languages={"ja": ja})
    rec = WhisperRecognizer(asr, config.resolve(config.models.dir))
    lang = rec._langs["ja"]
    assert lang.prompt[0] == lang.tokenizer.sot_prev
    assert "ノヴァモバイル" in lang.tokenizer.decode(
        lang.prompt[1 : -len(lang.tokenizer.sot_sequence)]
    )
    rng = np.random.default_rng(2)
    for x in (np.zeros(16000 * 4, np.float32), rng.normal(0, 0.02, 16000 * 4).astype(np.float32)):
        assert rec.transcribe(x, "ja", 0).text == ""
    x, _ = sf.read(shared_audio("ja/common_voice_ja_38853932_16k.flac"), dtype="float32")
    text = re.sub(r"[、。\s]", "", rec.transcribe(x, "ja", 0).text)
    assert text.startswith("王もこのやり方は") and "困る" in text
