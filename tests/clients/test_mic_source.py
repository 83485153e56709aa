"""The microphone source streams blocks through the shared source client: any async
iterator of PCM16 blocks (here a real recording) becomes a call on a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from agent_assist.audio.files import read_call_audio
from agent_assist.audio.mic import BLOCK_MS, Block
from agent_assist.clients.mic import stream_blocks
from tests.conftest import SAMPLES, RunningServer

pytestmark = [pytest.mark.model]


async def _blocks(pcm: np.ndarray, rate: int) -> AsyncIterator[Block]:
    step = rate * BLOCK_MS // 1000
    for start in range(0, pcm.shape[0], step):
        yield pcm[start : start + step]


async def test_blocks_become_a_call_with_transcripts(asr_server: RunningServer) -> None:
    audio = read_call_audio(SAMPLES / "en_call.flac")
    first = audio.pcm16[: audio.sample_rate * 12]  # the opening: the agent's greeting
    seen: list[dict[str, Any]] = []
    call_id = await stream_blocks(
        asr_server.url,
        _blocks(first, audio.sample_rate),
        sample_rate=audio.sample_rate,
        speakers=audio.speakers,
        language="en",
        on_event=seen.append,
    )
    types = [m["type"] for m in seen]
    assert call_id and types[0] == "call.started" and types[-1] == "call.ended"
    finals = [m["data"]["text"] for m in seen if m["type"] == "transcript.final"]
    assert finals, "the recording was heard"
