"""The streaming recognition stage: audio per channel in, transcript events out.

The shape follows livekit/agents' ``RecognizeStream``: ``push_audio`` per channel,
``end_input`` once, and read the events by iterating the stream. Interim text comes out
as ``TranscriptPartial``, finished utterances as ``TranscriptFinal`` (core events), so a
call's runtime only numbers, stores and publishes them.

Per channel the stream owns a resampler to 16 kHz (soxr), a VAD stream, the utterance
segmenter and the stabiliser. A closed utterance goes to the shared engine at once (so
it can be batched with other channels' utterances) and joins one queue; finals come out
in that order. At the first pause an early final is decoded and kept if the utterance
closes exactly there; once decoded, a finished sentence closes its utterance after
``vad.sentence_end_ms`` of silence instead of ``min_silence_ms``. While an utterance is
open, partials are requested at most every ``interval_ms`` and emitted only as far as the
stabiliser has committed them. With the language ``auto`` the first utterance decides it
(partials and early finals wait).

The per-window work (PCM to float, resampling, Silero) runs off the event loop through
the VAD's ``submit`` (``VadThread``), in arrival order; its windows and probabilities
come back to the loop, where the segmenter and everything after it run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from agent_assist.asr.pacing import (
    Pacing,
    ends_sentence,
    same_span,
    wants_early_final,
    wants_partial,
)
from agent_assist.asr.segmenter import UtteranceAudio, UtteranceSegmenter
from agent_assist.asr.stabilizer import Stabilizer
from agent_assist.asr.vad import SAMPLE_RATE, WINDOW, Samples
from agent_assist.asr.whisper import Recognized
from agent_assist.config import VadConfig
from agent_assist.core.events import LANGUAGES, Speaker, TranscriptFinal, TranscriptPartial

log = logging.getLogger(__name__)

TranscriptEvent = TranscriptPartial | TranscriptFinal


class StreamEngine(Protocol):
    """What the stream needs from the shared recognition engine (``RecognitionEngine``)."""

    def submit(self, utterance: UtteranceAudio, language: str) -> asyncio.Future[Recognized]: ...

    async def partial(
        self, key: Hashable, samples: Samples, language: str, offset_ms: int
    ) -> Recognized | None: ...

    async def detect_language(
        self, utterance: UtteranceAudio, candidates: tuple[str, ...]
    ) -> str: ...

    def lag_ms(self) -> int: ...

    def allows_early_final(self) -> bool:
        """False while the degradation ladder has shed early finals (``asr.degrade``)."""
        ...


class ChannelVad(Protocol):
    def push(self, samples: Samples) -> tuple[Samples, Samples]:
        """Feed 16 kHz audio; return (whole windows consumed, one probability per window)."""
        ...


class VoiceActivity(Protocol):
    """The shared VAD model (``SileroVad``): one detector stream per channel."""

    def stream(self) -> ChannelVad: ...

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run ``work`` off the event loop in submission order; ``done(result)`` on it."""
        ...


@dataclass
class _Channel:
    index: int
    speaker: Speaker
    resampler: soxr.ResampleStream | None
    vad: ChannelVad
    segmenter: UtteranceSegmenter
    stabilizer: Stabilizer
    open_id: str | None = None  # id of the utterance being spoken, once a partial named it
    generation: int = 0  # bumps when an utterance closes, so late partials are dropped
    partial_at_ms: int = 0  # audio length of the open utterance at the last partial request
    partial_busy: bool = False
    early: tuple[UtteranceAudio, asyncio.Future[Recognized]] | None = None
    early_refused_ms: int = -1  # end of the pause the engine refused an early final for
    sentence_checked_ms: int = -1  # end of the pause whose sentence end was decided


@dataclass
class _Pending:
    """A closed utterance on its way through the engine (decoded in submission order)."""

    speaker: Speaker
    utterance: UtteranceAudio
    utterance_id: str
    result: asyncio.Future[Recognized] | None  # None until the language is known


class RecognizeStream:
    """One call's audio channels through VAD, segmenter, engine and stabiliser."""

    def __init__(
        self,
        call_id: str,
        speakers: tuple[Speaker, ...],
        sample_rate: int,
        language: str,
        *,
        engine: StreamEngine,
        vad: VoiceActivity,
        vad_config: VadConfig,
        pacing: Pacing,
    ) -> None:
        self.call_id = call_id
        self.language = language  # "auto" until the first utterance decides it
        self._engine = engine
        self._pacing = pacing
        self._channels = [
            _Channel(
                index,
                speaker,
                None
                if sample_rate == SAMPLE_RATE
                else soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32"),
                vad.stream(),
                UtteranceSegmenter(vad_config),
                Stabilizer(language),
            )
            for index, speaker in enumerate(speakers)
        ]
        self._vad = vad
        self._vad_config = vad_config
        self._rate = sample_rate
        self._input_samples = 0
        self.audio_ms = 0
        """Audio of the first channel received so far, in milliseconds."""
        self._counters: dict[str, int] = {}
        self._pending: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._out: asyncio.Queue[TranscriptEvent | None] = asyncio.Queue()
        self._partial_tasks: set[asyncio.Task[None]] = set()
        self._ended = False  # no more input
        self._closed = False  # torn down: late VAD results are dropped
        self._finish_tails: list[tuple[Samples, Samples]] | None = None
        # VAD results, every channel's, waiting on one channel's sentence-end decision
        self._held: list[tuple[_Channel, tuple[Samples, Samples]]] | None = None
        self._waiting_on: _Channel | None = None
        self._finals = asyncio.create_task(self._decode_loop(), name=f"recognize {call_id}")

    # -- input --------------------------------------------------------------------------

    def push_audio(self, channel: int, pcm: npt.NDArray[np.int16]) -> None:
        """PCM16 samples of one channel at the stream's input rate."""
        if self._ended:
            return
        ch = self._channels[channel]
        if channel == 0:
            self._input_samples += pcm.size
            self.audio_ms = self._input_samples * 1000 // self._rate
        self._vad.submit(lambda: _detect(ch, pcm), lambda found: self._segment(ch, found))

    def end_input(self) -> None:
        """No more audio: close open utterances; the stream ends after their finals."""
        if self._ended:
            return
        self._ended = True
        channels = self._channels
        self._vad.submit(lambda: [_detect(ch, None) for ch in channels], self._finish)

    def _segment(self, ch: _Channel, found: tuple[Samples, Samples]) -> None:
        """On the loop: one push's windows through the segmenter, early finals, partials.

        Windows go in one by one, so that a pause reaching ``vad.sentence_end_ms`` is seen
        at its exact window. There, if the early final is still decoding, every channel's
        audio waits (``_held``) until its text decides whether the sentence ended: where
        utterances are cut, and the order they close in, depend on the audio and that
        text, never on how fast the decode was.
        """
        if self._closed:
            return
        if self._held is not None:
            self._held.append((ch, found))
            return
        audio, probs = found
        for i in range(probs.size):
            window = audio[i * WINDOW : (i + 1) * WINDOW]
            for utterance in ch.segmenter.push(window, probs[i : i + 1]):
                self._close(ch, utterance)
            if not ch.segmenter.in_speech:
                continue
            self._maybe_early_final(ch)
            if self._sentence_end_pending(ch):
                self._held = [(ch, (audio[(i + 1) * WINDOW :], probs[i + 1 :]))]
                self._waiting_on = ch
                return
        if ch.segmenter.in_speech and ch.segmenter.trailing_silence_ms == 0:
            self._maybe_partial(ch)  # in a pause the final comes soon

    def _finish(self, tails: list[tuple[Samples, Samples]]) -> None:
        """On the loop, after every push: the resamplers' tails, then flush every channel."""
        if self._closed:
            return
        if self._held is not None:
            self._finish_tails = tails  # again once the sentence end is decided
            return
        for ch, found in zip(self._channels, tails, strict=True):
            for utterance in ch.segmenter.push(*found):
                self._close(ch, utterance)
            for utterance in ch.segmenter.flush():
                self._close(ch, utterance)
        self._pending.put_nowait(None)

    # -- output -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[TranscriptEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[TranscriptEvent]:
        while (event := await self._out.get()) is not None:
            yield event

    async def aclose(self) -> None:
        """Stop without waiting for pending finals (a call torn down)."""
        self._ended = self._closed = True
        self._finals.cancel()
        for task in list(self._partial_tasks):
            task.cancel()
        self._out.put_nowait(None)

    # -- inside -------------------------------------------------------------------------

    @property
    def _language_known(self) -> bool:
        return self.language != "auto"

    def _maybe_early_final(self, ch: _Channel) -> None:
        """Decode the utterance as it stands at the first pause; ``_close`` reuses it."""
        span = ch.segmenter.closing_span()  # at every window: no audio copied until needed
        if ch.early is not None and (span is None or span[1] != ch.early[0].end_ms):
            ch.early[1].cancel()  # speech went on: that guess is void
            ch.early = None
        if (
            span is None
            or ch.early is not None
            or not wants_early_final(
                self._pacing, language_known=self._language_known, lag_ms=self._engine.lag_ms()
            )
            or span[1] == ch.early_refused_ms  # asked once per pause
        ):
            return
        if not self._engine.allows_early_final():  # shed under load: see asr.degrade
            ch.early_refused_ms = span[1]
            return
        peek = ch.segmenter.peek_closing()
        assert peek is not None
        ch.early = (peek, self._engine.submit(peek, self.language))
        ch.early[1].add_done_callback(lambda _: self._release(ch))

    def _sentence_end_pending(self, ch: _Channel) -> bool:
        """At ``vad.sentence_end_ms`` into a pause with an early final: close the utterance
        if that final ends a sentence; True while it is still decoding (decide later)."""
        cfg = self._vad_config
        early = ch.early
        if (
            not cfg.sentence_end_ms
            or early is None
            or ch.segmenter.trailing_silence_ms < cfg.sentence_end_ms
            or ch.sentence_checked_ms == early[0].end_ms
            or early[0].end_ms - early[0].start_ms < cfg.sentence_end_min_ms  # no need to wait
        ):
            return False
        if not early[1].done():
            return True
        ch.sentence_checked_ms = early[0].end_ms
        decoded = early[1]
        if decoded.cancelled() or decoded.exception() is not None:
            return False
        if ends_sentence(decoded.result().text, self.language):
            utterance = ch.segmenter.close_now()
            if utterance is not None:
                self._close(ch, utterance)
        return False

    def _release(self, ch: _Channel) -> None:
        """The early final the stream waited on is decoded: decide, then go on.

        The wait has no clock of its own: that early final is the utterance's final if it
        ends here, so nothing after it on its channel could be published sooner, and every
        decode ends (in a cluster a lost worker's job is taken over after
        ``claim_timeout_s``)."""
        if self._closed or self._held is None or self._waiting_on is not ch:
            return
        held, self._held, self._waiting_on = self._held, None, None
        if self._sentence_end_pending(ch):  # an older, voided guess called: keep waiting
            self._held, self._waiting_on = held, ch
            return
        for channel, found in held:
            self._segment(channel, found)  # waits again at the next sentence end, if any
        tails, self._finish_tails = self._finish_tails, None
        if tails is not None:
            self._finish(tails)

    def _close(self, ch: _Channel, utterance: UtteranceAudio) -> None:
        """An utterance ended: queue it for its final (the engine starts on it at once)."""
        uid = ch.open_id or self._next_id(ch.speaker)
        ch.open_id, ch.partial_at_ms, ch.generation = None, 0, ch.generation + 1
        ch.stabilizer.reset()
        early, ch.early = ch.early, None
        result: asyncio.Future[Recognized] | None = None
        span = (utterance.start_ms, utterance.end_ms)
        if early is not None and same_span((early[0].start_ms, early[0].end_ms), span):
            result = early[1]
        else:
            if early is not None:
                early[1].cancel()
            if self._language_known:
                result = self._engine.submit(utterance, self.language)
        self._pending.put_nowait(_Pending(ch.speaker, utterance, uid, result))

    def _next_id(self, speaker: Speaker) -> str:
        self._counters[speaker] = self._counters.get(speaker, 0) + 1
        return f"{speaker}-{self._counters[speaker]:04d}"

    def _maybe_partial(self, ch: _Channel) -> None:
        """Ask for a partial when enough new speech arrived and none is in flight."""
        open_ms = ch.segmenter.open_ms  # at every push: the audio is copied only when asked
        if not wants_partial(
            self._pacing,
            open_ms=open_ms,
            last_ms=ch.partial_at_ms,
            busy=ch.partial_busy,
            language_known=self._language_known,
            ended=self._ended,
        ):
            return
        ch.partial_at_ms, ch.partial_busy = open_ms, True
        audio = ch.segmenter.open_audio()
        task = asyncio.create_task(self._partial(ch, audio, ch.segmenter.open_start_ms))
        self._partial_tasks.add(task)
        task.add_done_callback(self._partial_tasks.discard)

    async def _partial(self, ch: _Channel, audio: Samples, start_ms: int) -> None:
        generation = ch.generation
        try:
            result = await self._engine.partial(
                (self.call_id, ch.index), audio, self.language, start_ms
            )
        except Exception:
            log.exception("call %s: a partial failed", self.call_id)
            return
        finally:
            ch.partial_busy = False
        if result is None or not result.text or ch.generation != generation or self._ended:
            return
        if not ch.stabilizer.feed(result.text):
            return
        if ch.open_id is None:
            ch.open_id = self._next_id(ch.speaker)
        self._out.put_nowait(
            TranscriptPartial(
                call_id=self.call_id,
                t_ms=start_ms,
                utterance_id=ch.open_id,
                speaker=ch.speaker,
                text=ch.stabilizer.text,
            )
        )

    async def _decode_loop(self) -> None:
        while (item := await self._pending.get()) is not None:
            try:
                final = await self._recognize(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad utterance must not end the call
                log.exception("call %s: failed to recognise an utterance", self.call_id)
                continue
            if final is not None:
                self._out.put_nowait(final)
        self._out.put_nowait(None)

    async def _recognize(self, item: _Pending) -> TranscriptFinal | None:
        if item.result is None:
            if not self._language_known:
                self.language = await self._engine.detect_language(item.utterance, LANGUAGES)
                for ch in self._channels:
                    ch.stabilizer = Stabilizer(self.language)
            item.result = self._engine.submit(item.utterance, self.language)
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


_NOTHING = np.zeros(0, dtype=np.float32)


def _detect(ch: _Channel, pcm: npt.NDArray[np.int16] | None) -> tuple[Samples, Samples]:
    """Off the loop: PCM16 to 16 kHz float, then Silero; ``None``: the resampler's tail.

    Only the VAD thread touches ``ch.resampler`` and ``ch.vad`` (their state is per channel).
    """
    if pcm is None:
        if ch.resampler is None:
            return _NOTHING, _NOTHING
        samples = ch.resampler.resample_chunk(_NOTHING, last=True)
    else:
        samples = np.multiply(pcm, 1 / 32768.0, dtype=np.float32)
        if ch.resampler is not None:
            samples = ch.resampler.resample_chunk(samples)
    return ch.vad.push(np.asarray(samples, dtype=np.float32))
