"""The streaming recognition stage with a scripted recogniser and VAD: no models needed.

The fake VAD calls a 32 ms window speech when its samples are loud; the fake engine
answers every final with the language and span it was asked for, so each test reads
exactly which audio the stage sent where, and when.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pytest

from agent_assist.asr.pacing import Pacing
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.stream import RecognizeStream, TranscriptEvent
from agent_assist.asr.vad import WINDOW, Samples
from agent_assist.asr.vad_thread import VadThread
from agent_assist.asr.whisper import Recognized
from agent_assist.config import VadConfig
from agent_assist.core.events import TranscriptFinal, TranscriptPartial

W = WINDOW * 1000 // 16000  # 32 ms per VAD window
PAD = 200 // W  # speech_pad_ms in windows (6)


class LoudnessVad:
    """Speech probability 1 for a loud window, 0 for a quiet one; ``threaded``: its work
    runs on a real ``VadThread`` as the live server's does, else inline (deterministic)."""

    def stream(self) -> LoudnessVad:
        return LoudnessVad()

    def __init__(self, threaded: VadThread | None = None) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.threaded = threaded
        self.thread_ids: set[int] = set()

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        def tracked() -> Any:
            self.thread_ids.add(threading.get_ident())
            return work()

        if self.threaded is not None:
            self.threaded.submit(tracked, done)
        else:
            done(tracked())

    def push(self, samples: Samples) -> tuple[Samples, Samples]:
        data = np.concatenate([self._pending, samples])
        n = data.size // WINDOW
        self._pending = data[n * WINDOW :]
        windows = data[: n * WINDOW]
        loud = np.abs(windows.reshape(n, WINDOW)).mean(axis=1) > 0.1 if n else np.zeros(0)
        return windows, loud.astype(np.float32)


class ScriptedEngine:
    """Finals say ``language:start-end``; partials read from ``hypotheses`` in order."""

    def __init__(self, hypotheses: list[str] | None = None, detected: str = "ja") -> None:
        self.finals: list[tuple[int, int, str, asyncio.Future[Recognized]]] = []
        self.partials: list[int] = []  # audio length (ms) of each partial request
        self.hypotheses = list(hypotheses or [])
        self.detected = detected
        self.detections = 0
        self.lag = 0
        self.early_shed = False  # the degradation ladder's early_finals step
        self.early_asked = 0

    def submit(self, utterance: UtteranceAudio, language: str) -> asyncio.Future[Recognized]:
        fut: asyncio.Future[Recognized] = asyncio.get_running_loop().create_future()
        text = f"{language}:{utterance.start_ms}-{utterance.end_ms}"
        fut.set_result(Recognized(text=text, language=language, words=()))
        self.finals.append((utterance.start_ms, utterance.end_ms, language, fut))
        return fut

    async def partial(
        self, key: Hashable, samples: Samples, language: str, offset_ms: int
    ) -> Recognized | None:
        self.partials.append(samples.size * 1000 // 16000)
        text = self.hypotheses.pop(0) if self.hypotheses else ""
        return Recognized(text=text, language=language, words=())

    async def detect_language(self, utterance: UtteranceAudio, candidates: tuple[str, ...]) -> str:
        self.detections += 1
        assert self.detected in candidates
        return self.detected

    def lag_ms(self) -> int:
        return self.lag

    def allows_early_final(self) -> bool:
        self.early_asked += 1
        return not self.early_shed


def windows(*runs: tuple[str, int]) -> np.ndarray:
    """PCM16 audio from runs of ("speech" | "quiet", number of 32 ms windows)."""
    level = {"speech": 16000, "quiet": 0}
    return np.concatenate([np.full(n * WINDOW, level[kind], dtype=np.int16) for kind, n in runs])


def stream(
    engine: ScriptedEngine,
    language: str = "en",
    pacing: Pacing | None = None,
    rate: int = 16000,
    vad: LoudnessVad | None = None,
) -> RecognizeStream:
    return RecognizeStream(
        "c-test",
        ("agent",),
        rate,
        language,
        engine=engine,
        vad=vad or LoudnessVad(),
        vad_config=VadConfig(),
        pacing=pacing or Pacing(partials=False),
    )


async def feed(s: RecognizeStream, pcm: np.ndarray, step: int = WINDOW) -> None:
    """Push ``pcm`` in chunks, letting the stage's tasks run in between, as a socket would."""
    for start in range(0, pcm.size, step):
        s.push_audio(0, pcm[start : start + step])
        for _ in range(3):
            await asyncio.sleep(0)


async def drain(s: RecognizeStream) -> list[TranscriptEvent]:
    s.end_input()
    return [event async for event in s]


def finals(events: list[TranscriptEvent]) -> list[TranscriptFinal]:
    return [e for e in events if isinstance(e, TranscriptFinal)]


async def test_endpointing_cuts_utterances_at_silence_with_padding() -> None:
    engine = ScriptedEngine()
    s = stream(engine)
    await feed(
        s, windows(("quiet", 10), ("speech", 40), ("quiet", 30), ("speech", 20), ("quiet", 30))
    )
    out = finals(await drain(s))
    first = ((10 - PAD) * W, (50 + PAD) * W)
    second = ((80 - PAD) * W, (100 + PAD) * W)
    assert [(f.t_ms, f.end_ms) for f in out] == [first, second]
    assert [f.utterance_id for f in out] == ["agent-0001", "agent-0002"]
    assert out[0].text == f"en:{first[0]}-{first[1]}" and out[0].call_id == "c-test"
    assert s.audio_ms == 130 * W


async def test_an_early_final_is_kept_when_the_utterance_closes_where_it_was_cut() -> None:
    engine = ScriptedEngine()
    s = stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", PAD + 1)))
    assert len(engine.finals) == 1, "the first pause starts a decode before the endpoint"
    await feed(s, windows(("quiet", 30)))
    out = finals(await drain(s))
    assert len(engine.finals) == 1, "the endpoint reused the early decode"
    assert [(f.t_ms, f.end_ms) for f in out] == [((10 - PAD) * W, (50 + PAD) * W)]


async def test_an_early_final_is_withdrawn_when_speech_goes_on() -> None:
    engine = ScriptedEngine()
    s = stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", PAD + 2)))
    early = engine.finals[0][3]
    await feed(s, windows(("speech", 20), ("quiet", 30)))
    out = finals(await drain(s))
    assert early.cancelled() or early.done()
    assert engine.finals[0][1] == (50 + PAD) * W  # the guess ended at the pause
    assert [(f.t_ms, f.end_ms) for f in out] == [((10 - PAD) * W, (50 + PAD + 2 + 20 + PAD) * W)]
    assert len(out) == 1, "one utterance, not two"


async def test_no_early_final_while_the_engine_lags() -> None:
    engine = ScriptedEngine()
    engine.lag = 5000
    s = stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", PAD + 2)))
    assert engine.finals == []
    await feed(s, windows(("quiet", 30)))
    assert len(finals(await drain(s))) == 1


async def test_no_early_final_while_the_ladder_has_shed_them() -> None:
    engine = ScriptedEngine()
    engine.early_shed = True
    s = stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", PAD + 6)))
    assert engine.finals == [] and engine.early_asked == 1, "asked once for this pause"
    await feed(s, windows(("quiet", 30)))
    assert len(finals(await drain(s))) == 1, "the final still comes, at the endpoint"


async def test_partials_are_paced_and_never_take_words_back() -> None:
    engine = ScriptedEngine(["we would like", "we would like the", "we would like the fast plan"])
    s = stream(engine, pacing=Pacing(partials=True, early_final=False))
    await feed(s, windows(("quiet", 10), ("speech", 100), ("quiet", 30)))
    events = await drain(s)
    # whenever interval_ms (1000) more audio came, once min_audio_ms (800) is open
    assert engine.partials == [32 * W, 64 * W, 96 * W]
    partials = [e for e in events if isinstance(e, TranscriptPartial)]
    assert partials, "the stabiliser committed some words"
    texts = [p.text for p in partials]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    (final,) = finals(events)
    assert {p.utterance_id for p in partials} == {final.utterance_id}
    assert all(p.t_ms == final.t_ms for p in partials)


async def test_partials_off_means_none_requested() -> None:
    engine = ScriptedEngine(["a b c"] * 5)
    s = stream(engine, pacing=Pacing(partials=False))
    await feed(s, windows(("quiet", 10), ("speech", 100), ("quiet", 30)))
    assert engine.partials == [] and len(finals(await drain(s))) == 1


async def test_auto_language_is_detected_once_then_used_for_every_final() -> None:
    engine = ScriptedEngine(["x y z"] * 5, detected="ja")
    s = stream(engine, language="auto", pacing=Pacing(partials=True, early_final=True))
    await feed(s, windows(("quiet", 10), ("speech", 60), ("quiet", PAD + 2)))
    assert engine.partials == [] and engine.finals == [], "nothing decoded before the language"
    await feed(s, windows(("quiet", 30), ("speech", 20), ("quiet", 30)))
    out = finals(await drain(s))
    assert engine.detections == 1 and s.language == "ja"
    assert [f.language for f in out] == ["ja", "ja"]
    assert all(f.text.startswith("ja:") for f in out)


async def test_end_of_input_flushes_the_open_utterance_and_ends_the_stream() -> None:
    engine = ScriptedEngine()
    s = stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 30)))
    assert engine.finals == []
    out = await asyncio.wait_for(drain(s), 5)
    assert [(f.t_ms, f.end_ms) for f in finals(out)] == [((10 - PAD) * W, 40 * W)]
    s.push_audio(0, windows(("speech", 40)))  # after the end: ignored
    assert len(engine.finals) == 1


@pytest.mark.parametrize("rate", [8000, 48000])
async def test_other_sample_rates_are_resampled_to_the_same_utterance(rate: int) -> None:
    engine = ScriptedEngine()
    s = stream(engine, rate=rate)
    pcm16k = windows(("quiet", 10), ("speech", 40), ("quiet", 30))
    pcm = np.repeat(pcm16k, 3) if rate == 48000 else pcm16k[::2]
    await feed(s, pcm, step=rate // 10)
    (final,) = finals(await drain(s))
    assert abs(final.t_ms - (10 - PAD) * W) <= 2 * W
    assert abs(final.end_ms - (50 + PAD) * W) <= 2 * W
    assert abs(s.audio_ms - 80 * W) <= 2 * W


async def test_the_vad_runs_off_the_event_loop_and_cuts_the_same_utterances() -> None:
    runs = (("quiet", 10), ("speech", 40), ("quiet", 30), ("speech", 20), ("quiet", 30))
    inline = stream(ScriptedEngine())
    await feed(inline, windows(*runs))
    expected = [(f.t_ms, f.end_ms, f.text) for f in finals(await drain(inline))]
    thread = VadThread("vad-test")
    vad = LoudnessVad(threaded=thread)
    s = stream(ScriptedEngine(), vad=vad)
    pcm = windows(*runs)
    gate = threading.Event()
    thread.submit(gate.wait, lambda _: None)  # holds the thread until every push is queued
    for start in range(0, pcm.size, WINDOW):  # no yielding: results come back later, in order
        s.push_audio(0, pcm[start : start + WINDOW])
    gate.set()
    assert s.audio_ms == 130 * W, "what was received counts at once"
    out = await asyncio.wait_for(drain(s), 10)
    thread.close()
    assert [(f.t_ms, f.end_ms, f.text) for f in out] == expected and len(expected) == 2
    assert vad.thread_ids and threading.get_ident() not in vad.thread_ids
    assert thread.batches <= 3, "130 pushes came back in one loop wake-up (+ gate, + end)"


async def test_vad_results_after_a_teardown_are_dropped() -> None:
    thread = VadThread("vad-test")
    engine = ScriptedEngine()
    s = stream(engine, vad=LoudnessVad(threaded=thread))
    s.push_audio(0, windows(("quiet", 10), ("speech", 40), ("quiet", 30)))
    await s.aclose()
    done = asyncio.get_running_loop().create_future()
    thread.submit(lambda: None, done.set_result)  # after the stream's push, in order
    await asyncio.wait_for(done, 10)
    thread.close()
    assert engine.finals == [], "a torn-down call decodes nothing more"
