"""Admission control on the real server (127.0.0.1 port 0): a call past capacity is refused
with ``call.limit``; the health report says so to a load balancer, without call data."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.vad import Samples, SileroVad
from agent_assist.asr.whisper import Recognized
from agent_assist.config import Config
from agent_assist.runtime.services import build_services
from agent_assist.server.app import AgentAssistServer
from tests.conftest import RunningServer, _serve
from tests.server.test_server import msg, recv_json


async def call_start(ws: ClientConnection, mode: str = "text") -> dict[str, Any]:
    await ws.send(msg("hello", {"role": "source"}))
    assert (await recv_json(ws))["type"] == "ready"
    data: dict[str, Any] = {"language": "en", "mode": mode}
    if mode == "audio":
        data.update(channels=["agent", "customer"], sample_rate=16000, encoding="pcm16")
    await ws.send(msg("call.start", data, seq=2))
    return await recv_json(ws)


async def test_a_call_past_max_calls_is_refused_and_health_says_full(
    config: Config, tmp_path: Path
) -> None:
    limited = replace(config, server=replace(config.server, max_calls=2))
    async with _serve(limited, tmp_path / "calls.sqlite3", with_asr=False) as server:
        status, report = await asyncio.to_thread(server.health)
        assert status == 200 and report["accepting"] and report["calls"] == 0
        assert report["max_calls"] == 2
        first, second = await connect(server.url), await connect(server.url)
        assert (await call_start(first))["type"] == "call.started"
        assert (await call_start(second))["type"] == "call.started"
        async with connect(server.url) as third:
            refused = await call_start(third)
            assert refused["type"] == "error"
            assert refused["data"]["code"] == "call.limit"
            assert refused["data"]["fault"] == "server"
            assert "server.max_calls" in refused["data"]["message"]
            status, report = await asyncio.to_thread(server.health)
            assert status == 503 and not report["accepting"] and report["calls"] == 2
            body = json.dumps(report)
            assert all(c not in body for c in server.server.calls)  # no call data in it
            # one call ends: the next one is taken on the same connection
            await first.send(msg("call.end", {"reason": "hangup"}, seq=3))
            while (await recv_json(first))["type"] != "call.ended":
                pass
            await third.send(msg("call.start", {"language": "en", "mode": "text"}, seq=3))
            assert (await recv_json(third))["type"] == "call.started"
            for ws in (second, third):  # hang up (a dropped source keeps its call a while)
                await ws.send(msg("call.end", {"reason": "hangup"}, seq=9))
                while (await recv_json(ws))["type"] != "call.ended":
                    pass
        await first.close()
        await second.close()
        status, report = await asyncio.to_thread(server.health)
        assert status == 200 and report["accepting"] and report["calls"] == 0


class GatedRecognizer:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def transcribe_batch(
        self, items: Sequence[tuple[Samples, int]], language: str, *, partial: bool = False
    ) -> list[Recognized]:
        self.gate.wait(20)
        return [Recognized("", language, ()) for _ in items]

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        return candidates[0]


async def test_audio_calls_are_refused_while_recognition_is_behind(
    config: Config, tmp_path: Path
) -> None:
    """The load-based rule: lag past ``server.refuse_lag_ms`` refuses audio calls (text
    calls need no recognition and are still taken); when the lag clears, calls come in."""
    cfg = replace(config, server=replace(config.server, refuse_lag_ms=200, max_calls=50))
    services = await asyncio.to_thread(
        build_services, cfg, with_asr=False, store_path=tmp_path / "calls.sqlite3"
    )
    rec = GatedRecognizer()
    services.engine = RecognitionEngine(rec, cfg.asr, cfg.partials, cfg.degrade)
    services.vad = SileroVad()
    app = AgentAssistServer(services)
    host, port = await app.start("127.0.0.1", 0)
    server = RunningServer(app, host, port, tmp_path / "calls.sqlite3")
    try:
        silence = np.zeros(16000, np.float32)
        busy = range(cfg.asr.workers + 1)  # every decoder held at the gate, one more waits
        pending = [
            services.engine.submit(UtteranceAudio(1, t, t + 1000, silence), "en") for t in busy
        ]
        await asyncio.sleep(0.4)
        status, report = await asyncio.to_thread(server.health)
        assert status == 503 and report["lag_ms"] >= 200 and "behind" in report["reason"]
        async with connect(server.url) as ws:
            refused = await call_start(ws, "audio")
            assert refused["data"]["code"] == "call.limit"
            assert "server.refuse_lag_ms" in refused["data"]["message"]
        async with connect(server.url) as ws:
            assert (await call_start(ws, "text"))["type"] == "call.started"
        rec.gate.set()
        await asyncio.gather(*pending)
        status, report = await asyncio.to_thread(server.health)
        assert status == 200 and report["lag_ms"] == 0 and report["level"] == 0
        # where those finals' time went: the first held in its decode, the second queued
        assert report["final_decode_p95_ms"] >= 300 and report["final_wait_p95_ms"] >= 300
        async with connect(server.url) as ws:
            assert (await call_start(ws, "audio"))["type"] == "call.started"
    finally:
        rec.gate.set()
        await app.close()
        services.close()
