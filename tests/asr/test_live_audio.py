"""Audio calls through the real server and engine: telephony codecs, Japanese partials and
finals, silence and noise, and a misbehaving source next to a good one."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from rapidfuzz.distance import Levenshtein
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.audio import g711
from agent_assist.protocol import ALL_CHANNELS, audio_frame
from tests.conftest import RunningServer, shared_audio

pytestmark = pytest.mark.model

FRAME_MS = 100
MANIFEST = json.loads(shared_audio("manifest.json").read_text(encoding="utf-8"))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def distance(a: list[str] | str, b: list[str] | str) -> int:
    return int(Levenshtein.distance(a, b))


def cer(hyp: str, ref: str) -> float:
    strip = re.compile(r"[、。「」？！，．・\s?!.,]")
    h, r = strip.sub("", hyp), strip.sub("", ref)
    return distance(h, r) / len(r)


async def send(ws: ClientConnection, type_: str, data: dict[str, Any], seq: int = 1) -> None:
    await ws.send(json.dumps({"v": 1, "type": type_, "call_id": None, "seq": seq, "data": data}))


async def stream_call(
    url: str,
    frames: list[bytes],
    start: dict[str, Any],
    *,
    realtime: bool = False,
    frame_ms: int = FRAME_MS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A source: hello, call.start, frames (optionally paced), call.end; returns events."""
    events: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    async with connect(url, max_size=None) as ws:
        await send(ws, "hello", {"role": "source"})
        assert json.loads(await ws.recv())["type"] == "ready"
        await send(ws, "call.start", {"mode": "audio", **start}, seq=2)
        started = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert started["type"] == "call.started", started
        events.append(started)

        async def read() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                (errors if msg["type"] == "error" else events).append(msg)
                if msg["type"] == "call.ended":
                    return

        reader = asyncio.create_task(read())
        t0 = time.monotonic()
        for i, frame in enumerate(frames):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + i * frame_ms / 1000 - time.monotonic()))
            else:
                await asyncio.sleep(0)
            await ws.send(frame)
        await send(ws, "call.end", {"reason": "hangup"}, seq=3)
        await asyncio.wait_for(reader, 120)
    return events, errors


def read_mono(relative: str, rate: int = 16000, channel: int | None = None) -> np.ndarray:
    data, sr = sf.read(shared_audio(relative), dtype="float32", always_2d=True)
    x = data[:, channel] if channel is not None else data.mean(axis=1)
    return soxr.resample(x, sr, rate) if sr != rate else x


def to_pcm16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).round().astype(np.int16)


def finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e["data"], "t_ms": e["t_ms"]} for e in events if e["type"] == "transcript.final"]


async def test_telephony_mulaw_8k(asr_server: RunningServer) -> None:
    """The real 8 kHz telephone-band clip, as a gateway sends it: μ-law, 20 ms frames."""
    x = to_pcm16(read_mono("en/OSR_us_000_0034_8k.wav", 8000))
    step = 160  # 20 ms at 8 kHz
    frames = [audio_frame(0, g711.encode(x[i : i + step], "mulaw")) for i in range(0, x.size, step)]
    events, errors = await stream_call(
        asr_server.url,
        frames,
        {"language": "en", "sample_rate": 8000, "channels": ["customer"], "encoding": "mulaw"},
    )
    assert errors == []
    text = " ".join(f["text"] for f in finals(events))
    ref = words(MANIFEST["osr_harvard_8k"]["ref"])
    assert distance(words(text), ref) / len(ref) <= 0.12, text
    assert all(f["words"] for f in finals(events))  # finals carry word timings


async def test_stereo_alaw_interleaved(asr_server: RunningServer) -> None:
    """One interleaved stereo A-law stream (agent left, customer right)."""
    left = to_pcm16(read_mono("en/stereo_diarization.wav", 8000, channel=0))
    right = to_pcm16(read_mono("en/stereo_diarization.wav", 8000, channel=1))
    both = np.stack([left, right], axis=1)
    step = 800
    frames = [
        audio_frame(ALL_CHANNELS, g711.encode(both[i : i + step].reshape(-1), "alaw"))
        for i in range(0, both.shape[0], step)
    ]
    events, errors = await stream_call(
        asr_server.url, frames, {"language": "en", "sample_rate": 8000, "encoding": "alaw"}
    )
    assert errors == []
    by_speaker = {f["speaker"]: f["text"] for f in finals(events)}
    assert "horizon" in by_speaker["customer"].lower()
    assert "wizard" in by_speaker["agent"].lower()


async def test_japanese_partials_and_finals_in_real_time(asr_server: RunningServer) -> None:
    """Paced like a live call: stable partials before the final; nothing garbled."""
    key = "cv_ja_38878413"  # two sentences, 10 s
    x = to_pcm16(read_mono(MANIFEST[key]["path"]))
    step = 1600
    frames = [audio_frame(0, x[i : i + step].tobytes()) for i in range(0, x.size, step)]
    frames += [audio_frame(0, bytes(2 * step))] * 10  # a second of line silence
    events, errors = await stream_call(
        asr_server.url,
        frames,
        {"language": "ja", "sample_rate": 16000, "channels": ["customer"]},
        realtime=True,
    )
    assert errors == []
    got = finals(events)
    assert got and cer("".join(f["text"] for f in got), MANIFEST[key]["ref"]) <= 0.35
    partials = [e for e in events if e["type"] == "transcript.partial"]
    assert partials, "no partial in 10 s of speech"
    final_ids = {f["utterance_id"] for f in got}
    for uid in {p["data"]["utterance_id"] for p in partials}:
        texts = [p["data"]["text"] for p in partials if p["data"]["utterance_id"] == uid]
        # committed text only grows: each partial extends the one before it
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), texts
        assert uid in final_ids
        first_final = next(e for e in events if e["data"].get("utterance_id") == uid)
        assert first_final["type"] == "transcript.partial"  # partials come before the final
    for e in events:
        text = e["data"].get("text", "")
        assert "\ufffd" not in text and " " not in text.strip()
    for f in got:
        assert "".join(w["text"] for w in f["words"]).replace(" ", "") == f["text"].replace(" ", "")
        assert all(f["t_ms"] <= w["start_ms"] <= w["end_ms"] <= f["end_ms"] for w in f["words"])


@pytest.mark.parametrize("kind", ["silence", "noise"])
async def test_a_minute_of_silence_or_noise_gives_no_words(
    asr_server: RunningServer, kind: str
) -> None:
    rng = np.random.default_rng(11)
    n = 16000 * 60
    if kind == "silence":
        x = np.zeros(n, np.int16)
    else:  # line hiss plus mains hum and crackle
        t = np.arange(n) / 16000
        y = rng.normal(0, 0.03, n) + 0.05 * np.sin(2 * np.pi * 50 * t)
        y[rng.integers(0, n, 300)] += rng.normal(0, 0.5, 300)
        x = to_pcm16(y)
    frames = [audio_frame(0, x[i : i + 3200].tobytes()) for i in range(0, n, 3200)]
    events, errors = await stream_call(
        asr_server.url, frames, {"language": "en", "sample_rate": 16000, "channels": ["customer"]}
    )
    assert errors == []
    assert [e for e in events if e["type"].startswith("transcript.")] == []


async def test_bad_frames_get_coded_errors_and_leave_other_calls_alone(
    asr_server: RunningServer,
) -> None:
    x = to_pcm16(read_mono("en/jfk.flac"))
    good = [audio_frame(1, x[i : i + 1600].tobytes()) for i in range(0, x.size, 1600)]
    bad = [
        audio_frame(0, b"\x00" * 70000),  # over server.max_frame_bytes
        audio_frame(0, b"\x01\x02\x03"),  # not whole 16-bit samples
        audio_frame(5, b"\x00\x00"),  # no such channel
        bytes((9, 0, 0, 0)),  # unknown frame version
        b"\x01",  # too short
        audio_frame(ALL_CHANNELS, b"\x00" * 6),  # 3 samples cannot be 2 interleaved channels
    ]
    mixed = [f for pair in zip(good, bad + [b""] * len(good), strict=False) for f in pair if f]
    (good_events, good_errors), (bad_events, bad_errors) = await asyncio.gather(
        stream_call(asr_server.url, good, {"language": "en", "sample_rate": 16000}),
        stream_call(asr_server.url, mixed, {"language": "en", "sample_rate": 16000}),
    )
    assert good_errors == []
    codes = [e["data"]["code"] for e in bad_errors]
    assert codes == ["audio.frame_too_large"] + ["audio.bad_frame"] * 5
    assert all(e["data"]["fault"] == "client" and not e["data"]["fatal"] for e in bad_errors)
    ref = words(MANIFEST["jfk"]["ref"])
    for events in (good_events, bad_events):  # the bad source's good audio is not lost
        text = " ".join(f["text"] for f in finals(events) if f["speaker"] == "customer")
        assert distance(words(text), ref) / len(ref) <= 0.15, text
