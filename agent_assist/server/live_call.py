"""One call in progress: audio or scripted turns in, numbered and stored events out.

Audio of each channel is resampled to 16 kHz (soxr), cut into utterances by Silero VAD,
and queued; one task per call decodes the queue in order through the shared engine and
feeds the finals to the call's ``CallSession``. Scripted turns join the same queue, so
both modes share every stage after recognition.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import soxr

from agent_assist.asr.segmenter import UtteranceAudio, UtteranceSegmenter
from agent_assist.asr.vad import SAMPLE_RATE, VadStream
from agent_assist.core.events import (
    CallEnded,
    CallStarted,
    Event,
    Speaker,
    TranscriptFinal,
)
from agent_assist.core.session import CallSession
from agent_assist.errors import CallError
from agent_assist.protocol import CallStart, TurnIn, encode_event, event_data
from agent_assist.server.services import Services, now_iso
from agent_assist.store.audio_archive import CallRecorder
from agent_assist.store.sqlite import CallRow

log = logging.getLogger(__name__)


@dataclass
class _Channel:
    speaker: Speaker
    resampler: soxr.ResampleStream | None
    vad: VadStream
    segmenter: UtteranceSegmenter


_Work = tuple[Speaker, UtteranceAudio] | TranscriptFinal


def new_call_id() -> str:
    return f"c-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class LiveCall:
    def __init__(self, services: Services, start: CallStart) -> None:
        self.services = services
        self.call_id = new_call_id()
        self.start = start
        self.language = start.language
        self.mode = start.mode
        self.ended = False
        self._seq = 0
        self._started = time.monotonic()
        self.started_at = now_iso()
        self._audio_ms = 0
        if self.language == "auto":
            self.language = services.config.asr.default_language
        self.session = CallSession(
            services.detector, services.policy, self.language if self.language != "auto" else "en"
        )
        self._channels: list[_Channel] = []
        if start.mode == "audio":
            if services.engine is None or services.vad is None:
                raise CallError(
                    "this server runs without speech recognition; use mode 'text'",
                    code="audio.wrong_mode",
                )
            for speaker in start.channels:
                resampler = (
                    None
                    if start.sample_rate == SAMPLE_RATE
                    else soxr.ResampleStream(start.sample_rate, SAMPLE_RATE, 1, dtype="float32")
                )
                self._channels.append(
                    _Channel(
                        speaker,
                        resampler,
                        services.vad.stream(),
                        UtteranceSegmenter(services.config.vad),
                    )
                )
        self._work: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._turns = 0
        self.recorder: CallRecorder | None = None  # set by the server to archive the audio

    async def begin(self) -> None:
        """Store the call and announce it; start the decoding task."""
        self.services.store.create_call(
            CallRow(
                call_id=self.call_id,
                started_at=self.started_at,
                language=self.language,
                title=self.start.title,
                customer_id=self.start.customer_id,
                mode=self.mode,
                channels=self.start.channels,
                ended_at=None,
                end_reason=None,
                duration_ms=None,
                last_seq=0,
            )
        )
        self._emit(
            CallStarted(
                call_id=self.call_id,
                t_ms=0,
                language=self.language,
                channels=self.start.channels,
                title=self.start.title,
                customer_id=self.start.customer_id,
                mode=self.mode,
                started_at=self.started_at,
            )
        )
        self._worker = asyncio.create_task(self._decode_loop(), name=f"decode {self.call_id}")

    def push_audio(self, channel: int, pcm16: bytes) -> None:
        if self.mode != "audio":
            raise CallError("audio frames on a text-mode call", code="audio.wrong_mode")
        ch = self._channels[channel]
        if self.recorder is not None:
            self.recorder.push(channel, pcm16)
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        if ch.resampler is not None:
            samples = ch.resampler.resample_chunk(samples)
        if channel == 0:
            self._audio_ms += round(samples.size * 1000 / SAMPLE_RATE)
        windows, probs = ch.vad.push(samples.astype(np.float32, copy=False))
        for utterance in ch.segmenter.push(windows, probs):
            self._work.put_nowait((ch.speaker, utterance))

    def push_turn(self, turn: TurnIn) -> None:
        if self.mode != "text":
            raise CallError("scripted turns on an audio call", code="audio.wrong_mode")
        self._turns += 1
        self._audio_ms = max(self._audio_ms, turn.end_ms)
        self._work.put_nowait(
            TranscriptFinal(
                call_id=self.call_id,
                t_ms=turn.t_ms,
                utterance_id=f"{turn.speaker}-{self._turns:04d}",
                speaker=turn.speaker,
                end_ms=turn.end_ms,
                language=self.language,
                text=turn.text,
            )
        )

    async def end(self, reason: str) -> None:
        """Close open utterances, finish decoding, then announce the end."""
        if self.ended:
            return
        self.ended = True
        for ch in self._channels:
            if ch.resampler is not None:
                tail = ch.resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                windows, probs = ch.vad.push(tail.astype(np.float32, copy=False))
                for utterance in ch.segmenter.push(windows, probs):
                    self._work.put_nowait((ch.speaker, utterance))
            for utterance in ch.segmenter.flush():
                self._work.put_nowait((ch.speaker, utterance))
        self._work.put_nowait(None)
        if self._worker is not None:
            await self._worker
        duration = self._audio_ms
        if self.recorder is not None:
            self.recorder.close()
        self._emit(
            CallEnded(call_id=self.call_id, t_ms=duration, reason=reason, duration_ms=duration)
        )
        self.services.store.end_call(self.call_id, now_iso(), reason, duration)

    async def _decode_loop(self) -> None:
        counters: dict[str, int] = {}
        while (item := await self._work.get()) is not None:
            try:
                final = (
                    item
                    if isinstance(item, TranscriptFinal)
                    else await self._recognize(*item, counters)
                )
                if final is None:
                    continue
                self._emit(final)
                for event in self.session.feed(final):
                    self._emit(event)
            except Exception:  # one bad utterance must not end the call
                log.exception("call %s: failed to process an utterance", self.call_id)

    async def _recognize(
        self, speaker: Speaker, utterance: UtteranceAudio, counters: dict[str, int]
    ) -> TranscriptFinal | None:
        engine = self.services.engine
        assert engine is not None
        if self.language == "auto":
            self.language = await engine.detect_language(utterance, ("ja", "en"))
            self.session.set_language(self.language)
            self.services.store.set_language(self.call_id, self.language)
        result = await engine.transcribe(utterance, self.language)
        if not result.text:
            return None
        counters[speaker] = counters.get(speaker, 0) + 1
        return TranscriptFinal(
            call_id=self.call_id,
            t_ms=utterance.start_ms,
            utterance_id=f"{speaker}-{counters[speaker]:04d}",
            speaker=speaker,
            end_ms=utterance.end_ms,
            language=self.language,
            text=result.text,
            words=result.words,
        )

    def _emit(self, event: Event) -> None:
        self._seq += 1
        emitted_ms = round((time.monotonic() - self._started) * 1000)
        body = encode_event(event, self._seq, emitted_ms)
        self.services.store.append_event(
            self.call_id, self._seq, event.TYPE, event.t_ms, emitted_ms, body, event_data(event)
        )
        self.services.hub.publish(self.call_id, self._seq, body)

    @property
    def last_seq(self) -> int:
        return self._seq
