"""Scale-out: finals decoded per second in-process vs on 1 and 2 ``agent-assist worker``s.

Every utterance of the two bundled sample calls (both channels, cut by the VAD as in a
live call) is submitted at once, ``--copies`` times over, to the engine a gateway
uses: the in-process ``RecognitionEngine`` on the local models, or the same engine in
front of ``RedisRecognizer`` with N worker processes behind a private Redis. Reported:
audio seconds decoded per wall second (how many talking channels the set-up keeps up
with) and the per-final wait, p50 / p95. Each worker gets ``cores / N`` decoding
threads, so the rows compare the same machine cut differently; on a bigger machine (or
several) the worker rows are where throughput grows.

Then the same dense calls at real pace as ``bench/dense.py`` (one client process per
call, turn end -> final as a call centre sees it) into one gateway with each set-up:
the in-process engine, and 1 and 2 workers behind a private Redis. Each set-up climbs
``--dense`` call counts until latency breaks; the calls it serves are the most whose
customer turn end -> final p95 stayed within 1.5 s with no turn lost.

python -m bench.scale_out [--copies 2] [--workers 1,2] [--dense 2,4,6,8] [--no-throughput]
                          [--out bench/scale_out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import replace
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


def throughput(copies: int, worker_counts: list[int]) -> list[str]:
    """Every utterance submitted at once: audio seconds decoded per wall second."""
    cores = os.cpu_count() or 1
    base = load_config(REPO / "config.toml")
    items = utterances(base) * copies
    rows: list[tuple[str, dict[str, Any]]] = []

    local = replace(base, asr=replace(base.asr, cpu_threads=cores, workers=1))
    recognizer = WhisperRecognizer(local.asr, local.resolve(local.models.dir), local.vad)
    engine = RecognitionEngine(recognizer, local.asr, local.partials)
    rows.append((f"in-process, 1 decoder x {cores} threads", asyncio.run(run(engine, items))))
    engine.close()
    del recognizer

    for n in worker_counts:
        threads = max(1, cores // n)
        with tempfile.TemporaryDirectory() as folder:
            text = (REPO / "config.toml").read_text(encoding="utf-8")
            text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"', 1)
            # one decoder of `threads` CTranslate2 threads per worker process
            text = re.sub(r"(?m)^cpu_threads = \d+", f"cpu_threads = {threads}", text, count=1)
            text = re.sub(r"(?m)^workers = \d+", "workers = 1", text, count=1)
            config_path = Path(folder) / "config.toml"
            config_path.write_text(text, encoding="utf-8")
            redis_server = PrivateRedis(Path(folder) / "redis").start()
            workers = start_workers(config_path, redis_server.url, n, threads, "bench")
            try:
                cfg = load_config(config_path)
                cfg = replace(cfg, cluster=replace(cfg.cluster, redis_url=redis_server.url))
                remote = RemoteRecognitionEngine(cfg)
                label = f"{n} worker(s) x {threads} threads, over Redis"
                rows.append((label, asyncio.run(run(remote, items))))
                remote.close()
            finally:
                for proc in workers:
                    proc.terminate()
                for proc in workers:
                    proc.wait(timeout=30)
                    if proc.stdout is not None:
                        proc.stdout.close()
                redis_server.stop()
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


def dense_setups(worker_counts: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """The set-ups of the dense table: ``bench.dense`` arguments for each."""
    cores = os.cpu_count() or 1
    base = load_config(REPO / "config.toml").asr
    out: list[tuple[str, dict[str, Any]]] = [
        (f"in-process, {base.workers} decoder(s) x {base.cpu_threads} threads", {})
    ]
    for n in worker_counts:
        label = f"gateway + {n} worker(s) x {max(1, cores // n)} threads, over Redis"
        out.append((label, {"cluster_workers": n}))
    return out


def dense_table(counts: list[int], seconds: float, worker_counts: list[int]) -> list[str]:
    """Dense calls at real pace per set-up, each climbing ``counts`` until latency breaks
    (p95 past ``dense.BROKEN_P95_S``)."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for label, args in dense_setups(worker_counts):
        print(f"scale-out: dense calls, {label}", file=sys.stderr)
        rows.append((label, dense.ladder(counts, seconds, {"model": "base", **args})))
    return dense_lines(rows, seconds)


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
        "*final queue / decode*: the gateway engine's (over Redis a decode is the whole "
        "round trip: the job's wait on Redis and the worker's decode); *load*: the "
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
    p.add_argument("--workers", default="1,2")
    p.add_argument("--dense", default="2,4,6,8", help="dense call counts ('' for none)")
    p.add_argument("--dense-seconds", type=float, default=45.0)
    p.add_argument("--no-throughput", action="store_true", help="only the dense table")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "scale_out.md")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    worker_counts = [int(w) for w in args.workers.split(",")]
    load_before = os.getloadavg()[0] / cores
    started = time.monotonic()
    lines: list[str] = []
    if not args.no_throughput:
        lines += throughput(args.copies, worker_counts)
    if args.dense:
        counts = [int(n) for n in args.dense.split(",")]
        lines += dense_table(counts, args.dense_seconds, worker_counts)
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
        f"clients all share the same {cores} cores: a worker set-up cuts the same cores "
        "differently (each worker gets cores / N decoding threads) and adds Redis and a "
        "second process's overhead, so it cannot serve more than the in-process engine "
        "here. The throughput table shows decoding following the workers' threads; the "
        "dense table shows what a call sees. Workers with cores of their own (other "
        "machines) are where served calls grow; this box cannot show that.",
        "",
    ]
    args.out.write_text("\n".join([*head, *lines]), encoding="utf-8")
    print("\n".join([*head, *lines]))


if __name__ == "__main__":
    main()
