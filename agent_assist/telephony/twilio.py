"""Twilio Media Streams (and compatibles: SignalWire, Telnyx, Fonoster), sans I/O.

Twilio sends JSON text frames: ``connected``, ``start`` (callSid, streamSid, tracks,
customParameters, mediaFormat µ-law/8000/1), ``media`` (track, chunk, timestamp in ms
since the stream began, base64 µ-law), ``mark``/``dtmf``, ``stop``. With
``<Start><Stream track="both_tracks">`` the ``inbound`` track is the caller (customer)
and ``outbound`` what the caller hears (the agent). The websocket upgrade carries
``X-Twilio-Signature``: base64 HMAC-SHA1 of the exact URL with the auth token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from agent_assist.audio import g711
from agent_assist.core.events import Speaker
from agent_assist.errors import TelephonyError
from agent_assist.telephony.stream import (
    Action,
    Audio,
    Begin,
    Close,
    Finish,
    language_of,
    speaker_for,
    truthy,
)

RATE = 8000
TRACKS: dict[str, Speaker] = {"inbound": "customer", "outbound": "agent"}


def signature(auth_token: str, url: str) -> str:
    """``X-Twilio-Signature`` of a websocket request to ``url`` (no form parameters)."""
    mac = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def signature_ok(auth_token: str, url: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(signature(auth_token, url), given or "")


class TwilioStream:
    """One Media Streams websocket: ``receive(text)`` → actions."""

    def __init__(self, swap_channels: bool = False) -> None:
        self.swap = swap_channels
        self.started = False
        self.stopped = False
        self.stream_sid = ""
        self._last_seq = 0

    def receive_bytes(self, data: bytes) -> list[Action]:
        raise TelephonyError("Twilio sends JSON text frames only", code="telephony.bad_message")

    def receive_text(self, text: str) -> list[Action]:
        msg = _json(text)
        event = msg.get("event")
        seq = _int(msg.get("sequenceNumber"), 0)
        if seq and seq <= self._last_seq and event == "media":
            return []  # a resent message: the call already has it
        self._last_seq = max(self._last_seq, seq)
        if event == "connected":
            return []
        if event == "start":
            return self._start(msg)
        if event == "media":
            return self._media(msg)
        if event == "stop":
            self.stopped = True
            return [Finish("hangup", final=True), Close(1000, "stream stopped")]
        if event in ("mark", "dtmf"):
            return []
        raise TelephonyError(f"unknown Twilio event {event!r}", code="telephony.bad_message")

    def _start(self, msg: dict[str, Any]) -> list[Action]:
        start = msg.get("start")
        if not isinstance(start, dict) or not isinstance(start.get("callSid"), str):
            raise TelephonyError("'start' without start.callSid", code="telephony.bad_message")
        fmt = start.get("mediaFormat") or {}
        if (fmt.get("encoding"), _int(fmt.get("sampleRate"), 0), _int(fmt.get("channels"), 1)) != (
            "audio/x-mulaw",
            RATE,
            1,
        ):
            raise TelephonyError(
                f"media format {fmt!r}: expected audio/x-mulaw, 8000 Hz, 1 channel",
                code="telephony.unsupported_media",
            )
        tracks = start.get("tracks") or []
        unknown = [t for t in tracks if t not in TRACKS]
        if unknown or not tracks:
            raise TelephonyError(
                f"tracks {tracks!r}: expected 'inbound' and/or 'outbound'",
                code="telephony.unknown_track",
            )
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            params = {}
        self.swap = self.swap ^ truthy(params.get("swap", False))
        self.stream_sid = str(msg.get("streamSid") or start.get("streamSid") or "")
        self.started = True
        call_sid = start["callSid"]
        agent = params.get("agent")
        return [
            Begin(
                call_key=f"twilio:{call_sid}",
                stream_id=self.stream_sid,
                sample_rate=RATE,
                agent=agent if isinstance(agent, str) and agent else None,
                language=language_of(params.get("language")),
                title=str(params.get("title") or f"Twilio {call_sid}"),
                customer_id=params.get("customer")
                if isinstance(params.get("customer"), str)
                else None,
            )
        ]

    def _media(self, msg: dict[str, Any]) -> list[Action]:
        if not self.started:
            raise TelephonyError("'media' before 'start'", code="telephony.bad_message")
        media = msg.get("media")
        if not isinstance(media, dict):
            raise TelephonyError("'media' without a media object", code="telephony.bad_message")
        track = media.get("track", "inbound")
        if track not in TRACKS:
            raise TelephonyError(
                f"track {track!r}: expected 'inbound' or 'outbound'", code="telephony.unknown_track"
            )
        try:
            payload = base64.b64decode(media.get("payload", ""), validate=True)
        except (binascii.Error, TypeError) as exc:
            raise TelephonyError("media.payload is not base64", code="audio.bad_frame") from exc
        at_ms = _int(media.get("timestamp"), -1)
        pcm = g711.decode(payload, "mulaw")
        at = at_ms * RATE // 1000 if at_ms >= 0 else None
        return [Audio(speaker_for(TRACKS[track], self.swap), pcm, at)]

    def connection_lost(self, code: int | None = None) -> list[Action]:
        """The socket closed without ``stop``: the call may come back (a new stream)."""
        if self.stopped or not self.started:
            return []
        return [Finish("disconnected", final=False)]


def _json(text: str) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise TelephonyError("not JSON", code="telephony.bad_message") from exc
    if not isinstance(msg, dict):
        raise TelephonyError("not a JSON object", code="telephony.bad_message")
    return msg


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default
