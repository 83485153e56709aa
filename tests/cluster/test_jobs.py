"""Decode jobs through a real Redis: partials shed, finals wait, answers once per job id."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import pytest
import redis
import soundfile as sf
import soxr

from agent_assist.asr.whisper import Recognized, WhisperRecognizer
from agent_assist.cluster.jobs import GROUP, Job, Keys
from agent_assist.cluster.private_servers import PrivateRedis
from agent_assist.cluster.remote import RedisRecognizer
from agent_assist.cluster.worker import RecognitionWorker
from agent_assist.config import ClusterConfig, Config
from tests.conftest import shared_audio

pytestmark = pytest.mark.model


@pytest.fixture
def plain_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.remove()


def jfk() -> np.ndarray:
    data, rate = sf.read(shared_audio("en/jfk.flac"), dtype="float32")
    return soxr.resample(data.mean(axis=1), rate, 16000).astype(np.float32)


def test_partials_shed_finals_wait_and_a_job_is_answered_once(
    config: Config, recognizer: WhisperRecognizer, plain_redis: PrivateRedis
) -> None:
    cluster = ClusterConfig(redis_url=plain_redis.url, prefix="t", claim_timeout_s=2.0)
    config = replace(config, cluster=cluster)
    keys = Keys("t")
    remote = RedisRecognizer(cluster, partial_timeout_s=0.5)
    audio = jfk()

    started = time.monotonic()  # no worker yet: a partial is shed at its deadline
    [shed] = remote.transcribe_batch([(audio, 0)], "en", partial=True)
    assert shed.text == "" and time.monotonic() - started < 3

    answers: list[Recognized] = []
    final = threading.Thread(
        target=lambda: answers.extend(remote.transcribe_batch([(audio, 1000)], "en"))
    )
    final.start()
    time.sleep(1.5)  # a final waits for a worker, however long
    assert final.is_alive() and not answers
    r = redis.Redis.from_url(plain_redis.url)
    [(_, fields)] = r.xrange(keys.jobs("final", "en"))
    job = Job.parse(fields)

    worker = RecognitionWorker(recognizer, config, "w")
    stop = threading.Event()
    serving = threading.Thread(target=worker.run, args=(stop,))
    serving.start()
    try:
        final.join(timeout=60)
        assert answers and "ask not what your country" in answers[0].text.lower()
        assert answers[0].words[0].start_ms >= 1000  # word times in call time
        assert worker.counters.decoded == 1

        # the same job queued again (a gateway after a Redis restart): acknowledged unread
        r.xadd(keys.jobs("final", "en"), job.fields())  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        c = worker.counters
        while (c.already_answered < 1 or c.stale_partials < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.counters.already_answered == 1 and worker.counters.decoded == 1
        assert worker.counters.stale_partials == 1  # the shed partial was never decoded
        assert r.xpending(keys.jobs("final", "en"), GROUP)["pending"] == 0
        assert r.xlen(keys.jobs("final", "en")) == 0  # answered jobs are deleted
    finally:
        stop.set()
        serving.join(timeout=10)
        remote.close()
        r.close()


def test_redis_restarted_without_persistence_loses_no_final(
    config: Config, recognizer: WhisperRecognizer, plain_redis: PrivateRedis
) -> None:
    """Redis forgets every job and group: workers recreate their groups, gateways queue
    their unanswered finals again."""
    cluster = ClusterConfig(redis_url=plain_redis.url, prefix="t", claim_timeout_s=2.0)
    config = replace(config, cluster=cluster)
    remote = RedisRecognizer(cluster, partial_timeout_s=0.5)
    audio = jfk()

    def serve() -> tuple[RecognitionWorker, threading.Event, threading.Thread]:
        worker, stop = RecognitionWorker(recognizer, config, "w"), threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        return worker, stop, thread

    worker, stop, thread = serve()
    try:
        plain_redis.restart()  # groups gone while the worker waits on them
        [first] = remote.transcribe_batch([(audio, 0)], "en")
        assert "ask not" in first.text.lower()
    finally:
        stop.set()
        thread.join(timeout=10)

    answers: list[Recognized] = []
    waiting = threading.Thread(
        target=lambda: answers.extend(remote.transcribe_batch([(audio, 0)], "en"))
    )
    waiting.start()
    time.sleep(1.0)
    plain_redis.restart()  # the queued job is lost with no worker to take it
    time.sleep(1.0)
    worker, stop, thread = serve()
    try:
        waiting.join(timeout=60)
        assert answers and "ask not" in answers[0].text.lower()
        assert remote.resubmitted >= 1 and worker.counters.decoded == 1
    finally:
        stop.set()
        thread.join(timeout=10)
        remote.close()


class HeldRecognizer:
    """The real recogniser behind a gate: a decode starts only once the test opens it, so
    the test can look at what a worker holds while it decodes."""

    def __init__(self, inner: WhisperRecognizer) -> None:
        self._inner = inner
        self.entered = threading.Event()
        self.go = threading.Event()

    def transcribe_batch(
        self, items: Sequence[tuple[np.ndarray, int]], language: str, **options: bool
    ) -> list[Recognized]:
        self.entered.set()
        assert self.go.wait(30)
        return self._inner.transcribe_batch(items, language, **options)

    def detect_language(self, samples: np.ndarray, candidates: tuple[str, ...]) -> str:
        return self._inner.detect_language(samples, candidates)


def test_a_worker_claims_only_what_it_decodes_next(
    config: Config, recognizer: WhisperRecognizer, plain_redis: PrivateRedis
) -> None:
    """With a final of each language queued, a busy worker holds one; the other waits
    on its stream for the next free worker, which answers it meanwhile."""
    cluster = ClusterConfig(redis_url=plain_redis.url, prefix="b", worker_batch=4)
    config = replace(config, cluster=cluster)
    keys = Keys("b")
    remote = RedisRecognizer(cluster)
    audio = jfk()
    held = HeldRecognizer(recognizer)
    busy = RecognitionWorker(held, config, "busy")  # type: ignore[arg-type]
    free = RecognitionWorker(recognizer, config, "free")
    stops = [threading.Event(), threading.Event()]
    answers: dict[str, list[Recognized]] = {}

    def ask(lang: str) -> None:
        answers[lang] = remote.transcribe_batch([(audio, 0)], lang)

    asks = [threading.Thread(target=ask, args=(lang,)) for lang in ("en", "ja")]
    r = redis.Redis.from_url(plain_redis.url)
    serving = [threading.Thread(target=busy.run, args=(stops[0],))]
    try:
        for ask in asks:
            ask.start()
        deadline = time.monotonic() + 10
        while sum(r.xlen(keys.jobs("final", lang)) for lang in ("en", "ja")) < 2:
            assert time.monotonic() < deadline, "the finals were not queued"
            time.sleep(0.05)
        serving[0].start()
        assert held.entered.wait(30)
        pending = {
            lang: r.xpending(keys.jobs("final", lang), GROUP)["pending"] for lang in ("en", "ja")
        }
        assert sorted(pending.values()) == [0, 1], pending  # one held, one left on its stream
        serving.append(threading.Thread(target=free.run, args=(stops[1],)))
        serving[1].start()
        deadline = time.monotonic() + 60
        while len(answers) < 1:
            assert time.monotonic() < deadline, "the free worker did not answer"
            time.sleep(0.05)
        assert free.counters.decoded == 1 and busy.counters.decoded == 0
        held.go.set()
        for ask in asks:
            ask.join(timeout=60)
        assert set(answers) == {"en", "ja"} and "ask not" in answers["en"][0].text.lower()
        assert busy.counters.decoded == 1 and free.counters.decoded == 1
    finally:
        held.go.set()
        for ask in asks:  # answered before the workers stop
            ask.join(timeout=60)
        for stop in stops:
            stop.set()
        for thread in serving:
            thread.join(timeout=10)
        remote.close()
        r.close()
