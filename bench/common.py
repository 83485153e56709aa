"""What every benchmark part shares: the test audio, scoring, and the config variants."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from rapidfuzz.distance import Levenshtein

from agent_assist.asr.segmenter import UtteranceAudio, UtteranceSegmenter
from agent_assist.asr.vad import SileroVad
from agent_assist.config import Config, LanguageAsrConfig, load_config

REPO = Path(__file__).resolve().parent.parent
AUDIO = REPO.parent / "shared" / "audio"


@dataclass(frozen=True)
class Clip:
    key: str
    lang: str
    ref: str
    samples: np.ndarray[Any, Any]  # 16 kHz mono float32

    @property
    def seconds(self) -> float:
        return self.samples.size / 16000


def load_clips(keys: list[str] | None = None) -> list[Clip]:
    manifest = json.loads((AUDIO / "manifest.json").read_text(encoding="utf-8"))
    clips = []
    for key, e in manifest.items():
        if keys and key not in keys:
            continue
        data, rate = sf.read(AUDIO / e["path"], dtype="float32", always_2d=True)
        ch = e.get("channel")
        x = data[:, {"left": 0, "right": 1}[ch]] if ch else data.mean(axis=1)
        if rate != 16000:
            x = soxr.resample(x, rate, 16000)
        clips.append(Clip(key, e["lang"], e["ref"], np.ascontiguousarray(x, dtype=np.float32)))
    return clips


def segment(vad: SileroVad, cfg: Config, x: np.ndarray[Any, Any]) -> list[UtteranceAudio]:
    stream, seg = vad.stream(), UtteranceSegmenter(cfg.vad)
    out: list[UtteranceAudio] = []
    for i in range(0, x.size, 1600):
        windows, probs = stream.push(x[i : i + 1600])
        out += seg.push(windows, probs)
    return out + seg.flush()


# -- scoring -----------------------------------------------------------------------------

FILLERS = {"uh", "um", "hmm", "mm", "er", "ah"}


def en_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("%", " percent")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    return [w for w in re.findall(r"[a-z0-9']+", text) if w not in FILLERS]


def ja_chars(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    return [c for c in text if c.isalnum()]


def edits(a: list[str], b: list[str]) -> int:
    return int(Levenshtein.distance(a, b))


def error_counts(hyp: str, ref: str, lang: str) -> tuple[int, int]:
    """(edits, reference length) in words (en) or characters (ja)."""
    unit = ja_chars if lang == "ja" else en_words
    r = unit(ref)
    return edits(unit(hyp), r), len(r)


def rates(rows: list[tuple[str, int, int]]) -> dict[str, float]:
    """Pooled error rate per language from (lang, edits, length) rows."""
    out = {}
    for lang in ("en", "ja"):
        e = sum(r[1] for r in rows if r[0] == lang)
        n = sum(r[2] for r in rows if r[0] == lang)
        if n:
            out[lang] = e / n
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- configuration variants ---------------------------------------------------------------


def bench_config(args: dict[str, Any]) -> Config:
    """config.toml, with the model, device and levers the benchmark run asks for."""
    cfg = load_config(REPO / "config.toml")
    asr = cfg.asr
    langs = dict(asr.languages)
    for lang, lc in langs.items():
        changes: dict[str, Any] = {}
        if args.get("model") and args["model"] != "config":
            changes["model"] = args["model"]
        for key in ("beam_size", "window_s"):
            if args.get(key) is not None:
                changes[key] = args[key]
        if lang == "en" and args.get("en_model"):  # the ladder's fallback_model step
            changes["model"] = args["en_model"]
        langs[lang] = replace(lc, **changes) if changes else lc
    if args.get("model") == "base" and "en" in langs and args.get("window_s") is None:
        langs["en"] = replace(langs["en"], window_s=langs["en"].window_s or 20.0)
    changes = {"languages": langs}
    for key in ("device", "compute_type", "batch_size", "workers", "cpu_threads", "early_final"):
        if args.get(key) is not None:
            changes[key] = args[key]
    cfg = replace(cfg, asr=replace(asr, **changes))
    if args.get("min_silence_ms") is not None:
        cfg = replace(cfg, vad=replace(cfg.vad, min_silence_ms=int(args["min_silence_ms"])))
    if args.get("partials") is not None:
        cfg = replace(cfg, partials=replace(cfg.partials, enabled=bool(args["partials"])))
    # measure how fast the server decodes, not the ingest cap that protects live calls
    # the benchmark finds the capacity: admission control must not refuse its calls
    server = replace(cfg.server, max_ingest_speed=0.0, max_calls=1000, refuse_lag_ms=0)
    return replace(cfg, server=server)


def language_config(cfg: Config, lang: str) -> LanguageAsrConfig:
    return cfg.asr.languages[lang]


def start_workers(
    config_path: Path, url: str, n: int, threads: int, name: str
) -> list[subprocess.Popen[str]]:
    """``n`` ``agent-assist worker`` processes on ``config_path``, each ready to decode."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "agent_assist", "--config", str(config_path), "worker"]
    procs = [
        subprocess.Popen(
            [*command, "--redis", url, "--name", f"{name}-{i}"],
            cwd=REPO,
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
            raise SystemExit(f"bench: a worker did not start: {line!r}")
    return procs


# -- where the processes run (scale-out set-ups) ------------------------------------------

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
