"""The degradation ladder: steps down as finals wait, back up when quiet, never flaps."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from agent_assist.asr.degrade import DegradationLadder
from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.vad import Samples
from agent_assist.asr.whisper import Recognized
from agent_assist.config import AsrConfig, DegradeConfig, PartialsConfig, parse_config
from agent_assist.errors import ConfigError

CFG = DegradeConfig(step_down_ms=500, hold_s=1.0, step_up_ms=100, recover_s=5.0)


def test_steps_down_in_order_at_most_once_per_hold() -> None:
    ladder = DegradationLadder(CFG, now=0.0)
    ladder.observe(600, 1.0)
    assert (ladder.level, ladder.level_name) == (1, "partials")
    assert ladder.shed("partials") and not ladder.shed("early_finals")
    ladder.observe(900, 1.5)  # within hold_s of the last step: stays
    assert ladder.level == 1
    for t in (2.5, 3.5, 4.5, 5.5, 6.5):
        ladder.observe(900, t)
    assert ladder.level == 4 and ladder.level_name == "fallback_model"  # and no deeper
    assert all(ladder.shed(s) for s in CFG.steps)
    assert ladder.steps_down == 4 and [c.level for c in ladder.history] == [1, 2, 3, 4]


def test_steps_up_one_at_a_time_only_after_a_quiet_period() -> None:
    ladder = DegradationLadder(CFG, now=0.0)
    ladder.observe(600, 1.0)
    ladder.observe(600, 2.0)
    assert ladder.level == 2
    ladder.observe(300, 4.0)  # below step_down, above step_up: neither way; resets quiet
    ladder.settle(8.9)
    assert ladder.level == 2
    ladder.observe(50, 9.0)
    ladder.settle(9.1)  # 5.1 s since the last loud wait: one step up
    assert ladder.level == 1
    ladder.settle(12.0)  # another recover_s must pass since that step
    assert ladder.level == 1
    ladder.settle(14.2)
    assert ladder.level == 0 and ladder.steps_up == 2
    ladder.settle(100.0)
    assert ladder.level == 0


def test_a_wait_between_the_thresholds_holds_the_level() -> None:
    """Hysteresis: hovering between step_up_ms and step_down_ms neither sheds nor restores."""
    ladder = DegradationLadder(CFG, now=0.0)
    ladder.observe(700, 1.0)
    for t in range(2, 40):
        ladder.observe(250, float(t))
    assert ladder.level == 1 and ladder.steps_down == 1 and ladder.steps_up == 0


def test_disabled_ladder_never_moves() -> None:
    ladder = DegradationLadder(DegradeConfig(enabled=False), now=0.0)
    ladder.observe(60_000, 100.0)
    assert ladder.level == 0 and not ladder.shed("partials")


def test_config_checks_steps_and_hysteresis(tmp_path: object) -> None:
    doc = {
        "degrade": {"steps": ["partials", "louder"], "step_up_ms": 900, "step_down_ms": 800},
        "server": {"refuse_level": 5},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "config.toml", tmp_path)  # type: ignore[arg-type]
    text = str(info.value)
    assert "degrade.steps" in text and "degrade.step_up_ms" in text
    assert "server.refuse_level" in text


class PacedRecognizer:
    """A scripted recogniser: each decode takes ``decode_s``; records the options it got."""

    def __init__(self) -> None:
        self.decode_s = 0.0
        self.calls: list[tuple[bool, bool, bool]] = []  # (partial, greedy, fallback)
        self.lock = threading.Lock()

    def transcribe_batch(
        self,
        items: Sequence[tuple[Samples, int]],
        language: str,
        *,
        partial: bool = False,
        greedy: bool = False,
        fallback: bool = False,
    ) -> list[Recognized]:
        time.sleep(self.decode_s)
        with self.lock:
            self.calls.append((partial, greedy, fallback))
        return [Recognized(f"t{off}", language, ()) for _, off in items]

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        return candidates[0]


def utt(start_ms: int) -> UtteranceAudio:
    return UtteranceAudio(1, start_ms, start_ms + 1000, np.zeros(1600, np.float32))


async def test_engine_sheds_under_slow_decoding_and_recovers_when_it_speeds_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_assist.asr.engine")
    rec = PacedRecognizer()
    ladder = DegradeConfig(step_down_ms=150, hold_s=0.1, step_up_ms=60, recover_s=0.4)
    engine = RecognitionEngine(rec, AsrConfig(), PartialsConfig(max_lag_ms=60_000), ladder)
    try:
        partial = await engine.partial("ch", np.zeros(10, np.float32), "en", 0)
        assert partial is not None and engine.allows_early_final()
        rec.decode_s = 0.12  # slower than finals arrive: waits grow
        deadline = time.monotonic() + 10
        t = 0
        while engine.stats().level < 4 and time.monotonic() < deadline:
            engine.submit(utt(t), "en")
            t += 1
            await asyncio.sleep(0.04)
        stats = engine.stats()
        assert stats.level == 4 and stats.level_name == "fallback_model"
        assert stats.steps_down == 4
        # every shed step is in force: no partials, no early finals
        assert await engine.partial("ch", np.zeros(10, np.float32), "en", 1) is None
        assert not engine.allows_early_final()
        await engine.submit(utt(10_000), "en")
        with rec.lock:
            assert (False, True, True) in rec.calls  # greedy on the fallback model
        # the load falls: the queue drains, and the ladder climbs back one step at a time
        rec.decode_s = 0.0
        while engine.stats().queued and time.monotonic() < deadline + 10:
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        while engine.stats().level > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stats = engine.stats()
        assert stats.level == 0 and stats.steps_up == 4
        assert [c.level for c in engine.level_changes()] == [1, 2, 3, 4, 3, 2, 1, 0]
        partial = await engine.partial("ch", np.zeros(10, np.float32), "en", 2)
        assert partial is not None and engine.allows_early_final()
        await engine.submit(utt(20_000), "en")
        with rec.lock:
            assert rec.calls[-1] == (False, False, False)  # full quality again
        assert stats.greedy_finals > 0 and stats.fallback_finals > 0
        assert stats.early_finals_shed >= 1 and stats.partials_dropped >= 1
        moves = [r.getMessage() for r in caplog.records if "degradation level" in r.getMessage()]
        assert moves[0].startswith("recognition degradation level 0 -> 1 (partials")
        assert len(moves) == 8 and "1 -> 0 (full" in moves[-1]
    finally:
        engine.close()
