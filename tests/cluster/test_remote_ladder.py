"""The gateway's degradation ladder fed by the wait at the workers (real Redis, real
worker processes): levels go up while finals wait for a worker and come back when the
worker catches up; finals are never shed; a worker's decode time is not a wait; a final
whose worker died waits again until another worker takes it over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.cluster.gateway import RemoteRecognitionEngine
from agent_assist.cluster.jobs import GROUP, Keys
from agent_assist.cluster.private_servers import PrivateRedis
from agent_assist.config import load_config
from tests.cluster.conftest import Workers, cluster_config_file
from tests.cluster.test_jobs import jfk

pytestmark = pytest.mark.model


async def until(check: Callable[[], bool], limit_s: float, what: str) -> None:
    """Poll ``check()`` (the engine's stats, as the health report reads them)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_the_ladder_steps_down_while_workers_lag_and_back_when_they_catch_up(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    path = cluster_config_file(tmp_path, redis_server.url)
    config = load_config(path)
    fast = replace(config.degrade, step_down_ms=700, hold_s=0.3, step_up_ms=250, recover_s=1.0)
    engine = RemoteRecognitionEngine(replace(config, degrade=fast))
    workers = Workers(path)
    audio = jfk()
    utterance = UtteranceAudio(0, 0, audio.size * 1000 // 16000, audio)
    try:
        assert engine.stats().level == 0 and engine.allows_early_final()

        # no worker: finals wait on the stream; the gateway's own queue is empty
        finals = [asyncio.ensure_future(engine.submit(utterance, "en")) for _ in range(2)]
        await until(lambda: engine.stats().level >= 2, 15, "the ladder did not step down")
        assert engine.lag_ms() >= 700 and engine.stats().queued == 0
        assert await engine.partial("caller", audio, "en", 0) is None  # partials shed
        assert not engine.allows_early_final()  # early finals shed

        # a worker joins: every final is decoded (none shed), then the ladder steps back
        await asyncio.to_thread(workers.start, "w1")
        texts = await asyncio.wait_for(asyncio.gather(*finals), 60)
        assert all("ask not what your country" in r.text.lower() for r in texts)
        waited = engine.stats()
        assert waited.max_wait_ms >= 2000 and waited.wait_p95_ms >= 2000
        down = waited.steps_down
        await until(lambda: engine.stats().level == 0, 20, "the ladder did not step back")
        assert engine.stats().steps_up >= down and engine.allows_early_final()

        # a worker keeping up: its decode is no wait, so one final at a time moves nothing
        for _ in range(3):
            result = await asyncio.wait_for(engine.transcribe(utterance, "en"), 60)
            assert "ask not" in result.text.lower()
        quiet = engine.stats()
        assert quiet.level == 0 and quiet.steps_down == down
        assert quiet.last_wait_ms < 250 and quiet.final_decode_p50_ms > 0
        assert engine.lag_ms() == 0
    finally:
        engine.close()
        workers.stop()


async def test_a_final_whose_worker_died_mid_decode_waits_again_until_taken_over(
    tmp_path: Path, redis_server: PrivateRedis
) -> None:
    path = cluster_config_file(tmp_path, redis_server.url)  # claim 3 s, reports live 3 s
    config = load_config(path)
    fast = replace(config.degrade, step_down_ms=700, hold_s=0.3, step_up_ms=250, recover_s=1.0)
    engine = RemoteRecognitionEngine(replace(config, degrade=fast))
    workers = Workers(path)
    audio = np.concatenate([jfk(), jfk()])  # a decode long enough to be caught in
    utterance = UtteranceAudio(0, 0, audio.size * 1000 // 16000, audio)
    r = redis.Redis.from_url(redis_server.url)
    stream = Keys(config.cluster.prefix).jobs("final", "en")
    try:
        workers.start("w1")
        final = asyncio.ensure_future(engine.submit(utterance, "en"))
        await until(lambda: r.xpending(stream, GROUP)["pending"] == 1, 30, "not started")
        workers.kill("w1")  # mid-decode: the gateway saw it start, so it stopped waiting
        assert engine.lag_ms() < 700
        await until(lambda: engine.lag_ms() >= 3000, 15, "the held final was not seen waiting")
        await until(lambda: engine.stats().level >= 1, 5, "the ladder did not step down")
        await asyncio.to_thread(workers.start, "w2")  # takes the job over after 3 s
        result = await asyncio.wait_for(final, 60)
        assert "ask not" in result.text.lower()
        assert engine.lag_ms() == 0 and engine.stats().max_wait_ms >= 3000
    finally:
        engine.close()
        workers.stop()
        r.close()
