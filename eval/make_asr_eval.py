"""Turn the written evaluation sets into recognised text: synthesise, then transcribe.

Signals must survive recognition errors (wrong kanji, dropped words), so the evaluation
also runs on what the ASR stage made of spoken versions of the same utterances. Speech
comes from offline TTS (Open JTalk via pyopenjtalk-plus for Japanese, espeak-ng for
English) and is transcribed by the repository's own ``WhisperRecognizer``. Only the
text is committed (``eval/*_asr.csv``), never the audio.

pyopenjtalk-plus is not a dependency of the product; install it into its own venv:

    python3 -m venv /tmp/ttsvenv && /tmp/ttsvenv/bin/pip install pyopenjtalk-plus numpy
    .venv/bin/python eval/make_asr_eval.py --tts-python /tmp/ttsvenv/bin/python
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent_assist.asr.whisper import WhisperRecognizer  # noqa: E402
from agent_assist.config import load_config  # noqa: E402

JA_TTS = """
import sys, json, numpy as np, soundfile, pyopenjtalk
items = json.load(open(sys.argv[1], encoding="utf-8"))
for i, (text, out) in enumerate(items):
    # two voices: the default and a lower one, alternating
    wave, sr = pyopenjtalk.tts(text, half_tone=-3.0 if i % 2 else 0.0, speed=1.0 + 0.1 * (i % 3))
    soundfile.write(out, (wave / 32768.0).astype(np.float32), sr)
"""


def synthesise(language: str, rows: list[dict[str, str]], folder: Path, tts_python: str) -> None:
    if language == "ja":
        import json

        items = [(r["text"], str(folder / f"{r['id']}.wav")) for r in rows]
        spec = folder / "items.json"
        spec.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        subprocess.run([tts_python, "-c", JA_TTS, str(spec)], check=True)
        return
    for i, r in enumerate(rows):
        voice = ("en-us", "en-gb", "en-us+f3")[i % 3]
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice,
                "-s",
                "160",
                "-w",
                str(folder / f"{r['id']}.wav"),
                r["text"],
            ],
            check=True,
        )


def load_16k(path: Path) -> np.ndarray:
    audio, sr = soundfile.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return soxr.resample(mono, sr, 16000) if sr != 16000 else mono


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tts-python", default="/tmp/ttsvenv/bin/python")
    parser.add_argument("--languages", nargs="+", default=["ja", "en"])
    args = parser.parse_args()
    config = load_config(REPO / "config.toml")
    recognizer = WhisperRecognizer(config.asr, config.resolve(config.models.dir))
    for language in args.languages:
        source = REPO / "eval" / f"{language}_signals.csv"
        rows = list(csv.DictReader(source.open(encoding="utf-8")))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            synthesise(language, rows, folder, args.tts_python)
            out_rows = []
            for r in rows:
                samples = load_16k(folder / f"{r['id']}.wav")
                heard = recognizer.transcribe(samples, language, 0).text
                out_rows.append({**r, "text": heard, "written": r["text"]})
                print(f"{r['id']}: {r['text']} -> {heard}", flush=True)
        target = REPO / "eval" / f"{language}_signals_asr.csv"
        with target.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "speaker", "labels", "text", "written"])
            writer.writeheader()
            writer.writerows(out_rows)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
