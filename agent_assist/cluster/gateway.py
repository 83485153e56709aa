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
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.cluster.jobs import Keys
from agent_assist.cluster.remote import RedisRecognizer
from agent_assist.cluster.worker import node_name
from agent_assist.config import Config

log = logging.getLogger(__name__)
RedisDown = (RedisConnectionError, RedisTimeoutError, OSError)


class RemoteRecognitionEngine(RecognitionEngine):
    """The engine with its decodes on workers: ``inflight`` threads wait on answers."""

    def __init__(self, config: Config) -> None:
        partial_timeout_s = max(1.0, config.partials.max_lag_ms / 1000 * 2)
        self.remote = RedisRecognizer(config.cluster, partial_timeout_s)
        asr = replace(config.asr, workers=config.cluster.inflight, batch_size=1)
        super().__init__(self.remote, asr, config.partials, config.degrade)

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
    leaves a console short.
    """

    def __init__(
        self,
        config: Config,
        deliver: Callable[[str, int, str, bool], None],
        load: Callable[[], dict[str, Any]],
    ) -> None:
        self._cfg = config.cluster
        self._keys = Keys(self._cfg.prefix)
        self.name = node_name(self._cfg.node, "gateway")
        self._deliver = deliver
        self._load = load
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
        ttl = max(3, round(3 * self._cfg.heartbeat_s))
        while True:
            report = {"role": "gateway", "at": time.time(), **self._load()}
            with contextlib.suppress(*RedisDown):
                await self._redis.set(self._keys.node(self.name), json.dumps(report), ex=ttl)
                self.nodes_seen = await self.nodes()
                await self._refresh_remote_calls()
            await asyncio.sleep(self._cfg.heartbeat_s)

    async def _refresh_remote_calls(self) -> None:
        """Live calls of other gateways still beating (a crashed gateway's calls drop out)."""
        held = await self._redis.hgetall(self._keys.calls())
        pairs = ((_text(call), _text(node)) for call, node in held.items())
        self.remote_calls = {
            call: node for call, node in pairs if node != self.name and node in self.nodes_seen
        }

    def capacity(self) -> dict[str, Any]:
        """The cluster as this gateway last saw it: for the health report and the wall."""
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
