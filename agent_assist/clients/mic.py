"""The microphone as a call source: capture blocks streamed through the source client.

``stream_blocks`` takes any async iterator of PCM16 blocks, so it is tested with file
audio and serves the microphone unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agent_assist.audio.mic import Block, microphone_blocks
from agent_assist.clients.source import EventSink, SourceClient
from agent_assist.core.events import LanguageChoice, Speaker
from agent_assist.errors import AudioInputError
from agent_assist.protocol import CallStart


async def stream_blocks(
    url: str,
    blocks: AsyncIterator[Block],
    *,
    sample_rate: int,
    speakers: tuple[Speaker, ...],
    language: LanguageChoice,
    title: str = "microphone",
    on_event: EventSink | None = None,
    token: str | None = None,
) -> str:
    """Send ``blocks`` as one call; return its call id once the server has ended it."""
    async with SourceClient.connect(url, token=token, on_event=on_event) as client:
        call_id = await client.start(
            CallStart(0, language, sample_rate, speakers, title, None, "audio")
        )
        try:
            async for block in blocks:
                await client.send_block(block)
        finally:
            await client.end(call_id, timeout=60)
    return call_id


async def stream_microphone(
    url: str,
    *,
    rate: int,
    speakers: tuple[Speaker, ...],
    device: str | None,
    language: LanguageChoice,
    until: Callable[[], Awaitable[Any]],
    on_event: EventSink | None = None,
    token: str | None = None,
) -> str:
    """Capture until ``until`` returns (Ctrl-C), streaming the call to ``url``."""
    if not 8000 <= rate <= 48000:
        raise AudioInputError("--rate must be 8000..48000", code="audio.bad_input")
    stop = asyncio.Event()

    async def stop_when_done() -> None:
        await until()
        stop.set()

    stopper = asyncio.create_task(stop_when_done())
    try:
        return await stream_blocks(
            url,
            microphone_blocks(rate, len(speakers), device, stop),
            sample_rate=rate,
            speakers=speakers,
            language=language,
            on_event=on_event,
            token=token,
        )
    finally:
        stopper.cancel()
