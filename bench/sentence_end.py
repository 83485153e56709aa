"""What the earlier endpoint costs in accuracy: early finals at the first pause, and a
finished sentence ending its utterance at a shorter pause.

``vad.pause_ms`` starts the early final before the pad after the speech is heard (decoded
as silence instead); ``vad.sentence_end_ms`` closes an utterance sooner when its early
final ends a sentence, so some turns that used to be one utterance become two. This runs
the dense calls of ``bench.dense`` through the real recognition stage (Silero, the
segmenter, the engine and faster-whisper, ``config.toml``), once per setting
(``SETTINGS``), and compares every turn's finals, joined, with the turn table's text:
word error rate (English), character error rate (Japanese), and utterances per turn.

The cut is a function of the audio and the early finals' text, never of decode speed
(the stream holds the audio until a sentence end is decided), so the audio is pushed as
fast as it is taken, with early finals always asked for and the degradation ladder off:
the figures are those of a box that is not shedding anything.

    python -m bench.sentence_end [--calls 16] [--seed 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.pacing import Pacing
from agent_assist.asr.stream import RecognizeStream
from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import Config, load_config
from agent_assist.core.events import TranscriptFinal
from bench.common import REPO, error_counts
from bench.dense import RATE, SPEAKERS, make_calls

CHUNK = RATE // 10  # 100 ms pushes, as replay sends
SETTINGS = ((200, 0), (64, 0), (64, 300))
"""(vad.pause_ms, vad.sentence_end_ms): early finals once the whole pad is heard and no
sentence ends (the earlier default); early finals at the first 64 ms of pause; both."""


async def recognise(
    engine: RecognitionEngine, vad: SileroVad, cfg: Config, audio: np.ndarray[Any, Any], lang: str
) -> list[TranscriptFinal]:
    """One two-channel call through a ``RecognizeStream``; its finals."""
    stream = RecognizeStream(
        "bench",
        SPEAKERS,
        RATE,
        lang,
        engine=engine,
        vad=vad,
        vad_config=cfg.vad,
        pacing=Pacing(partials=False, max_lag_ms=10**9, early_final=True),
    )
    for start in range(0, audio.shape[0], CHUNK):
        for ch in range(2):
            stream.push_audio(ch, np.ascontiguousarray(audio[start : start + CHUNK, ch]))
        await asyncio.sleep(0)
    stream.end_input()
    return [e async for e in stream if isinstance(e, TranscriptFinal)]


def score(
    finals: list[TranscriptFinal], turns: list[dict[str, Any]], lang: str
) -> tuple[int, int, int, int]:
    """(edits, reference length, turns, utterances) over the call's turns."""
    edits = length = utterances = 0
    for turn in turns:
        start, end = turn["start"] * 1000, turn["end"] * 1000
        mine = [
            f
            for f in finals
            if f.speaker == turn["speaker"] and f.t_ms < end + 300 and f.end_ms > start
        ]
        hyp = ("" if lang == "ja" else " ").join(f.text for f in mine)
        e, n = error_counts(hyp, turn["text"], lang)
        edits, length, utterances = edits + e, length + n, utterances + len(mine)
    return edits, length, len(turns), utterances


async def measure(cfg: Config, calls: list[tuple[Path, str]]) -> dict[str, Any]:
    recognizer = WhisperRecognizer(cfg.asr, cfg.resolve(cfg.models.dir), cfg.vad)
    no_ladder = replace(cfg.degrade, enabled=False)  # every final at full quality
    engine = RecognitionEngine(recognizer, cfg.asr, cfg.partials, no_ladder)
    vad = SileroVad()
    totals = {lang: [0, 0, 0, 0] for lang in ("en", "ja")}
    try:
        for path, lang in calls:
            audio, _ = sf.read(path, dtype="int16", always_2d=True)
            turns = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["turns"]
            finals = await recognise(engine, vad, cfg, audio, lang)
            for i, x in enumerate(score(finals, turns, lang)):
                totals[lang][i] += x
    finally:
        engine.close()
        vad.close()
    return {
        lang: {
            "error_rate": round(e / n, 4) if n else float("nan"),
            "turns": t,
            "utterances_per_turn": round(u / t, 3) if t else float("nan"),
        }
        for lang, (e, n, t, u) in totals.items()
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=16, help="dense calls, languages alternating")
    p.add_argument("--seed", type=int, default=32)
    p.add_argument("--seconds", type=float, default=45.0)
    a = p.parse_args()
    base = load_config(REPO / "config.toml")
    with tempfile.TemporaryDirectory() as tmp:
        calls = []
        for i in range(a.calls):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            calls += make_calls(1, a.seconds, folder, seed=a.seed + i)
        for pause_ms, sentence_end_ms in SETTINGS:
            vad = replace(base.vad, pause_ms=pause_ms, sentence_end_ms=sentence_end_ms)
            row = asyncio.run(measure(replace(base, vad=vad), calls))
            print(json.dumps({"pause_ms": pause_ms, "sentence_end_ms": sentence_end_ms,
                              "calls": a.calls, **row}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
