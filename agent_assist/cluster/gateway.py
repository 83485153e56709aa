"""The gateway's cluster parts: remote recognition, events across gateways, load reports.

A gateway is the server process holding calls' websockets. With ``[cluster] redis_url``
it decodes on workers (``RedisRecognizer`` behind the usual engine), publishes every
event it numbers and stores to the other gateways, and reports its load. Without it,
none of this runs and the process is the embedded single-box product.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_assist.asr.engine import EngineStats, RecognitionEngine
from agent_assist.cluster.jobs import Keys
from agent_assist.cluster.lost_calls import LostCalls
from agent_assist.cluster.remote import RedisRecognizer
from agent_assist.cluster.worker import node_name
from agent_assist.config import Config
from agent_assist.core.events import language_choice
from agent_assist.protocol import CallStart

log = logging.getLogger(__name__)
RedisDown = (RedisConnectionError, RedisTimeoutError, OSError)


class RemoteRecognitionEngine(RecognitionEngine):
    """The engine with its decodes on workers: ``inflight`` threads wait on answers.

    Its own queue hands every final on at once, so the wait that matters is at the
    workers: the ladder, the lag (``refuse_lag_ms``) and the wait and decode figures
    are fed from the remote recogniser's ``queue_report``. A final waits from its
    submission until a worker starts it; its decode is the worker's. When workers fall
    behind, partials and early finals are shed first (finals never); when they catch
    up, the ladder steps back.
    """

    def __init__(self, config: Config) -> None:
        partial_timeout_s = max(1.0, config.partials.max_lag_ms / 1000 * 2)
        self.remote = RedisRecognizer(config.cluster, partial_timeout_s)
        self._remote_waits: deque[int] = deque(maxlen=2000)
        self._remote_decodes: deque[int] = deque(maxlen=2000)
        self._remote_max_wait_ms = 0
        asr = replace(config.asr, workers=config.cluster.inflight, batch_size=1)
        super().__init__(self.remote, asr, config.partials, config.degrade)

    def _run(self, jobs: list[Any], *, greedy: bool = False, fallback: bool = False) -> None:
        self.remote.waiting_since(min(job.submitted for job in jobs))
        super()._run(jobs, greedy=greedy, fallback=fallback)

    def _watch(self, now: float) -> int:
        """Under the lock: the oldest final waiting here or at the workers, and every
        wait a worker ended since, shown to the ladder."""
        report = self.remote.queue_report()
        for wait in report.started:
            self._remote_waits.append(wait)
            self._remote_max_wait_ms = max(self._remote_max_wait_ms, wait)
            self._observe(wait, now)
        self._remote_decodes.extend(report.decodes)
        lag = max(self._oldest_wait_ms(now), report.oldest_ms if report.waiting else 0)
        self._observe(lag if self._finals or report.waiting else None, now)
        return lag

    def lag_ms(self) -> int:
        with self._cond:
            return self._watch(time.monotonic())

    def stats(self) -> EngineStats:
        """The engine's figures, with waits and decodes as the workers saw them."""
        stats = super().stats()
        with self._cond:
            waits = np.asarray(self._remote_waits or [0])
            decodes = np.asarray(self._remote_decodes or [0])
            return replace(
                stats,
                last_wait_ms=self._remote_waits[-1] if self._remote_waits else 0,
                wait_p50_ms=int(np.percentile(waits, 50)),
                wait_p95_ms=int(np.percentile(waits, 95)),
                max_wait_ms=self._remote_max_wait_ms,
                final_decode_p50_ms=int(np.percentile(decodes, 50)),
                final_decode_p95_ms=int(np.percentile(decodes, 95)),
            )

    def close(self) -> None:
        self.remote.close()  # threads waiting on answers give up before the join
        super().close()


def remote_engine(config: Config) -> RecognitionEngine:
    return RemoteRecognitionEngine(config)


class ClusterLink:
    """Events to and from the other gateways, and this gateway's load report.

    ``publish`` is called for every event this gateway numbered and stored; a single
    sender task keeps their order. Events from other gateways go to ``deliver`` (the
    hub), which fills any gap from the shared store, so a dropped pub/sub message never
    leaves a console short. Each heartbeat also registers this gateway's live calls again
    (``held``: a Redis that lost its data learns them back) and, with ``lost``, ends
    the calls of gateways that died (``lost_calls.py``).
    """

    def __init__(
        self,
        config: Config,
        deliver: Callable[[str, int, str, bool], None],
        load: Callable[[], dict[str, Any]],
        held: Callable[[], Collection[str]] = tuple,
        lost: LostCalls | None = None,
    ) -> None:
        self._cfg = config.cluster
        self._keys = Keys(self._cfg.prefix)
        self.name = node_name(self._cfg.node, "gateway")
        self._deliver = deliver
        self._load = load
        self._held = held
        self._lost = lost
        self._taking_over: set[str] = set()
        """Calls this gateway is taking over from a dead one (held, not yet live here)."""
        self._redis = aioredis.Redis.from_url(
            self._cfg.redis_url, socket_connect_timeout=2, socket_timeout=None
        )
        self._outbox: asyncio.Queue[tuple[str, int, str, bool]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self.received = 0
        self.nodes_seen: dict[str, dict[str, Any]] = {}
        """Every node's last load report, refreshed each heartbeat."""
        self.remote_calls: dict[str, str] = {}
        """Live calls other gateways hold (call id -> gateway), for late-joining consoles."""

    async def start(self) -> None:
        with contextlib.suppress(*RedisDown):
            self.nodes_seen = await self.nodes()
            await self._refresh_remote_calls()
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._receive_loop()),
            asyncio.create_task(self._beat_loop()),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        for _ in range(50):  # let queued events out before leaving
            if self._outbox.empty():
                break
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *RedisDown):
                await task
        with contextlib.suppress(*RedisDown):
            await self._redis.delete(self._keys.node(self.name))
        await self._redis.aclose()

    def publish(self, call_id: str, seq: int, body: str, last: bool = False) -> None:
        self._outbox.put_nowait((call_id, seq, body, last))

    async def _send_loop(self) -> None:
        channel = self._keys.events()
        while True:
            call_id, seq, body, last = await self._outbox.get()
            kind = _event_type(body)
            message = json.dumps(
                {"node": self.name, "call": call_id, "seq": seq, "body": body, "last": last}
            )
            while True:
                try:
                    if kind == "call.started":
                        await self._redis.hset(self._keys.calls(), call_id, self.name)
                    await self._redis.publish(channel, message)
                    if kind == "call.ended":
                        await self._redis.hdel(self._keys.calls(), call_id)
                        await self._redis.hdel(self._keys.sources(), call_id)
                    break
                except RedisDown:  # others fill the gap from the store later
                    await asyncio.sleep(0.5)
                    if self._outbox.qsize() > 10000:
                        break

    async def _receive_loop(self) -> None:
        channel = self._keys.events()
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    doc = json.loads(message["data"])
                    if doc["node"] == self.name:
                        continue
                    self.received += 1
                    kind = _event_type(doc["body"])
                    if kind == "call.started":
                        self.remote_calls[doc["call"]] = doc["node"]
                    elif kind == "call.ended":
                        self.remote_calls.pop(doc["call"], None)
                    try:
                        self._deliver(
                            doc["call"], int(doc["seq"]), doc["body"], bool(doc.get("last"))
                        )
                    except Exception:
                        log.exception("failed to deliver an event from %s", doc["node"])
            except RedisDown as exc:
                log.warning("gateway %s: event channel lost (%s); reconnecting", self.name, exc)
                await asyncio.sleep(0.5)

    async def _beat_loop(self) -> None:
        ttl = self._report_ttl_s()
        while True:
            report = {"role": "gateway", "at": time.time(), **self._load()}
            with contextlib.suppress(*RedisDown):
                await self._redis.set(self._keys.node(self.name), json.dumps(report), ex=ttl)
                await self._register_held_calls()
                self.nodes_seen = await self.nodes()
                await self._refresh_remote_calls()
                if self._lost is not None:
                    try:
                        await self._sweep_lost_calls(self._lost)
                    except RedisDown:
                        raise
                    except Exception:  # a store outage: the next beat tries again
                        log.exception("gateway %s: sweeping lost calls failed", self.name)
            await asyncio.sleep(self._cfg.heartbeat_s)

    def _report_ttl_s(self) -> int:
        """A load report lives 3 heartbeats (at least 3 s): a node silent that long is gone."""
        return max(3, round(3 * self._cfg.heartbeat_s))

    async def _register_held_calls(self) -> None:
        """``{p}:calls`` lists exactly this gateway's live calls under its name, even
        after Redis lost its data or a call's start or end message was not sent."""
        listed = await self._redis.hgetall(self._keys.calls())
        held = set(self._held()) | self._taking_over  # read after the await: a call now
        # starting or being taken over is in it
        stale = [c for c, node in listed.items() if _text(node) == self.name
                 and _text(c) not in held]  # fmt: skip
        if stale:
            await self._redis.hdel(self._keys.calls(), *stale)
        if held:
            await self._redis.hset(self._keys.calls(), mapping=dict.fromkeys(held, self.name))

    async def _sweep_lost_calls(self, lost: LostCalls) -> None:
        """End the calls no live gateway has held for the grace window: one gateway at a
        time (a lock in Redis), each call once (its row is read again under the lock)."""
        held = await self._redis.hgetall(self._keys.calls())
        live = {self.name, *(n for n, r in self.nodes_seen.items() if r.get("role") == "gateway")}
        held_by_live = {_text(c) for c, node in held.items() if _text(node) in live}
        due = lost.due(held_by_live)  # the store is used from the event loop, as everywhere
        if not due:
            return
        lock = self._keys.sweep_lock()
        ttl_ms = max(5000, round(10_000 * self._cfg.heartbeat_s))
        if not await self._redis.set(lock, self.name, nx=True, px=ttl_ms):
            return  # another gateway sweeps now; what it leaves is seen again next beat
        try:
            for call_id in due:
                holder = _text(await self._redis.hget(self._keys.calls(), call_id) or b"")
                if holder in live:  # taken over by a gateway since `due` was read
                    continue
                ended = lost.end(call_id)
                await self._redis.hdel(self._keys.calls(), call_id)
                await self._redis.hdel(self._keys.sources(), call_id)
                self.remote_calls.pop(call_id, None)
                if ended is not None:
                    seq, body = ended
                    log.warning("gateway %s: ended call %s, its gateway is gone", self.name,
                                call_id)  # fmt: skip
                    self._deliver(call_id, seq, body, True)  # this gateway's consoles
                    self.publish(call_id, seq, body, True)  # and every other gateway's
        finally:
            if _text(await self._redis.get(lock) or b"") == self.name:
                await self._redis.delete(lock)

    async def register_source(self, call_id: str, user: str, start: CallStart) -> None:
        """Who carries a call and how it started: what another gateway needs to let that
        source take the call over if this gateway dies."""
        doc = {"user": user, "start": {**asdict(start), "channels": list(start.channels)}}
        with contextlib.suppress(*RedisDown):
            await self._redis.hset(self._keys.sources(), call_id, json.dumps(doc))

    async def take_over(self, call_id: str, user: str) -> CallStart | None:
        """Hold a call of a gateway that died, for its own source ``user`` coming back:
        the call's start as it was, or None (unknown, another user's, ended, or its
        gateway still beating after 3 heartbeats). The caller makes it live here at once
        and calls ``taken_over``; under the sweep lock, so no sweep ends it meanwhile."""
        if self._lost is None:
            return None
        try:
            raw = await self._redis.hget(self._keys.sources(), call_id)
            if raw is None or json.loads(raw).get("user") != user:
                return None
            start = json.loads(raw)["start"]
            deadline = time.monotonic() + self._report_ttl_s() + 1
            while True:  # the source may come back before its gateway's report expires
                self.nodes_seen = await self.nodes()
                holder = _text(await self._redis.hget(self._keys.calls(), call_id) or b"")
                if holder == self.name or holder not in self.nodes_seen:
                    break
                if time.monotonic() > deadline:
                    return None  # its gateway lives: that gateway holds it
                await asyncio.sleep(min(0.25, self._cfg.heartbeat_s / 2))
            lock = self._keys.sweep_lock()
            for _ in range(100):
                if await self._redis.set(lock, self.name, nx=True, px=5000):
                    break
                await asyncio.sleep(0.05)
            else:
                return None
            try:
                if not self._lost.is_open(call_id):
                    return None
                self._taking_over.add(call_id)
                await self._redis.hset(self._keys.calls(), call_id, self.name)
            finally:
                if _text(await self._redis.get(lock) or b"") == self.name:
                    await self._redis.delete(lock)
        except RedisDown:
            self._taking_over.discard(call_id)
            return None
        language = language_choice(start.get("language"))
        if language is None:  # written by another release: not a call this one can hold
            self._taking_over.discard(call_id)
            return None
        return CallStart(**{**start, "language": language, "channels": tuple(start["channels"])})

    def taken_over(self, call_id: str) -> None:
        """The call taken over is live here now, so listed by ``held`` (or it could not
        be made live, and the sweep may end it)."""
        self._taking_over.discard(call_id)

    async def _refresh_remote_calls(self) -> None:
        """Live calls of other gateways still beating (a crashed gateway's calls drop out)."""
        held = await self._redis.hgetall(self._keys.calls())
        pairs = ((_text(call), _text(node)) for call, node in held.items())
        self.remote_calls = {
            call: node for call, node in pairs if node != self.name and node in self.nodes_seen
        }

    def lost_calls_ended(self) -> list[str]:
        """The calls of dead gateways this gateway ended (newest last)."""
        return list(self._lost.ended) if self._lost is not None else []

    def capacity(self) -> dict[str, Any]:
        """The cluster as this gateway last saw it: for admission, the health report and
        the wall. ``capacity``: audio calls the live workers take together (each reports
        its ``worker_calls``); ``audio_calls``: live audio calls on every live gateway."""
        workers = [n for n in self.nodes_seen.values() if n.get("role") == "worker"]
        gateways = [  # this gateway as it is now, the others as last reported
            {"role": "gateway", **self._load()},
            *(
                n
                for name, n in self.nodes_seen.items()
                if n.get("role") == "gateway" and name != self.name
            ),
        ]
        languages = sorted({lang for w in workers for lang in w.get("languages", [])})
        busy = [float(w.get("busy_share", 0.0)) for w in workers]
        return {
            "workers": len(workers),
            "gateways": len(gateways),
            "calls": sum(int(g.get("calls", 0)) for g in gateways),
            "audio_calls": sum(int(g.get("audio_calls", 0)) for g in gateways),
            "capacity": sum(int(w.get("calls", 0)) for w in workers),
            "languages": languages,
            "worker_busy": round(sum(busy) / len(busy), 3) if busy else 0.0,
        }

    def view(self) -> dict[str, Any]:
        """``capacity()`` and each node's report, for the wall (no call data in it)."""
        nodes = [
            {"name": name, **{k: v for k, v in report.items() if k != "at"}}
            for name, report in sorted(self.nodes_seen.items())
        ]
        return {**self.capacity(), "nodes": nodes}

    def refusal(self, language: str) -> str:
        """Why an audio call in ``language`` cannot be served now ('' when it can)."""
        served = self.capacity()["languages"]
        if language == "auto" and served:
            return ""
        if language not in served:
            return f"no recognition worker serves {language!r} (workers serve {served or 'none'})"
        return ""

    def full(self) -> str:
        """Why the cluster takes no more audio calls now ('' while it has room): the live
        audio calls of every gateway against what the live workers take."""
        seen = self.capacity()
        if seen["workers"] and seen["audio_calls"] >= seen["capacity"]:
            return (
                f"{seen['audio_calls']} live audio calls across {seen['gateways']} gateway(s),"
                f" the {seen['workers']} live worker(s) take {seen['capacity']}"
            )
        return ""

    async def refresh(self) -> None:
        """Read every node's report now (a call is being admitted); Redis down: the last
        reports stand."""
        with contextlib.suppress(*RedisDown, TimeoutError):
            self.nodes_seen = await asyncio.wait_for(self.nodes(), 2)

    async def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node's last load report (gateways and workers still beating)."""
        out: dict[str, dict[str, Any]] = {}
        prefix = self._keys.node("")
        async for key in self._redis.scan_iter(match=self._keys.nodes_pattern()):
            raw = await self._redis.get(key)
            if raw is not None:
                name = key.decode()[len(prefix) :]
                out[name] = json.loads(raw)
        return out


def _event_type(body: str) -> str:
    return str(json.loads(body).get("type", ""))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
