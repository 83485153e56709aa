"""Platform calls onto the server's calls: start, place audio, resume, end after grace.

A platform call (keyed by the platform's own call id) maps to one ``LiveCall`` with the
usual two channels. Streams attach and detach: one stereo stream (Twilio, AudioHook,
stereo forks) or one per party (AudioSocket legs, mono forks). A stream that drops
without the platform ending the call leaves the call waiting for ``grace_s``; a stream
with the same call id in that window continues it. Each stream's positions are offset
onto the call clock (``CallClock``): resent audio is dropped, holes become silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from agent_assist.errors import TelephonyError
from agent_assist.protocol import CallStart
from agent_assist.supervision.accounts import valid_name
from agent_assist.telephony.stream import CALL_SPEAKERS, Audio, Begin, CallClock, Finish

if TYPE_CHECKING:
    from agent_assist.runtime.live_call import LiveCall
    from agent_assist.runtime.services import Services

log = logging.getLogger(__name__)


class CallHost(Protocol):
    """What the bridge needs of the server: its way of starting and ending calls."""

    services: Services

    async def open_call(self, start: CallStart, agent: str | None, source: str) -> LiveCall: ...

    async def end_call(self, call: LiveCall, reason: str) -> None: ...


@dataclass
class PlatformCall:
    key: str
    source: str
    live: LiveCall
    clock: CallClock
    rate: int
    started: float = field(default_factory=time.monotonic)
    bases: dict[str, int] = field(default_factory=dict)
    streams: set[object] = field(default_factory=set)
    dropped: bool = False  # a stream left without the platform ending the call
    expiry: asyncio.Task[None] | None = None
    final_reason: str = ""


class CallBridge:
    def __init__(self, host: CallHost, grace_s: float, max_gap_s: float) -> None:
        self.host = host
        self.grace_s = grace_s
        self.max_gap_s = max_gap_s
        self.calls: dict[str, PlatformCall] = {}

    async def attach(self, begin: Begin, source: str, stream: object) -> PlatformCall:
        """The call ``begin`` names, started now or continued (a resume or a second leg)."""
        pc = self.calls.get(begin.call_key)
        if pc is not None and pc.source != source:
            raise TelephonyError(
                f"call {begin.call_key} belongs to another source", code="auth.forbidden"
            )
        if pc is not None and not pc.live.ended:
            if begin.sample_rate != pc.rate:
                raise TelephonyError(
                    f"{begin.sample_rate} Hz joins a {pc.rate} Hz call",
                    code="telephony.unsupported_media",
                )
            if pc.expiry is not None:
                pc.expiry.cancel()
                pc.expiry = None
            pc.streams.add(stream)
            log.info("%s continues call %s", begin.call_key, pc.live.call_id)
            return pc
        if begin.agent is not None and not valid_name(begin.agent):
            raise TelephonyError(
                f"agent {begin.agent!r}: use 1-64 letters, digits or - _ . @",
                code="telephony.bad_agent",
            )
        config = self.host.services.config
        start = CallStart(
            seq=0,
            language=begin.language or config.asr.default_language,
            sample_rate=begin.sample_rate,
            channels=CALL_SPEAKERS,
            title=begin.title,
            customer_id=begin.customer_id,
            mode="audio",
            agent=begin.agent,
            encoding="pcm16",
        )
        live = await self.host.open_call(start, begin.agent, source)
        clock = CallClock(len(CALL_SPEAKERS), round(self.max_gap_s * begin.sample_rate))
        pc = PlatformCall(begin.call_key, source, live, clock, begin.sample_rate)
        pc.streams.add(stream)
        self.calls[begin.call_key] = pc
        return pc

    def push(self, pc: PlatformCall, stream_id: str, audio: Audio) -> None:
        if pc.live.ended:
            return
        channel = CALL_SPEAKERS.index(audio.speaker)
        base = pc.bases.get(stream_id)
        if base is None:
            # A new stream starts where the wall clock says it does; after a drop, never
            # before what the call already has on that channel.
            elapsed = round((time.monotonic() - pc.started) * pc.rate)
            base = max(elapsed, pc.clock.position[channel]) if pc.dropped else elapsed
            pc.bases[stream_id] = base
        at = pc.clock.position[channel] if audio.at is None else base + audio.at
        pcm = pc.clock.place(channel, at, audio.pcm)
        if pcm.size:
            pc.live.push_audio(channel, pcm.astype("<i2").tobytes())

    async def detach(self, pc: PlatformCall, stream: object, finish: Finish) -> None:
        pc.streams.discard(stream)
        if pc.streams or pc.live.ended:
            return
        if finish.final or self.grace_s == 0:
            await self._end(pc, finish.reason)
            return
        pc.dropped = True
        pc.final_reason = finish.reason
        pc.expiry = asyncio.create_task(self._expire(pc), name=f"grace {pc.key}")

    async def _expire(self, pc: PlatformCall) -> None:
        await asyncio.sleep(self.grace_s)
        pc.expiry = None
        if not pc.streams:
            await self._end(pc, pc.final_reason)

    async def _end(self, pc: PlatformCall, reason: str) -> None:
        if self.calls.get(pc.key) is pc:
            del self.calls[pc.key]
        if not pc.live.ended:
            await self.host.end_call(pc.live, reason)

    async def close(self) -> None:
        """Server shutdown: stop waiting for streams to come back."""
        for pc in list(self.calls.values()):
            if pc.expiry is not None:
                pc.expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pc.expiry
        self.calls.clear()
