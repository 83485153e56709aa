"""A finished sentence ends its utterance at a shorter pause; the cut never depends on
how fast its early final was decoded. No models: the scripted VAD and engine of
``test_stream``, whose early finals here answer with chosen text, when the test says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agent_assist.asr.pacing import Pacing, ends_sentence
from agent_assist.asr.segmenter import UtteranceAudio, UtteranceSegmenter
from agent_assist.asr.stream import RecognizeStream
from agent_assist.asr.vad import WINDOW
from agent_assist.asr.whisper import Recognized
from agent_assist.config import VadConfig, parse_config
from agent_assist.errors import ConfigError
from tests.asr.test_stream import PAD, LoudnessVad, ScriptedEngine, W, drain, feed, finals, windows

END = 300 // W + 1  # windows of silence that reach vad.sentence_end_ms (300 ms)
BETWEEN = 12  # a 384 ms pause: past sentence_end_ms, short of min_silence_ms


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("That's way more than I want to pay.", "en"),
        ("can you tell me why it went up?", "en"),
        ("No thanks!", "en"),
        ("料金が高すぎます。", "ja"),
        ("解約したいんですけど、できますか？", "ja"),
        ("ちょっと考えさせてください", "ja"),  # polite form, left unpunctuated
        ("毎月ギガが足りなくなるんですよね", "ja"),
        ("「もう結構です。」", "ja"),
    ],
)
def test_finished_sentences(text: str, language: str) -> None:
    assert ends_sentence(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("so what I was wondering is,", "en"),
        ("and then the bill said", "en"),  # no full stop: a speaker mid-sentence
        ("I mean...", "en"),  # trailing off
        ("well…", "en"),
        ("ですので、", "ja"),
        ("料金のほうが", "ja"),
        ("あの…", "ja"),
        ("This is nice です", "en"),  # Japanese forms count only in Japanese
        ("", "ja"),
    ],
)
def test_unfinished_sentences(text: str, language: str) -> None:
    assert not ends_sentence(text, language)


def problems(**vad: int) -> str:
    try:
        parse_config({"vad": vad}, "test", Path("."))
    except ConfigError as exc:
        return str(exc)
    return ""


def test_sentence_end_must_lie_between_the_pad_and_the_endpoint() -> None:
    for bad in (150, 600):
        assert "vad.sentence_end_ms" in problems(sentence_end_ms=bad)
    assert problems(sentence_end_ms=0) == problems(sentence_end_ms=500) == ""
    assert "vad.pause_ms" in problems(pause_ms=250)


def test_the_early_final_starts_at_the_pause_with_its_pad_as_silence() -> None:
    seg = UtteranceSegmenter(VadConfig())
    loud = np.full(WINDOW, 0.5, dtype=np.float32)
    quiet = np.full(WINDOW, 0.01, dtype=np.float32)  # low noise, not digital silence

    def push(frame: np.ndarray, prob: float) -> list[UtteranceAudio]:
        return seg.push(frame, np.array([prob], dtype=np.float32))

    for _ in range(20):
        push(loud, 1.0)
    push(quiet, 0.0)
    assert seg.closing_span() is None, "one quiet window is not yet a pause"
    push(quiet, 0.0)
    early = seg.peek_closing()
    assert early is not None and (early.end_ms - early.start_ms) // W == 20 + PAD
    tail = early.samples[-(PAD - 2) * WINDOW :]
    assert not tail.any(), "the pad not yet heard is digital silence"
    assert (early.samples[20 * WINDOW : 22 * WINDOW] == 0.01).all(), "the pause heard so far"
    assert seg.close_now() is None, "not before the pad has arrived"
    for _ in range(PAD - 2):
        push(quiet, 0.0)
    assert seg.closing_span() == (early.start_ms, early.end_ms), "the span held through the pause"
    closed = seg.close_now()
    assert closed is not None and (closed.start_ms, closed.end_ms) == (early.start_ms, early.end_ms)
    assert not seg.in_speech


class SentenceEngine(ScriptedEngine):
    """Every final reads ``text``; with ``hold``, finals wait until ``answer()``."""

    def __init__(self, text: str, hold: bool = False) -> None:
        super().__init__()
        self.text = text
        self.hold = hold

    def submit(self, utterance: UtteranceAudio, language: str) -> asyncio.Future[Recognized]:
        fut: asyncio.Future[Recognized] = asyncio.get_running_loop().create_future()
        if not self.hold:
            fut.set_result(Recognized(text=self.text, language=language, words=()))
        self.finals.append((utterance.start_ms, utterance.end_ms, language, fut))
        return fut

    def answer(self) -> None:
        for *_, fut in self.finals:
            if not fut.done():
                fut.set_result(Recognized(text=self.text, language="en", words=()))


def sentence_stream(engine: ScriptedEngine, vad: VadConfig | None = None) -> RecognizeStream:
    return RecognizeStream(
        "c-test",
        ("customer",),
        16000,
        "en",
        engine=engine,
        vad=LoudnessVad(),
        vad_config=vad or VadConfig(sentence_end_min_ms=1000),
        pacing=Pacing(partials=False),
    )


TWO_SENTENCES = (("quiet", 10), ("speech", 40), ("quiet", BETWEEN), ("speech", 40), ("quiet", 30))


async def spans(engine: ScriptedEngine, vad: VadConfig | None = None) -> list[tuple[int, int]]:
    s = sentence_stream(engine, vad)
    await feed(s, windows(*TWO_SENTENCES))
    if isinstance(engine, SentenceEngine) and engine.hold:
        engine.answer()
        await asyncio.sleep(0)
        engine.answer()  # the second utterance's final, submitted after the release
    return [(f.t_ms, f.end_ms) for f in finals(await drain(s))]


FIRST = ((10 - PAD) * W, (50 + PAD) * W)


async def test_a_finished_sentence_ends_its_utterance_at_the_shorter_pause() -> None:
    engine = SentenceEngine("That's more than I can pay.")
    out = await spans(engine)
    assert out[0] == FIRST and len(out) == 2, "the 384 ms pause ended the first sentence"
    assert engine.finals[0][:2] == FIRST and len(engine.finals) == 2, "its early final was kept"


async def test_the_final_comes_at_the_shorter_pause_not_at_the_endpoint() -> None:
    engine = SentenceEngine("That's more than I can pay.")
    s = sentence_stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", END)))
    first = await asyncio.wait_for(anext(aiter(s)), 1)
    assert (first.t_ms, first.end_ms) == FIRST  # min_silence_ms (16 windows) not yet reached
    await drain(s)


async def test_an_unfinished_sentence_waits_for_the_endpoint() -> None:
    out = await spans(SentenceEngine("so what I was wondering is,"))
    assert len(out) == 1, "one utterance across the pause"


async def test_off_when_sentence_end_ms_is_zero() -> None:
    out = await spans(SentenceEngine("Done."), VadConfig(sentence_end_ms=0))
    assert len(out) == 1


async def test_a_short_utterance_waits_for_the_endpoint() -> None:
    short = VadConfig(sentence_end_min_ms=(40 + 2 * PAD) * W + W)  # just longer than it
    assert len(await spans(SentenceEngine("Yes."), short)) == 1
    assert len(await spans(SentenceEngine("Yes."), VadConfig(sentence_end_min_ms=0))) == 2


@pytest.mark.parametrize("text", ["That's more than I can pay.", "so what I was wondering is,"])
async def test_a_slow_decode_holds_the_audio_and_cuts_where_a_fast_one_would(text: str) -> None:
    fast = await spans(SentenceEngine(text))
    slow_engine = SentenceEngine(text, hold=True)
    slow = await spans(slow_engine)
    assert slow == fast
    assert all(fut.done() for *_, fut in slow_engine.finals)


async def test_end_of_input_waits_for_a_held_sentence_end() -> None:
    engine = SentenceEngine("Done.", hold=True)
    s = sentence_stream(engine)
    await feed(s, windows(("quiet", 10), ("speech", 40), ("quiet", END + 2)))
    s.end_input()
    await asyncio.sleep(0)
    engine.answer()
    out = [(f.t_ms, f.end_ms) for f in finals([e async for e in s])]
    assert out == [FIRST]


async def close_order(engine: SentenceEngine) -> list[tuple[str, int]]:
    """The agent ends a sentence and pauses; the customer answers at once: the order
    their finals come in."""
    s = RecognizeStream(
        "c-test", ("agent", "customer"), 16000, "en", engine=engine, vad=LoudnessVad(),
        vad_config=VadConfig(sentence_end_min_ms=1000), pacing=Pacing(partials=False),
    )  # fmt: skip
    agent = windows(("quiet", 5), ("speech", 40), ("quiet", 70))  # a sentence, then a pause
    customer = windows(("quiet", 50), ("speech", 15), ("quiet", 50))  # "No." (under 1 s)
    for start in range(0, agent.size, WINDOW):  # a held decode answers only at the end
        s.push_audio(0, agent[start : start + WINDOW])
        s.push_audio(1, customer[start : start + WINDOW])
        await asyncio.sleep(0)
    for _ in range(3):  # the early final, then what closed after it
        engine.answer()
        await asyncio.sleep(0)
    return [(f.speaker, f.t_ms) for f in finals(await drain(s))]


async def test_a_slow_decode_keeps_the_order_finals_close_in_across_channels() -> None:
    fast = await close_order(SentenceEngine("Here's what I can offer."))
    slow = await close_order(SentenceEngine("Here's what I can offer.", hold=True))
    assert [speaker for speaker, _ in fast] == ["agent", "customer"]
    assert slow == fast
