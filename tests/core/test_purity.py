"""The core, and the pure parts of the recognition stream (pacing, stabiliser), import
nothing from the outside world: no audio, models, sockets or storage."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = [
    "numpy",
    "spacy",
    "faster_whisper",
    "ctranslate2",
    "onnxruntime",
    "websockets",
    "sqlite3",
    "sounddevice",
    "soundfile",
    "soxr",
    "asyncio",
    "socket",
]


def test_core_imports_no_outside_world() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import agent_assist.core as core\n"
        "import agent_assist.protocol\n"
        "import agent_assist.asr.pacing, agent_assist.asr.stabilizer\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module(f'agent_assist.core.{m.name}')\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_core_module_is_checked() -> None:
    import pkgutil

    import agent_assist.core as core

    names = {m.name for m in pkgutil.iter_modules(core.__path__)}
    assert {"events", "signals", "policy", "scoring", "call_facts", "offer_engine"} <= names
