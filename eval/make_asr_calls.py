"""Speak a folder of labelled calls and write back what recognition heard.

The call-level figures must hold on recognised text, not only on written text: every turn
of every call is synthesised (Open JTalk for Japanese, espeak-ng for English, as in
``make_asr_eval.py``), transcribed by the repository's ``WhisperRecognizer`` with the
site's ``config.toml`` (models, beam, prompt with the catalogue's names), and written to a
new folder as the same call with each turn's text replaced by what was heard; the labels
are kept.
``call_eval`` then measures that folder like any other:

    python3 -m venv /tmp/ttsvenv && /tmp/ttsvenv/bin/pip install pyopenjtalk-plus numpy soundfile
    .venv/bin/python eval/make_asr_calls.py eval/calls/dev /tmp/dev_asr
    .venv/bin/python -m agent_assist.nlp.call_eval /tmp/dev_asr

A turn recognition heard nothing in becomes "…" (no words), so the labels' turn numbers hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent_assist.asr.prompt_words import with_product_words  # noqa: E402
from agent_assist.asr.whisper import WhisperRecognizer  # noqa: E402
from agent_assist.config import load_config  # noqa: E402
from agent_assist.runtime.services import load_policy  # noqa: E402
from eval.make_asr_eval import load_16k, synthesise  # noqa: E402


def toml_value(value: object) -> str:
    """A TOML scalar: JSON's string escapes are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def dump_call(doc: dict[str, Any]) -> str:
    """The call file's shape: top-level scalars, then ``[[turn]]`` and ``[[expect]]`` tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, list)]
    for key, value in doc.items():
        if isinstance(value, list):
            for table in value:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder of call files")
    parser.add_argument("target", type=Path, help="where the recognised calls are written")
    parser.add_argument("--tts-python", default="/tmp/ttsvenv/bin/python")
    parser.add_argument("--config", type=Path, default=REPO / "config.toml")
    args = parser.parse_args()
    config = load_config(args.config)
    asr = with_product_words(config.asr, load_policy(config).catalog)
    recognizer = WhisperRecognizer(asr, config.resolve(config.models.dir), config.vad)
    args.target.mkdir(parents=True, exist_ok=True)
    heard_words = written_words = 0
    for path in sorted(args.source.glob("*.toml")):
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        language = doc["language"]
        rows = [{"id": f"t{i:03d}", "text": t["text"]} for i, t in enumerate(doc["turn"])]
        with tempfile.TemporaryDirectory() as tmp:
            synthesise(language, rows, Path(tmp), args.tts_python)
            for row, turn in zip(rows, doc["turn"], strict=True):
                samples = load_16k(Path(tmp) / f"{row['id']}.wav")
                heard = recognizer.transcribe(samples, language, 0).text.strip()
                written_words += len(turn["text"])
                heard_words += len(heard)
                turn["text"] = heard or "…"
        (args.target / path.name).write_text(dump_call(doc), encoding="utf-8")
        print(f"{path.name}: {len(rows)} turns", flush=True)
    print(f"characters written {written_words}, heard {heard_words}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
