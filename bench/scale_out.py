"""Scale-out: finals decoded in-process vs on ``agent-assist worker``s over Redis.

Every utterance of the two bundled sample calls (both channels, cut by the VAD as in a
live call) is submitted at once, ``--copies`` times over, to the engine a gateway
uses: the in-process ``RecognitionEngine`` as ``config.toml`` sets it up, or the same
engine in front of ``RedisRecognizer`` with worker processes behind a private Redis
(``--workers``: ``NxT`` is N workers of T CTranslate2 threads, ``N`` shares the cores
out, ``:pin`` puts the workers on the last core and the rest on the others). Reported:
audio seconds decoded per wall second (how many talking channels the set-up keeps up
with) and the per-final wait, p50 / p95.

``--worker-batch 1,4``: what ``[cluster] worker_batch`` costs a final, alone and with
every final queued at once on one and two workers.

Then the same dense calls at real pace as ``bench/dense.py`` (one client process per
call, turn end -> final as a call centre sees it) into one gateway with each set-up.
Each set-up climbs ``--dense`` call counts until latency breaks; the calls it serves
are the most whose customer turn end -> final p95 stayed within 1.5 s with no turn lost.

python -m bench.scale_out [--copies 2] [--workers 1x1,2x1,1x1:pin] [--worker-batch 1,4]
                          [--dense 2,4,6,8,10,12] [--no-throughput] [--out bench/scale_out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.segmenter import UtteranceAudio
from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.cluster.gateway import RemoteRecognitionEngine
from agent_assist.cluster.private_servers import PrivateRedis
from agent_assist.config import Config, load_config
from bench import dense
from bench.common import REPO, segment, start_workers

SAMPLES = REPO / "agent_assist" / "data" / "samples"


def utterances(config: Config) -> list[tuple[str, UtteranceAudio]]:
    vad = SileroVad()
    out: list[tuple[str, UtteranceAudio]] = []
    for lang in ("en", "ja"):
        data, rate = sf.read(SAMPLES / f"{lang}_call.flac", dtype="float32", always_2d=True)
        for ch in range(data.shape[1]):
            x = soxr.resample(data[:, ch], rate, 16000).astype(np.float32)
            out += [(lang, u) for u in segment(vad, config, x)]
    return out


async def run(engine: RecognitionEngine, items: list[tuple[str, UtteranceAudio]]) -> dict[str, Any]:
    waits: list[float] = []

    async def one(lang: str, u: UtteranceAudio) -> None:
        t = time.monotonic()
        await engine.submit(u, lang)
        waits.append(time.monotonic() - t)

    started = time.monotonic()
    await asyncio.gather(*(one(lang, u) for lang, u in items))
    wall = time.monotonic() - started
    audio_s = sum(u.samples.size for _, u in items) / 16000
    return {
        "finals": len(items),
        "audio_s": round(audio_s, 1),
        "wall_s": round(wall, 1),
        "rate": round(audio_s / wall, 2),
        "p50": round(float(np.percentile(waits, 50)), 2),
        "p95": round(float(np.percentile(waits, 95)), 2),
    }


@dataclass(frozen=True)
class WorkerSetup:
    """``n`` workers of ``threads`` CTranslate2 threads each; ``pinned``: the workers on
    the last core, everything else (gateway, Redis, clients) on the others."""

    n: int
    threads: int
    pinned: bool = False

    @classmethod
    def parse(cls, text: str) -> WorkerSetup:
        """``N`` (the cores shared out), ``NxT``, ``NxT:pin``."""
        spec, _, pin = text.partition(":")
        n, _, threads = spec.partition("x")
        count = int(n)
        return cls(count, int(threads) if threads else max(1, CORES // count), pin == "pin")

    @property
    def label(self) -> str:
        where = f", workers on core {CORES - 1}, the rest on the others" if self.pinned else ""
        return f"gateway + {self.n} worker(s) x {self.threads} thread(s), over Redis{where}"


CORES = os.cpu_count() or 1


@contextlib.contextmanager
def pinned_here(on: bool) -> Iterator[None]:
    """While on: this process, and every process it starts, on all cores but the last."""
    before = os.sched_getaffinity(0)
    if on:
        os.sched_setaffinity(0, set(range(max(1, CORES - 1))))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin_to_last_core(pids: list[int]) -> None:
    """Every thread of these processes (CTranslate2's pool exists already) on the last core."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), {CORES - 1})


def throughput(copies: int, setups: list[WorkerSetup]) -> list[str]:
    """Every utterance submitted at once: audio seconds decoded per wall second."""
    base = load_config(REPO / "config.toml")
    items = utterances(base) * copies
    rows: list[tuple[str, dict[str, Any]]] = []

    recognizer = WhisperRecognizer(base.asr, base.resolve(base.models.dir), base.vad)
    engine = RecognitionEngine(recognizer, base.asr, base.partials)
    label = f"in-process, {base.asr.workers} decoder(s) x {base.asr.cpu_threads} thread(s)"
    rows.append((label, asyncio.run(run(engine, items))))
    engine.close()
    del recognizer

    for setup in setups:
        with pinned_here(setup.pinned), Remote(setup.n, setup.threads, pin=setup.pinned) as remote:
            rows.append((setup.label, asyncio.run(run(remote.engine, items))))
    return [
        "## Throughput: every final at once",
        "",
        f"{len(items)} finals ({rows[0][1]['audio_s']} s of speech) submitted at once.",
        "",
        "| set-up | finals | wall s | audio s per wall s | wait p50 / p95 s |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {r['finals']} | {r['wall_s']} | {r['rate']} | {r['p50']} / {r['p95']} |"
            for label, r in rows
        ),
        "",
    ]


class Remote:
    """A private Redis, ``n`` worker processes of ``threads`` CTranslate2 threads each
    (``worker_batch`` jobs read at once), and the gateway's engine in front of them."""

    def __init__(
        self, n: int, threads: int, worker_batch: int | None = None, pin: bool = False
    ) -> None:
        self._folder = tempfile.TemporaryDirectory()
        folder = Path(self._folder.name)
        text = (REPO / "config.toml").read_text(encoding="utf-8")
        text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"', 1)
        # one decoder of `threads` CTranslate2 threads per worker process
        text = re.sub(r"(?m)^cpu_threads = \d+", f"cpu_threads = {threads}", text, count=1)
        text = re.sub(r"(?m)^workers = \d+", "workers = 1", text, count=1)
        if worker_batch is not None:
            text = re.sub(r"(?m)^worker_batch = \d+", f"worker_batch = {worker_batch}", text)
        config_path = folder / "config.toml"
        config_path.write_text(text, encoding="utf-8")
        self._redis = PrivateRedis(folder / "redis").start()
        self._workers = start_workers(config_path, self._redis.url, n, threads, "bench")
        if pin:
            pin_to_last_core([proc.pid for proc in self._workers])
        cfg = load_config(config_path)
        cfg = replace(cfg, cluster=replace(cfg.cluster, redis_url=self._redis.url))
        self.engine = RemoteRecognitionEngine(cfg)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self.engine.close()
        for proc in self._workers:
            proc.terminate()
        for proc in self._workers:
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        self._redis.stop()
        self._folder.cleanup()


async def one_by_one(
    engine: RecognitionEngine, items: list[tuple[str, UtteranceAudio]]
) -> dict[str, Any]:
    """Each final submitted alone once the previous one is answered: a quiet worker."""
    times: list[float] = []
    for lang, u in items:
        t = time.monotonic()
        await engine.submit(u, lang)
        times.append(time.monotonic() - t)
    return {
        "p50": round(float(np.percentile(times, 50)), 2),
        "p95": round(float(np.percentile(times, 95)), 2),
    }


def worker_batch_table(batches: list[int]) -> list[str]:
    """What ``worker_batch`` costs a final: alone, and with every final queued at once
    on one and two workers of one thread each."""
    items = utterances(load_config(REPO / "config.toml"))
    lines = [
        "## The workers' batch: `[cluster] worker_batch`",
        "",
        f"The {len(items)} finals of the throughput table, through the gateway's engine to "
        "workers of one CTranslate2 thread each. *Alone*: each final submitted once the "
        "previous one is answered (a quiet worker). *At once*: every final submitted "
        "together; submit → answer per final, and the wall time of the whole burst.",
        "",
        "| worker_batch | alone, 1 worker: p50 / p95 s | at once, 1 worker: p50 / p95 s, "
        "wall s | at once, 2 workers: p50 / p95 s, wall s |",
        "|---|---|---|---|",
    ]
    for batch in batches:
        print(f"scale-out: worker_batch {batch}", file=sys.stderr)
        with Remote(1, 1, batch) as remote:
            alone = asyncio.run(one_by_one(remote.engine, items))
            burst = asyncio.run(run(remote.engine, items))
        with Remote(2, 1, batch) as remote:
            burst2 = asyncio.run(run(remote.engine, items))
        lines.append(
            f"| {batch} | {alone['p50']} / {alone['p95']} | {burst['p50']} / {burst['p95']}, "
            f"{burst['wall_s']} | {burst2['p50']} / {burst2['p95']}, {burst2['wall_s']} |"
        )
    return [*lines, ""]


def dense_table(counts: list[int], seconds: float, setups: list[WorkerSetup]) -> list[str]:
    """Dense calls at real pace per set-up, each climbing ``counts`` until latency breaks
    (p95 past ``dense.BROKEN_P95_S``)."""
    asr = load_config(REPO / "config.toml").asr
    label = f"in-process, {asr.workers} decoder(s) x {asr.cpu_threads} thread(s)"
    print(f"scale-out: dense calls, {label}", file=sys.stderr)
    rows = [(label, dense.ladder(counts, seconds, {"model": "base"}))]
    for setup in setups:
        print(f"scale-out: dense calls, {setup.label}", file=sys.stderr)
        ladder: list[dict[str, Any]] = []
        for n in counts:
            ladder.append(dense_cluster_run(n, seconds, setup))
            if not ladder[-1]["final_95_s"] <= dense.BROKEN_P95_S:
                break
        rows.append((setup.label, ladder))
    return dense_lines(rows, seconds)


def dense_cluster_run(n: int, seconds: float, setup: WorkerSetup) -> dict[str, Any]:
    """``bench.dense``'s run of ``n`` calls into one gateway, with the workers' count,
    threads and cores as ``setup`` says."""
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp, pinned_here(setup.pinned):
        folder = Path(tmp)
        calls = dense.make_calls(n, seconds, folder)
        port, token = dense._free_port(), secrets.token_urlsafe(16)
        redis_server = PrivateRedis(folder / "redis").start()
        args = {"model": "base", "redis_url": redis_server.url}
        cfg = dense.server_config(folder, port, token, args)
        worker_args = {**args, "asr_workers": 1, "cpu_threads": setup.threads}
        worker_cfg = dense.server_config(folder, port, token, worker_args, "worker.toml")
        # the bench finds the capacity: the cluster's admission must not refuse its calls
        text = worker_cfg.read_text(encoding="utf-8")
        worker_cfg.write_text(re.sub(r"(?m)^worker_calls = \d+", "worker_calls = 1000", text))
        workers: list[subprocess.Popen[str]] = []
        server: subprocess.Popen[bytes] | None = None
        try:
            workers = start_workers(worker_cfg, redis_server.url, setup.n, setup.threads, "dense")
            if setup.pinned:
                pin_to_last_core([proc.pid for proc in workers])
            env = {**os.environ, "AGENT_ASSIST_TOKEN": token}
            server = subprocess.Popen(
                [sys.executable, "-m", "agent_assist", "--config", str(cfg), "serve"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            deadline = time.monotonic() + 120
            while dense._health(port) is None:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read().decode() if server.stderr else ""
                    raise SystemExit(f"bench: the gateway did not start:\n{err[-2000:]}")
                time.sleep(0.3)
            started = time.monotonic()
            row = dense._drive(server.pid, port, calls, env, folder, [w.pid for w in workers])
            print(
                f"  dense {n} calls: {time.monotonic() - started:.0f} s, turn end -> final p50 "
                f"{row['final_50_s']:.2f} / p95 {row['final_95_s']:.2f} s, lost "
                f"{row['missed_turns']}, level {row['max_level']}",
                file=sys.stderr,
            )
            return row
        finally:
            if server is not None:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(30)
                if proc.stdout is not None:
                    proc.stdout.close()
            redis_server.stop()


def dense_lines(rows: list[tuple[str, list[dict[str, Any]]]], seconds: float) -> list[str]:
    """The dense table: one line per set-up and call count, then the calls each serves."""
    L = [
        "## Dense calls at real pace: calls served per set-up",
        "",
        f"The dense calls of `bench/dense.py` ({seconds:.0f} s each, speech on one side or "
        "the other at least 80 % of the time, Japanese and English alternating), each "
        "pushed at real pace by its own client process into one gateway. *Turn end → "
        "final*: from the end of a customer turn to its client receiving the last final of "
        "it. *Cores*: CPU of the gateway and its workers together; *max lag*, *level*, "
        "*final queue / decode*: the gateway engine's (over Redis the queue is a final's "
        "wait until a worker starts it, the decode the worker's); *load*: the "
        "machine's 1-minute load average per core at the end of the run (other work "
        "included).",
        "",
        "| set-up | calls | turn end → final p50 / p95 / max s | turns (lost) | cores | "
        "max lag s | level | final queue / decode p95 s | partials / early finals shed | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    f = dense._f
    for label, ladder in rows:
        for r in ladder:
            L.append(
                f"| {label} | {r['calls']} | {f(r['final_50_s'])} / {f(r['final_95_s'])} / "
                f"{f(r['final_100_s'])} | {r['customer_turns']} ({r['missed_turns']}) | "
                f"{f(r['server_cores'], 1)} | {f(r['max_lag_s'])} | {r['max_level']} | "
                f"{f(r.get('final_wait_p95_s', float('nan')))} / "
                f"{f(r.get('final_decode_p95_s', float('nan')))} | "
                f"{r.get('partials_shed', 0)} / {r.get('early_finals_shed', 0)} | "
                f"{f(r['load_avg'])} |"
            )
    L += [
        "",
        f"| set-up | dense calls served at turn end → final p95 ≤ {dense.TARGET_P95_S} s |",
        "|---|---|",
        *(f"| {label} | {dense.capacity(ladder)} |" for label, ladder in rows),
        "",
    ]
    return L


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--copies", type=int, default=2)
    p.add_argument(
        "--workers",
        default="1x1,2x1,1x1:pin",
        help="worker set-ups: N (cores shared out), NxT (N workers of T threads), NxT:pin",
    )
    p.add_argument("--dense", default="2,4,6,8,10,12", help="dense call counts ('' for none)")
    p.add_argument("--dense-seconds", type=float, default=45.0)
    p.add_argument("--no-throughput", action="store_true", help="only the dense table")
    p.add_argument("--worker-batch", default="1,4", help="worker_batch values to compare ('' none)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "scale_out.md")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    setups = [WorkerSetup.parse(w) for w in args.workers.split(",")]
    load_before = os.getloadavg()[0] / cores
    started = time.monotonic()
    lines: list[str] = []
    if not args.no_throughput:
        lines += throughput(args.copies, setups)
    if args.worker_batch:
        lines += worker_batch_table([int(b) for b in args.worker_batch.split(",")])
    if args.dense:
        counts = [int(n) for n in args.dense.split(",")]
        lines += dense_table(counts, args.dense_seconds, setups)
    load_after = os.getloadavg()[0] / cores
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    head = [
        "# Scale-out",
        "",
        f"Written by `{' '.join(['python -m bench.scale_out', *sys.argv[1:]])}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{(time.monotonic() - started) / 60:.1f} min; {cpu}, {cores} cores. 1-minute load "
        f"average per core {load_before:.2f} before, {load_after:.2f} after.",
        "",
        f"**One machine.** Here the gateway, every worker, Redis and the benchmark's "
        f"clients share the same {cores} cores (with whatever else runs: see the load). "
        "A set-up is named by its workers and their CTranslate2 threads; in a *pinned* "
        f"set-up the workers run on core {cores - 1} and everything else on the other "
        "cores (`sched_setaffinity`, as `taskset` does), so the workers have a core of "
        "their own as on a machine of their own. The in-process rows are `config.toml`'s "
        "engine as it is.",
        "",
    ]
    args.out.write_text("\n".join([*head, *lines]), encoding="utf-8")
    print("\n".join([*head, *lines]))


if __name__ == "__main__":
    main()
