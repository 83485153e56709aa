"""The shared engine: finals first and batched, partials shed under load, lag reported."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence

import numpy as np
import pytest
import soundfile as sf

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.vad import Samples
from agent_assist.asr.whisper import Recognized, WhisperRecognizer
from agent_assist.config import AsrConfig, PartialsConfig
from tests.conftest import shared_audio


class GatedRecognizer:
    """Decodes only when the test opens the gate; records what it was asked, in order."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple[str, bool, int]] = []

    def transcribe_batch(
        self, items: Sequence[tuple[Samples, int]], language: str, *, partial: bool = False
    ) -> list[Recognized]:
        self.gate.wait(10)
        self.calls.append((language, partial, len(items)))
        return [Recognized(f"{'p' if partial else 'f'}{off}", language, ()) for _, off in items]

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        return candidates[0]


def utt(start_ms: int) -> UtteranceAudio:
    return UtteranceAudio(1, start_ms, start_ms + 1000, np.zeros(16000, np.float32))


async def test_finals_are_batched_by_language_and_partials_shed_while_they_wait() -> None:
    rec = GatedRecognizer()
    engine = RecognitionEngine(rec, AsrConfig(batch_size=3), PartialsConfig(max_lag_ms=50))
    try:
        blocker = engine.submit(utt(0), "en")  # the worker takes this one and waits at the gate
        await asyncio.sleep(0.05)
        finals = [engine.submit(utt(t), lang) for t, lang in [(1, "en"), (2, "ja"), (3, "en")]]
        await asyncio.sleep(0.1)  # the queued finals now wait longer than max_lag_ms
        assert await engine.partial(("call", 0), np.zeros(1600, np.float32), "en", 0) is None
        stats = engine.stats()
        assert stats.queued == 3 and stats.oldest_wait_ms >= 100 and stats.partials_dropped == 1
        rec.gate.set()
        texts = [r.text for r in await asyncio.gather(blocker, *finals)]
        assert texts == ["f0", "f1", "f2", "f3"]
        # the two English finals went together, before the Japanese one queued between them
        assert rec.calls == [("en", False, 1), ("en", False, 2), ("ja", False, 1)]
        partial = await engine.partial(("call", 0), np.zeros(1600, np.float32), "en", 7)
        assert partial is not None and partial.text == "p7"
        stats = engine.stats()
        assert stats.decoded == 4 and stats.batches == 3 and stats.partials_done == 1
        assert stats.max_wait_ms >= 100 and not stats.lagging
    finally:
        engine.close()


async def test_a_newer_partial_replaces_the_queued_one_of_its_channel() -> None:
    rec = GatedRecognizer()
    engine = RecognitionEngine(rec, AsrConfig(), PartialsConfig(max_lag_ms=60_000))
    try:
        blocker = engine.submit(utt(0), "en")
        await asyncio.sleep(0.05)
        older = asyncio.ensure_future(engine.partial("ch", np.zeros(10, np.float32), "en", 1))
        await asyncio.sleep(0.02)
        newer = asyncio.ensure_future(engine.partial("ch", np.zeros(10, np.float32), "en", 2))
        await asyncio.sleep(0.02)
        rec.gate.set()
        await blocker
        assert await older is None
        result = await newer
        assert result is not None and result.text == "p2"
    finally:
        engine.close()


@pytest.mark.model
async def test_batched_finals_match_single_decodes(recognizer: WhisperRecognizer) -> None:
    clips = ["common_voice_ja_38853932_16k.flac", "common_voice_ja_38843402_16k.flac"]
    audio = [sf.read(shared_audio(f"ja/{c}"), dtype="float32")[0] for c in clips]
    single = [recognizer.transcribe(x, "ja", 0).text for x in audio]
    batched = await asyncio.to_thread(recognizer.transcribe_batch, [(x, 0) for x in audio], "ja")
    strip = re.compile(r"[、。\s]")
    assert [strip.sub("", r.text) for r in batched] == [strip.sub("", t) for t in single]
    assert all(r.words for r in batched)
