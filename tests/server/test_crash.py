"""The real server process killed with SIGKILL mid-call, then started again: nothing it
acknowledged is lost, the call is closed like any other, its audio is a valid FLAC.

Also: a second process on the same store (``analyze``, an embedded replay) leaves the
running server's live calls alone."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.audio.files import read_call_audio
from agent_assist.config import Config
from agent_assist.protocol import audio_frame
from agent_assist.runtime.services import build_services
from agent_assist.store.sqlite import SqliteStore
from agent_assist.supervision.accounts import Authenticator
from tests.conftest import REPO, SAMPLES, RunningServer
from tests.server.test_server import msg, recv_json, start_text_call

TOKEN = "crash-test-source-token"


def write_config(tmp: Path) -> Path:
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace('path = "var/agent-assist.sqlite3"', f'path = "{tmp / "calls.sqlite3"}"')
    text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"')
    text = text.replace('source_token = ""', f'source_token = "{TOKEN}"')
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def start_process(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENT_ASSIST_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_assist", "--config", str(config),
        "serve", "--host", "127.0.0.1", "--port", "0",
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 180)).decode()
        assert line, "the server exited before serving"
        if m := re.search(r"http://([\d.]+):(\d+)/", line):
            return proc, f"ws://{m.group(1)}:{m.group(2)}/ws?token={TOKEN}"


async def collect(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    try:
        async for raw in ws:
            into.append(json.loads(raw))
    except Exception:  # the server died under it
        return


@pytest.mark.model
async def test_kill_9_mid_call_loses_nothing_acknowledged(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "calls.sqlite3"
    audio = read_call_audio(SAMPLES / "en_call.flac")
    store = SqliteStore(db)
    auth = Authenticator(store)
    auth.add_user("sup", "supervisor")
    watch = f"?token={auth.api_token('sup')}"
    store.close()
    proc, url = await start_process(config)
    try:
        source = await connect(url)
        await source.send(msg("hello", {"role": "source"}))
        await recv_json(source)
        start = {"language": "en", "mode": "audio", "sample_rate": audio.sample_rate}
        await source.send(msg("call.start", start, seq=2))
        started = await recv_json(source, timeout=30)
        call_id = started["call_id"]
        console = await connect(url.split("?")[0] + watch)
        await console.send(msg("hello", {"role": "console", "subscribe": "*"}))
        await recv_json(console)
        acked: list[dict[str, Any]] = [started]
        seen: list[dict[str, Any]] = []
        readers = [
            asyncio.create_task(collect(source, acked)),
            asyncio.create_task(collect(console, seen)),
        ]
        step = audio.sample_rate // 50
        sent_ms = 0
        t0 = asyncio.get_running_loop().time()
        for i, at in enumerate(range(0, min(len(audio.pcm16), audio.sample_rate * 8), step)):
            block = audio.pcm16[at : at + step]
            for channel in range(block.shape[1]):
                await source.send(audio_frame(channel, block[:, channel].astype("<i2").tobytes()))
            sent_ms = (at + len(block)) * 1000 // audio.sample_rate
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - asyncio.get_running_loop().time()))
        await asyncio.sleep(1.0)  # let the recognizer acknowledge what it heard
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        await asyncio.gather(*readers)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    with sqlite3.connect(db) as conn:
        stored = {
            seq: json.loads(body)
            for seq, body in conn.execute(
                "SELECT seq, body FROM events WHERE call_id=?", (call_id,)
            )
        }
    for event in acked:  # everything the source was told, the store has, unchanged
        assert stored[event["seq"]] == event
    assert any(e["type"] == "transcript.final" for e in acked)

    proc, url = await start_process(config)
    try:
        last = seen[-1]["seq"] if seen else 0
        async with connect(url.split("?")[0] + watch) as console:
            resume = {"call_id": call_id, "after_seq": last}
            await console.send(msg("hello", {"role": "console", "resume": resume}))
            assert (await recv_json(console))["type"] == "ready"
            rest = []
            while not rest or rest[-1]["type"] != "call.ended":
                rest.append(await recv_json(console))
        history = [*seen, *rest]
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
        ended = rest[-1]["data"]
        assert ended["reason"] == "server_restart"
        assert 0.5 * sent_ms <= ended["duration_ms"] <= sent_ms + 100
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    with sqlite3.connect(db) as conn:
        ((reason, duration, path),) = conn.execute(
            "SELECT c.end_reason, c.duration_ms, r.path FROM calls c "
            "JOIN recordings r ON r.call_id = c.call_id"
        ).fetchall()
    assert reason == "server_restart" and duration == ended["duration_ms"]
    info = sf.info(path)  # a valid FLAC up to the kill
    assert info.format == "FLAC" and abs(info.frames * 1000 / info.samplerate - duration) <= 40
    data, _ = sf.read(path, dtype="int16")
    assert data.shape == (info.frames, 2) and abs(data).max() > 0


async def test_a_second_process_leaves_the_running_servers_calls_open(
    text_server: RunningServer, config: Config
) -> None:
    async with connect(text_server.url) as ws:
        call_id = await start_text_call(ws)
        beside = build_services(config, with_asr=False, store_path=text_server.db)  # analyze
        beside.close()
        row = text_server.server.services.store.get_call(call_id)
        assert row is not None and row.ended_at is None
        turn = {"speaker": "customer", "text": "It is so slow.", "end_ms": 900}
        await ws.send(msg("turn", turn, call_id))
        await ws.send(msg("call.end", {}, call_id))
        while (await recv_json(ws))["type"] != "call.ended":
            pass
    row = text_server.server.services.store.get_call(call_id)
    assert row is not None and row.end_reason == "hangup"
