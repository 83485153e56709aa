"""Genesys Cloud AudioHook (Monitor), protocol version 2, sans I/O.

Text frames are envelopes ``{version: "2", id, type, seq, serverseq, position,
parameters}``; binary frames are audio in the media the server chose in ``opened``
(PCMU or L16, 8 kHz, channels interleaved in the listed order: ``external`` is the
customer, ``internal`` the agent). ``open`` is answered at once (Genesys gives up after
about 5 s); an ``open`` for conversation ``00000000-…`` is the connection probe: it is
answered and closed without a call. A session cannot be resumed, but a new session for
the same conversation continues the same call.

The websocket upgrade is authenticated by ``X-API-KEY`` and an RFC 9421 HTTP message
signature (HMAC-SHA256 with the integration's client secret), see ``verify_request``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_assist.audio import g711
from agent_assist.core.events import Speaker
from agent_assist.errors import TelephonyError
from agent_assist.telephony.stream import (
    Action,
    Audio,
    Begin,
    Close,
    Finish,
    Reply,
    language_of,
    speaker_for,
    truthy,
)

RATE = 8000
PROBE_CONVERSATION = "00000000-0000-0000-0000-000000000000"
CHANNELS: dict[str, Speaker] = {"external": "customer", "internal": "agent"}
SIGNED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
MAX_CLOCK_SKEW_S = 3
_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")


def duration(value: object) -> float:
    """ISO 8601 seconds (``PT1.25S``) → 1.25; anything else is a protocol error."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise TelephonyError(
            f"duration {value!r}: expected PT<seconds>S", code="telephony.bad_message"
        )
    return float(m.group(1))


def iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


class AudioHookSession:
    """One AudioHook websocket; ``receive_text`` / ``receive_bytes`` → actions."""

    def __init__(self, header_org_id: str | None = None, swap_channels: bool = False) -> None:
        self.header_org_id = header_org_id
        self.swap = swap_channels
        self.session_id = ""
        self.state = "connected"  # → open | probe → closed
        self.client_seq = 0
        self.server_seq = 0
        self.channels: list[Speaker] = []
        self.channel_names: list[str] = []
        self.format = "PCMU"
        self.samples = 0  # per channel, received in this session
        self.offset = 0  # samples the client left out (paused, discarded)
        self.paused = False
        self.conversation = ""

    # -- messages to Genesys ------------------------------------------------------------

    def _reply(self, type_: str, parameters: dict[str, Any]) -> Reply:
        self.server_seq += 1
        return Reply(
            json.dumps(
                {
                    "version": "2",
                    "type": type_,
                    "seq": self.server_seq,
                    "clientseq": self.client_seq,
                    "id": self.session_id,
                    "parameters": parameters,
                },
                separators=(",", ":"),
            )
        )

    def _disconnect(self, reason: str, info: str) -> list[Action]:
        """Ask the client to close (it answers with ``close``, we with ``closed``)."""
        return [self._reply("disconnect", {"reason": reason, "info": info})]

    # -- messages from Genesys ----------------------------------------------------------

    def receive_text(self, text: str) -> list[Action]:
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise TelephonyError("not JSON", code="telephony.bad_message") from exc
        if not isinstance(msg, dict) or msg.get("version") != "2" or "type" not in msg:
            raise TelephonyError(
                "not an AudioHook v2 message (version, type)", code="telephony.bad_message"
            )
        seq = msg.get("seq")
        if not isinstance(seq, int) or seq != self.client_seq + 1:
            raise TelephonyError(
                f"seq {seq!r}: expected {self.client_seq + 1}", code="telephony.bad_sequence"
            )
        self.client_seq = seq
        if not self.session_id:
            self.session_id = str(msg.get("id", ""))
        params = msg.get("parameters") or {}
        if not isinstance(params, dict):
            raise TelephonyError("parameters must be an object", code="telephony.bad_message")
        kind = msg["type"]
        if kind == "open":
            return self._open(params)
        if self.state == "connected":
            raise TelephonyError(f"{kind!r} before 'open'", code="telephony.bad_message")
        if kind == "ping":
            return [self._reply("pong", {})]
        if kind == "close":
            was_call = self.state == "open"
            self.state = "closed"
            out: list[Action] = [self._reply("closed", {})]
            if was_call:
                # AudioHook never resumes a session, but the next session of the same
                # conversation continues the call: end it only after the grace window.
                out.append(Finish("hangup", final=False))
            return [*out, Close(1000, "closed")]
        if kind == "paused":
            self.paused = True
            return []
        if kind in ("resumed", "discarded"):
            if kind == "resumed":
                self.paused = False
            # the left-out audio becomes silence: the next frame's position jumps past it
            self.offset += round(duration(params.get("discarded", "PT0S")) * RATE)
            return []
        if kind == "update":
            return [self._reply("updated", {})]
        if kind == "error":
            return []
        raise TelephonyError(f"unknown AudioHook message {kind!r}", code="telephony.bad_message")

    def _open(self, params: dict[str, Any]) -> list[Action]:
        if self.state != "connected":
            raise TelephonyError("a second 'open'", code="telephony.bad_message")
        org = params.get("organizationId")
        conversation = params.get("conversationId")
        if not isinstance(org, str) or not isinstance(conversation, str):
            raise TelephonyError(
                "open needs organizationId and conversationId", code="telephony.bad_message"
            )
        if self.header_org_id is not None and org != self.header_org_id:
            self.state = "refused"
            return self._disconnect(
                "unauthorized", "organizationId does not match Audiohook-Organization-Id"
            )
        chosen = _choose_media(params.get("media"))
        if conversation == PROBE_CONVERSATION:
            self.state = "probe"
            return [self._reply("opened", {"media": [chosen] if chosen else []})]
        if chosen is None:
            self.state = "refused"
            return self._disconnect(
                "error",
                "telephony.unsupported_media: offer PCMU or L16 at 8000 Hz with channels "
                "external and/or internal",
            )
        self.state = "open"
        self.conversation = conversation
        self.format = chosen["format"]
        custom = params.get("customConfig") or {}
        if not isinstance(custom, dict):
            custom = {}
        swap = self.swap ^ truthy(custom.get("swap", False))
        self.channel_names = list(chosen["channels"])
        self.channels = [speaker_for(CHANNELS[c], swap) for c in self.channel_names]
        agent = custom.get("agent")
        participant = params.get("participant") or {}
        ani = participant.get("ani") if isinstance(participant, dict) else None
        return [
            self._reply("opened", {"media": [chosen], "startPaused": False}),
            Begin(
                call_key=f"audiohook:{conversation}",
                stream_id=self.session_id,
                sample_rate=RATE,
                agent=agent if isinstance(agent, str) and agent else None,
                language=language_of(params.get("language")),
                title=f"Genesys {conversation}" + (f" ({ani})" if ani else ""),
            ),
        ]

    def receive_bytes(self, data: bytes) -> list[Action]:
        if self.state != "open":
            if self.state in ("probe", "refused", "closed"):
                return []
            raise TelephonyError("audio before 'opened'", code="telephony.bad_message")
        n = len(self.channels)
        width = n * (1 if self.format == "PCMU" else 2)
        if len(data) % width:
            raise TelephonyError(
                f"audio frame of {len(data)} bytes is not whole {n}-channel samples",
                code="audio.bad_frame",
            )
        pcm = g711.decode(data, "mulaw" if self.format == "PCMU" else "pcm16")
        frames = pcm.reshape(-1, n)
        at = self.offset + self.samples
        self.samples += frames.shape[0]
        return [
            Audio(speaker, np.ascontiguousarray(frames[:, i]), at)
            for i, speaker in enumerate(self.channels)
        ]

    def transcript_event(
        self, utterance_id: str, speaker: Speaker, text: str, offset_s: float, duration_s: float
    ) -> Reply | None:
        """One of our finals as an AudioHook ``event`` (transcript entity) for Genesys."""
        if self.state != "open" or speaker not in self.channels:
            return None
        channel = self.channel_names[self.channels.index(speaker)]
        entity = {
            "type": "transcript",
            "data": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.session_id}/{utterance_id}")),
                "channel": channel,
                "isFinal": True,
                "offset": iso_duration(max(0.0, offset_s)),
                "duration": iso_duration(max(0.0, duration_s)),
                "alternatives": [
                    {
                        "confidence": 1.0,
                        "interpretations": [{"type": "display", "transcript": text}],
                    }
                ],
            },
        }
        return self._reply("event", {"entities": [entity]})

    def connection_lost(self, code: int | None = None) -> list[Action]:
        if self.state == "open":
            self.state = "closed"
            return [Finish("disconnected", final=False)]
        return []


def _choose_media(offered: object) -> dict[str, Any] | None:
    """Prefer stereo (both parties apart), then PCMU over L16 (what Genesys sends best)."""
    if not isinstance(offered, list):
        return None
    usable = [
        m
        for m in offered
        if isinstance(m, dict)
        and m.get("type") == "audio"
        and m.get("format") in ("PCMU", "L16")
        and m.get("rate") == RATE
        and isinstance(m.get("channels"), list)
        and 1 <= len(m["channels"]) <= 2
        and all(c in CHANNELS for c in m["channels"])
        and len(set(m["channels"])) == len(m["channels"])
    ]
    if not usable:
        return None
    usable.sort(key=lambda m: (-len(m["channels"]), m["format"] != "PCMU"))
    best = usable[0]
    return {k: best[k] for k in ("type", "format", "channels", "rate")}


# -- RFC 9421 HTTP message signatures, as AudioHook uses them ---------------------------


@dataclass(frozen=True)
class SignatureInput:
    label: str
    components: tuple[str, ...]
    params: dict[str, str | int]
    raw_params: str
    """The inner list as sent: the ``@signature-params`` line signs it verbatim."""


_PARAM = re.compile(r';\s*([a-z][a-z0-9_.*-]*)=(?:"((?:[^"\\]|\\.)*)"|(-?\d+))')


def parse_signature_input(value: str) -> SignatureInput:
    """``sig1=("@request-target" ...);keyid="...";nonce="...";alg=...;created=N;expires=N``."""
    m = re.match(r'\s*([a-z][a-z0-9_.*-]*)=(\((?:\s*"[^"]*")*\s*\))(.*)$', value)
    if m is None:
        raise TelephonyError("Signature-Input is not a signature", code="auth.bad_signature")
    label, inner, rest = m.group(1), m.group(2), m.group(3)
    components = tuple(re.findall(r'"([^"]*)"', inner))
    params: dict[str, str | int] = {}
    tail = rest.split(",", 1)[0]  # only the first signature is used
    for pm in _PARAM.finditer(tail):
        params[pm.group(1)] = pm.group(2) if pm.group(2) is not None else int(pm.group(3))
    return SignatureInput(label, components, params, inner + tail.rstrip())


def parse_signature(value: str, label: str) -> bytes:
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == label and item.startswith(":") and item.endswith(":"):
            try:
                return base64.b64decode(item[1:-1], validate=True)
            except binascii.Error as exc:
                raise TelephonyError("Signature is not base64", code="auth.bad_signature") from exc
    raise TelephonyError(f"no signature labelled {label!r}", code="auth.bad_signature")


def signature_base(
    components: tuple[str, ...], raw_params: str, headers: Mapping[str, str], target: str
) -> str:
    lines = []
    for name in components:
        if name == "@request-target":
            value: str | None = target
        elif name == "@authority":
            value = headers.get("host")
        elif name.startswith("@"):
            raise TelephonyError(f"unsupported component {name}", code="auth.bad_signature")
        else:
            value = headers.get(name)
        if value is None:
            raise TelephonyError(f"signed header {name} is missing", code="auth.bad_signature")
        lines.append(f'"{name}": {value.strip()}')
    lines.append(f'"@signature-params": {raw_params}')
    return "\n".join(lines)


def sign_request(
    headers: Mapping[str, str],
    target: str,
    api_key: str,
    client_secret: str,
    nonce: str,
    created: int,
    expires: int | None = None,
) -> tuple[str, str]:
    """(Signature-Input, Signature) for a request: what a Genesys client sends."""
    inner = "(" + " ".join(f'"{c}"' for c in SIGNED_COMPONENTS) + ")"
    raw = f'{inner};keyid="{api_key}";nonce="{nonce}";alg="hmac-sha256";created={created}'
    if expires is not None:
        raw += f";expires={expires}"
    base = signature_base(SIGNED_COMPONENTS, raw, headers, target)
    key = base64.b64decode(client_secret) if client_secret else b""
    mac = hmac.new(key, base.encode(), hashlib.sha256).digest()
    return f"sig1={raw}", f"sig1=:{base64.b64encode(mac).decode()}:"


def verify_request(
    headers: Mapping[str, str],
    target: str,
    api_key: str,
    client_secret: str,
    max_age_s: int,
    now: float | None = None,
) -> str | None:
    """The signature's nonce (None when unsigned), or ``TelephonyError`` (``auth.*``).

    ``headers`` has lower-case names. Without a client secret configured, an unsigned
    request with the right ``X-API-KEY`` is accepted (as Genesys allows).
    """
    now = time.time() if now is None else now
    given_key = headers.get("x-api-key", "")
    if not given_key or not hmac.compare_digest(given_key, api_key):
        raise TelephonyError("X-API-KEY missing or wrong", code="auth.bad_api_key")
    if "signature-input" not in headers and "signature" not in headers:
        if client_secret:
            raise TelephonyError("the request is not signed", code="auth.bad_signature")
        return None
    sig_input = parse_signature_input(headers.get("signature-input", ""))
    given = parse_signature(headers.get("signature", ""), sig_input.label)
    p = sig_input.params
    missing = [c for c in SIGNED_COMPONENTS if c not in sig_input.components]
    if missing:
        raise TelephonyError(f"signature does not cover {missing}", code="auth.bad_signature")
    if p.get("keyid") != api_key:
        raise TelephonyError("signature keyid is not the X-API-KEY", code="auth.bad_signature")
    if p.get("alg", "hmac-sha256") != "hmac-sha256":
        raise TelephonyError("signature algorithm must be hmac-sha256", code="auth.bad_signature")
    nonce = p.get("nonce")
    if not isinstance(nonce, str) or len(nonce) < 22:
        raise TelephonyError("signature nonce missing or too short", code="auth.bad_signature")
    created = p.get("created")
    if not isinstance(created, int):
        raise TelephonyError("signature has no 'created' time", code="auth.bad_signature")
    if created > now + MAX_CLOCK_SKEW_S:
        raise TelephonyError("signature created in the future", code="auth.bad_signature")
    expires = p.get("expires")
    if created + max_age_s < now - MAX_CLOCK_SKEW_S or (
        isinstance(expires, int) and expires < now - MAX_CLOCK_SKEW_S
    ):
        raise TelephonyError("signature expired", code="auth.signature_expired")
    base = signature_base(sig_input.components, sig_input.raw_params, headers, target)
    key = base64.b64decode(client_secret) if client_secret else b""
    want = hmac.new(key, base.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, given):
        raise TelephonyError("signature does not match", code="auth.bad_signature")
    return nonce
