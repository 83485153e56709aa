"""The real websockets server on 127.0.0.1:0 with real SQLite: calls, errors, resume, restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.audio.files import read_call_audio
from agent_assist.clients.replay import load_script, replay
from agent_assist.config import Config
from agent_assist.protocol import audio_frame
from agent_assist.runtime.services import build_services
from tests.conftest import CALLS, RunningServer, _serve, shared_audio


def msg(
    type_: str, data: dict[str, Any], call_id: str | None = None, seq: int = 1, t_ms: int = 0
) -> str:
    return json.dumps(
        {"v": 1, "type": type_, "call_id": call_id, "seq": seq, "t_ms": t_ms, "data": data}
    )


async def recv_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def recv_until(ws: ClientConnection, type_: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        m = await recv_json(ws)
        seen.append(m)
        if m["type"] == type_:
            return seen


async def start_text_call(ws: ClientConnection, language: str = "en") -> str:
    await ws.send(msg("hello", {"role": "source"}))
    assert (await recv_json(ws))["type"] == "ready"
    await ws.send(msg("call.start", {"language": language, "mode": "text"}, seq=2))
    started = await recv_json(ws)
    assert started["type"] == "call.started"
    return str(started["call_id"])


def db_rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def test_scripted_call_end_to_end_and_stored(text_server: RunningServer) -> None:
    result = await replay(text_server.url, load_script(CALLS / "en_demo.toml"), fast=True)
    types = [e["type"] for e in result.events]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    assert types.count("transcript.final") == 9
    assert [e["data"]["kind"] for e in result.events if e["type"] == "suggestion"] == [
        "upsell",
        "retention",
    ]
    assert [e["seq"] for e in result.events] == list(range(1, len(result.events) + 1))
    emitted = [e["emitted_ms"] for e in result.events]
    assert emitted == sorted(emitted)
    (row,) = db_rows(
        text_server.db, "SELECT end_reason, last_seq FROM calls WHERE call_id=?", result.call_id
    )
    assert row == ("hangup", len(result.events))
    stored = db_rows(
        text_server.db, "SELECT body FROM events WHERE call_id=? ORDER BY seq", result.call_id
    )
    assert [json.loads(b) for (b,) in stored] == result.events
    assert (
        len(db_rows(text_server.db, "SELECT * FROM utterances WHERE call_id=?", result.call_id))
        == 9
    )


async def test_first_message_must_be_hello(text_server: RunningServer) -> None:
    async with connect(text_server.url) as ws:
        await ws.send(msg("call.start", {}))
        err = await recv_json(ws)
        assert err["type"] == "error" and err["data"]["code"] == "protocol.hello_required"
        assert err["data"]["fatal"] is True
        await ws.wait_closed()


async def test_malformed_messages_get_coded_errors_and_the_call_goes_on(
    text_server: RunningServer,
) -> None:
    async with connect(text_server.url) as ws:
        call_id = await start_text_call(ws)
        bad = [
            "{nope",
            msg("turn", {"speaker": "robot", "text": "x"}, call_id, seq=7),
            msg("dance", {}),
            msg("call.start", {"mode": "text"}),
        ]
        codes = []
        for text in bad:
            await ws.send(text)
            codes.append((await recv_json(ws))["data"]["code"])
        assert codes == [
            "protocol.bad_json",
            "protocol.bad_payload",
            "protocol.unknown_type",
            "call.already_started",
        ]
        await ws.send(audio_frame(0, b"\x00\x00" * 10))
        assert (await recv_json(ws))["data"]["code"] == "audio.wrong_mode"
        await ws.send(
            msg(
                "turn",
                {"speaker": "customer", "text": "I want to cancel.", "end_ms": 900},
                call_id,
                seq=9,
                t_ms=100,
            )
        )
        await ws.send(msg("call.end", {}, call_id, seq=10))
        seen = await recv_until(ws, "call.ended")
        assert "suggestion" in [m["type"] for m in seen]
    (reason,) = db_rows(text_server.db, "SELECT end_reason FROM calls")[0]
    assert reason == "hangup"


async def test_audio_call_refused_without_asr(text_server: RunningServer) -> None:
    async with connect(text_server.url) as ws:
        await ws.send(msg("hello", {"role": "source"}))
        await recv_json(ws)
        await ws.send(msg("call.start", {"mode": "audio"}))
        err = await recv_json(ws)
        assert err["data"]["code"] == "audio.wrong_mode" and err["data"]["fatal"] is False
    assert db_rows(text_server.db, "SELECT * FROM calls") == []  # nothing half-written


async def test_disconnect_mid_call_ends_it_and_keeps_its_events(
    config: Config, tmp_path: Path
) -> None:
    """Without a grace window (``source_grace_s = 0``) a lost source ends its call at once."""
    no_grace = dataclasses.replace(
        config, server=dataclasses.replace(config.server, source_grace_s=0)
    )
    async with _serve(no_grace, tmp_path / "calls.sqlite3", with_asr=False) as text_server:
        await _disconnect_mid_call(text_server)


async def _disconnect_mid_call(text_server: RunningServer) -> None:
    async with connect(text_server.url) as ws:
        call_id = await start_text_call(ws)
        await ws.send(
            msg("turn", {"speaker": "customer", "text": "It is so slow.", "end_ms": 900}, call_id)
        )
        await recv_until(ws, "suggestion")
    for _ in range(50):
        rows = db_rows(text_server.db, "SELECT end_reason FROM calls WHERE call_id=?", call_id)
        if rows[0][0]:
            break
        await asyncio.sleep(0.05)
    assert rows == [("disconnected",)]
    types = [t for (t,) in db_rows(text_server.db, "SELECT type FROM events ORDER BY seq")]
    assert "decision" in types  # why the suggestion was shown (and others held back)
    assert [t for t in types if t != "decision"] == [
        "call.started",
        "transcript.final",
        "signal",
        "phase",
        "suggestion",
        "call.ended",
    ]


async def test_console_resume_loses_and_repeats_nothing(text_server: RunningServer) -> None:
    async with connect(text_server.url) as source:
        call_id = await start_text_call(source)
        async with connect(text_server.url) as console:
            await console.send(msg("hello", {"role": "console", "subscribe": "*"}))
            assert (await recv_json(console))["type"] == "ready"
            first = await recv_json(console)  # late joiner gets the call from the start
            assert first["type"] == "call.started" and first["seq"] == 1
            await source.send(
                msg("turn", {"speaker": "customer", "text": "So slow.", "end_ms": 500}, call_id)
            )
            got = [first, *(await recv_until(console, "suggestion"))]
        last = got[-1]["seq"]
        # while the console is away, the call goes on
        await source.send(
            msg(
                "turn",
                {"speaker": "customer", "text": "I want to cancel.", "end_ms": 900},
                call_id,
                t_ms=600,
            )
        )
        await recv_until(source, "suggestion")
        async with connect(text_server.url) as console:
            await console.send(
                msg(
                    "hello",
                    {
                        "role": "console",
                        "subscribe": "*",
                        "resume": {"call_id": call_id, "after_seq": last},
                    },
                )
            )
            await recv_json(console)
            resumed = await recv_until(console, "suggestion")
        seqs = [m["seq"] for m in got + resumed]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_resume_of_unknown_call_is_refused(text_server: RunningServer) -> None:
    async with connect(text_server.url) as ws:
        await ws.send(msg("hello", {"role": "console", "resume": {"call_id": "c-nope"}}))
        assert (await recv_json(ws))["data"]["code"] == "call.unknown"


async def test_calls_survive_a_restart(config: Config, tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    services = build_services(config, with_asr=False, store_path=db)
    from agent_assist.server.app import AgentAssistServer

    server = AgentAssistServer(services)
    host, port = await server.start("127.0.0.1", 0)
    ws = await connect(RunningServer(server, host, port, db).url)
    call_id = await start_text_call(ws)
    # a crash: the process dies without ending the call (the kernel drops its lock)
    services.store.close()
    assert services.store_lock is not None
    services.store_lock.close()
    await ws.close()
    restarted = build_services(config, with_asr=False, store_path=db)
    try:
        row = restarted.store.get_call(call_id)
        assert row is not None and row.end_reason == "server_restart"
        events = restarted.store.call_events(call_id)
        assert [e["type"] for e in events] == ["call.started", "call.ended"]
        assert events[-1]["data"]["reason"] == "server_restart"
    finally:
        restarted.close()
        if server._server is not None:  # the crashed process's listener goes too
            server._server.close()
            await server._server.wait_closed()


async def test_http_serves_the_console_and_nothing_else(text_server: RunningServer) -> None:
    def get(path: str) -> tuple[int, str, str]:
        signed_in = {"Authorization": f"Bearer {text_server.token}"}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(text_server.http + path, headers=signed_in)
            ) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, "", ""

    status, ctype, body = await asyncio.to_thread(get, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8" and "<html" in body
    assert (await asyncio.to_thread(get, "/healthz"))[0] == 200
    assert (await asyncio.to_thread(get, "/api/calls"))[2] == "[]"
    for path in ["/../config.toml", "/.hidden", "/nope.js", "/%2e%2e/config.toml"]:
        assert (await asyncio.to_thread(get, path))[0] == 404


@pytest.mark.model
async def test_oversized_frame_is_refused_without_ending_the_call(
    asr_server: RunningServer,
) -> None:
    async with connect(asr_server.url) as ws:
        await ws.send(msg("hello", {"role": "source"}))
        await recv_json(ws)
        await ws.send(msg("call.start", {"language": "en", "sample_rate": 16000}))
        call_id = (await recv_json(ws))["call_id"]
        await ws.send(audio_frame(0, b"\x00\x00" * 40000))  # 80 kB > 64 KiB
        err = await recv_json(ws)
        assert err["data"]["code"] == "audio.frame_too_large" and not err["data"]["fatal"]
        await ws.send(audio_frame(1, np.zeros(1600, "<i2").tobytes()))
        await ws.send(msg("call.end", {}, call_id))
        assert (await recv_until(ws, "call.ended"))[-1]["call_id"] == call_id


@pytest.mark.model
async def test_stereo_recording_is_attributed_to_both_speakers(
    asr_server: RunningServer, tmp_path: Path
) -> None:
    audio = read_call_audio(shared_audio("en/stereo_diarization.wav"))
    out = tmp_path / "out.jsonl"
    with out.open("w", encoding="utf-8") as sink:
        await replay(asr_server.url, audio, language="en", fast=True, events_out=sink)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    finals = {
        m["data"]["speaker"]: m["data"]["text"] for m in lines if m["type"] == "transcript.final"
    }
    assert "wizard" in finals["agent"] and "horizon" in finals["customer"].lower()


@pytest.mark.model
async def test_telephone_band_mono_recording_is_resampled_and_transcribed(
    asr_server: RunningServer,
) -> None:
    audio = read_call_audio(shared_audio("en/OSR_us_000_0034_8k.wav"), mono_speaker="customer")
    assert audio.sample_rate == 8000
    result = await replay(asr_server.url, audio, language="en", fast=True)
    text = " ".join(
        e["data"]["text"].lower() for e in result.events if e["type"] == "transcript.final"
    )
    assert {e["data"]["speaker"] for e in result.events if e["type"] == "transcript.final"} == {
        "customer"
    }
    for phrase in ["gold ring", "long journey", "pink shell", "severe storm"]:
        assert phrase in text, text
