"""Asterisk AudioSocket over TCP, sans I/O.

Every message is type (1 byte), payload length (2 bytes, big-endian), payload: ``0x01``
the stream's UUID (16 bytes, first), ``0x10`` signed linear 16-bit little-endian mono at
8 kHz (``0x11``–``0x16``: 12, 16, 24, 32, 44.1, 48 kHz), ``0x03`` a DTMF digit, ``0x00``
hangup, ``0xff`` an error code. AudioSocket carries one party per socket, so the two
legs of a call are paired by their UUIDs: both share the first 35 hex digits, and the
last one names the leg, ``1`` the customer and ``2`` the agent (the dialplan makes them
with ``${CALL_UUID:0:35}1`` and ``…2``, see the README).
"""

from __future__ import annotations

import secrets
import uuid

from agent_assist.audio import g711
from agent_assist.core.events import Speaker
from agent_assist.errors import TelephonyError
from agent_assist.telephony.stream import Action, Audio, Begin, Finish, language_of

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_ERROR = 0x00, 0x01, 0x03, 0xFF
SLIN_RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
}
LEGS: dict[str, Speaker] = {"1": "customer", "2": "agent"}


def message(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message (what Asterisk writes)."""
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def leg_uuids(call: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The (customer, agent) stream UUIDs of one call, by the pairing rule above."""
    text = str(call)[:35]
    return uuid.UUID(text + "1"), uuid.UUID(text + "2")


class TlvReader:
    """Bytes in whatever pieces TCP delivers → whole (kind, payload) messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= 3:
            length = int.from_bytes(self._buf[1:3], "big")
            if len(self._buf) < 3 + length:
                break
            out.append((self._buf[0], bytes(self._buf[3 : 3 + length])))
            del self._buf[: 3 + length]
        return out


class AudioSocketLeg:
    """One AudioSocket connection (one party); ``receive(kind, payload)`` → actions."""

    def __init__(self, agent: str | None = None, language: str = "") -> None:
        self.agent = agent
        self.language = language_of(language)
        self.stream_uuid: uuid.UUID | None = None
        self.speaker: Speaker = "customer"
        self.rate = 0
        self.begun = False
        self.samples = 0
        self.ended = False

    @property
    def call_key(self) -> str:
        assert self.stream_uuid is not None
        return f"audiosocket:{str(self.stream_uuid)[:35]}"

    def receive(self, kind: int, payload: bytes) -> list[Action]:
        if self.stream_uuid is None:
            if kind != KIND_UUID:
                raise TelephonyError(
                    "the first message must be the UUID", code="telephony.bad_message"
                )
            if len(payload) != 16:
                raise TelephonyError("a UUID is 16 bytes", code="telephony.bad_message")
            self.stream_uuid = uuid.UUID(bytes=payload)
            leg = str(self.stream_uuid)[-1]
            if leg not in LEGS:
                raise TelephonyError(
                    f"UUID {self.stream_uuid} names no leg: end it in 1 (customer) or 2 (agent)",
                    code="telephony.unknown_track",
                )
            self.speaker = LEGS[leg]
            return []
        if kind in SLIN_RATES:
            if len(payload) % 2:
                raise TelephonyError("slin audio of an odd byte length", code="audio.bad_frame")
            rate = SLIN_RATES[kind]
            out: list[Action] = []
            if not self.begun:
                self.rate, self.begun = rate, True
                key = self.call_key
                out.append(
                    Begin(
                        call_key=key,
                        stream_id=f"{self.stream_uuid}:{secrets.token_hex(4)}",
                        sample_rate=rate,
                        agent=self.agent,
                        language=self.language,
                        title=f"Asterisk {key.split(':', 1)[1]}0",
                    )
                )
            elif rate != self.rate:
                raise TelephonyError(
                    f"the rate changed from {self.rate} to {rate} Hz",
                    code="telephony.unsupported_media",
                )
            pcm = g711.decode(payload, "pcm16")
            out.append(Audio(self.speaker, pcm, self.samples))
            self.samples += pcm.size
            return out
        if kind == KIND_DTMF:
            return []
        if kind == KIND_HANGUP:
            self.ended = True
            return [Finish("hangup", final=True)] if self.begun else []
        if kind == KIND_ERROR:
            self.ended = True
            return [Finish("platform_error", final=False)] if self.begun else []
        raise TelephonyError(f"unknown AudioSocket kind 0x{kind:02x}", code="telephony.bad_message")

    def connection_lost(self) -> list[Action]:
        if self.ended or not self.begun:
            return []
        self.ended = True
        return [Finish("disconnected", final=False)]
