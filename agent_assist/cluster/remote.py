"""The gateway's side of remote recognition: a ``Recognizer`` whose decodes run on workers.

It sits behind the ordinary ``RecognitionEngine`` (which keeps its queue, its order of
finals before partials and its shedding), so a gateway with ``[cluster] redis_url`` runs
the same call code as a single process. Each engine thread puts one job on the stream
of its language and blocks until the job's answer lands.

Finals are never given up: while Redis is unreachable the thread retries; after a
reconnect, and every ``resubmit_s`` without an answer, the job goes on the stream again
under the same id (a restarted Redis may have lost it; answers are first-wins by id, so
a final is still emitted once). Partials are shed: no answer by their deadline gives an
empty text, which the call ignores.

What the gateway's degradation ladder needs is the wait of finals *at the workers*: a
worker pushes ``s:{name}`` on a job's reply list when it starts decoding it, so each
final's wait (from its submission to the engine until a worker starts it) is measured
on the gateway's own clock, and a final no worker has started yet is still waiting, as
is one whose worker died while decoding it (its load report expired).
``queue_report`` hands both to the engine (``RemoteRecognitionEngine``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from agent_assist.asr.vad import Samples
from agent_assist.asr.whisper import Recognized
from agent_assist.cluster.jobs import STARTED, Job, Keys, Kind, decode_recognized
from agent_assist.config import ClusterConfig
from agent_assist.errors import AgentAssistError

log = logging.getLogger(__name__)
PARTIAL_STREAM_LEN = 200
"""Partials kept per language stream; older unread ones are dropped (they are stale)."""


class RemoteRecognitionError(AgentAssistError):
    code = "asr.worker_failed"
    fault = "server"


@dataclass(frozen=True)
class QueueReport:
    """Finals (and language detections) as the workers' queue holds them, for the ladder."""

    waiting: int
    """Finals on the workers' streams that no worker has started yet."""
    oldest_ms: int
    """How long the oldest of them has waited (0 when none waits)."""
    started: tuple[int, ...]
    """The waits (ms) of finals a worker started since the last report."""
    decodes: tuple[int, ...]
    """The workers' decode times (ms) of finals answered since the last report."""


class RedisRecognizer:
    """``Recognizer`` over Redis Streams; thread-safe (one pooled connection per call)."""

    def __init__(self, cfg: ClusterConfig, partial_timeout_s: float = 2.0) -> None:
        self._cfg = cfg
        self._keys = Keys(cfg.prefix)
        self._partial_timeout_s = partial_timeout_s
        self._redis = redis.Redis.from_url(
            cfg.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        self._closed = False
        self.resubmitted = 0
        """Jobs put on a stream again (after a reconnect or ``resubmit_s`` of silence)."""
        self._lock = threading.Lock()
        self._waiting: dict[str, float] = {}
        """Finals no worker has started yet: job id -> when they began to wait."""
        self._held: dict[str, tuple[float, str]] = {}
        """Finals a worker is decoding: job id -> (when they began to wait, the worker)."""
        self._started: list[int] = []
        self._decodes: list[int] = []
        self._local = threading.local()

    # -- the wait at the workers ----------------------------------------------------------

    def waiting_since(self, at: float) -> None:
        """The next job this thread puts began waiting at ``at`` (``time.monotonic()``):
        the engine's submission, so its own queue counts in the wait."""
        self._local.since = at

    def queue_report(self) -> QueueReport:
        """The finals waiting for a worker now, and those started and answered since the
        last report (each is reported once)."""
        now = time.monotonic()
        with self._lock:
            oldest = min(self._waiting.values(), default=now)
            report = QueueReport(
                len(self._waiting),
                round((now - oldest) * 1000),
                tuple(self._started),
                tuple(self._decodes),
            )
            self._started.clear()
            self._decodes.clear()
        return report

    def _since(self) -> float:
        """When this thread's next jobs began waiting (read once per call)."""
        since: float | None = getattr(self._local, "since", None)
        self._local.since = None
        return since if since is not None else time.monotonic()

    def _begin_wait(self, job: Job, since: float) -> None:
        with self._lock:
            self._waiting[job.job_id] = since

    def _end_wait(self, job_id: str, decode_ms: int | None = None, worker: str = "") -> None:
        """``worker`` started the job now (``decode_ms`` None), or its answer arrived with
        no start seen: then the wait is the round trip less the worker's decode."""
        now = time.monotonic()
        with self._lock:
            since = self._waiting.pop(job_id, None)
            if since is not None:
                self._started.append(max(0, round((now - since) * 1000) - (decode_ms or 0)))
                if decode_ms is None:
                    self._held[job_id] = (since, worker)
            if decode_ms is not None:
                self._decodes.append(decode_ms)
                self._held.pop(job_id, None)

    def _check_holder(self, job_id: str) -> None:
        """The worker decoding this job is gone (its load report expired): the job waits
        again, from its submission, until another worker takes it over."""
        with self._lock:
            held = self._held.get(job_id)
        if held is None or not held[1] or self._redis.exists(self._keys.node(held[1])):
            return
        log.warning("job %s: worker %s is gone; the final waits again", job_id, held[1])
        with self._lock:
            if self._held.pop(job_id, None) is not None:
                self._waiting[job_id] = held[0]

    # -- Recognizer ---------------------------------------------------------------------

    def transcribe_batch(
        self,
        items: Sequence[tuple[Samples, int]],
        language: str,
        *,
        partial: bool = False,
        greedy: bool = False,
        fallback: bool = False,
    ) -> list[Recognized]:
        """``greedy`` / ``fallback``: the engine's degradation ladder, passed to the worker."""
        kind: Kind = "partial" if partial else "final"
        since = self._since()
        deadline = int((time.time() + self._partial_timeout_s) * 1000) if partial else 0
        jobs = [
            Job(uuid.uuid4().hex, kind, language, offset, samples, deadline_ms=deadline,
                greedy=greedy, fallback=fallback)
            for samples, offset in items
        ]  # fmt: skip
        for job in jobs:
            if not partial:
                self._begin_wait(job, since)
            self._put(job)
        out: list[Recognized] = []
        for job in jobs:
            answer = self._waited_answer(job)
            if answer is None:  # a shed partial
                out.append(Recognized("", language, ()))
            else:
                out.append(decode_recognized(answer["recognized"]))
        return out

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        job = Job(uuid.uuid4().hex, "detect", "", 0, samples, candidates)
        self._begin_wait(job, self._since())
        self._put(job)
        answer = self._waited_answer(job)
        assert answer is not None
        return str(answer["language"])

    def close(self) -> None:
        self._closed = True
        self._redis.close()

    # -- the round trip -----------------------------------------------------------------

    def _put(self, job: Job) -> None:
        """Queue the job; a final waits for Redis to come back, a partial gives up."""
        stream = self._keys.jobs(job.kind, job.language)
        maxlen = PARTIAL_STREAM_LEN if job.kind == "partial" else None
        while True:
            try:
                self._redis.xadd(stream, job.fields(), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if job.kind == "partial" or self._closed:
                    return
                log.warning("redis unreachable; retrying job %s", job.job_id)
                time.sleep(0.5)

    def _waited_answer(self, job: Job) -> dict[str, Any] | None:
        try:
            answer = self._answer(job)
        finally:
            with self._lock:  # closed or failed: nothing waits any more
                self._waiting.pop(job.job_id, None)
                self._held.pop(job.job_id, None)
        return answer

    def _answer(self, job: Job) -> dict[str, Any] | None:
        result_key, reply_key = self._keys.result(job.job_id), self._keys.reply(job.job_id)
        put_at = time.monotonic()
        lost_contact = False
        while not self._closed:
            if job.kind == "partial" and time.time() * 1000 > job.deadline_ms:
                return None
            try:
                if lost_contact:  # Redis came back: it may have lost the job
                    self._resubmit(job)
                    put_at, lost_contact = time.monotonic(), False
                raw = self._redis.get(result_key)
                if raw is None:
                    popped = self._redis.blpop([reply_key], timeout=1)
                    notice = popped[1] if popped is not None else b""
                    notice = notice.encode() if isinstance(notice, str) else notice
                    if notice.startswith(STARTED):
                        self._end_wait(job.job_id, worker=notice[2:].decode())
                    elif popped is None and job.kind != "partial":
                        self._check_holder(job.job_id)
                    raw = self._redis.get(result_key)
            except (redis.ConnectionError, redis.TimeoutError):
                if job.kind == "partial":
                    return None
                lost_contact = True
                time.sleep(0.3)
                continue
            if raw is not None:
                answer: dict[str, Any] = json.loads(raw)
                if "error" in answer:
                    raise RemoteRecognitionError(f"worker failed: {answer['error']}")
                if job.kind != "partial":
                    self._end_wait(job.job_id, int(answer.get("decode_ms", 0)))
                return answer
            if job.kind != "partial" and time.monotonic() - put_at > self._cfg.resubmit_s:
                self._resubmit(job)
                put_at = time.monotonic()
        raise RemoteRecognitionError("recognition closed", code="asr.closed")

    def _resubmit(self, job: Job) -> None:
        self.resubmitted += 1
        log.info("job %s unanswered; queued again", job.job_id)
        self._put(job)
