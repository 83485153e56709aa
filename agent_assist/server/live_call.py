"""One call in progress: audio or scripted turns in, numbered and stored events out.

Audio of each channel is decoded (PCM16 or G.711), resampled to 16 kHz (soxr) and cut
into utterances by Silero VAD. A closed utterance goes to the shared engine at once (so
it can be batched with other channels' utterances) and joins the call's queue; one task
per call emits the finals in that order and feeds them to the call's ``CallSession``.
While an utterance is open, partials are requested at most every
``partials.interval_ms`` and emitted only as far as the stabiliser has committed them.
Scripted turns join the same queue, so both modes share every stage after recognition.
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
from agent_assist.asr.stabilizer import Stabilizer
from agent_assist.asr.vad import SAMPLE_RATE, Samples, VadStream
from agent_assist.asr.whisper import Recognized
from agent_assist.audio import g711
from agent_assist.core.events import (
    CallEnded,
    CallStarted,
    Event,
    Speaker,
    TranscriptFinal,
    TranscriptPartial,
)
from agent_assist.core.session import CallSession
from agent_assist.errors import CallError
from agent_assist.protocol import ALL_CHANNELS, CallStart, TurnIn, encode_event, event_data
from agent_assist.server.services import Services, now_iso
from agent_assist.store.audio_archive import CallRecorder
from agent_assist.store.sqlite import CallRow

log = logging.getLogger(__name__)


@dataclass
class _Channel:
    index: int
    speaker: Speaker
    resampler: soxr.ResampleStream | None
    vad: VadStream
    segmenter: UtteranceSegmenter
    stabilizer: Stabilizer
    open_id: str | None = None  # id of the utterance being spoken, once a partial named it
    generation: int = 0  # bumps when an utterance closes, so late partials are dropped
    partial_at_ms: int = 0  # audio length of the open utterance at the last partial request
    partial_busy: bool = False
    early: tuple[UtteranceAudio, asyncio.Future[Recognized]] | None = None


@dataclass
class _Pending:
    """A closed utterance on its way through the engine (decoded in submission order)."""

    speaker: Speaker
    utterance: UtteranceAudio
    utterance_id: str
    result: asyncio.Future[Recognized] | None  # None until the call's language is known


_Work = _Pending | TranscriptFinal


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
            for index, speaker in enumerate(start.channels):
                resampler = (
                    None
                    if start.sample_rate == SAMPLE_RATE
                    else soxr.ResampleStream(start.sample_rate, SAMPLE_RATE, 1, dtype="float32")
                )
                self._channels.append(
                    _Channel(
                        index,
                        speaker,
                        resampler,
                        services.vad.stream(),
                        UtteranceSegmenter(services.config.vad),
                        Stabilizer(self.language),
                    )
                )
        self._work: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._partial_tasks: set[asyncio.Task[None]] = set()
        self._turns = 0
        self.recorder: CallRecorder | None = None  # set by the server to archive the audio
        self._counters: dict[str, int] = {}

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
        self.emit(
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

    def push_audio(self, channel: int, payload: bytes) -> None:
        """Take one frame's samples (``channel`` may be ``ALL_CHANNELS``, interleaved)."""
        if self.mode != "audio":
            raise CallError("audio frames on a text-mode call", code="audio.wrong_mode")
        pcm = g711.decode(payload, self.start.encoding)
        if channel == ALL_CHANNELS:
            columns = pcm.reshape(-1, len(self._channels))
            for index in range(len(self._channels)):
                self._push_channel(index, columns[:, index])
        else:
            self._push_channel(channel, pcm)

    def _push_channel(self, channel: int, pcm: g711.Pcm16) -> None:
        ch = self._channels[channel]
        if self.recorder is not None:
            self.recorder.push(channel, pcm.astype("<i2").tobytes())
        samples = pcm.astype(np.float32) / 32768.0
        if ch.resampler is not None:
            samples = ch.resampler.resample_chunk(samples)
        if channel == 0:
            self._audio_ms += round(samples.size * 1000 / SAMPLE_RATE)
        windows, probs = ch.vad.push(samples.astype(np.float32, copy=False))
        for utterance in ch.segmenter.push(windows, probs):
            self._close(ch, utterance)
        if ch.segmenter.in_speech:
            self._maybe_early_final(ch)
            if ch.segmenter.trailing_silence_ms == 0:  # in a pause the final comes soon
                self._maybe_partial(ch)

    def _maybe_early_final(self, ch: _Channel) -> None:
        """Decode the utterance as it stands at the first pause; ``_close`` reuses it."""
        engine = self.services.engine
        assert engine is not None
        peek = ch.segmenter.peek_closing()
        if ch.early is not None and (peek is None or peek.end_ms != ch.early[0].end_ms):
            ch.early[1].cancel()  # speech went on: that guess is void
            ch.early = None
        if (
            peek is None
            or ch.early is not None
            or self.language == "auto"
            or not self.services.config.asr.early_final
            or not engine.allows_early_final()  # load: see asr.degrade
        ):
            return
        ch.early = (peek, engine.submit(peek, self.language))

    def _close(self, ch: _Channel, utterance: UtteranceAudio) -> None:
        """An utterance ended: queue it for its final (the engine starts on it at once)."""
        uid = ch.open_id or self._next_id(ch.speaker)
        ch.open_id, ch.partial_at_ms, ch.generation = None, 0, ch.generation + 1
        ch.stabilizer.reset()
        engine = self.services.engine
        assert engine is not None
        early, ch.early = ch.early, None
        result: asyncio.Future[Recognized] | None = None
        if early is not None and (early[0].start_ms, early[0].end_ms) == (
            utterance.start_ms,
            utterance.end_ms,
        ):
            result = early[1]
        else:
            if early is not None:
                early[1].cancel()
            if self.language != "auto":
                result = engine.submit(utterance, self.language)
        self._work.put_nowait(_Pending(ch.speaker, utterance, uid, result))

    def _next_id(self, speaker: Speaker) -> str:
        self._counters[speaker] = self._counters.get(speaker, 0) + 1
        return f"{speaker}-{self._counters[speaker]:04d}"

    def _maybe_partial(self, ch: _Channel) -> None:
        """Ask for a partial when enough new speech arrived and none is in flight."""
        cfg = self.services.config.partials
        if not cfg.enabled or ch.partial_busy or self.language == "auto" or self.ended:
            return
        audio = ch.segmenter.open_audio()
        open_ms = audio.size * 1000 // SAMPLE_RATE
        if open_ms < cfg.min_audio_ms or open_ms - ch.partial_at_ms < cfg.interval_ms:
            return
        ch.partial_at_ms, ch.partial_busy = open_ms, True
        task = asyncio.create_task(self._partial(ch, audio, ch.segmenter.open_start_ms))
        self._partial_tasks.add(task)
        task.add_done_callback(self._partial_tasks.discard)

    async def _partial(self, ch: _Channel, audio: Samples, start_ms: int) -> None:
        generation = ch.generation
        engine = self.services.engine
        assert engine is not None
        try:
            result = await engine.partial((self.call_id, ch.index), audio, self.language, start_ms)
        except Exception:
            log.exception("call %s: a partial failed", self.call_id)
            return
        finally:
            ch.partial_busy = False
        if result is None or not result.text or ch.generation != generation or self.ended:
            return
        if not ch.stabilizer.feed(result.text):
            return
        if ch.open_id is None:
            ch.open_id = self._next_id(ch.speaker)
        self.emit(
            TranscriptPartial(
                call_id=self.call_id,
                t_ms=start_ms,
                utterance_id=ch.open_id,
                speaker=ch.speaker,
                text=ch.stabilizer.text,
            )
        )

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
                    self._close(ch, utterance)
            for utterance in ch.segmenter.flush():
                self._close(ch, utterance)
        self._work.put_nowait(None)
        if self._worker is not None:
            await self._worker
        duration = self._audio_ms
        if self.recorder is not None:
            self.recorder.close()
        self.emit(
            CallEnded(call_id=self.call_id, t_ms=duration, reason=reason, duration_ms=duration)
        )
        self.services.store.end_call(self.call_id, now_iso(), reason, duration)

    async def _decode_loop(self) -> None:
        while (item := await self._work.get()) is not None:
            try:
                final = item if isinstance(item, TranscriptFinal) else await self._recognize(item)
                if final is None:
                    continue
                self.emit(final)
                for event in self.session.feed(final):
                    self.emit(event)
            except Exception:  # one bad utterance must not end the call
                log.exception("call %s: failed to process an utterance", self.call_id)

    async def _recognize(self, item: _Pending) -> TranscriptFinal | None:
        engine = self.services.engine
        assert engine is not None
        if item.result is None:
            if self.language == "auto":
                self.language = await engine.detect_language(item.utterance, ("ja", "en"))
                self.session.set_language(self.language)
                self.services.store.set_language(self.call_id, self.language)
                for ch in self._channels:
                    ch.stabilizer = Stabilizer(self.language)
            item.result = engine.submit(item.utterance, self.language)
        result = await item.result
        if not result.text:
            return None
        return TranscriptFinal(
            call_id=self.call_id,
            t_ms=item.utterance.start_ms,
            utterance_id=item.utterance_id,
            speaker=item.speaker,
            end_ms=item.utterance.end_ms,
            language=self.language,
            text=result.text,
            words=result.words,
        )

    def emit(self, event: Event) -> None:
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
