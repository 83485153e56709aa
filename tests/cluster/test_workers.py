"""Gateways and recognition workers over a real Redis, with real models on real audio.

One module-scoped Redis (append-only) and two ``agent-assist worker`` processes serve
every test: two gateways with consoles on each other; a worker killed with SIGKILL
mid-call; Redis restarted mid-call. Each disturbed call must end with exactly the
utterances of the undisturbed one: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from rapidfuzz import fuzz
from websockets.asyncio.client import connect

from agent_assist.audio.files import read_call_audio
from agent_assist.clients.replay import ReplayResult, load_script, replay
from agent_assist.cluster.jobs import GROUP, Keys
from agent_assist.cluster.private_servers import PrivatePostgres, PrivateRedis
from agent_assist.config import Config
from tests.cluster.conftest import Workers
from tests.conftest import CALLS, SAMPLES, _serve

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

Utterance = tuple[str, str, int, int]  # id, speaker, start, end


def finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "transcript.final"]


def utterances(events: list[dict[str, Any]]) -> list[Utterance]:
    return [
        (e["data"]["utterance_id"], e["data"]["speaker"], e["t_ms"], e["data"]["end_ms"])
        for e in finals(events)
    ]


def text_of(events: list[dict[str, Any]]) -> str:
    return " ".join(e["data"]["text"] for e in finals(events))


async def watch(
    url: str, calls_to_end: int, into: list[dict[str, Any]], mode: str | None = None
) -> None:
    """A supervisor's console subscribed to every call, until ``calls_to_end`` calls (of
    ``mode``, when given) end."""
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"v": 1, "type": "hello", "call_id": None, "seq": 1, "t_ms": 0,
                                  "data": {"role": "console", "subscribe": "*"}}))  # fmt: skip
        ended = 0
        while ended < calls_to_end:
            m = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if m["type"] == "ready":
                continue
            into.append(m)
            modes = {e["call_id"]: e["data"]["mode"] for e in into if e["type"] == "call.started"}
            ended += m["type"] == "call.ended" and mode in (None, modes.get(m["call_id"]))


def assert_once_in_order(seen: list[dict[str, Any]], call_id: str, result: ReplayResult) -> None:
    mine = [m["seq"] for m in seen if m["call_id"] == call_id]
    assert mine == list(range(1, len(mine) + 1)), mine[:20]
    assert mine[-1] == max(e["seq"] for e in result.events if e["call_id"] == call_id)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def undisturbed(
    cluster_config: Config,
    workers: Workers,
    postgres: PrivatePostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> ReplayResult:
    """Two gateways on one PostgreSQL store; an audio call on A, a text call on B,
    consoles on both. Also the reference transcript for the disturbed runs below.
    """
    db = tmp_path_factory.mktemp("gateways") / "unused.sqlite3"
    url = postgres.create_database("gateways")
    cluster_config = replace(cluster_config, store=replace(cluster_config.store, url=url))
    audio = read_call_audio(SAMPLES / "en_call.flac")
    script = load_script(CALLS / "en_demo.toml")
    async with _serve(cluster_config, db, True) as a, _serve(cluster_config, db, True) as b:
        on_a: list[dict[str, Any]] = []
        on_b: list[dict[str, Any]] = []
        ann_on_b: list[dict[str, Any]] = []  # an agent's console: her own call only
        ann_url = f"{b.ws}?token={b.token_for('ann', 'agent')}"
        consoles = [
            asyncio.create_task(watch(a.url, 2, on_a)),
            asyncio.create_task(watch(b.url, 2, on_b)),
            asyncio.create_task(watch(ann_url, 1, ann_on_b, mode="audio")),
        ]
        await asyncio.sleep(0.3)
        calls = asyncio.gather(
            replay(a.url, audio, language="en", fast=True, agent="ann"),
            replay(b.url, script, fast=True),
        )
        while not finals(on_b):  # a console joining B late sees A's call from its start
            await asyncio.sleep(0.02)
        late: list[dict[str, Any]] = []
        consoles.append(asyncio.create_task(watch(b.url, 1, late, mode="audio")))
        heard, said = await calls
        done, _ = await asyncio.wait(consoles, timeout=60)
        summary = {
            name: {
                c: [m["seq"] for m in seen if m["call_id"] == c][-3:]
                for c in (heard.call_id, said.call_id)
            }
            for name, seen in (("a", on_a), ("b", on_b), ("late", late))
        }
        assert len(done) == 4, summary
        assert_once_in_order(late, heard.call_id, heard)
        assert_once_in_order(ann_on_b, heard.call_id, heard)
        assert {m["call_id"] for m in ann_on_b} == {heard.call_id}
        for console in (on_a, on_b):
            assert_once_in_order(console, heard.call_id, heard)
            assert_once_in_order(console, said.call_id, said)
        assert b.server.cluster is not None and b.server.cluster.received > 0
        assert a.server.cluster is not None and a.server.cluster.received > 0
        nodes = await a.server.cluster.nodes()
        roles = Counter(n["role"] for n in nodes.values())
        assert roles["gateway"] == 2 and roles["worker"] == 2, nodes
        stored = a.server.services.store.events_after(heard.call_id, 0)
        assert [json.loads(body)["seq"] for body in stored] == [
            e["seq"] for e in heard.events if e["call_id"] == heard.call_id
        ]
        async with connect(b.url) as ws:  # resume A's call on B: exactly what followed
            hello = {"role": "console", "subscribe": None,
                     "resume": {"call_id": heard.call_id, "after_seq": 10}}  # fmt: skip
            await ws.send(json.dumps({"v": 1, "type": "hello", "call_id": None, "seq": 1,
                                      "t_ms": 0, "data": hello}))  # fmt: skip
            assert json.loads(await ws.recv())["type"] == "ready"
            resumed = []
            while not resumed or resumed[-1]["type"] != "call.ended":
                resumed.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        last = max(e["seq"] for e in heard.events if e["call_id"] == heard.call_id)
        assert [m["seq"] for m in resumed] == list(range(11, last + 1))
    assert not db.exists()  # everything went to PostgreSQL
    return heard


async def test_two_gateways_share_workers_and_events(undisturbed: ReplayResult) -> None:
    assert len(finals(undisturbed.events)) >= 5
    assert "nova" in text_of(undisturbed.events).lower()


async def test_a_worker_killed_mid_call_loses_and_repeats_no_final(
    cluster_config: Config,
    workers: Workers,
    redis_server: PrivateRedis,
    undisturbed: ReplayResult,
    tmp_path: Path,
) -> None:
    r = redis.Redis.from_url(redis_server.url)
    stream = Keys(cluster_config.cluster.prefix).jobs("final", "en")
    audio = read_call_audio(SAMPLES / "en_call.flac")
    async with _serve(cluster_config, tmp_path / "calls.sqlite3", True) as gw:
        call = asyncio.create_task(replay(gw.url, audio, language="en", fast=True))
        caught = False  # SIGKILL w1 while it holds a final it has not answered
        while not caught:
            deadline = time.monotonic() + 60
            while not r.xpending_range(stream, GROUP, "-", "+", 10, consumername="w1"):
                assert time.monotonic() < deadline and not call.done(), "w1 never took a final"
                await asyncio.sleep(0.005)
            workers.kill("w1")
            caught = bool(r.xpending_range(stream, GROUP, "-", "+", 10, consumername="w1"))
            if not caught:  # it answered just before dying: try again on a later final
                await asyncio.to_thread(workers.start, "w1")
        result = await asyncio.wait_for(call, 120)
    assert utterances(result.events) == utterances(undisturbed.events)
    assert fuzz.ratio(text_of(result.events), text_of(undisturbed.events)) > 90
    deadline, report = time.monotonic() + 5, {}  # w2's next load report counts its take-over
    while report.get("reclaimed", 0) < 1 and time.monotonic() < deadline:
        report = json.loads(r.get(Keys(cluster_config.cluster.prefix).node("w2")) or b"{}")
        await asyncio.sleep(0.1)
    assert report.get("reclaimed", 0) >= 1, report
    assert r.xpending(stream, GROUP)["pending"] == 0
    workers.start("w1")


async def test_redis_restarted_mid_call_keeps_every_final(
    cluster_config: Config,
    workers: Workers,
    redis_server: PrivateRedis,
    undisturbed: ReplayResult,
    tmp_path: Path,
) -> None:
    audio = read_call_audio(SAMPLES / "en_call.flac")
    seen: list[dict[str, Any]] = []
    async with _serve(cluster_config, tmp_path / "calls.sqlite3", True) as gw:
        call = asyncio.create_task(
            replay(gw.url, audio, language="en", fast=True, on_event=seen.append)
        )
        while len(finals(seen)) < 2:
            assert not call.done()
            await asyncio.sleep(0.05)
        await asyncio.to_thread(redis_server.restart)
        result = await asyncio.wait_for(call, 180)
    assert utterances(result.events) == utterances(undisturbed.events)
    assert fuzz.ratio(text_of(result.events), text_of(undisturbed.events)) > 90
    ids = [u[0] for u in utterances(result.events)]
    assert len(ids) == len(set(ids))


async def test_a_call_no_worker_can_decode_is_refused(
    cluster_config: Config, workers: Workers, tmp_path: Path
) -> None:
    async with _serve(cluster_config, tmp_path / "calls.sqlite3", True) as gw:
        assert gw.server.cluster is not None
        assert gw.server.cluster.capacity()["languages"] == ["en"]  # the workers: English only
        async with connect(gw.url) as ws:
            await ws.send(json.dumps({"v": 1, "type": "hello", "call_id": None, "seq": 1,
                                      "t_ms": 0, "data": {"role": "source"}}))  # fmt: skip
            assert json.loads(await ws.recv())["type"] == "ready"
            start = {"language": "ja", "mode": "audio", "sample_rate": 16000,
                     "channels": ["agent", "customer"]}  # fmt: skip
            await ws.send(json.dumps({"v": 1, "type": "call.start", "call_id": None, "seq": 2,
                                      "t_ms": 0, "data": start}))  # fmt: skip
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert refused["type"] == "error" and refused["data"]["code"] == "cluster.no_worker"
            assert "'ja'" in refused["data"]["message"]

        status, report = await asyncio.to_thread(gw.health)  # the load balancer sees the cluster
        assert status == 200 and report["accepting"] and report["cluster"]["workers"] == 2
        assert report["cluster"]["languages"] == ["en"] and report["cluster"]["gateways"] >= 1
