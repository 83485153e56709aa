"""The core imports nothing from the outside world: no audio, models, sockets or storage."""

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
        "import sys\n"
        "import agent_assist.core.events, agent_assist.core.signals, agent_assist.core.rulebook\n"
        "import agent_assist.core.phases, agent_assist.core.policy, agent_assist.core.session\n"
        "import agent_assist.core.script, agent_assist.protocol\n"
        "import agent_assist.core.catalog, agent_assist.core.customer, agent_assist.core.lines\n"
        "import agent_assist.core.offer_engine, agent_assist.core.compliance\n"
        "import agent_assist.core.decisions\n"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
