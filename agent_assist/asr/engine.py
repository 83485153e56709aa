"""The recognition engine shared by every call: one worker, a FIFO of utterances.

Calls submit utterances and await their text; the engine decodes them one at a time
in arrival order (two threads of a 2-core CPU already go to the model). The queue
length and the wait of the oldest item are reported as lag. Behind ``Recognizer``, the
worker could be another process fed by a broker; callers would not change.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.whisper import Recognized, Recognizer


@dataclass(frozen=True)
class EngineStats:
    queued: int
    decoded: int
    busy_s: float
    last_wait_ms: int


class RecognitionEngine:
    def __init__(self, recognizer: Recognizer) -> None:
        self._recognizer = recognizer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._queued = 0
        self._decoded = 0
        self._busy_s = 0.0
        self._last_wait_ms = 0

    async def transcribe(self, utterance: UtteranceAudio, language: str) -> Recognized:
        loop = asyncio.get_running_loop()
        submitted = time.monotonic()
        self._queued += 1
        try:
            return await loop.run_in_executor(self._pool, self._run, utterance, language, submitted)
        finally:
            self._queued -= 1

    async def detect_language(self, utterance: UtteranceAudio, candidates: tuple[str, ...]) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._recognizer.detect_language, utterance.samples, candidates
        )

    def _run(self, utterance: UtteranceAudio, language: str, submitted: float) -> Recognized:
        started = time.monotonic()
        self._last_wait_ms = round((started - submitted) * 1000)
        try:
            return self._recognizer.transcribe(utterance.samples, language, utterance.start_ms)
        finally:
            self._busy_s += time.monotonic() - started
            self._decoded += 1

    def stats(self) -> EngineStats:
        return EngineStats(self._queued, self._decoded, round(self._busy_s, 3), self._last_wait_ms)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
