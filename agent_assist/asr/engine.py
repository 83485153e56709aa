"""The recognition engine shared by every call: a scheduler in front of the models.

Every call submits finished utterances (finals) and, while someone speaks, interim
requests on the open utterance (partials). Worker threads take, in this order:

1. finals, oldest first across all calls, batched with other queued finals of the same
   language (up to ``asr.batch_size``): one encoder and decoder pass serves several
   channels;
2. partials, only when no final waits: at most one per channel (a newer request replaces
   an older one), refused outright while the oldest final has waited longer than
   ``partials.max_lag_ms``. Partials are what the engine sheds under load; finals are
   never dropped. With two or more workers, partials run on all but one of them at a
   time, so a final that arrives finds a worker free instead of queueing behind a
   partial's decode (with one worker it may wait for the partial in flight).

The wait of every final is recorded; ``stats()`` reports the queue, the lag of the
oldest item, and the wait percentiles, and flags when lag exceeds ``asr.max_lag_s``.

When finals wait anyway, the degradation ladder (``agent_assist.asr.degrade``) gives up
quality in configured steps (no partials, no early finals, greedy finals, a fallback
model) and takes it back when the queue is quiet again; its level is in ``stats()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent_assist.asr.degrade import DegradationLadder, LevelChange
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.vad import Samples
from agent_assist.asr.whisper import Recognized, Recognizer
from agent_assist.config import AsrConfig, DegradeConfig, PartialsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineStats:
    queued: int
    """Finals waiting to be decoded."""
    decoded: int
    busy_s: float
    """Worker time spent decoding (all workers together)."""
    partial_busy_s: float
    """The part of ``busy_s`` spent on partials (what shedding them gives back)."""
    wasted_busy_s: float
    """The part of ``busy_s`` whose result nobody took: early finals voided because
    speech went on while they decoded, or calls that ended."""
    last_wait_ms: int
    oldest_wait_ms: int
    """How long the oldest queued final has waited: the engine's lag now."""
    wait_p50_ms: int
    wait_p95_ms: int
    max_wait_ms: int
    lagging: bool
    partials_done: int
    partials_dropped: int
    batches: int
    level: int = 0
    """Degradation level now: 0 is full quality, n means the first n steps are in force."""
    level_name: str = "full"
    """``full``, or the deepest step in force (``partials``, ``early_finals``, ...)."""
    steps_down: int = 0
    steps_up: int = 0
    early_finals_shed: int = 0
    """Pauses at which a speculative early final was not started because of load."""
    greedy_finals: int = 0
    """Finals decoded with beam size 1 by the ladder."""
    fallback_finals: int = 0
    """Finals decoded on a language's fallback model by the ladder."""
    busy_share: float = 0.0
    """Share of the last ``LOAD_WINDOW_S`` the workers spent decoding (0..1 per worker)."""
    final_decode_p50_ms: int = 0
    """How long a final's decode took (its batch's), recent finals: with the waits above,
    where a final's time goes between its endpoint and its text."""
    final_decode_p95_ms: int = 0


LOAD_WINDOW_S = 10.0


@dataclass
class _Job:
    language: str
    samples: Samples
    offset_ms: int
    partial: bool
    submitted: float
    future: Future[Any]
    key: Hashable = None
    call: Callable[[], Any] | None = None


@dataclass
class _Counters:
    decoded: int = 0
    busy_s: float = 0.0
    partial_busy_s: float = 0.0
    wasted_busy_s: float = 0.0
    last_wait_ms: int = 0
    max_wait_ms: int = 0
    partials_done: int = 0
    partials_dropped: int = 0
    batches: int = 0
    early_finals_shed: int = 0
    greedy_finals: int = 0
    fallback_finals: int = 0
    busy: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=4000))
    """(end time, seconds) of recent decodes, for the busy share."""
    waits: deque[int] = field(default_factory=lambda: deque(maxlen=2000))
    decodes: deque[int] = field(default_factory=lambda: deque(maxlen=2000))
    """Milliseconds each recent final's decode took."""


class RecognitionEngine:
    def __init__(
        self,
        recognizer: Recognizer,
        cfg: AsrConfig | None = None,
        partials: PartialsConfig | None = None,
        degrade: DegradeConfig | None = None,
    ) -> None:
        self._recognizer = recognizer
        self._cfg = cfg or AsrConfig()
        self._partials_cfg = partials or PartialsConfig()
        self._ladder = DegradationLadder(degrade or DegradeConfig(), time.monotonic())
        self._cond = threading.Condition()
        self._finals: deque[_Job] = deque()
        self._partials: dict[Hashable, _Job] = {}
        self._partial_lanes = max(1, self._cfg.workers - 1)
        """Workers that may decode partials at once: one is always left for finals."""
        self._partials_running = 0
        self._n = _Counters()
        self._closed = False
        self._warned = 0.0
        self._threads = [
            threading.Thread(target=self._work, name=f"asr-{i}", daemon=True)
            for i in range(self._cfg.workers)
        ]
        for t in self._threads:
            t.start()

    # -- submitting ---------------------------------------------------------------------

    def submit(self, utterance: UtteranceAudio, language: str) -> asyncio.Future[Recognized]:
        """Queue a final; await the returned future for its text (never dropped)."""
        fut: Future[Recognized] = Future()
        job = _Job(language, utterance.samples, utterance.start_ms, False, time.monotonic(), fut)
        with self._cond:
            self._finals.append(job)
            self._cond.notify()
        return asyncio.wrap_future(fut)

    def allows_early_final(self) -> bool:
        """Whether a speculative final may start now: not while finals wait, nor while the
        ladder has shed early finals (a guess that speech goes on is wasted decoding)."""
        with self._cond:
            now = time.monotonic()
            lag = self._watch(now)
            if self._ladder.shed("early_finals") or lag > self._partials_cfg.max_lag_ms:
                self._n.early_finals_shed += 1
                return False
            return True

    async def transcribe(self, utterance: UtteranceAudio, language: str) -> Recognized:
        return await self.submit(utterance, language)

    async def partial(
        self, key: Hashable, samples: Samples, language: str, offset_ms: int
    ) -> Recognized | None:
        """Interim text of an open utterance, or None when shed (busy, or superseded)."""
        fut: Future[Recognized | None] = Future()
        now = time.monotonic()
        with self._cond:
            lag = self._watch(now)
            if self._closed or lag > self._partials_cfg.max_lag_ms or self._ladder.shed("partials"):
                self._n.partials_dropped += 1
                return None
            old = self._partials.pop(key, None)
            if old is not None:
                self._n.partials_dropped += 1
                _settle(old.future, None)
            self._partials[key] = _Job(language, samples, offset_ms, True, now, fut, key)
            self._cond.notify()
        return await asyncio.wrap_future(fut)

    async def detect_language(self, utterance: UtteranceAudio, candidates: tuple[str, ...]) -> str:
        """Runs in the finals queue, so it keeps its place in line."""
        fut: Future[str] = Future()
        job = _Job(
            "",
            utterance.samples,
            utterance.start_ms,
            False,
            time.monotonic(),
            fut,
            call=lambda: self._recognizer.detect_language(utterance.samples, candidates),
        )
        with self._cond:
            self._finals.append(job)
            self._cond.notify()
        return await asyncio.wrap_future(fut)

    # -- the workers --------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._finals and not self._partial_ready():
                    self._cond.wait()
                if self._closed:
                    return
                jobs = self._take()
                if jobs and jobs[0].partial:
                    self._partials_running += 1
                final = bool(jobs) and not jobs[0].partial and jobs[0].call is None
                greedy = final and self._ladder.shed("greedy_finals")
                fallback = final and self._ladder.shed("fallback_model")
            if not jobs:
                continue
            self._run(jobs, greedy=greedy, fallback=fallback)

    def _take(self) -> list[_Job]:
        """Under the lock: the next batch of finals, else the oldest partial."""
        now = time.monotonic()
        live = [j for j in self._finals if not j.future.cancelled()]
        if len(live) != len(self._finals):  # withdrawn early finals: never decode them
            self._finals = deque(live)
        if self._finals:
            first = self._finals.popleft()
            jobs = [first]
            if first.call is None:
                rest: deque[_Job] = deque()
                while self._finals and len(jobs) < self._cfg.batch_size:
                    job = self._finals.popleft()
                    if job.call is None and job.language == first.language:
                        jobs.append(job)
                    else:
                        rest.append(job)
                self._finals.extendleft(reversed(rest))
            for job in jobs:
                wait = round((now - job.submitted) * 1000)
                self._n.waits.append(wait)
                self._n.last_wait_ms = wait
                self._n.max_wait_ms = max(self._n.max_wait_ms, wait)
            self._observe(round((now - first.submitted) * 1000), now)
            if wait > self._cfg.max_lag_s * 1000 and now - self._warned > 10:
                self._warned = now
                log.warning(
                    "recognition is %.1f s behind (%d utterances queued): too many calls "
                    "for this machine",
                    wait / 1000,
                    len(self._finals),
                )
            return jobs
        self._observe(None, now)
        if not self._partial_ready():
            return []
        key = min(self._partials, key=lambda k: self._partials[k].submitted)
        return [self._partials.pop(key)]

    def _partial_ready(self) -> bool:
        """Under the lock: a partial waits and a partial lane is free."""
        return bool(self._partials) and self._partials_running < self._partial_lanes

    def _run(self, jobs: list[_Job], *, greedy: bool = False, fallback: bool = False) -> None:
        started = time.monotonic()
        first = jobs[0]
        results: list[Any] = []
        error: Exception | None = None
        # only a degraded decode names the ladder's options: any Recognizer serves full quality
        options = {k: True for k, on in (("greedy", greedy), ("fallback", fallback)) if on}
        try:
            if first.call is not None:
                results = [first.call()]
            else:
                results = list(
                    self._recognizer.transcribe_batch(
                        [(j.samples, j.offset_ms) for j in jobs],
                        first.language,
                        partial=first.partial,
                        **options,
                    )
                )
        except Exception as exc:  # the caller decides; the worker keeps serving
            log.exception("recognition failed for %d utterance(s)", len(jobs))
            error = exc
        with self._cond:  # count before anyone hears the result: stats never lag behind
            ended = time.monotonic()
            self._n.busy_s += ended - started
            if first.partial:
                self._n.partial_busy_s += ended - started
            voided = sum(job.future.cancelled() for job in jobs)
            self._n.wasted_busy_s += (ended - started) * voided / len(jobs)
            self._n.busy.append((ended, ended - started))
            self._n.greedy_finals += len(jobs) if greedy else 0
            self._n.fallback_finals += len(jobs) if fallback else 0
            if first.partial:
                self._n.partials_done += 1
                self._partials_running -= 1
                self._cond.notify_all()  # a worker held back by the lane may take the next
            else:
                self._n.decoded += len(jobs)
                self._n.batches += 1
                self._n.decodes.extend([round((ended - started) * 1000)] * len(jobs))
        if error is not None:
            for job in jobs:
                with contextlib.suppress(InvalidStateError):  # a cancel may race us
                    if not job.future.done():
                        job.future.set_exception(error)
            return
        for job, result in zip(jobs, results, strict=True):
            _settle(job.future, result)

    # -- reporting ----------------------------------------------------------------------

    def _watch(self, now: float) -> int:
        """Under the lock: the oldest queued final's wait, shown to the ladder."""
        lag = self._oldest_wait_ms(now)
        self._observe(lag if self._finals else None, now)
        return lag

    def _observe(self, wait_ms: int | None, now: float) -> None:
        """Under the lock: show the ladder a wait (None: just let it settle); log a move."""
        before = self._ladder.level
        if wait_ms is None:
            self._ladder.settle(now)
        else:
            self._ladder.observe(wait_ms, now)
        if self._ladder.level != before:
            change = self._ladder.history[-1]
            log.warning(
                "recognition degradation level %d -> %d (%s; a final waited %d ms)",
                before,
                change.level,
                self._ladder.level_name,
                change.wait_ms,
            )

    def _oldest_wait_ms(self, now: float) -> int:
        oldest = min((j.submitted for j in self._finals), default=now)
        return round((now - oldest) * 1000)

    def lag_ms(self) -> int:
        """How long the oldest queued final has waited (0 when none waits)."""
        with self._cond:
            return self._oldest_wait_ms(time.monotonic())

    def level_changes(self) -> list[LevelChange]:
        """The ladder's recent moves, oldest first (for logs and the health endpoint)."""
        with self._cond:
            return list(self._ladder.history)

    def _busy_share(self, now: float) -> float:
        since = now - LOAD_WINDOW_S
        busy = sum(s for end, s in self._n.busy if end >= since)
        return min(1.0, busy / LOAD_WINDOW_S / len(self._threads))

    def stats(self) -> EngineStats:
        with self._cond:
            n = self._n
            now = time.monotonic()
            oldest = self._watch(now)
            ladder = self._ladder
            waits = np.asarray(n.waits or [0])
            decodes = np.asarray(n.decodes or [0])
            return EngineStats(
                queued=len(self._finals),
                decoded=n.decoded,
                busy_s=round(n.busy_s, 3),
                partial_busy_s=round(n.partial_busy_s, 3),
                wasted_busy_s=round(n.wasted_busy_s, 3),
                last_wait_ms=n.last_wait_ms,
                oldest_wait_ms=oldest,
                wait_p50_ms=int(np.percentile(waits, 50)),
                wait_p95_ms=int(np.percentile(waits, 95)),
                max_wait_ms=n.max_wait_ms,
                lagging=oldest > self._cfg.max_lag_s * 1000,
                partials_done=n.partials_done,
                partials_dropped=n.partials_dropped,
                batches=n.batches,
                level=ladder.level,
                level_name=ladder.level_name,
                steps_down=ladder.steps_down,
                steps_up=ladder.steps_up,
                early_finals_shed=n.early_finals_shed,
                greedy_finals=n.greedy_finals,
                fallback_finals=n.fallback_finals,
                busy_share=round(self._busy_share(now), 3),
                final_decode_p50_ms=int(np.percentile(decodes, 50)),
                final_decode_p95_ms=int(np.percentile(decodes, 95)),
            )

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending = [*self._finals, *self._partials.values()]
            self._finals.clear()
            self._partials.clear()
            self._cond.notify_all()
        for job in pending:
            if not job.future.done():
                job.future.cancel()
        for thread in self._threads:  # a decode in flight finishes; then the worker exits
            if thread is not threading.current_thread():
                thread.join(timeout=30)


def _settle(future: Future[Any], value: Any) -> None:
    """Set a result unless the waiter gave up (a cancelled call or a closed engine)."""
    with contextlib.suppress(InvalidStateError):
        if not future.done():
            future.set_result(value)
