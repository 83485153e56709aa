"""Platform simulators: a recorded call sent the way each phone platform sends it.

Written from the platforms' published message formats. ``replay --as PLATFORM`` uses
them so a site can check its set-up without a phone call, and the conformance tests use
them to drive a real server. Each takes a two-channel ``CallAudio`` (agent, customer),
converts it to the platform's audio (8 kHz µ-law for Twilio and AudioHook, L16 for
FreeSWITCH and AudioSocket) and sends it at real-time pace, or as fast as possible.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from agent_assist.audio import g711
from agent_assist.audio.files import CallAudio
from agent_assist.telephony import audiohook, twilio
from agent_assist.telephony.audiosocket import KIND_HANGUP, KIND_UUID, leg_uuids, message

FRAME_MS = 20
PLATFORMS = ("twilio", "audiohook", "freeswitch", "audiosocket")


def channel(audio: CallAudio, speaker: str, rate: int) -> np.ndarray:
    """One speaker's samples at ``rate`` (PCM16)."""
    pcm = audio.pcm16[:, audio.speakers.index(speaker)].astype(np.float32) / 32768.0
    if audio.sample_rate != rate:
        pcm = soxr.resample(pcm, audio.sample_rate, rate)
    return np.clip(np.round(pcm * 32768.0), -32768, 32767).astype(np.int16)


def _frames(total: int, rate: int, start_ms: int, end_ms: int | None) -> range:
    step = rate * FRAME_MS // 1000
    first = start_ms * rate // 1000 // step * step
    last = total if end_ms is None else min(total, end_ms * rate // 1000)
    return range(first, last, step)


class Pacer:
    def __init__(self, fast: bool, offset_ms: int = 0) -> None:
        self.fast = fast
        self.t0 = time.monotonic() - offset_ms / 1000

    async def at(self, ms: int) -> None:
        if self.fast:
            await asyncio.sleep(0)
            return
        delay = self.t0 + ms / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


# -- Twilio Media Streams -------------------------------------------------------------


@dataclass
class TwilioCall:
    url: str
    """``ws://host:port/telephony/twilio``; the signature is computed over ``signed_url``."""
    auth_token: str
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    parameters: dict[str, str] = field(default_factory=dict)
    signed_url: str = ""

    def headers(self) -> dict[str, str]:
        target = self.signed_url or self.url.replace("ws://", "wss://", 1)
        return {"X-Twilio-Signature": twilio.signature(self.auth_token, target)}

    async def send(
        self,
        audio: CallAudio,
        *,
        fast: bool = True,
        start_ms: int = 0,
        end_ms: int | None = None,
        stop: bool = True,
        tracks: tuple[str, ...] = ("inbound", "outbound"),
    ) -> None:
        """One websocket: connected, start, media of both tracks (20 ms each), stop."""
        rate = twilio.RATE
        legs = {
            "inbound": channel(audio, "customer", rate),
            "outbound": channel(audio, "agent", rate),
        }
        total = min(v.size for v in legs.values())
        async with connect(self.url, additional_headers=self.headers(), max_size=None) as ws:
            seq = 1
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "sequenceNumber": str(seq),
                        "start": {
                            "accountSid": "AC" + "0" * 32,
                            "streamSid": self.stream_sid,
                            "callSid": self.call_sid,
                            "tracks": list(tracks),
                            "mediaFormat": {
                                "encoding": "audio/x-mulaw",
                                "sampleRate": rate,
                                "channels": 1,
                            },
                            "customParameters": self.parameters,
                        },
                        "streamSid": self.stream_sid,
                    }
                )
            )
            pacer = Pacer(fast, start_ms)
            step = rate * FRAME_MS // 1000
            for i in _frames(total, rate, start_ms, end_ms):
                ms = i * 1000 // rate
                await pacer.at(ms)
                for track in tracks:
                    seq += 1
                    payload = g711.encode(legs[track][i : i + step], "mulaw")
                    await ws.send(
                        json.dumps(
                            {
                                "event": "media",
                                "sequenceNumber": str(seq),
                                "media": {
                                    "track": track,
                                    "chunk": str(i // step + 1),
                                    "timestamp": str(ms),
                                    "payload": base64.b64encode(payload).decode(),
                                },
                                "streamSid": self.stream_sid,
                            }
                        )
                    )
            if stop:
                seq += 1
                await ws.send(
                    json.dumps(
                        {
                            "event": "stop",
                            "sequenceNumber": str(seq),
                            "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
                            "streamSid": self.stream_sid,
                        }
                    )
                )
                await _closed(ws)


# -- Genesys AudioHook ----------------------------------------------------------------


@dataclass
class AudioHookCall:
    url: str
    api_key: str
    client_secret: str
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    conversation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    media_format: str = "PCMU"
    custom_config: dict[str, Any] = field(default_factory=dict)
    language: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    opened_after_s: float | None = None

    def headers(self, session_id: str, sign: bool = True) -> dict[str, str]:
        host = self.url.split("//", 1)[1].split("/", 1)[0]
        target = "/" + self.url.split("//", 1)[1].split("/", 1)[1]
        headers = {
            "host": host,
            "audiohook-organization-id": self.organization_id,
            "audiohook-session-id": session_id,
            "audiohook-correlation-id": str(uuid.uuid4()),
            "x-api-key": self.api_key,
        }
        if sign:
            sig_input, sig = audiohook.sign_request(
                headers,
                target,
                self.api_key,
                self.client_secret,
                nonce=base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("="),
                created=int(time.time()),
            )
            headers = {**headers, "signature-input": sig_input, "signature": sig}
        return {k: v for k, v in headers.items() if k != "host"}

    async def send(
        self,
        audio: CallAudio,
        *,
        fast: bool = True,
        start_ms: int = 0,
        end_ms: int | None = None,
        close: bool = True,
        pause_ms: tuple[int, int] | None = None,
        ping: bool = True,
        linger_s: float = 0.0,
    ) -> str:
        """One session: open → opened, audio (stereo external/internal), close → closed.

        ``pause_ms`` (from, to): the client pauses there (``paused``), sends nothing, and
        reports the left-out span in ``resumed``. ``linger_s``: stay open that long after
        the audio, hearing the server's ``event`` messages. Returns the closing reason.
        """
        session_id = str(uuid.uuid4())
        rate = audiohook.RATE
        stereo = np.stack([channel(audio, "customer", rate), channel(audio, "agent", rate)], 1)
        async with connect(
            self.url, additional_headers=self.headers(session_id), max_size=None
        ) as ws:
            client = _HookClient(ws, session_id, self.received)
            t0 = time.monotonic()
            await client.send(
                "open",
                {
                    "organizationId": self.organization_id,
                    "conversationId": self.conversation_id,
                    "participant": {
                        "id": str(uuid.uuid4()),
                        "ani": "+815012345678",
                        "aniName": "",
                        "dnis": "+81312345678",
                    },
                    "media": [
                        {
                            "type": "audio",
                            "format": self.media_format,
                            "channels": ["external", "internal"],
                            "rate": rate,
                        },
                        {
                            "type": "audio",
                            "format": self.media_format,
                            "channels": ["external"],
                            "rate": rate,
                        },
                    ],
                    "language": self.language,
                    "customConfig": self.custom_config,
                },
            )
            opened = await client.expect("opened", "disconnect")
            self.opened_after_s = time.monotonic() - t0
            if opened["type"] == "disconnect":
                await client.send("close", {"reason": "disconnect"})
                await client.expect("closed")
                return "disconnect"
            if self.conversation_id == audiohook.PROBE_CONVERSATION:
                await client.send("close", {"reason": "end"})
                await client.expect("closed")
                return "probe"
            if ping:
                await client.send("ping", {})
                await client.expect("pong")
            pacer = Pacer(fast, start_ms)
            step = rate * FRAME_MS // 1000
            paused = False
            for i in _frames(stereo.shape[0], rate, start_ms, end_ms):
                ms = i * 1000 // rate
                await pacer.at(ms)
                if pause_ms and pause_ms[0] <= ms < pause_ms[1]:
                    if not paused:
                        paused = True
                        await client.send("paused", {})
                    client.position += FRAME_MS / 1000
                    continue
                if paused and pause_ms:
                    paused = False
                    await client.send(
                        "resumed",
                        {
                            "start": audiohook.iso_duration(pause_ms[0] / 1000),
                            "discarded": audiohook.iso_duration((pause_ms[1] - pause_ms[0]) / 1000),
                        },
                    )
                block = stereo[i : i + step]
                if self.media_format == "PCMU":
                    await ws.send(g711.encode(block.reshape(-1), "mulaw"))
                else:
                    await ws.send(block.astype("<i2").tobytes())
                client.position += block.shape[0] / rate
            if linger_s:
                await client.listen(linger_s)
            if not close:
                return "dropped"
            await client.send("close", {"reason": "end"})
            await client.expect("closed")
            return "end"


class _HookClient:
    def __init__(self, ws: ClientConnection, session_id: str, log: list[dict[str, Any]]):
        self.ws, self.session_id, self.log = ws, session_id, log
        self.seq = 0
        self.server_seq = 0
        self.position = 0.0

    async def send(self, type_: str, parameters: dict[str, Any]) -> None:
        self.seq += 1
        await self.ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": self.session_id,
                    "type": type_,
                    "seq": self.seq,
                    "serverseq": self.server_seq,
                    "position": audiohook.iso_duration(self.position),
                    "parameters": parameters,
                }
            )
        )

    async def listen(self, seconds: float) -> None:
        """Hear whatever the server sends for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=left))
            except TimeoutError:
                return
            self.log.append(msg)
            self.server_seq = msg["seq"]

    async def expect(self, *types: str) -> dict[str, Any]:
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=10))
            self.log.append(msg)
            self.server_seq = msg["seq"]
            if msg["type"] in types:
                return msg  # type: ignore[no-any-return]


# -- FreeSWITCH mod_audio_fork / jambonz listen ----------------------------------------


@dataclass
class AudioForkCall:
    url: str
    """With ``?token=...`` when the server expects a URL token."""
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    metadata: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000
    subprotocol: str = "audio.drachtio.org"
    basic_auth: tuple[str, str] | None = None

    async def send(
        self,
        audio: CallAudio,
        *,
        fast: bool = True,
        start_ms: int = 0,
        end_ms: int | None = None,
        hangup: bool = True,
    ) -> None:
        """Metadata text frame, then stereo L16 (caller = customer, callee = agent)."""
        rate = self.sample_rate
        stereo = np.stack([channel(audio, "customer", rate), channel(audio, "agent", rate)], 1)
        headers = {}
        if self.basic_auth:
            raw = f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        meta = {"callSid": self.call_id, "sampleRate": rate, "mixType": "stereo", **self.metadata}
        async with connect(
            self.url,
            additional_headers=headers,
            subprotocols=[Subprotocol(self.subprotocol)],
            max_size=None,
        ) as ws:
            await ws.send(json.dumps(meta))
            pacer = Pacer(fast, start_ms)
            step = rate * FRAME_MS // 1000
            for i in _frames(stereo.shape[0], rate, start_ms, end_ms):
                await pacer.at(i * 1000 // rate)
                await ws.send(stereo[i : i + step].astype("<i2").tobytes())
            if not hangup:
                ws.transport.abort()  # a network blip: no close handshake
                return
            await ws.close(1000)


# -- Asterisk AudioSocket -------------------------------------------------------------


@dataclass
class AudioSocketCall:
    host: str
    port: int
    call_uuid: uuid.UUID = field(default_factory=uuid.uuid4)
    kind: int = 0x10  # slin 8 kHz

    @property
    def rate(self) -> int:
        from agent_assist.telephony.audiosocket import SLIN_RATES

        return SLIN_RATES[self.kind]

    async def send_leg(
        self,
        audio: CallAudio,
        speaker: str,
        *,
        fast: bool = True,
        start_ms: int = 0,
        end_ms: int | None = None,
        hangup: bool = True,
    ) -> None:
        """One leg's socket: UUID, slin frames (20 ms), hangup."""
        customer, agent = leg_uuids(self.call_uuid)
        leg_uuid = customer if speaker == "customer" else agent
        pcm = channel(audio, speaker, self.rate)
        _reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(message(KIND_UUID, leg_uuid.bytes))
            pacer = Pacer(fast, start_ms)
            step = self.rate * FRAME_MS // 1000
            for i in _frames(pcm.size, self.rate, start_ms, end_ms):
                await pacer.at(i * 1000 // self.rate)
                writer.write(message(self.kind, pcm[i : i + step].astype("<i2").tobytes()))
                await writer.drain()
            if hangup:
                writer.write(message(KIND_HANGUP))
            else:
                sock = writer.get_extra_info("socket")
                if sock is not None:  # a reset, not an orderly close
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def send(self, audio: CallAudio, *, fast: bool = True) -> None:
        await asyncio.gather(
            self.send_leg(audio, "customer", fast=fast), self.send_leg(audio, "agent", fast=fast)
        )


async def _closed(ws: ClientConnection) -> None:
    """Wait for the server to close after the stream's end (it may send nothing)."""
    try:
        async for _ in ws:
            pass
    except Exception:
        return


# -- replay --as: a simulator plus a console that hears the call ----------------------


@dataclass
class Watched:
    call_id: str
    events: list[dict[str, Any]]


class CallWatcher:
    """A console connection that collects every event of calls whose title matches."""

    def __init__(self, ws_url: str, token: str | None) -> None:
        self.url = ws_url + (f"?token={token}" if token else "")
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.titles: dict[str, str] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    async def __aenter__(self) -> CallWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with connect(self.url, max_size=None) as ws:
            hello = {
                "v": 1,
                "type": "hello",
                "call_id": None,
                "seq": 1,
                "t_ms": 0,
                "data": {"role": "console", "subscribe": "*"},
            }
            await ws.send(json.dumps(hello))
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ready":
                    self._ready.set()
                    continue
                call_id = msg.get("call_id")
                if not call_id:
                    continue
                if msg["type"] == "call.started":
                    self.titles[call_id] = msg["data"].get("title", "")
                self.events.setdefault(call_id, []).append(msg)
                if self.on_event is not None:
                    self.on_event(msg)
                if msg["type"] == "call.ended":
                    self._ended.setdefault(call_id, asyncio.Event()).set()

    def call_titled(self, needle: str) -> str | None:
        return next((c for c, t in self.titles.items() if needle in t), None)

    async def wait_call(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while (call_id := self.call_titled(needle)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no call titled like {needle!r}")
            await asyncio.sleep(0.05)
        return call_id

    async def wait_ended(self, call_id: str, timeout: float = 120) -> list[dict[str, Any]]:
        event = self._ended.setdefault(call_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout=timeout)
        return self.events[call_id]
