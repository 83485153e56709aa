"""FreeSWITCH mod_audio_fork / mod_audio_stream and jambonz ``listen``, sans I/O.

One wire format: the first frame is JSON text (the call's metadata: whatever
``uuid_audio_fork … start <url> <mix> <rate> <metadata>`` was given, or jambonz's call
attributes plus ``sampleRate``, ``mixType`` and the verb's ``metadata``), then binary
L16 (signed 16-bit little-endian) frames. ``stereo`` interleaves the caller (channel 0,
the customer) and the callee (channel 1, the agent); ``mono`` carries one party, named
by ``speaker`` in the metadata (default customer); ``mixed`` (both parties summed in one
channel) cannot be told apart and is refused with ``telephony.unsupported_layout``.
Subprotocols: ``audio.drachtio.org`` (mod_audio_fork) and ``audio.jambonz.org``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import numpy as np

from agent_assist.audio import g711
from agent_assist.core.events import Speaker
from agent_assist.errors import TelephonyError
from agent_assist.telephony.stream import (
    Action,
    Audio,
    Begin,
    Finish,
    language_of,
    speaker_for,
    truthy,
)

SUBPROTOCOLS = ("audio.drachtio.org", "audio.jambonz.org")
RATES = (8000, 16000, 24000, 32000, 48000)
CALL_ID_KEYS = ("callSid", "call_sid", "callId", "call_id", "uuid", "callid")


class AudioForkStream:
    """One audio-fork websocket: ``receive_text`` / ``receive_bytes`` → actions."""

    def __init__(self, swap_channels: bool = False) -> None:
        self.swap = swap_channels
        self.started = False
        self.speakers: list[Speaker] = []
        self.samples = 0
        self._rest = b""

    def receive_text(self, text: str) -> list[Action]:
        if self.started:
            return []  # later text frames (jambonz dtmf events, ...) carry no audio
        try:
            meta = json.loads(text)
        except ValueError as exc:
            raise TelephonyError(
                "the metadata frame is not JSON", code="telephony.bad_message"
            ) from exc
        if not isinstance(meta, dict):
            raise TelephonyError(
                "the metadata frame is not an object", code="telephony.bad_message"
            )
        nested = meta.get("metadata")
        fields: dict[str, Any] = {**meta, **nested} if isinstance(nested, dict) else dict(meta)
        call_id = next((fields[k] for k in CALL_ID_KEYS if isinstance(fields.get(k), str)), None)
        if not call_id:
            raise TelephonyError(
                f"metadata names no call (one of {', '.join(CALL_ID_KEYS)})",
                code="telephony.bad_message",
            )
        rate = _rate(fields.get("sampleRate", fields.get("sample_rate", 8000)))
        mix = str(fields.get("mixType", fields.get("mix_type", "mono"))).lower()
        swap = self.swap ^ truthy(fields.get("swap", False))
        if mix == "stereo":
            self.speakers = [speaker_for("customer", swap), speaker_for("agent", swap)]
        elif mix == "mono":
            who = fields.get("speaker", "customer")
            if who not in ("customer", "agent"):
                raise TelephonyError(
                    f"speaker {who!r}: 'customer' or 'agent'", code="telephony.unsupported_layout"
                )
            self.speakers = [speaker_for(who, swap)]
        else:
            raise TelephonyError(
                f"mixType {mix!r}: use 'stereo' (or 'mono' per party); a mixed channel "
                "cannot be split into agent and customer",
                code="telephony.unsupported_layout",
            )
        self.started = True
        agent = fields.get("agent")
        customer = fields.get("customer")
        # positions restart with every connection: each one is its own stream
        stream = f"{call_id}:{mix}:{self.speakers[0]}:{secrets.token_hex(4)}"
        return [
            Begin(
                call_key=f"freeswitch:{call_id}",
                stream_id=stream,
                sample_rate=rate,
                agent=agent if isinstance(agent, str) and agent else None,
                language=language_of(fields.get("language")),
                title=str(fields.get("title") or f"FreeSWITCH {call_id}"),
                customer_id=customer if isinstance(customer, str) and customer else None,
            )
        ]

    def receive_bytes(self, data: bytes) -> list[Action]:
        if not self.started:
            raise TelephonyError(
                "audio before the metadata text frame", code="telephony.metadata_required"
            )
        data = self._rest + data
        width = 2 * len(self.speakers)
        whole = len(data) - len(data) % width
        self._rest = data[whole:]  # a frame may split a sample; keep the half for the next
        if not whole:
            return []
        frames = g711.decode(data[:whole], "pcm16").reshape(-1, len(self.speakers))
        at = self.samples
        self.samples += frames.shape[0]
        return [
            Audio(speaker, np.ascontiguousarray(frames[:, i]), at)
            for i, speaker in enumerate(self.speakers)
        ]

    def connection_lost(self, code: int | None = None) -> list[Action]:
        """A normal close (1000) is the end of the call; anything else may come back."""
        if not self.started:
            return []
        if code == 1000:
            return [Finish("hangup", final=True)]
        return [Finish("disconnected", final=False)]


def _rate(value: object) -> int:
    if isinstance(value, str):
        value = {"8k": 8000, "16k": 16000}.get(value.lower(), value)
        try:
            value = int(str(value))
        except ValueError:
            value = 0
    if not isinstance(value, int) or value not in RATES:
        raise TelephonyError(
            f"sampleRate {value!r}: one of {RATES}", code="telephony.unsupported_media"
        )
    return value
