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
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis

from agent_assist.asr.vad import Samples
from agent_assist.asr.whisper import Recognized
from agent_assist.cluster.jobs import Job, Keys, Kind, decode_recognized
from agent_assist.config import ClusterConfig
from agent_assist.errors import AgentAssistError

log = logging.getLogger(__name__)
PARTIAL_STREAM_LEN = 200
"""Partials kept per language stream; older unread ones are dropped (they are stale)."""


class RemoteRecognitionError(AgentAssistError):
    code = "asr.worker_failed"
    fault = "server"


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
        deadline = int((time.time() + self._partial_timeout_s) * 1000) if partial else 0
        jobs = [
            Job(uuid.uuid4().hex, kind, language, offset, samples, deadline_ms=deadline,
                greedy=greedy, fallback=fallback)
            for samples, offset in items
        ]  # fmt: skip
        for job in jobs:
            self._put(job)
        out: list[Recognized] = []
        for job in jobs:
            answer = self._answer(job)
            if answer is None:  # a shed partial
                out.append(Recognized("", language, ()))
            else:
                out.append(decode_recognized(answer["recognized"]))
        return out

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        job = Job(uuid.uuid4().hex, "detect", "", 0, samples, candidates)
        self._put(job)
        answer = self._answer(job)
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
                    self._redis.blpop([reply_key], timeout=1)
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
                return answer
            if job.kind != "partial" and time.monotonic() - put_at > self._cfg.resubmit_s:
                self._resubmit(job)
                put_at = time.monotonic()
        raise RemoteRecognitionError("recognition closed", code="asr.closed")

    def _resubmit(self, job: Job) -> None:
        self.resubmitted += 1
        log.info("job %s unanswered; queued again", job.job_id)
        self._put(job)
