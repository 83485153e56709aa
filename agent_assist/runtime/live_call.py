"""One call in progress: audio or scripted turns in, numbered and stored events out.

Audio frames are decoded (PCM16 or G.711), archived, and pushed per channel into the
call's ``RecognizeStream`` (``asr/stream.py``), which owns everything about speech:
resampling, VAD, endpointing, early finals, partial pacing, stabilising and language
detection. This class keeps what is the call's: numbering the events, storing and
publishing them, and feeding finals to the call's ``CallSession``. Scripted turns
skip recognition and join the same path as finals.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from agent_assist.asr.pacing import Pacing
from agent_assist.asr.stream import RecognizeStream, TranscriptEvent
from agent_assist.audio import g711
from agent_assist.core.events import (
    CallEnded,
    CallStarted,
    CustomerLinked,
    Event,
    LanguageChoice,
    TranscriptFinal,
    TranscriptPartial,
    Word,
    language_of,
)
from agent_assist.core.session import CallSession
from agent_assist.errors import CallError
from agent_assist.protocol import ALL_CHANNELS, CallStart, TurnIn, encode_event, event_data
from agent_assist.runtime.services import Services, now_iso
from agent_assist.store.audio_archive import CallRecorder
from agent_assist.store.base import CallRow

log = logging.getLogger(__name__)


def new_call_id() -> str:
    return f"c-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Continued:
    """A stored call this process takes over (its gateway died, its source came back):
    numbering, clocks and utterance ids go on from what the store holds."""

    call_id: str
    started_at: str
    last_seq: int
    offset_ms: int
    """Call time the new audio starts at: the furthest any stored event reaches."""
    emitted_ms: int
    utterances: dict[str, int]
    """Finals stored per speaker, so new utterance ids follow on."""
    history: tuple[Event, ...]
    """The call's finals, marks and customer links, to bring the session up to date."""


class LiveCall:
    def __init__(
        self, services: Services, start: CallStart, continued: Continued | None = None
    ) -> None:
        self.services = services
        self.continued = continued
        self.call_id = continued.call_id if continued else new_call_id()
        self.start = start
        self.language: LanguageChoice = start.language
        self.mode = start.mode
        self.ended = False
        self._seq = continued.last_seq if continued else 0
        self._started = time.monotonic() - (continued.emitted_ms / 1000 if continued else 0)
        self.started_at = continued.started_at if continued else now_iso()
        self._offset_ms = continued.offset_ms if continued else 0
        self._audio_ms = self._offset_ms
        if self.language == "auto":
            self.language = services.config.asr.default_language
        self.session = CallSession(
            services.detector, services.policy, self.language if self.language != "auto" else "en"
        )
        self._stream: RecognizeStream | None = None
        if start.mode == "audio":
            if services.engine is None or services.vad is None:
                raise CallError(
                    "this server runs without speech recognition; use mode 'text'",
                    code="audio.wrong_mode",
                )
            cfg = services.config
            self._stream = RecognizeStream(
                self.call_id,
                start.channels,
                start.sample_rate,
                self.language,
                engine=services.engine,
                vad=services.vad,
                vad_config=cfg.vad,
                pacing=Pacing(
                    partials=cfg.partials.enabled,
                    interval_ms=cfg.partials.interval_ms,
                    min_audio_ms=cfg.partials.min_audio_ms,
                    max_lag_ms=cfg.partials.max_lag_ms,
                    early_final=cfg.asr.early_final,
                ),
            )
        self._turns: asyncio.Queue[TranscriptFinal | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._turn_count = sum(continued.utterances.values()) if continued else 0
        self.recorder: CallRecorder | None = None  # set when the call's audio is archived

    async def begin(self) -> None:
        """Store the call and announce it; start the decoding task. A continued call is
        stored already: its session hears the stored history again, silently."""
        if self.continued is not None:
            customers = self.services.customers
            for event in self.continued.history:
                if isinstance(event, CustomerLinked):
                    record = customers.lookup(event.customer_id) if customers else None
                    self.session.link_customer(self.call_id, event.customer_id, record)
                else:
                    self.session.feed(event)
            self._worker = asyncio.create_task(self._event_loop(), name=f"call {self.call_id}")
            return
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
        try:
            self._emit_started()
        except BaseException:
            self.ended = True
            self.services.store.end_call(self.call_id, now_iso(), "store_failed", 0)
            raise
        self._worker = asyncio.create_task(self._event_loop(), name=f"call {self.call_id}")

    def _emit_started(self) -> None:
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

    def push_audio(self, channel: int, payload: bytes) -> None:
        """Take one frame's samples (``channel`` may be ``ALL_CHANNELS``, interleaved)."""
        if self.mode != "audio":
            raise CallError("audio frames on a text-mode call", code="audio.wrong_mode")
        pcm = g711.decode(payload, self.start.encoding)
        if channel == ALL_CHANNELS:
            columns = pcm.reshape(-1, len(self.start.channels))
            for index in range(len(self.start.channels)):
                self._push_channel(index, columns[:, index])
        else:
            self._push_channel(channel, pcm)

    def _push_channel(self, channel: int, pcm: g711.Pcm16) -> None:
        if self.recorder is not None:
            self.recorder.push(channel, pcm.astype("<i2").tobytes())
        assert self._stream is not None
        self._stream.push_audio(channel, pcm)

    def push_turn(self, turn: TurnIn) -> None:
        if self.mode != "text":
            raise CallError("scripted turns on an audio call", code="audio.wrong_mode")
        self._turn_count += 1
        self._audio_ms = max(self._audio_ms, turn.end_ms)
        self._turns.put_nowait(
            TranscriptFinal(
                call_id=self.call_id,
                t_ms=turn.t_ms,
                utterance_id=f"{turn.speaker}-{self._turn_count:04d}",
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
        if self._stream is not None:
            self._stream.end_input()
        else:
            self._turns.put_nowait(None)
        if self._worker is not None:
            await self._worker
        if self._stream is not None:
            self._audio_ms = self._offset_ms + self._stream.audio_ms
        duration = self._audio_ms
        if self.recorder is not None:
            try:  # FLAC encoding takes seconds for a long call: off the event loop
                await asyncio.to_thread(self.recorder.close)
            except Exception:  # the spool stays; the next start encodes it
                log.exception("call %s: could not finish its recording", self.call_id)
        try:
            self.emit(
                CallEnded(call_id=self.call_id, t_ms=duration, reason=reason, duration_ms=duration)
            )
        finally:  # the call row is closed even when its last event could not be stored
            self.services.store.end_call(self.call_id, now_iso(), reason, duration)

    def _transcripts(self) -> AsyncIterator[TranscriptEvent]:
        if self._stream is not None:
            return aiter(self._stream)
        return self._scripted_turns()

    async def _scripted_turns(self) -> AsyncIterator[TranscriptEvent]:
        while (final := await self._turns.get()) is not None:
            yield final

    async def _event_loop(self) -> None:
        """Transcript events in order: partials published, finals through the session."""
        async for heard in self._transcripts():
            event = self._following_on(heard) if self.continued is not None else heard
            try:
                if isinstance(event, TranscriptFinal):
                    self._follow_language(event.language)
                self.emit(event)
                if isinstance(event, TranscriptFinal):
                    for derived in self.session.feed(event):
                        self.emit(derived)
            except Exception:  # one bad utterance must not end the call
                log.exception("call %s: failed to process an utterance", self.call_id)

    def _following_on(self, event: TranscriptEvent) -> TranscriptEvent:
        """A continued call's new speech: times after the stored ones, ids after theirs."""
        if self.continued is None or not isinstance(event, TranscriptFinal | TranscriptPartial):
            return event
        if self._stream is None:  # scripted turns carry their own times and ids
            return event
        offset = self._offset_ms
        speaker, _, number = event.utterance_id.rpartition("-")
        before = self.continued.utterances.get(speaker, 0)
        uid = f"{speaker}-{int(number) + before:04d}" if number.isdigit() else event.utterance_id
        if isinstance(event, TranscriptPartial):
            return replace(event, t_ms=event.t_ms + offset, utterance_id=uid)
        words = tuple(
            Word(w.text, w.start_ms + offset, w.end_ms + offset, w.p) for w in event.words
        )
        return replace(
            event, t_ms=event.t_ms + offset, end_ms=event.end_ms + offset, utterance_id=uid,
            words=words,
        )  # fmt: skip

    def _follow_language(self, detected: str) -> None:
        """The stream detected the language of an ``auto`` call: the session follows."""
        language = language_of(detected)
        if language is None or language == self.language:
            return
        self.language = language
        self.session.set_language(language)
        self.services.store.set_language(self.call_id, language)

    def emit(self, event: Event) -> None:
        """Number, store, publish; a number is spent only once its event is stored, so a
        refused write leaves no gap (the error goes up to whoever caused the event)."""
        seq = self._seq + 1
        emitted_ms = round((time.monotonic() - self._started) * 1000)
        body = encode_event(event, seq, emitted_ms)
        self.services.store.append_event(
            self.call_id, seq, event.TYPE, event.t_ms, emitted_ms, body, event_data(event)
        )
        self._seq = seq
        self.services.hub.publish(self.call_id, seq, body, last=event.TYPE == "call.ended")

    def ingest_ahead_s(self, max_speed: float, burst_s: float = 1.0) -> float:
        """How far (seconds) the audio received runs ahead of ``max_speed`` times real
        time, beyond a small burst; positive: wait that long before reading more."""
        audio_ms = (
            self._offset_ms + self._stream.audio_ms if self._stream is not None else self._audio_ms
        )
        elapsed = time.monotonic() - self._started
        return (audio_ms / 1000 - burst_s) / max_speed - elapsed

    @property
    def last_seq(self) -> int:
        return self._seq
