"""Benchmark parts, each run in its own process (clean memory peak): ``python -m bench.parts
NAME '{json args}'`` prints one JSON result line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from agent_assist.asr.stabilizer import Stabilizer
from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.audio.files import CallAudio
from agent_assist.clients.replay import replay
from agent_assist.runtime.services import build_services
from agent_assist.server.app import AgentAssistServer
from bench.common import (
    AUDIO,
    bench_config,
    error_counts,
    load_clips,
    pct,
    peak_rss_mb,
    rates,
    segment,
)


def _cpu() -> float:
    return time.process_time()


def _busy_s() -> float:
    """CPU seconds every process on the machine has used (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def offline(args: dict[str, Any]) -> dict[str, Any]:
    """faster-whisper on each whole file: the accuracy ceiling."""
    cfg = bench_config(args)
    rec = WhisperRecognizer(cfg.asr, cfg.resolve(cfg.models.dir))
    clips = load_clips(args.get("clips"))
    rows, audio_s, cpu0 = [], 0.0, _cpu()
    for clip in clips:
        lang = rec._langs[clip.lang]  # the same loaded model the engine uses
        segments, _ = lang.model.transcribe(
            clip.samples,
            language=clip.lang if lang.model.model.is_multilingual else None,
            beam_size=lang.cfg.beam_size,
            vad_filter=False,
        )
        text = ("" if clip.lang == "ja" else " ").join(s.text.strip() for s in segments)
        rows.append((clip.lang, *error_counts(text, clip.ref, clip.lang)))
        audio_s += clip.seconds
    return {
        "rates": rates(rows),
        "cpu_per_audio_s": (_cpu() - cpu0) / audio_s,
        "audio_s": audio_s,
        "peak_rss_mb": peak_rss_mb(),
    }


def utterances(args: dict[str, Any]) -> dict[str, Any]:
    """VAD-cut utterances decoded one by one (finals path): a speed lever's cost and effect."""
    cfg = bench_config(args)
    rec = WhisperRecognizer(cfg.asr, cfg.resolve(cfg.models.dir))
    vad = SileroVad()
    clips = load_clips(args.get("clips"))
    rows, times, audio_s = [], [], 0.0
    rec.transcribe(clips[0].samples[:32000], clips[0].lang, 0)  # warm-up
    cpu0 = _cpu()
    for clip in clips:
        texts = []
        for u in segment(vad, cfg, clip.samples):
            t = time.perf_counter()
            texts.append(rec.transcribe(u.samples, clip.lang, u.start_ms).text)
            times.append(time.perf_counter() - t)
        text = ("" if clip.lang == "ja" else " ").join(texts)
        rows.append((clip.lang, *error_counts(text, clip.ref, clip.lang)))
        audio_s += clip.seconds
    return {
        "rates": rates(rows),
        "cpu_per_audio_s": (_cpu() - cpu0) / audio_s,
        "decode_p50_s": pct(times, 50),
        "decode_p95_s": pct(times, 95),
        "utterances": len(times),
        "peak_rss_mb": peak_rss_mb(),
    }


def naive(args: dict[str, Any]) -> dict[str, Any]:
    """Re-decode the growing buffer every ``step_s`` and commit what two decodes agree on
    (LocalAgreement-2, as whisper_streaming does), simulated against a real-time clock."""
    cfg = bench_config(args)
    rec = WhisperRecognizer(cfg.asr, cfg.resolve(cfg.models.dir))
    step = float(args.get("step_s", 1.0))
    clips = load_clips(args.get("clips"))
    rows, latencies, audio_s, cpu0 = [], [], 0.0, _cpu()
    for clip in clips:
        lang = rec._langs[clip.lang]
        model = lang.model
        stab = Stabilizer(clip.lang)
        committed_text: list[str] = []
        buf_start = 0.0
        clock = 0.0  # when the decoder is free, on the audio clock
        last_len = 0
        t_audio = step
        while True:
            t_audio = min(t_audio, clip.seconds)
            clock = max(clock, t_audio)
            buf = clip.samples[int(buf_start * 16000) : int(t_audio * 16000)]
            t = time.perf_counter()
            segments, _ = model.transcribe(
                buf,
                language=clip.lang if model.model.is_multilingual else None,
                beam_size=lang.cfg.beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            hyp = ("" if clip.lang == "ja" else " ").join(s.text.strip() for s in segments)
            clock += time.perf_counter() - t
            stab.feed(hyp)
            if len(stab.text) > last_len:  # newly committed text: latency of its audio
                latencies.append(clock - t_audio + step / 2)
                last_len = len(stab.text)
            if t_audio >= clip.seconds:
                break
            if t_audio - buf_start > 15.0 and stab.text:  # trim: restart on a fresh buffer
                committed_text.append(stab.text)
                stab.reset()
                last_len = 0
                buf_start = t_audio - 1.0
            t_audio += step
        committed_text.append(hyp)  # end of stream: the last hypothesis is final
        text = ("" if clip.lang == "ja" else " ").join(committed_text)
        rows.append((clip.lang, *error_counts(text, clip.ref, clip.lang)))
        audio_s += clip.seconds
    return {
        "rates": rates(rows),
        "cpu_per_audio_s": (_cpu() - cpu0) / audio_s,
        "commit_latency_p50_s": pct(latencies, 50),
        "commit_latency_p95_s": pct(latencies, 95),
        "audio_s": audio_s,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- the real pipeline: server, engine, replay clients ------------------------------------


async def _serve(args: dict[str, Any]) -> tuple[AgentAssistServer, str]:
    cfg = bench_config(args)
    db = Path(args.get("db", "/tmp/agent-assist-bench.sqlite3"))
    db.unlink(missing_ok=True)
    services = await asyncio.to_thread(build_services, cfg, store_path=db)
    server = AgentAssistServer(services)
    host, port = await server.start("127.0.0.1", 0)
    return server, f"ws://{host}:{port}/ws?token={server.source_token_for('bench')}"


def stream(args: dict[str, Any]) -> dict[str, Any]:
    """Each clip as a one-channel call through the server (as fast as it can decode)."""

    async def run() -> dict[str, Any]:
        server, url = await _serve(args)
        rows, audio_s, cpu0 = [], 0.0, _cpu()
        try:
            for clip in load_clips(args.get("clips")):
                pcm = (np.clip(clip.samples, -1, 1) * 32767).round().astype(np.int16)
                call = CallAudio(pcm.reshape(-1, 1), 16000, ("customer",))
                result = await replay(url, call, language=clip.lang, fast=True)
                text = ("" if clip.lang == "ja" else " ").join(
                    e["data"]["text"] for e in result.events if e["type"] == "transcript.final"
                )
                rows.append((clip.lang, *error_counts(text, clip.ref, clip.lang)))
                audio_s += clip.seconds
        finally:
            await server.close()
            server.services.close()
        return {
            "rates": rates(rows),
            "cpu_per_audio_s": (_cpu() - cpu0) / audio_s,
            "peak_rss_mb": peak_rss_mb(),
        }

    return asyncio.run(run())


def _endpoint_ms(end_ms: int, cfg_vad: Any, call_end_ms: int) -> tuple[int, int]:
    """(speech end, moment the VAD can close) in audio ms for a final ending at ``end_ms``."""
    pad = cfg_vad.speech_pad_ms // 32 * 32
    silence = max(1, cfg_vad.min_silence_ms // 32) * 32
    speech_end = end_ms - pad
    closed = min(call_end_ms, speech_end + silence)
    return speech_end, closed


def load(args: dict[str, Any]) -> dict[str, Any]:
    """N two-channel calls in real time at once, each replayed by its own client."""
    n = int(args["calls"])
    files = args["files"]
    cfg = bench_config(args)

    async def one(url: str, i: int, marks: dict[str, Any]) -> None:
        if args.get("sequential"):  # one call at a time: every file in turn
            for name in files:
                await call(url, name, 0, marks)
        else:
            await call(url, files[i % len(files)], i, marks)

    async def call(url: str, name: str, i: int, marks: dict[str, Any]) -> None:
        data, rate = sf.read(AUDIO / "synthetic" / f"{name}.flac", dtype="int16", always_2d=True)
        lang = "ja" if name.startswith("ja") else "en"
        await asyncio.sleep(i * 0.37)  # calls do not all start on the same frame
        t0: list[float] = []
        got: list[tuple[float, dict[str, Any]]] = []

        def on_event(msg: dict[str, Any]) -> None:
            now = time.monotonic()
            if msg["type"] == "call.started":
                t0.append(now)
            got.append((now, msg))

        await replay(
            url, CallAudio(data, rate, ("agent", "customer")), language=lang, on_event=on_event
        )
        call_end_ms = round(data.shape[0] * 1000 / rate)
        start = t0[0]
        first_partial: dict[str, float] = {}
        for now, msg in got:
            d = msg.get("data", {})
            at_ms = (now - start) * 1000
            if msg["type"] == "transcript.partial":
                first_partial.setdefault(d["utterance_id"], at_ms - msg["t_ms"])
            if msg["type"] == "transcript.final":
                speech_end, closed = _endpoint_ms(d["end_ms"], cfg.vad, call_end_ms)
                marks["endpoint"].append((at_ms - closed) / 1000)
                marks["speech_end"].append((at_ms - speech_end) / 1000)
        marks["first_partial"].extend(v / 1000 for v in first_partial.values())
        marks["audio_s"] += 2 * data.shape[0] / rate

    async def run() -> dict[str, Any]:
        server, url = await _serve(args)
        engine = server.services.engine
        assert engine is not None
        marks: dict[str, Any] = {
            "endpoint": [],
            "speech_end": [],
            "first_partial": [],
            "audio_s": 0.0,
        }
        lag: list[int] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                lag.append(engine.lag_ms())
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        cpu0, wall0, busy0 = _cpu(), time.monotonic(), _busy_s()
        try:
            await asyncio.gather(*(one(url, i, marks) for i in range(n)))
        finally:
            stop.set()
            await sampler
            stats = engine.stats()
            wall = time.monotonic() - wall0
            others = (_busy_s() - busy0 - (_cpu() - cpu0)) / wall
            await server.close()
            server.services.close()
        ep = marks["endpoint"]
        return {
            "calls": n,
            "endpoint_p50_s": pct(ep, 50),
            "endpoint_p95_s": pct(ep, 95),
            "speech_end_p50_s": pct(marks["speech_end"], 50),
            "speech_end_p95_s": pct(marks["speech_end"], 95),
            "first_partial_p50_s": pct(marks["first_partial"], 50),
            "first_partial_p95_s": pct(marks["first_partial"], 95),
            "finals": len(ep),
            "max_lag_s": max(lag, default=0) / 1000,
            "bounded": max(lag, default=0) <= cfg.asr.max_lag_s * 1000,
            "cpu_per_audio_s": (_cpu() - cpu0) / marks["audio_s"],
            "wall_s": wall,
            "other_cores": max(0.0, others),
            "partials_done": stats.partials_done,
            "partials_dropped": stats.partials_dropped,
            "batches": stats.batches,
            "decoded": stats.decoded,
            "peak_rss_mb": peak_rss_mb(),
        }

    return asyncio.run(run())


def nothing(args: dict[str, Any]) -> dict[str, Any]:
    """60 s of silence and 60 s of noise through the pipeline: words out must be zero."""

    async def run() -> dict[str, Any]:
        server, url = await _serve(args)
        rng = np.random.default_rng(5)
        n = 16000 * 60
        t = np.arange(n) / 16000
        noise = rng.normal(0, 0.03, n) + 0.05 * np.sin(2 * np.pi * 50 * t)
        noise[rng.integers(0, n, 300)] += rng.normal(0, 0.5, 300)
        out = {}
        try:
            for name, x in [("silence", np.zeros(n)), ("noise", noise)]:
                pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).reshape(-1, 1)
                words = 0
                for lang in ("en", "ja"):
                    result = await replay(
                        url, CallAudio(pcm, 16000, ("customer",)), language=lang, fast=True
                    )
                    words += sum(
                        len(e["data"]["text"].split())
                        for e in result.events
                        if e["type"].startswith("transcript.")
                    )
                out[name] = words
        finally:
            await server.close()
            server.services.close()
        return out

    return asyncio.run(run())


PARTS = {f.__name__: f for f in (offline, utterances, naive, stream, load, nothing)}

if __name__ == "__main__":
    result = PARTS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result))
