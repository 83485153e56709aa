"""``agent-assist worker``: the recognition engine as its own process, fed from Redis.

Each loop turn a worker takes, in this order:

1. jobs another worker claimed and then left silent for ``claim_timeout_s`` (it died):
   ``XAUTOCLAIM`` moves them here;
2. finals and language detections of its languages, up to ``worker_batch`` of one
   stream (one language) at once, decoded together (one encoder pass serves several
   calls and gateways: it pays on a GPU); it claims no more than it decodes next, so
   another worker can take the rest;
3. partials, only when no final waits; a partial past its deadline is dropped unread.

An answer is written first-wins by job id (``SET NX``), then the job is acknowledged and
deleted. A job whose answer already exists is acknowledged without decoding: a final is
decoded once even when a gateway queued it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from agent_assist.asr.whisper import Recognizer
from agent_assist.cluster.jobs import (
    ANSWERED,
    GROUP,
    RESULT_TTL_S,
    STARTED,
    Job,
    Keys,
    encode_recognized,
)
from agent_assist.config import Config

log = logging.getLogger(__name__)


def node_name(configured: str, role: str) -> str:
    """The configured name, else role, host, process id and a random tag (unique per run)."""
    return configured or f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerCounters:
    decoded: int = 0
    partials: int = 0
    already_answered: int = 0
    """Jobs acknowledged without decoding because their answer exists (queued twice)."""
    stale_partials: int = 0
    """Partials dropped unread: nobody waits for them any more."""
    reclaimed: int = 0
    batches: int = 0
    busy_s: float = 0.0


class RecognitionWorker:
    def __init__(self, recognizer: Recognizer, config: Config, name: str = "") -> None:
        self._recognizer = recognizer
        self._cfg = config.cluster
        self._keys = Keys(self._cfg.prefix)
        self.name = node_name(name or self._cfg.node, "worker")
        self.languages = self._cfg.worker_languages or tuple(config.asr.languages)
        self.calls = self._cfg.worker_calls
        self._redis = redis.Redis.from_url(
            self._cfg.redis_url, socket_connect_timeout=2, socket_timeout=10
        )
        self._finals = [self._keys.jobs("final", lang) for lang in self.languages]
        models = [config.asr.languages[lang].model for lang in self.languages]
        if any(not model.endswith(".en") for model in models):  # detection: multilingual only
            self._finals.append(self._keys.jobs("detect"))
        self._partials = [self._keys.jobs("partial", lang) for lang in self.languages]
        self.counters = WorkerCounters()
        self._last_claim = 0.0
        self._rotation = 0
        self._last_beat = 0.0
        self._busy_at_beat = 0.0

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` is set; Redis outages are waited out, never fatal."""
        ready = False
        beating: threading.Thread | None = None
        while not stop.is_set():
            try:
                if not ready:
                    self._ensure_groups()
                    self._beat(force=True)
                    ready = True
                    if beating is None:  # reports go on while a long batch decodes
                        beating = threading.Thread(
                            target=self._beat_loop, args=(stop,), daemon=True
                        )
                        beating.start()
                    if on_ready is not None:
                        on_ready()
                self._turn()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("worker %s: redis unreachable (%s); retrying", self.name, exc)
                ready = False
                stop.wait(0.5)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ready = False  # Redis lost its data (restart without persistence)
        if beating is not None:
            beating.join(timeout=5)
        self._redis.close()

    def _turn(self) -> None:
        batch = self._reclaim()
        if not batch:
            batch = self._take_from_one(self._finals)
        if not batch:
            batch = self._take_from_one(self._partials)
        if not batch:  # idle: wait for the next job of any stream, one per stream at most
            batch = self._read(self._finals + self._partials, block_ms=500, count=1)
        if batch:
            self._serve(batch)

    def _take_from_one(self, streams: list[str]) -> list[tuple[str, str, Job]]:
        """Up to ``worker_batch`` jobs of one stream, the streams taken in turn: a worker
        claims only what it decodes next, so jobs of another language stay on the stream
        for an idle worker instead of waiting here behind this batch."""
        self._rotation += 1
        start = self._rotation % max(1, len(streams))
        for stream in streams[start:] + streams[:start]:
            batch = self._read([stream], block_ms=None, count=self._cfg.worker_batch)
            if batch:
                return batch
        return []

    def _ensure_groups(self) -> None:
        for stream in self._finals + self._partials:
            try:
                self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _read(
        self, streams: list[str], block_ms: int | None, count: int
    ) -> list[tuple[str, str, Job]]:
        """``count`` jobs at most from each stream."""
        reply = self._redis.xreadgroup(
            GROUP, self.name, dict.fromkeys(streams, ">"), count=count, block=block_ms
        )
        return self._parse(reply or [])

    def _reclaim(self) -> list[tuple[str, str, Job]]:
        """Jobs of a worker silent for ``claim_timeout_s``: take them over."""
        now = time.monotonic()
        if now - self._last_claim < min(1.0, self._cfg.claim_timeout_s / 3):
            return []
        self._last_claim = now
        taken: list[tuple[str, str, Job]] = []
        for stream in self._finals:
            reply = self._redis.xautoclaim(
                stream,
                GROUP,
                self.name,
                min_idle_time=int(self._cfg.claim_timeout_s * 1000),
                start_id="0-0",
                count=self._cfg.worker_batch,
            )
            messages = reply[1] if reply else []
            found = self._parse([[stream, [m for m in messages if m and m[1]]]])
            taken += found
            if found:
                log.warning("worker %s took over %d job(s) from %s", self.name, len(found), stream)
        self.counters.reclaimed += len(taken)
        return taken

    @staticmethod
    def _parse(reply: Any) -> list[tuple[str, str, Job]]:
        out: list[tuple[str, str, Job]] = []
        for stream, messages in reply:
            name = stream.decode() if isinstance(stream, bytes) else stream
            for msg_id, fields in messages:
                mid = msg_id.decode() if isinstance(msg_id, bytes) else msg_id
                out.append((name, mid, Job.parse(fields)))
        return out

    # -- decoding -----------------------------------------------------------------------

    def _serve(self, batch: list[tuple[str, str, Job]]) -> None:
        todo: list[tuple[str, str, Job]] = []
        now_ms = time.time() * 1000
        for stream, msg_id, job in batch:
            if job.kind == "partial" and now_ms > job.deadline_ms:
                self._ack(stream, msg_id)
                self.counters.stale_partials += 1
            elif self._redis.exists(self._keys.result(job.job_id)):
                self._ack(stream, msg_id)
                self.counters.already_answered += 1
            else:
                todo.append((stream, msg_id, job))
        groups: dict[tuple[str, str, bool, bool], list[tuple[str, str, Job]]] = defaultdict(list)
        for item in todo:
            job = item[2]
            key = job.language if job.kind != "detect" else job.job_id
            groups[(job.kind, key, job.greedy, job.fallback)].append(item)
        for (kind, _, _, _), items in groups.items():
            if kind != "partial":  # the gateway's wait for a worker ends here, not at the answer
                self._started([job for _, _, job in items])
            started = time.monotonic()
            answers = self._decode(kind, [job for _, _, job in items])
            decode_ms = round((time.monotonic() - started) * 1000)
            for answer in answers:
                answer["decode_ms"] = decode_ms
            self.counters.busy_s += time.monotonic() - started
            self.counters.batches += 1
            if kind == "partial":  # counted before anyone hears the answer
                self.counters.partials += len(items)
            else:
                self.counters.decoded += len(items)
            for (stream, msg_id, job), answer in zip(items, answers, strict=True):
                self._answer(stream, msg_id, job, answer)

    def _decode(self, kind: str, jobs: list[Job]) -> list[dict[str, Any]]:
        try:
            if kind == "detect":
                job = jobs[0]
                return [{"language": self._recognizer.detect_language(job.samples, job.candidates)}]
            ladder = {k: True for k in ("greedy", "fallback") if getattr(jobs[0], k)}
            results = self._recognizer.transcribe_batch(
                [(job.samples, job.offset_ms) for job in jobs],
                jobs[0].language,
                partial=kind == "partial",
                **ladder,
            )
            return [{"recognized": json.loads(encode_recognized(r))} for r in results]
        except Exception as exc:  # the gateway hears of it; the worker keeps serving
            log.exception("worker %s: recognition failed for %d job(s)", self.name, len(jobs))
            return [{"error": f"{type(exc).__name__}: {exc}"} for _ in jobs]

    def _answer(self, stream: str, msg_id: str, job: Job, answer: dict[str, Any]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys.result(job.job_id), json.dumps(answer, ensure_ascii=False),
                 nx=True, ex=RESULT_TTL_S)  # fmt: skip
        pipe.rpush(self._keys.reply(job.job_id), ANSWERED)
        pipe.expire(self._keys.reply(job.job_id), RESULT_TTL_S)
        pipe.xack(stream, GROUP, msg_id)
        pipe.xdel(stream, msg_id)
        pipe.execute()

    def _started(self, jobs: list[Job]) -> None:
        """Tell each job's gateway that its decode starts now (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        for job in jobs:
            pipe.rpush(self._keys.reply(job.job_id), STARTED + b":" + self.name.encode())
            pipe.expire(self._keys.reply(job.job_id), RESULT_TTL_S)
        pipe.execute()

    def _ack(self, stream: str, msg_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.xack(stream, GROUP, msg_id)
        pipe.xdel(stream, msg_id)
        pipe.execute()

    # -- load reports -------------------------------------------------------------------

    def _beat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._cfg.heartbeat_s):
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                self._beat(force=True)  # an outage is the serving loop's to report

    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < self._cfg.heartbeat_s:
            return
        span = now - self._last_beat
        self._last_beat = now
        c = self.counters
        share = (c.busy_s - self._busy_at_beat) / span if 0 < span < 60 else 0.0
        self._busy_at_beat = c.busy_s
        report = {
            "role": "worker",
            "languages": list(self.languages),
            "calls": self.calls,  # audio calls this worker takes: the cluster's capacity
            "decoded": c.decoded,
            "partials": c.partials,
            "reclaimed": c.reclaimed,
            "busy_s": round(c.busy_s, 3),
            "busy_share": round(min(1.0, share), 3),  # since the last report
            "at": time.time(),
        }
        ttl = max(3, round(3 * self._cfg.heartbeat_s))
        self._redis.set(self._keys.node(self.name), json.dumps(report), ex=ttl)
