"""Run every benchmark part, each in a fresh process, and write BENCHMARKS.md.

python -m bench [--device cpu|cuda] [--compute-type int8] [--batch-size 4]
                [--model base|config] [--max-calls 16] [--out BENCHMARKS.md] [--quick]
                [--dense-only]

Dense calls first (``bench/dense.py``: the figures a call centre sees), then the
accuracy, speed levers and the sparse synthetic calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dense
from bench.common import REPO, bench_config

SYNTHETIC = ["en_call_piper_festival", "ja_call_kokoro", "en_call_espeak", "ja_call_openjtalk"]
NAIVE_CLIPS = [
    "jfk",
    "stereo_diar_left",
    "stereo_diar_right",
    "osr_harvard_8k",
    "cv_ja_38833628",
    "cv_ja_38853932",
    "cv_ja_38925334",
]


def part(name: str, **args: Any) -> dict[str, Any]:
    t = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.parts", name, json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"bench part {name} failed")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {name} {args.get('label', '')}: {time.monotonic() - t:.0f} s", file=sys.stderr)
    return result


def machine(base: dict[str, Any]) -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(ln.split()[1]) // 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    import ctranslate2
    import faster_whisper

    cfg = bench_config(base)
    langs = ", ".join(
        f"{k}: {v.model} beam {v.beam_size} window "
        f"{'fit+' + str(v.window_pad_s) if not v.window_s else v.window_s} s"
        for k, v in cfg.asr.languages.items()
    )
    return (
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem} MiB; "
        f"Python {platform.python_version()}; ctranslate2 {ctranslate2.__version__}; "
        f"faster-whisper {faster_whisper.__version__}\n"
        f"- device {cfg.asr.device}, compute type {cfg.asr.compute_type}, "
        f"{cfg.asr.cpu_threads} threads × {cfg.asr.workers} worker(s), "
        f"batch size {cfg.asr.batch_size}; {langs}"
    )


def f(x: Any, digits: int = 2) -> str:
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, float):
        return "n/a" if x != x else f"{x:.{digits}f}"
    return str(x)


def main() -> int:
    p = argparse.ArgumentParser(prog="bench")
    p.add_argument("--device")
    p.add_argument("--compute-type")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--model", default="base", help="'base' (the targets' model) or 'config'")
    p.add_argument("--max-calls", type=int, default=16)
    p.add_argument("--quick", action="store_true", help="fewer clips and load steps")
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument(
        "--dense-only", action="store_true", help="only the dense-call section (to --out)"
    )
    a = p.parse_args()
    base: dict[str, Any] = {
        "model": a.model,
        "device": a.device,
        "compute_type": a.compute_type,
        "batch_size": a.batch_size,
    }
    base = {k: v for k, v in base.items() if v is not None}
    cfg = bench_config(base)
    if cfg.asr.device == "cuda":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() == 0:
            print("bench: no CUDA device here; skipped (run with --device cpu)", file=sys.stderr)
            return 0
    started = time.monotonic()
    print("bench: running (about 20 minutes on 2 cores)", file=sys.stderr)
    clips = NAIVE_CLIPS if a.quick else None

    counts = [1, 2] if a.quick else [1, 2, 4, 6, 8, 10, 12, 16]
    counts = [n for n in counts if n <= a.max_calls]
    seconds = 20.0 if a.quick else 45.0
    dense_args = {"model": a.model}
    dense_rows = [(f"{r['calls']}", r) for r in dense.ladder(counts, seconds, dense_args)]
    if not a.quick:  # the ladder's effect: the deepest rung again with the ladder off
        worst = dense_rows[-1][1]["calls"]
        off = dense.run(worst, seconds, {**dense_args, "degrade": False})
        dense_rows.append((f"{worst}, degradation off", off))
    single = (dense.single_call(seconds, dense_args, runs=2 if a.quick else 6), seconds)
    steps: list[tuple[str, str, dict[str, Any] | None]] = [
        ("full quality", "", part("utterances", **base, clips=clips, label="level 0")),
        ("partials", "every partial decode", None),
        ("early_finals", "speculative decodes at a pause", None),
        (
            "greedy_finals",
            "beam search on finals",
            part("utterances", **base, clips=clips, beam_size=1, label="level 3"),
        ),
    ]
    if a.model == "base":
        steps.append(
            (
                "fallback_model",
                "English on tiny.en",
                part(
                    "utterances",
                    **base,
                    clips=clips,
                    beam_size=1,
                    en_model="tiny.en",
                    label="level 4",
                ),
            )
        )
    dense_lines = dense.section(dense_rows, steps, single)
    if a.dense_only:
        head = [
            "# Benchmarks (dense calls only)",
            "",
            f"Written by `python -m bench {' '.join(sys.argv[1:])}` on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
            f"{(time.monotonic() - started) / 60:.1f} min.",
            "",
            machine(base),
            "",
        ]
        a.out.write_text("\n".join([*head, *dense_lines]))
        print(f"bench: wrote {a.out}", file=sys.stderr)
        return 0

    acc = {
        "offline faster-whisper, whole file": part("offline", **base, clips=clips),
        "this engine (VAD utterances, streamed)": part("stream", **base, clips=clips),
        "naive re-decode (LocalAgreement-2, 1 s)": part("naive", **base, clips=NAIVE_CLIPS),
    }
    levers = {
        "fitted window (ja: utterance + 1 s, en: 20 s), beam 5": part(
            "utterances", **base, clips=clips, label="fitted"
        ),
        "full 30 s window, beam 5": part(
            "utterances", **base, clips=clips, window_s=30.0, label="30 s"
        ),
        "fitted window, greedy (beam 1)": part(
            "utterances", **base, clips=clips, beam_size=1, label="greedy"
        ),
        "fitted window, beam 5, vad.min_silence_ms 800 (longer utterances)": part(
            "utterances", **base, clips=clips, min_silence_ms=800, label="silence 800"
        ),
    }
    nothing = part("nothing", **base)

    load_rows: list[tuple[str, dict[str, Any]]] = []
    single = part("load", **base, calls=1, files=SYNTHETIC[:2], sequential=True, label="1 call")
    load_rows.append(("1 call", single))
    if not a.quick:
        load_rows.append(
            (
                "1 call, early finals off",
                part(
                    "load",
                    **base,
                    calls=1,
                    files=SYNTHETIC[:2],
                    sequential=True,
                    early_final=False,
                    label="1 call no early",
                ),
            )
        )
    best = 1
    steps = [8] if a.quick else [8, 12, 16]
    for n in [s for s in steps if s <= a.max_calls]:
        r = part("load", **base, calls=n, files=SYNTHETIC, label=f"{n} calls")
        load_rows.append((f"{n} calls", r))
        if not r["bounded"]:
            if n == 8:
                for m in (6, 4):
                    r = part("load", **base, calls=m, files=SYNTHETIC, label=f"{m} calls")
                    load_rows.append((f"{m} calls", r))
                    if r["bounded"]:
                        best = max(best, m)
                        break
            break
        best = n
    if not a.quick:
        other = 4 if cfg.asr.batch_size == 1 else 1
        load_rows.append(
            (
                f"8 calls, batch size {other} (lever)",
                part("load", **base, calls=8, files=SYNTHETIC, batch_size=other, label="8 batch"),
            )
        )

    cmd = "make bench" + (
        f" BENCH_ARGS={shlex.quote(' '.join(sys.argv[1:]))}" if sys.argv[1:] else ""
    )
    L: list[str] = [
        "# Benchmarks",
        "",
        f"Written by `{cmd}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{(time.monotonic() - started) / 60:.1f} min. Every part runs in its own process "
        "(peak memory is that process's). Audio: `../shared/audio` (references in its "
        "`manifest.json`) and the two-channel synthetic calls in `../shared/audio/synthetic/`.",
        "",
        "## Machine",
        "",
        machine(base),
        "",
        *dense_lines,
        "## Sparse synthetic calls, accuracy and levers",
        "",
        "The sections below are the earlier benchmark: calls with long pauses between turns "
        "(kept for comparison; they overstate capacity for dense calls).",
        "",
        "## Accuracy and cost",
        "",
        "WER over English words (lower-cased, punctuation and fillers dropped), CER over "
        "Japanese characters (NFKC, punctuation dropped), pooled over the clips. CPU-s per "
        "audio-s counts every thread of the process.",
        "",
        "| method | WER en | CER ja | CPU-s per audio-s | peak MB |",
        "|---|---|---|---|---|",
    ]
    for name, r in acc.items():
        L.append(
            f"| {name} | {f(r['rates'].get('en', float('nan')), 3)} | "
            f"{f(r['rates'].get('ja', float('nan')), 3)} | {f(r['cpu_per_audio_s'], 3)} | "
            f"{f(r['peak_rss_mb'], 0)} |"
        )
    nv = acc["naive re-decode (LocalAgreement-2, 1 s)"]
    L += [
        "",
        f"The naive method ran on {len(NAIVE_CLIPS)} short clips only (its cost grows "
        f"with the buffer); its rates are on those clips. Commit latency (audio to committed "
        f"text, simulated real-time clock): p50 {f(nv['commit_latency_p50_s'])} s, "
        f"p95 {f(nv['commit_latency_p95_s'])} s.",
        "",
        "## Speed levers (finals path, VAD utterances decoded one by one)",
        "",
        "| variant | WER en | CER ja | decode p50 s | decode p95 s | CPU-s per audio-s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in levers.items():
        L.append(
            f"| {name} | {f(r['rates'].get('en', float('nan')), 3)} | "
            f"{f(r['rates'].get('ja', float('nan')), 3)} | {f(r['decode_p50_s'])} | "
            f"{f(r['decode_p95_s'])} | {f(r['cpu_per_audio_s'], 3)} |"
        )
    L += [
        "",
        "The streamed engine decodes each VAD utterance on its own, without the text before "
        "it; offline decoding reads a whole file in 30 s windows, each conditioned on the "
        "previous text. The first row against the 30 s row isolates the window (the gap "
        "does not come from it); the last row tries longer utterances.",
        "",
        "## Live calls in real time",
        "",
        "Two-channel synthetic calls (agent left, customer right), each sent by its own "
        "websocket client at real-time pace into one server. *Endpoint → final*: from the "
        "moment the VAD can close the utterance (speech end + `vad.min_silence_ms`) to the "
        "client receiving the final. *Speech end → final* adds that silence wait. "
        "*First partial*: utterance start to the first (committed) partial. "
        "*Lag*: the longest any final waited in the engine's queue; bounded means it "
        "stayed under `asr.max_lag_s`.",
        "",
        "| calls | endpoint → final p50 / p95 s | speech end → final p50 / p95 s | "
        "first partial p50 / p95 s | finals | max lag s | bounded | CPU-s per audio-s | "
        "partials done / shed | peak MB | other processes, cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in load_rows:
        L.append(
            f"| {name} | {f(r['endpoint_p50_s'])} / {f(r['endpoint_p95_s'])} | "
            f"{f(r['speech_end_p50_s'])} / {f(r['speech_end_p95_s'])} | "
            f"{f(r['first_partial_p50_s'])} / {f(r['first_partial_p95_s'])} | "
            f"{r['finals']} | {f(r['max_lag_s'])} | {f(r['bounded'])} | "
            f"{f(r['cpu_per_audio_s'], 3)} | {r['partials_done']} / "
            f"{r['partials_dropped']} | {f(r['peak_rss_mb'], 0)} | {f(r['other_cores'], 1)} |"
        )
    busiest = max(r["other_cores"] for _, r in load_rows)
    L += [
        "",
        "*Other processes, cores*: CPU the rest of the machine used during that run (from "
        f"`/proc/stat`), out of {os.cpu_count()}. Well above 0 means this engine had less "
        f"than the whole machine and its figures understate it (busiest run: {busiest:.1f}).",
        "",
        f"Largest number of concurrent two-channel calls with bounded lag: **{best}** "
        f"(tried up to {max(s for s in steps if s <= a.max_calls)}).",
        "",
        "## No text from nothing",
        "",
        f"60 s of silence: **{nothing['silence']}** words; 60 s of noise (hiss, mains hum, "
        f"crackle): **{nothing['noise']}** words (each through the pipeline in English and "
        "Japanese).",
        "",
    ]
    at8 = next((r for n, r in load_rows if n == "8 calls"), None)
    off, eng = (
        acc["offline faster-whisper, whole file"],
        acc["this engine (VAD utterances, streamed)"],
    )
    ratio = {k: eng["rates"][k] / v if v else float("nan") for k, v in off["rates"].items()}
    L += [
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| end of speech → final p95 ≤ 0.6 s, one call | endpoint {f(single['endpoint_p95_s'])}"
        f" s (speech end {f(single['speech_end_p95_s'])} s) | "
        f"{f(single['endpoint_p95_s'] <= 0.6)} |",
    ]
    if at8:
        L.append(
            f"| p95 ≤ 1.0 s with 8 two-channel calls, lag bounded | endpoint "
            f"{f(at8['endpoint_p95_s'])} s, max lag {f(at8['max_lag_s'])} s | "
            f"{f(at8['endpoint_p95_s'] <= 1.0 and at8['bounded'])} |"
        )
    L += [
        f"| ≥ 8 concurrent two-channel calls in real time | {best} | {f(best >= 8)} |",
        "| streaming WER/CER ≤ 1.1 × offline | "
        + ", ".join(f"{k}: {f(v)}×" for k, v in ratio.items())
        + f" | {f(all(v <= 1.1 for v in ratio.values()))} |",
        f"| zero words from 60 s silence and 60 s noise | {nothing['silence']} + "
        f"{nothing['noise']} | {f(nothing['silence'] + nothing['noise'] == 0)} |",
        "",
    ]
    a.out.write_text("\n".join(L), encoding="utf-8")
    print(f"bench: wrote {a.out} in {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
