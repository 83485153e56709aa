"""A replay sends its audio in frames of the size asked for, at the call's pace."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from agent_assist.audio.files import CallAudio
from agent_assist.clients.replay import FRAME_MS, play
from agent_assist.protocol import CallStart


class FrameLog:
    """A call source that keeps what it was sent (the server side is tested elsewhere)."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.blocks: list[int] = []
        self.ended_ms: int | None = None

    async def start(self, start: CallStart, timeout: float = 30) -> str:
        return "call-1"

    async def send_block(self, block: Any) -> None:
        self.blocks.append(int(block.shape[0]))

    async def end(self, call_id: str, t_ms: int = 0, timeout: float | None = None) -> None:
        self.ended_ms = t_ms


def _sent(frame_ms: int) -> FrameLog:
    audio = CallAudio(np.zeros((16000, 2), np.int16), 16000, ("agent", "customer"))
    log = FrameLog()
    asyncio.run(play(log, audio, "en", "", True, None, None, frame_ms))  # type: ignore[arg-type]
    return log


def test_frames_are_as_long_as_asked_and_the_whole_call_is_sent() -> None:
    phone = _sent(20)
    assert phone.blocks == [320] * 50 and phone.ended_ms == 1000
    default = _sent(FRAME_MS)
    assert default.blocks == [1600] * 10 and default.ended_ms == 1000
