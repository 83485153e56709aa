"""The one source client: a websocket connection that streams a call into a server.

Replay of a file, a scripted call and the live microphone all send the same messages
(hello, call.start, audio frames or turns, call.end) and read the same events back; they
differ only in what they send in between.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.errors import ProtocolError
from agent_assist.protocol import audio_frame

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]


class SourceClient:
    """A source connection: hello, call.start, then frames or turns, then call.end."""

    def __init__(
        self, ws: ClientConnection, sink: TextIO | None = None, on_event: EventSink | None = None
    ) -> None:
        self.ws = ws
        self.sink = sink
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.seq = 0
        self.suggestions: set[str] = set()
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[str] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        sink: TextIO | None = None,
        on_event: EventSink | None = None,
    ) -> AsyncIterator[SourceClient]:
        """Open a connection (``token`` signs it in as ``Authorization: Bearer``)."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with connect(url, max_size=None, additional_headers=headers) as ws:
            client = cls(ws, sink, on_event)
            try:
                yield client
            finally:
                if client._reader is not None and not client._reader.done():
                    client._reader.cancel()

    async def send(
        self, type_: str, data: dict[str, Any], call_id: str | None = None, t_ms: int = 0
    ) -> None:
        self.seq += 1
        message = {
            "v": 1,
            "type": type_,
            "call_id": call_id,
            "seq": self.seq,
            "t_ms": t_ms,
            "data": data,
        }
        await self.ws.send(json.dumps(message, ensure_ascii=False))

    async def start(self, start: dict[str, Any], timeout: float = 30) -> str:
        """Say hello as a source, start the call, and return its id once the server has it."""
        await self.send("hello", {"role": "source", "subscribe": None})
        self._reader = asyncio.create_task(self._read())
        await self.send("call.start", start)
        return await asyncio.wait_for(self.started, timeout=timeout)

    async def send_block(self, block: npt.NDArray[np.int16]) -> None:
        """One block of PCM16 audio, shape (frames, channels): one frame per channel."""
        for channel in range(block.shape[1]):
            await self.ws.send(audio_frame(channel, block[:, channel].astype("<i2").tobytes()))

    async def end(self, call_id: str, t_ms: int = 0, timeout: float | None = None) -> None:
        """Hang up and wait until the server has ended the call (and sent its last events)."""
        await self.send("call.end", {"reason": "hangup"}, call_id, t_ms)
        reader = self._reader
        if reader is not None:
            await asyncio.wait_for(asyncio.shield(self.ended), timeout)
            await reader

    async def _read(self) -> None:
        async for message in self.ws:
            msg = json.loads(message)
            if msg["type"] == "error":
                self.errors.append(msg)
                if not self.started.done():
                    self.started.set_exception(
                        ProtocolError(msg["data"]["message"], code=msg["data"]["code"])
                    )
                else:
                    log.warning("server: %s", msg["data"]["message"])
                continue
            if msg["type"] == "ready":
                continue
            self.events.append(msg)
            if msg["type"] == "suggestion":
                self.suggestions.add(msg["data"]["suggestion_id"])
            if self.sink is not None:
                self.sink.write(json.dumps(msg, ensure_ascii=False) + "\n")
                self.sink.flush()
            if self.on_event is not None:
                self.on_event(msg)
            if msg["type"] == "call.started" and not self.started.done():
                self.started.set_result(msg["call_id"])
            if msg["type"] == "call.ended" and not self.ended.done():
                self.ended.set_result(None)
                return
