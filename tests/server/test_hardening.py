"""Hardening on the real server (127.0.0.1:0, real SQLite, real websockets clients):
per-call write authorisation, rejoining long calls, no ghost calls, no sequence gaps.

Store faults are real SQLite faults: a trigger that refuses a write, as a full disk or a
locked database would."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from agent_assist.config import Config
from agent_assist.core.events import TranscriptFinal, TranscriptPartial
from agent_assist.protocol import CallStart, audio_frame
from agent_assist.runtime.live_call import LiveCall
from agent_assist.store.audio_archive import MAX_SKEW_S, CallRecorder
from agent_assist.store.base import CallRow
from agent_assist.store.sqlite import SqliteStore
from tests.conftest import RunningServer, _serve
from tests.server.test_server import db_rows, msg, recv_json, recv_until


def with_server(config: Config, **server: Any) -> Config:
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **server))


@pytest.fixture
async def small_queue_server(config: Config, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with _serve(
        with_server(config, queue_size=20), tmp_path / "calls.sqlite3", with_asr=False
    ) as running:
        yield running


def refuse(db: Path, table: str, when: str = "1") -> None:
    """A real SQLite refusal of some writes (what a full disk does to them)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {when} "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )


async def open_call(
    server: RunningServer, token: str, agent: str | None = None
) -> tuple[ClientConnection, str, str]:
    """A live text call with one suggestion; returns the source, call id, suggestion id."""
    ws = await connect(f"{server.ws}?token={token}")
    await ws.send(msg("hello", {"role": "source"}))
    await recv_json(ws)
    start: dict[str, Any] = {"language": "en", "mode": "text"}
    if agent:
        start["agent"] = agent
    await ws.send(msg("call.start", start, seq=2))
    call_id = (await recv_json(ws))["call_id"]
    turn = {"speaker": "customer", "text": "My phone gets really slow every month.", "end_ms": 900}
    await ws.send(msg("turn", turn, call_id, seq=3))
    seen = await recv_until(ws, "suggestion")
    return ws, call_id, seen[-1]["data"]["suggestion_id"]


async def console(server: RunningServer, token: str, **hello: Any) -> ClientConnection:
    ws = await connect(f"{server.ws}?token={token}")
    await ws.send(msg("hello", {"role": "console", **hello}))
    assert (await recv_json(ws))["type"] == "ready"
    return ws


async def first_error(ws: ClientConnection) -> dict[str, Any]:
    return (await recv_until(ws, "error"))[-1]["data"]


# -- 1: writes are authorised per call ----------------------------------------------------


async def test_an_agent_cannot_mark_or_relink_another_agents_call(
    text_server: RunningServer,
) -> None:
    source, call_id, sid = await open_call(text_server, text_server.token, agent="ann")
    ben = await console(text_server, text_server.token_for("ben", "agent"))
    answers = []
    for target in (call_id, "c-20990101-000000-000000"):
        await ben.send(msg("feedback", {"suggestion_id": sid, "action": "used"}, target))
        fb = await first_error(ben)
        await ben.send(msg("customer.link", {"customer_id": "C-1001"}, target))
        link = await first_error(ben)
        answers.append([(e["code"], e["message"].replace(target, "ID")) for e in (fb, link)])
    assert answers[0] == answers[1]  # "not yours" reads exactly like "no such call"
    assert answers[0][0][0] == "call.unknown"
    await ben.close()
    types = [
        t for (t,) in db_rows(text_server.db, "SELECT type FROM events WHERE call_id=?", call_id)
    ]
    assert "offer.feedback" not in types and "customer.linked" not in types

    ann = await console(text_server, text_server.token_for("ann", "agent"), subscribe="*")
    await ann.send(msg("feedback", {"suggestion_id": sid, "action": "used"}, call_id))
    assert (await recv_until(ann, "offer.feedback"))[-1]["call_id"] == call_id
    sup = await console(text_server, text_server.token)
    await sup.send(msg("customer.link", {"customer_id": "C-1001"}, call_id))
    await recv_until(source, "customer.linked")
    for ws in (ann, sup, source):
        await ws.close()


async def test_a_source_marks_its_own_call_but_not_another_sources(
    text_server: RunningServer,
) -> None:
    gw1 = text_server.token_for("gateway-1", "source")
    gw2 = text_server.token_for("gateway-2", "source")
    first, call_id, sid = await open_call(text_server, gw1, agent="ann")
    second, _, _ = await open_call(text_server, gw2, agent="ben")
    await second.send(msg("feedback", {"suggestion_id": sid, "action": "used"}, call_id))
    assert (await first_error(second))["code"] == "call.unknown"
    await first.send(msg("feedback", {"suggestion_id": sid, "action": "used"}, call_id))
    await recv_until(first, "offer.feedback")
    await first.close()
    await second.close()


# -- 2: a long call can be joined and resumed --------------------------------------------


async def long_live_call(server: RunningServer, events: int) -> LiveCall:
    """A live call with ``events`` stored events, emitted the way the engine emits them."""
    start = CallStart(1, "en", 16000, ("agent", "customer"), "long call", None, "text")
    call = LiveCall(server.server.services, start)
    await call.begin()
    server.server.calls[call.call_id] = call
    for i in range(events - 1):
        call.emit(
            TranscriptPartial(
                call_id=call.call_id,
                t_ms=i * 10,
                utterance_id="customer-0001",
                speaker="customer",
                text=f"partial words number {i}",
            )
        )
    return call


async def receive_seqs(ws: ClientConnection, call_id: str, until: int) -> list[int]:
    seqs: list[int] = []
    while not seqs or seqs[-1] < until:
        m = await recv_json(ws, timeout=30)
        if m["call_id"] == call_id:
            seqs.append(m["seq"])
    return seqs


async def test_a_long_call_is_joined_and_resumed_through_a_small_queue(
    small_queue_server: RunningServer,
) -> None:
    server = small_queue_server
    call = await long_live_call(server, 3000)
    busy = await long_live_call(server, 50)  # another call on the wall
    wall = await console(server, server.token, subscribe="*")
    resumer = await console(
        server,
        server.token,
        subscribe=call.call_id,
        resume={"call_id": call.call_id, "after_seq": 7},
    )
    # live events of both calls keep coming while the backlog is on its way
    for i in range(40):
        for c in (call, busy):
            c.emit(
                TranscriptPartial(
                    call_id=c.call_id,
                    t_ms=90_000 + i,
                    utterance_id="agent-0001",
                    speaker="agent",
                    text=f"live {i}",
                )
            )
        await asyncio.sleep(0)
    wall_task = asyncio.create_task(receive_seqs(wall, call.call_id, call.last_seq))
    assert await receive_seqs(resumer, call.call_id, call.last_seq) == list(
        range(8, call.last_seq + 1)
    )
    assert await wall_task == list(range(1, call.last_seq + 1))
    await call.end("hangup")
    await busy.end("hangup")
    await wall.close()
    await resumer.close()


# -- 3: no ghost calls -----------------------------------------------------------------


async def test_unstorable_text_is_refused_and_leaves_no_ghost_call(
    text_server: RunningServer,
) -> None:
    async with connect(text_server.url) as ws:
        await ws.send(msg("hello", {"role": "source"}))
        await recv_json(ws)
        for field in ("title", "customer_id", "agent"):
            await ws.send(msg("call.start", {"mode": "text", field: "bad \ud800 text"}))
            err = await recv_json(ws)
            assert (err["data"]["code"], err["data"]["fault"]) == ("protocol.bad_payload", "client")
        call_id = await _start(ws)
        await ws.send(msg("turn", {"speaker": "agent", "text": "\udfff"}, call_id))
        assert (await recv_json(ws))["data"]["code"] == "protocol.bad_payload"
        await ws.send(msg("call.end", {}, call_id))
        await recv_until(ws, "call.ended")
    assert text_server.server.calls == {}
    async with connect(text_server.url) as sup:  # a supervisor still gets 'ready'
        await sup.send(msg("hello", {"role": "console", "subscribe": "*"}))
        assert (await recv_json(sup))["type"] == "ready"


async def _start(ws: ClientConnection) -> str:
    await ws.send(msg("call.start", {"mode": "text", "language": "en"}, seq=2))
    started = await recv_until(ws, "call.started")
    return str(started[-1]["call_id"])


async def test_a_start_the_store_refuses_leaves_nothing_live(text_server: RunningServer) -> None:
    refuse(text_server.db, "calls")
    async with connect(text_server.url) as ws:
        await ws.send(msg("hello", {"role": "source"}))
        await recv_json(ws)
        await ws.send(msg("call.start", {"mode": "text"}))
        err = await recv_json(ws)
        assert err["type"] == "error" and err["data"]["code"] == "store.failed"
    assert text_server.server.calls == {}
    async with connect(text_server.url) as sup:
        await sup.send(msg("hello", {"role": "console", "subscribe": "*"}))
        ready = await recv_json(sup)
        assert ready["type"] == "ready" and ready["data"]["active_calls"] == []


# -- 8: sequence numbers only for stored events -------------------------------------------


async def test_a_refused_event_leaves_no_gap(text_server: RunningServer) -> None:
    refuse(text_server.db, "events", "NEW.body LIKE '%UNSTORABLE%'")
    async with connect(text_server.url) as ws:
        call_id = await _start_source(ws)
        for i, text in enumerate(["Hello there.", "UNSTORABLE words", "I want to cancel."]):
            turn = {"speaker": "customer", "text": text, "end_ms": 1000 * (i + 1)}
            await ws.send(msg("turn", turn, call_id, t_ms=1000 * i))
        await ws.send(msg("call.end", {}, call_id))
        await recv_until(ws, "call.ended")
    seqs = [s for (s,) in db_rows(text_server.db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    ((last_seq,),) = db_rows(text_server.db, "SELECT last_seq FROM calls")
    assert last_seq == seqs[-1]


async def _start_source(ws: ClientConnection) -> str:
    await ws.send(msg("hello", {"role": "source"}))
    await recv_json(ws)
    return await _start(ws)


async def test_a_refused_call_ended_still_closes_the_call(text_server: RunningServer) -> None:
    refuse(text_server.db, "events", "NEW.type = 'call.ended'")
    async with connect(text_server.url) as ws:
        call_id = await _start_source(ws)
        await ws.send(msg("call.end", {}, call_id))
        err = await recv_json(ws)
        assert err["type"] == "error"
    assert text_server.server.calls == {}
    ((reason, ended),) = db_rows(text_server.db, "SELECT end_reason, ended_at FROM calls")
    assert reason == "hangup" and ended


def test_a_failed_commit_is_rolled_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    db = store._db
    db.executescript(
        "PRAGMA foreign_keys=ON;"
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
    )
    with pytest.raises(sqlite3.IntegrityError), store._tx():
        db.execute("INSERT INTO child VALUES (42)")  # fails only at COMMIT
    assert not db.in_transaction
    row = CallRow("c-x", "2026-01-01T00:00:00Z", "en", "", None, "text", ("agent",), *NO_END)
    store.create_call(row)  # the next write works
    assert store.get_call("c-x") is not None


NO_END = (None, None, None, 0)


async def test_an_event_the_store_refuses_consumes_no_sequence_number(
    text_server: RunningServer,
) -> None:
    start = CallStart(1, "en", 16000, ("agent", "customer"), "", None, "text")
    call = LiveCall(text_server.server.services, start)
    await call.begin()
    huge = TranscriptFinal(
        call_id=call.call_id,
        t_ms=2**63,
        utterance_id="agent-0001",
        speaker="agent",
        end_ms=2**63,
        language="en",
        text="too late",
    )
    with pytest.raises(OverflowError):
        call.emit(huge)
    assert call.last_seq == 1
    await call.end("hangup")
    seqs = [s for (s,) in db_rows(text_server.db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == [1, 2]


# -- 12: a source that drops resumes its call --------------------------------------------


async def grace_server(config: Config, tmp_path: Path, grace: float) -> _serve:
    return _serve(
        with_server(config, source_grace_s=grace), tmp_path / "calls.sqlite3", with_asr=False
    )


async def test_a_source_that_drops_resumes_the_same_call(config: Config, tmp_path: Path) -> None:
    async with await grace_server(config, tmp_path, 5.0) as server:
        ws = await connect(server.url)
        call_id = await _start_source(ws)
        turn = {"speaker": "customer", "text": "My phone gets so slow.", "end_ms": 900}
        await ws.send(msg("turn", turn, call_id))
        acked = (await recv_until(ws, "suggestion"))[-1]["seq"]
        await ws.send(msg("turn", {**turn, "text": "I want to cancel."}, call_id, t_ms=1000))
        await ws.close()  # the network drops
        await asyncio.sleep(0.3)
        assert call_id in server.server.calls
        async with connect(server.url) as again:
            resume = {"call_id": call_id, "after_seq": acked}
            await again.send(msg("hello", {"role": "source", "resume": resume}))
            assert (await recv_json(again))["type"] == "ready"
            turn = {"speaker": "agent", "text": "I understand.", "end_ms": 3000}
            await again.send(msg("turn", turn, call_id, t_ms=2500))
            await again.send(msg("call.end", {}, call_id))
            seen = await recv_until(again, "call.ended")
        assert [m["seq"] for m in seen] == list(range(acked + 1, seen[-1]["seq"] + 1))
    assert db_rows(server.db, "SELECT call_id, end_reason FROM calls") == [(call_id, "hangup")]
    seqs = [s for (s,) in db_rows(server.db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_past_the_grace_window_the_call_ends(config: Config, tmp_path: Path) -> None:
    async with await grace_server(config, tmp_path, 0.3) as server:
        ws = await connect(server.url)
        call_id = await _start_source(ws)
        await ws.close()
        await asyncio.sleep(1.0)
        assert server.server.calls == {}
        async with connect(server.url) as again:
            resume = {"call_id": call_id, "after_seq": 1}
            await again.send(msg("hello", {"role": "source", "resume": resume}))
            err = await recv_json(again)
            assert err["data"]["code"] == "call.unknown" and err["data"]["fatal"] is True
    assert db_rows(server.db, "SELECT end_reason FROM calls") == [("disconnected",)]


async def test_only_the_calls_own_source_may_resume_it(config: Config, tmp_path: Path) -> None:
    async with await grace_server(config, tmp_path, 5.0) as server:
        ws = await connect(f"{server.ws}?token={server.token_for('gw-1', 'source')}")
        call_id = await _start_source(ws)
        await ws.close()
        other = server.token_for("gw-2", "source")
        async with connect(f"{server.ws}?token={other}") as again:
            resume = {"call_id": call_id, "after_seq": 1}
            await again.send(msg("hello", {"role": "source", "resume": resume}))
            assert (await recv_json(again))["data"]["code"] == "call.unknown"


# -- 7: caps --------------------------------------------------------------------------------


async def test_live_calls_and_connections_are_capped(config: Config, tmp_path: Path) -> None:
    capped = with_server(config, max_calls=2, max_connections=3)
    async with _serve(capped, tmp_path / "calls.sqlite3", with_asr=False) as server:
        a, b, c = [await connect(server.url) for _ in range(3)]
        first = await _start_source(a)
        await _start_source(b)
        await c.send(msg("hello", {"role": "source"}))
        await recv_json(c)
        await c.send(msg("call.start", {"mode": "text"}))
        assert (await recv_json(c))["data"]["code"] == "call.limit"
        with pytest.raises(InvalidStatus) as info:
            await connect(server.url)
        assert info.value.response.status_code == 503
        await a.send(msg("call.end", {}, first))
        await recv_until(a, "call.ended")
        assert await _start(c)
        for ws in (a, b, c):
            await ws.close()


async def test_an_agents_own_text_calls_do_not_count_in_statistics(
    text_server: RunningServer,
) -> None:
    from agent_assist.clients.replay import load_script, replay
    from tests.conftest import CALLS
    from tests.server.test_auth import bearer, http

    script = load_script(CALLS / "en_demo.toml")
    await replay(text_server.url, script, fast=True, agent="ann")  # a gateway's call: counts
    ann = text_server.token_for("ann", "agent")
    await replay(f"{text_server.ws}?token={ann}", script, fast=True)  # typed by ann herself
    _, _, body = await asyncio.to_thread(
        http, text_server, "/api/stats", "GET", bearer(text_server.token)
    )
    (row,) = [a for a in json.loads(body) if a["agent"] == "ann"]
    assert row["calls"] == 1


@pytest.mark.model
async def test_a_source_faster_than_the_cap_is_read_at_the_cap(
    config: Config, tmp_path: Path
) -> None:
    paced = with_server(config, max_ingest_speed=1.0)
    async with _serve(paced, tmp_path / "calls.sqlite3", with_asr=True) as server:
        ws = await connect(server.url)
        await ws.send(msg("hello", {"role": "source"}))
        await recv_json(ws)
        await ws.send(msg("call.start", {"language": "en", "channels": ["customer"]}))
        call_id = (await recv_json(ws))["call_id"]
        t0 = time.monotonic()
        silence = audio_frame(0, b"\x00\x00" * 320)  # 20 ms at 16 kHz
        for _ in range(200):  # 4 s of audio, sent as fast as the socket takes it
            await ws.send(silence)
        await ws.send(msg("call.end", {}, call_id))
        await recv_until(ws, "call.ended")
        assert time.monotonic() - t0 >= 2.8  # (4 s - 1 s of burst) / 1x
        await ws.close()


def test_the_recorder_buffer_stays_bounded_when_one_side_is_silent(tmp_path: Path) -> None:
    rate = 8000
    recorder = CallRecorder(tmp_path / "c.flac", rate, ("agent", "customer"))
    frame = (np.ones(rate // 50, dtype="<i2") * 1000).tobytes()
    for _ in range(50 * 90):  # 90 s of the agent, not a sample of the customer
        recorder.push(0, frame)
        assert max(recorder._counts) <= MAX_SKEW_S * rate + rate // 50
    recorder.close()
    data, got_rate = sf.read(tmp_path / "c.flac", dtype="int16")
    assert got_rate == rate and data.shape == (90 * rate, 2)
    assert (data[:, 0] == 1000).all() and (data[:, 1] == 0).all()
    assert not (tmp_path / "c.pcm").exists()


async def test_call_ids_asked_about_are_cached_within_a_bound(text_server: RunningServer) -> None:
    from agent_assist.server.app import AGENT_CACHE

    server = text_server.server
    async with connect(text_server.url) as ws:
        call_id = await _start_source(ws)
        for i in range(AGENT_CACHE + 50):  # what hellos naming made-up calls would ask
            server.agent_of(f"c-made-up-{i}")
        assert len(server._agents) <= AGENT_CACHE + 1
        assert call_id in server._agents  # the live call's agent stays known


async def test_a_wall_forgets_ended_calls(text_server: RunningServer) -> None:
    from agent_assist.clients.replay import load_script, replay
    from tests.conftest import CALLS

    wall = await console(text_server, text_server.token, subscribe="*")
    (sub,) = text_server.server.services.hub._subscribers
    for _ in range(3):
        await replay(text_server.url, load_script(CALLS / "en_demo.toml"), fast=True)
    await asyncio.sleep(0.2)
    assert sub.sent == {} and sub.catching_up == {}
    await wall.close()
