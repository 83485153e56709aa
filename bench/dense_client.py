"""One dense call pushed at real pace, as a gateway would: its own process, its own socket.

``python -m bench.dense_client URL FILE.flac LANG OUT.json [FRAME_MS]`` (token from
``$AGENT_ASSIST_TOKEN``) writes every event it received with ``at``: seconds since
``call.started`` arrived, which is the call's audio clock. ``FRAME_MS``: audio per frame
(replay's 100 ms by default; phone gateways send 20 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import soundfile as sf

from agent_assist.audio.files import CallAudio
from agent_assist.clients.replay import FRAME_MS, replay


async def push(url: str, path: Path, lang: str, frame_ms: int) -> list[dict[str, Any]]:
    data, rate = sf.read(path, dtype="int16", always_2d=True)
    t0: list[float] = []
    got: list[dict[str, Any]] = []

    def on_event(msg: dict[str, Any]) -> None:
        now = time.monotonic()
        if msg["type"] == "call.started":
            t0.append(now)
        if t0 and msg["type"] in ("transcript.final", "transcript.partial", "suggestion"):
            got.append({**msg, "at": now - t0[0]})

    await replay(
        url,
        CallAudio(data, rate, ("agent", "customer")),
        language=lang,
        on_event=on_event,
        token=os.environ.get("AGENT_ASSIST_TOKEN"),
        frame_ms=frame_ms,
    )
    return got


def main() -> int:
    url, path, lang, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    frame_ms = int(sys.argv[5]) if len(sys.argv) > 5 else FRAME_MS
    got = asyncio.run(push(url, path, lang, frame_ms))
    out.write_text(json.dumps(got, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
