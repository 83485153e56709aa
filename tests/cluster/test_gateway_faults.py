"""A gateway that dies, and admission against the cluster's capacity, on a real Redis.

A gateway process killed with SIGKILL mid-call cannot end its call: one surviving
gateway ends it (reason ``gateway_lost``) once the dead one's heartbeat expired and the
grace window passed, and every console sees that ``call.ended`` once. Admission counts
every gateway's live audio calls against the calls the live workers take: a call on
gateway B is refused (``call.limit``) while A holds the cluster's only place, admitted
once a second worker joins, and refused again when that worker stops beating.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.audio.files import CallAudio, read_call_audio
from agent_assist.cluster.jobs import Keys
from agent_assist.cluster.private_servers import PrivatePostgres, PrivateRedis
from agent_assist.config import Config, load_config
from agent_assist.protocol import audio_frame
from agent_assist.store.postgres import PostgresStore
from tests.cluster.conftest import Workers, cluster_config_file
from tests.cluster.test_workers import watch
from tests.conftest import SAMPLES, RunningServer, _serve
from tests.server.test_crash import TOKEN, collect, start_process
from tests.server.test_server import msg, recv_json, recv_until, start_text_call

GRACE_S = 2.0
FAULTS = "faults"


def gateway_config(folder: Path, redis_url: str, store_url: str, prefix: str) -> Path:
    """The cluster test config on a shared PostgreSQL store, with a short grace window."""
    path = cluster_config_file(folder, redis_url)
    text = path.read_text(encoding="utf-8")
    for old, new in [
        ('url = ""', f'url = "{store_url}"'),
        ('source_token = ""', f'source_token = "{TOKEN}"'),
        ('prefix = "agent-assist"', f'prefix = "{prefix}"'),
        ("lost_call_grace_s = 10.0", f"lost_call_grace_s = {GRACE_S}"),
        ("second_opinion = true", "second_opinion = false"),
        ('path = "var/agent-assist.sqlite3"', f'path = "{folder / "unused.sqlite3"}"'),
    ]:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return path


async def text_turn(ws: ClientConnection, call_id: str, seq: int, text: str, at: int) -> None:
    turn = {"speaker": "customer", "text": text, "t_ms": at, "end_ms": at + 900}
    await ws.send(msg("turn", turn, call_id, seq=seq, t_ms=at))


async def test_a_gateway_killed_mid_call_its_calls_end_once_or_move(
    redis_server: PrivateRedis, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    """Two calls on gateway A (a process), killed with SIGKILL: the source of one never
    comes back, so one surviving gateway ends it (``gateway_lost``); the other's source
    resumes on gateway B within the grace window and its call goes on there."""
    store_url = postgres.create_database("lost_gateway")
    path = gateway_config(tmp_path, redis_server.url, store_url, "lost")
    config = load_config(path)
    proc, source_url = await start_process(path)  # gateway A: its own process
    try:
        async with (
            _serve(config, tmp_path / "b.sqlite3", False) as b,
            _serve(config, tmp_path / "c.sqlite3", False) as c,
        ):
            on_b: list[dict[str, Any]] = []
            on_c: list[dict[str, Any]] = []
            consoles = [
                asyncio.create_task(watch(b.url, 2, on_b)),
                asyncio.create_task(watch(c.url, 2, on_c)),
            ]
            await asyncio.sleep(0.3)
            gone, moving = await connect(source_url), await connect(source_url)
            lost_id = await start_text_call(gone)
            moved_id = await start_text_call(moving)
            await text_turn(gone, lost_id, 3, "My internet is so slow.", 0)
            await text_turn(moving, moved_id, 3, "I want to cancel my contract.", 0)
            seen_by_source = await recv_until(moving, "transcript.final")
            deadline = time.monotonic() + 30
            while sum(m["type"] == "transcript.final" for m in on_c) < 2:
                assert time.monotonic() < deadline, on_c
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            killed = time.monotonic()

            back = await connect(f"{b.ws}?token={TOKEN}")  # the source of one call returns
            resume = {"call_id": moved_id, "after_seq": seen_by_source[-1]["seq"]}
            await back.send(msg("hello", {"role": "source", "resume": resume}))
            assert (await recv_json(back, timeout=15))["type"] == "ready"
            moved_after = time.monotonic() - killed
            await text_turn(back, moved_id, 2, "Is there a cheaper plan?", 5000)
            await recv_until(back, "transcript.final")
            await back.send(msg("call.end", {"reason": "completed"}, moved_id, seq=3))

            done, _ = await asyncio.wait(consoles, timeout=30)
            took = time.monotonic() - killed
            assert len(done) == 2, (on_b[-3:], on_c[-3:])
            swept = [
                *(b.server.cluster.lost_calls_ended() if b.server.cluster else []),
                *(c.server.cluster.lost_calls_ended() if c.server.cluster else []),
            ]
            held = redis.Redis.from_url(redis_server.url).hgetall(Keys("lost").calls())
            for ws in (gone, moving, back):
                ws.transport.abort()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert swept == [lost_id]  # exactly one surviving gateway ended it
    assert not held  # no call listed live in Redis any more
    assert GRACE_S <= took < 3 + GRACE_S + 10, took  # heartbeat expiry + grace, then swept
    assert moved_after < 3 + 5, moved_after  # the resume waited for A's report to expire
    for seen in (on_b, on_c):
        for call_id, reason in ((lost_id, "gateway_lost"), (moved_id, "completed")):
            mine = [m for m in seen if m["call_id"] == call_id]
            assert [m["seq"] for m in mine] == list(range(1, len(mine) + 1))
            ended = [m for m in mine if m["type"] == "call.ended"]
            assert len(ended) == 1 and mine[-1] is ended[0], mine[-3:]
            assert ended[0]["data"]["reason"] == reason
        moved = [m for m in seen if m["call_id"] == moved_id and m["type"] == "transcript.final"]
        assert [m["data"]["utterance_id"] for m in moved] == ["customer-0001", "customer-0002"]
        assert moved[1]["data"]["text"] == "Is there a cheaper plan?"
    store = PostgresStore(store_url)
    try:
        for call_id, reason in ((lost_id, "gateway_lost"), (moved_id, "completed")):
            row = store.get_call(call_id)
            assert row is not None and row.end_reason == reason
            types = [e["type"] for e in store.call_events(call_id)]
            assert types.count("call.ended") == 1 and types[-1] == "call.ended"
        assert len(store.transcript(moved_id)) == 2
        assert not store.open_calls()
    finally:
        store.close()


async def start_audio_call(gw: RunningServer) -> tuple[ClientConnection, dict[str, Any]]:
    """A source on ``gw`` asking for an English audio call; the first answer comes back."""
    ws = await connect(gw.url)
    await ws.send(msg("hello", {"role": "source"}))
    assert (await recv_json(ws))["type"] == "ready"
    start = {"language": "en", "mode": "audio", "sample_rate": 16000,
             "channels": ["agent", "customer"]}  # fmt: skip
    await ws.send(msg("call.start", start, seq=2))
    return ws, await recv_json(ws, timeout=20)


async def until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def faults_config(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster test config under its own key prefix, for the workers below."""
    path = cluster_config_file(tmp_path_factory.mktemp("faults"), redis_server.url)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('prefix = "agent-assist"', f'prefix = "{FAULTS}"', 1))
    return path


@pytest.fixture(scope="module")
def one_call_worker(faults_config: Path) -> Iterator[Workers]:
    """One worker process that takes one audio call: the cluster's whole capacity."""
    workers = Workers(faults_config)
    workers.start("one-call-1", calls=1)
    yield workers
    workers.stop()


@pytest.mark.model
async def test_admission_counts_every_gateways_calls_against_the_live_workers(
    faults_config: Path, one_call_worker: Workers, tmp_path: Path
) -> None:
    loaded = load_config(faults_config)
    config: Config = replace(loaded, nlp=replace(loaded.nlp, second_opinion=False))
    workers = Workers(faults_config)
    sockets: list[ClientConnection] = []
    try:
        async with (
            _serve(config, tmp_path / "a.sqlite3", True) as a,
            _serve(config, tmp_path / "b.sqlite3", True) as b,
        ):
            assert a.server.cluster is not None and b.server.cluster is not None
            link_b = b.server.cluster

            async def b_sees(calls: int, capacity: int) -> bool:
                await link_b.refresh()
                seen = link_b.capacity()
                return bool(seen["audio_calls"] == calls and seen["capacity"] == capacity)

            await until(lambda: b_sees(0, 1), "B never saw the worker")
            ws, answer = await start_audio_call(a)  # A takes the cluster's only place
            sockets.append(ws)
            assert answer["type"] == "call.started", answer
            await until(lambda: b_sees(1, 1), "B never saw A's call")
            ws, refused = await start_audio_call(b)
            sockets.append(ws)
            assert refused["type"] == "error" and refused["data"]["code"] == "call.limit"
            assert "1 live audio calls across 2 gateway(s)" in refused["data"]["message"]
            status, report = await asyncio.to_thread(b.health)
            assert status == 503 and not report["accepting"], report
            assert report["cluster"]["capacity"] == 1 and report["cluster"]["audio_calls"] == 1

            await asyncio.to_thread(workers.start, "one-call-2", calls=1)  # a worker joins
            await until(lambda: b_sees(1, 2), "B never saw the second worker")
            ws, answer = await start_audio_call(b)
            sockets.append(ws)
            assert answer["type"] == "call.started", answer

            async def a_reports_full() -> bool:  # as of the gateways' last heartbeats
                status, report = await asyncio.to_thread(a.health)
                return status == 503 and bool(report["cluster"]["audio_calls"] == 2)

            await until(a_reports_full, "A's health report never counted B's call", timeout=10)

            workers.kill("one-call-2")  # silent: it stops counting once its report expires
            await until(lambda: b_sees(2, 1), "the killed worker still counted", timeout=15)
            ws, refused = await start_audio_call(a)
            sockets.append(ws)
            assert refused["type"] == "error" and refused["data"]["code"] == "call.limit"
            ws = await connect(a.url)  # a text call needs no worker: not counted
            sockets.append(ws)
            await start_text_call(ws)
    finally:
        for ws in sockets:
            ws.transport.abort()
        await asyncio.to_thread(workers.stop)


async def send_audio(ws: ClientConnection, audio: CallAudio, start_s: float, end_s: float) -> None:
    """Stream a span of a stereo recording in 20 ms frames, one frame per channel."""
    rate = audio.sample_rate
    step = rate // 50
    for at in range(round(start_s * rate), min(len(audio.pcm16), round(end_s * rate)), step):
        block = audio.pcm16[at : at + step]
        for channel in range(block.shape[1]):
            await ws.send(audio_frame(channel, block[:, channel].astype("<i2").tobytes()))


@pytest.mark.model
async def test_an_audio_call_moves_to_another_gateway_when_its_gateway_dies(
    redis_server: PrivateRedis,
    postgres: PrivatePostgres,
    one_call_worker: Workers,
    tmp_path: Path,
) -> None:
    """Gateway A (a process) killed mid-call; the source resumes on B and streams the
    rest: B goes on with the call's numbering, times and utterance ids."""
    store_url = postgres.create_database("moving_audio")
    path = gateway_config(tmp_path, redis_server.url, store_url, FAULTS)
    audio = read_call_audio(SAMPLES / "en_call.flac")
    proc, source_url = await start_process(path)
    try:
        async with _serve(load_config(path), tmp_path / "b.sqlite3", True) as b:
            first = await connect(source_url)
            await first.send(msg("hello", {"role": "source"}))
            assert (await recv_json(first))["type"] == "ready"
            start = {"language": "en", "mode": "audio", "sample_rate": audio.sample_rate}
            await first.send(msg("call.start", start, seq=2))
            started = await recv_json(first, timeout=20)
            assert started["type"] == "call.started", started
            call_id = started["call_id"]
            before = await send_and_hear(first, audio, 0, 15)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            first.transport.abort()

            again = await connect(f"{b.ws}?token={TOKEN}")
            resume = {"call_id": call_id, "after_seq": before[-1]["seq"]}
            await again.send(msg("hello", {"role": "source", "resume": resume}))
            answer = await recv_json(again, timeout=15)
            assert answer["type"] == "ready", answer["data"]
            after: list[dict[str, Any]] = []
            reading = asyncio.create_task(read_until_ended(again, after))
            await send_audio(again, audio, 15, 44.2)
            await again.send(msg("call.end", {"reason": "completed"}, call_id, seq=3))
            await asyncio.wait_for(reading, 120)
            again.transport.abort()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    heard = [started, *before, *after]
    assert [m["seq"] for m in heard] == list(range(1, len(heard) + 1))
    finals_before = [m for m in before if m["type"] == "transcript.final"]
    finals_after = [m for m in after if m["type"] == "transcript.final"]
    assert finals_before and finals_after
    ids = [m["data"]["utterance_id"] for m in finals_before + finals_after]
    assert len(ids) == len(set(ids)), ids
    reached = max(m["data"]["end_ms"] for m in finals_before)
    assert all(m["t_ms"] >= reached for m in finals_after)  # times go on after A's
    ended = after[-1]
    assert ended["type"] == "call.ended" and ended["data"]["reason"] == "completed"
    assert ended["data"]["duration_ms"] >= reached + 25_000
    store = PostgresStore(store_url)
    try:
        assert len(store.transcript(call_id)) == len(ids)
        row = store.get_call(call_id)
        assert row is not None and row.end_reason == "completed"
    finally:
        store.close()


async def send_and_hear(
    ws: ClientConnection, audio: CallAudio, start_s: float, end_s: float
) -> list[dict[str, Any]]:
    """Send a span of audio while reading the call's events, until a final has come
    back and the call is quiet for a moment (what the dying gateway acknowledged)."""
    heard: list[dict[str, Any]] = []
    reading = asyncio.create_task(collect(ws, heard))
    await send_audio(ws, audio, start_s, end_s)
    deadline, count, quiet_since = time.monotonic() + 90, -1, time.monotonic()
    while not any(m["type"] == "transcript.final" for m in heard) or (
        time.monotonic() - quiet_since < 2
    ):
        assert time.monotonic() < deadline, heard[-3:]
        if len(heard) != count:
            count, quiet_since = len(heard), time.monotonic()
        await asyncio.sleep(0.1)
    reading.cancel()
    return list(heard)


async def read_until_ended(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    while not into or into[-1]["type"] != "call.ended":
        into.append(await recv_json(ws, timeout=120))
