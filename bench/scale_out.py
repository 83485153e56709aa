"""Scale-out: finals decoded per second in-process vs on 1 and 2 ``agent-assist worker``s.

Every utterance of the two bundled sample calls (both channels, cut by the VAD as in a
live call) is submitted at once, ``--copies`` times over, to the engine a gateway
uses: the in-process ``RecognitionEngine`` on the local models, or the same engine in
front of ``RedisRecognizer`` with N worker processes behind a private Redis. Reported:
audio seconds decoded per wall second (how many talking channels the set-up keeps up
with) and the per-final wait, p50 / p95. Each worker gets ``cores / N`` decoding
threads, so the rows compare the same machine cut differently; on a bigger machine (or
several) the worker rows are where throughput grows.

python -m bench.scale_out [--copies 2] [--workers 1,2] [--out bench/scale_out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
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
from bench.common import REPO, segment

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


def start_workers(config_path: Path, url: str, n: int, threads: int) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent_assist",
                "--config",
                str(config_path),
                "worker",
                "--redis",
                url,
                "--name",
                f"bench-{i}",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "ready" not in line:
            raise SystemExit(f"a worker did not start: {line!r}")
    return procs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "scale_out.md")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    base = load_config(REPO / "config.toml")
    items = utterances(base) * args.copies
    rows: list[tuple[str, dict[str, Any]]] = []

    local = replace(base, asr=replace(base.asr, cpu_threads=cores, workers=1))
    recognizer = WhisperRecognizer(local.asr, local.resolve(local.models.dir), local.vad)
    engine = RecognitionEngine(recognizer, local.asr, local.partials)
    rows.append((f"in-process, 1 decoder x {cores} threads", asyncio.run(run(engine, items))))
    engine.close()
    del recognizer

    for n in (int(w) for w in args.workers.split(",")):
        threads = max(1, cores // n)
        with tempfile.TemporaryDirectory() as folder:
            text = (REPO / "config.toml").read_text(encoding="utf-8")
            text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"', 1)
            text = text.replace("cpu_threads = 2\n", f"cpu_threads = {threads}\n", 1)
            config_path = Path(folder) / "config.toml"
            config_path.write_text(text, encoding="utf-8")
            redis_server = PrivateRedis(Path(folder) / "redis").start()
            workers = start_workers(config_path, redis_server.url, n, threads)
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

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    lines = [
        f"`python -m bench.scale_out {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"{len(items)} finals ({rows[0][1]['audio_s']} s of speech) submitted at once; "
        f"{cpu}, {cores} cores, shared with other work.",
        "",
        "| set-up | finals | wall s | audio s per wall s | wait p50 / p95 s |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {r['finals']} | {r['wall_s']} | {r['rate']} | {r['p50']} / {r['p95']} |"
            for label, r in rows
        ),
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
