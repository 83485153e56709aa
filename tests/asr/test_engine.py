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
        # the first decode was held at the gate while the others queued: 150 ms or more
        assert stats.final_decode_p95_ms >= 100 and stats.wait_p95_ms >= 100
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


class PartialsHeldRecognizer(GatedRecognizer):
    """Finals decode at once; partials wait at the gate; counts partials decoding now."""

    def __init__(self) -> None:
        super().__init__()
        self.partials_in_flight = 0
        self.most_partials_at_once = 0
        self.lock = threading.Lock()

    def transcribe_batch(
        self, items: Sequence[tuple[Samples, int]], language: str, *, partial: bool = False
    ) -> list[Recognized]:
        if not partial:
            self.calls.append((language, partial, len(items)))
            return [Recognized(f"f{off}", language, ()) for _, off in items]
        with self.lock:
            self.partials_in_flight += 1
            self.most_partials_at_once = max(self.most_partials_at_once, self.partials_in_flight)
        try:
            return super().transcribe_batch(items, language, partial=True)
        finally:
            with self.lock:
                self.partials_in_flight -= 1


async def test_with_two_workers_a_final_never_queues_behind_partials() -> None:
    rec = PartialsHeldRecognizer()
    engine = RecognitionEngine(rec, AsrConfig(workers=2), PartialsConfig(max_lag_ms=60_000))
    try:
        audio = np.zeros(1600, np.float32)
        partials = [
            asyncio.ensure_future(engine.partial(("call", ch), audio, "en", ch)) for ch in range(3)
        ]
        while rec.partials_in_flight == 0:  # one worker is now held inside a partial
            await asyncio.sleep(0.01)
        final = await asyncio.wait_for(engine.submit(utt(5), "en"), 10)
        assert final.text == "f5", "the free worker took the final while a partial decoded"
        assert rec.calls == [("en", False, 1)], "and no second partial took that worker"
        rec.gate.set()
        texts = [r.text for r in await asyncio.gather(*partials) if r is not None]
        assert sorted(texts) == ["p0", "p1", "p2"]
        assert rec.most_partials_at_once == 1, "partials take one worker at a time"
        assert engine.stats().partials_done == 3
    finally:
        rec.gate.set()
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
