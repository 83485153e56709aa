"""The one source client: a call streamed into a server, over a websocket or in-process.

Replay of a file, a scripted call and the live microphone all send the same messages
(hello, call.start, audio frames or turns, feedback, call.end, all built by
``protocol``) and read the same events back; they differ only in what they send in
between. ``SourceClient`` talks to a server over a websocket; ``LocalSource`` hands the
same messages to this process's ``CallDesk``, so a recording runs through the pipeline
with no server and no socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np
import numpy.typing as npt

from agent_assist.errors import AgentAssistError, ProtocolError
from agent_assist.protocol import (
    CallEnd,
    CallStart,
    Feedback,
    Hello,
    TurnIn,
    audio_frame,
    encode_client_message,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from agent_assist.runtime.desk import CallDesk
    from agent_assist.runtime.hub import Subscriber
    from agent_assist.runtime.live_call import LiveCall

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]
Block = npt.NDArray[np.int16]
"""PCM16 audio, shape (frames, channels)."""


class CallSource(Protocol):
    """What replay needs from a way into the pipeline."""

    events: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    suggestions: set[str]

    async def start(self, start: CallStart, timeout: float = 30) -> str: ...

    async def send_block(self, block: Block) -> None: ...

    async def send_turn(self, call_id: str, turn: TurnIn) -> None: ...

    async def send_feedback(self, feedback: Feedback) -> None: ...

    async def end(self, call_id: str, t_ms: int = 0, timeout: float | None = None) -> None: ...


class _EventLog:
    """The events of one call as the source hears them: kept, written out, passed on."""

    def __init__(self, sink: TextIO | None, on_event: EventSink | None) -> None:
        self.sink = sink
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.suggestions: set[str] = set()
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[str] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()

    def take(self, msg: dict[str, Any]) -> bool:
        """Record one server message; True once the call has ended."""
        if msg["type"] == "error":
            self.errors.append(msg)
            if not self.started.done():
                self.started.set_exception(
                    ProtocolError(msg["data"]["message"], code=msg["data"]["code"])
                )
            else:
                log.warning("server: %s", msg["data"]["message"])
            return False
        if msg["type"] == "ready":
            return False
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
            return True
        return False

    def refused(self, err: AgentAssistError) -> None:
        """A request the pipeline refused, recorded as the server would have sent it."""
        self.take({"type": "error", "data": {"code": err.code, "message": err.message}})


class SourceClient(_EventLog):
    """A source connection to a server: ``connect``, then ``start``, stream, ``end``."""

    def __init__(
        self, ws: ClientConnection, sink: TextIO | None = None, on_event: EventSink | None = None
    ) -> None:
        super().__init__(sink, on_event)
        self.ws = ws
        self.seq = 0
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
        from websockets.asyncio.client import connect  # only a networked source needs it

        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with connect(url, max_size=None, additional_headers=headers) as ws:
            client = cls(ws, sink, on_event)
            try:
                yield client
            finally:
                if client._reader is not None and not client._reader.done():
                    client._reader.cancel()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def start(self, start: CallStart, timeout: float = 30) -> str:
        """Say hello as a source, start the call, and return its id once the server has it."""
        await self.ws.send(encode_client_message(Hello(self.next_seq(), "source", None, None, 0)))
        self._reader = asyncio.create_task(self._read())
        await self.ws.send(encode_client_message(_with_seq(start, self.next_seq())))
        return await asyncio.wait_for(self.started, timeout=timeout)

    async def send_block(self, block: Block) -> None:
        for channel in range(block.shape[1]):
            await self.ws.send(audio_frame(channel, block[:, channel].astype("<i2").tobytes()))

    async def send_turn(self, call_id: str, turn: TurnIn) -> None:
        turn = TurnIn(self.next_seq(), turn.speaker, turn.t_ms, turn.end_ms, turn.text)
        await self.ws.send(encode_client_message(turn, call_id))

    async def send_feedback(self, feedback: Feedback) -> None:
        await self.ws.send(
            encode_client_message(
                Feedback(self.next_seq(), feedback.call_id, feedback.suggestion_id, feedback.action)
            )
        )

    async def end(self, call_id: str, t_ms: int = 0, timeout: float | None = None) -> None:
        """Hang up and wait until the server has ended the call (and sent its last events)."""
        await self.ws.send(encode_client_message(CallEnd(self.next_seq(), t_ms, "hangup"), call_id))
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self.ended), timeout)
            await self._reader

    async def _read(self) -> None:
        async for message in self.ws:
            if self.take(json.loads(message)):
                return


class LocalSource(_EventLog):
    """A source inside the process: the call goes to ``desk`` directly, no socket."""

    def __init__(
        self, desk: CallDesk, sink: TextIO | None = None, on_event: EventSink | None = None
    ) -> None:
        super().__init__(sink, on_event)
        self.desk = desk
        self.call: LiveCall | None = None
        self._sub: Subscriber | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, start: CallStart, timeout: float = 30) -> str:
        hub = self.desk.services.hub
        sub = self._sub = hub.add(None, bounded=False)  # every event, however fast they come

        def follow(call: LiveCall) -> None:
            sub.own_call = call.call_id

        self._reader = asyncio.create_task(self._read(sub))
        try:
            self.call = await self.desk.open(start, start.agent, follow)
        except AgentAssistError as err:
            self.refused(err)
            await self.close()
            return await self.started  # raises the refusal
        return await asyncio.wait_for(asyncio.shield(self.started), timeout)

    async def send_block(self, block: Block) -> None:
        assert self.call is not None
        for channel in range(block.shape[1]):
            self.call.push_audio(channel, block[:, channel].astype("<i2").tobytes())
        await asyncio.sleep(0)  # let recognition and the reader run between blocks

    async def send_turn(self, call_id: str, turn: TurnIn) -> None:
        assert self.call is not None
        self.call.push_turn(turn)
        await asyncio.sleep(0)

    async def send_feedback(self, feedback: Feedback) -> None:
        try:
            self.desk.feedback(feedback)
        except AgentAssistError as err:
            self.refused(err)

    async def end(self, call_id: str, t_ms: int = 0, timeout: float | None = None) -> None:
        assert self.call is not None
        await self.desk.end(self.call, "hangup")
        await asyncio.wait_for(asyncio.shield(self.ended), timeout)
        await self.close()

    async def close(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        if self._sub is not None:
            self.desk.services.hub.remove(self._sub)

    async def _read(self, sub: Subscriber) -> None:
        while True:
            _call_id, _seq, body = await sub.queue.get()
            if self.take(json.loads(body)):
                return


def _with_seq(start: CallStart, seq: int) -> CallStart:
    from dataclasses import replace

    return replace(start, seq=seq)
