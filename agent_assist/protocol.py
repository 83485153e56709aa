"""The wire protocol, sans I/O: envelopes and audio frames in, typed messages out.

See ``docs/protocol.md`` for the contract. Nothing here touches a socket, so every
rule of the protocol is tested without a server.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from agent_assist.core.events import (
    FEEDBACK_ACTIONS,
    LANGUAGES,
    SPEAKERS,
    WIRE_EVENTS,
    Event,
    FeedbackAction,
    LanguageChoice,
    Numbered,
    PhaseChanged,
    Speaker,
)
from agent_assist.errors import AgentAssistError, AudioFrameError, ProtocolError

VERSION = 1
ALL_CHANNELS = 255
"""Audio frame channel byte meaning "every channel, interleaved" (a stereo gateway)."""
ENCODINGS = {"pcm16": 2, "mulaw": 1, "alaw": 1}
"""Audio encodings of ``call.start`` and their bytes per sample."""
MIN_RATE, MAX_RATE = 8000, 48000
MAX_MS = 2**40
"""Largest ``t_ms`` / ``end_ms`` accepted (about 35 years): every stored integer fits."""
MAX_TEXT = 10_000
"""Longest turn text, in characters; titles, ids and reasons have smaller caps."""
MAX_DEPTH = 16
_RENAMES = {"from_phase": "from", "to_phase": "to"}


@dataclass(frozen=True, slots=True)
class Hello:
    seq: int
    role: Literal["console", "source"]
    subscribe: str | None
    resume_call_id: str | None
    resume_after_seq: int


@dataclass(frozen=True, slots=True)
class CallStart:
    seq: int
    language: LanguageChoice
    sample_rate: int
    channels: tuple[Speaker, ...]
    title: str
    customer_id: str | None
    mode: Literal["audio", "text"]
    agent: str | None = None
    """The agent on the call, when the source knows (a gateway); an agent's own source is them."""
    encoding: str = "pcm16"
    """Sample format of audio frames: "pcm16", or G.711 "mulaw" / "alaw" (1 byte/sample)."""


@dataclass(frozen=True, slots=True)
class TurnIn:
    seq: int
    speaker: Speaker
    t_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class CallEnd:
    seq: int
    t_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """The agent's mark on a suggestion (console or source); ``call_id`` from the envelope."""

    seq: int
    call_id: str
    suggestion_id: str
    action: FeedbackAction


@dataclass(frozen=True, slots=True)
class CustomerLink:
    """Link a live call to a CRM record (the console sets it when telephony did not)."""

    seq: int
    call_id: str
    customer_id: str


ClientMessage = Hello | CallStart | TurnIn | CallEnd | Feedback | CustomerLink


def envelope(
    type_: str, call_id: str | None, seq: int, t_ms: int, emitted_ms: int, data: dict[str, Any]
) -> str:
    """Serialise one server → client message."""
    return json.dumps(
        {
            "v": VERSION,
            "type": type_,
            "call_id": call_id,
            "seq": seq,
            "t_ms": t_ms,
            "emitted_ms": emitted_ms,
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def event_data(event: Event) -> dict[str, Any]:
    """The ``data`` payload of an event: its fields minus the envelope's."""
    raw = asdict(event)
    raw.pop("call_id")
    raw.pop("t_ms")
    if isinstance(event, PhaseChanged):
        raw = {_RENAMES.get(k, k): v for k, v in raw.items()}
    return raw


def encode_client_message(msg: ClientMessage, call_id: str | None = None) -> str:
    """Serialise one client → server message (the inverse of ``parse_client_message``).

    Every source (replay, the microphone, tests) builds its messages here, so what a client
    sends and what the server accepts cannot drift apart. ``call_id`` labels the envelope
    of a message about a started call (turn, call.end) for logs; the server ignores it.
    """
    t_ms = 0
    data: dict[str, Any]
    if isinstance(msg, Hello):
        type_, data = "hello", {"role": msg.role, "subscribe": msg.subscribe}
        if msg.resume_call_id is not None:
            data["resume"] = {"call_id": msg.resume_call_id, "after_seq": msg.resume_after_seq}
    elif isinstance(msg, CallStart):
        type_ = "call.start"
        data = {
            "language": msg.language,
            "sample_rate": msg.sample_rate,
            "channels": list(msg.channels),
            "title": msg.title,
            "customer_id": msg.customer_id,
            "mode": msg.mode,
            "encoding": msg.encoding,
        }
        if msg.agent is not None:
            data["agent"] = msg.agent
    elif isinstance(msg, TurnIn):
        type_, t_ms = "turn", msg.t_ms
        data = {"speaker": msg.speaker, "end_ms": msg.end_ms, "text": msg.text}
    elif isinstance(msg, CallEnd):
        type_, t_ms, data = "call.end", msg.t_ms, {"reason": msg.reason}
    elif isinstance(msg, Feedback):
        type_, call_id = "feedback", msg.call_id
        data = {"suggestion_id": msg.suggestion_id, "action": msg.action}
    else:
        type_, call_id, data = "customer.link", msg.call_id, {"customer_id": msg.customer_id}
    return json.dumps(
        {
            "v": VERSION,
            "type": type_,
            "call_id": call_id,
            "seq": msg.seq,
            "t_ms": t_ms,
            "data": data,
        },
        ensure_ascii=False,
    )


def encode_ready(server: str, active_calls: list[dict[str, Any]]) -> str:
    """The server's answer to ``hello``: who it is and the calls the client may see."""
    return envelope(
        "ready",
        None,
        0,
        0,
        0,
        {"server": server, "protocol": VERSION, "active_calls": active_calls},
    )


def encode_event(event: Event, seq: int, emitted_ms: int) -> str:
    return envelope(event.TYPE, event.call_id, seq, event.t_ms, emitted_ms, event_data(event))


_EVENT_TYPES: dict[str, type[Event]] = {cls.TYPE: cls for cls in WIRE_EVENTS}
_UNRENAMES = {wire: field for field, wire in _RENAMES.items()}


def decode_event(message: str | Mapping[str, Any]) -> Numbered[Event]:
    """The inverse of ``encode_event``: a stored or received event, typed again.

    A missing or mistyped field raises ``ProtocolError`` naming it, so a reader never
    scores a renamed field as zero.
    """
    msg = json.loads(message) if isinstance(message, str) else message
    cls = _EVENT_TYPES.get(str(msg.get("type")))
    if cls is None:
        raise ProtocolError(f"unknown event type {msg.get('type')!r}", code="protocol.unknown_type")
    data = msg.get("data")
    if not isinstance(data, Mapping):
        raise ProtocolError("envelope field 'data' must be an object")
    raw: dict[str, Any] = {_UNRENAMES.get(str(k), str(k)): v for k, v in data.items()}
    raw["call_id"], raw["t_ms"] = msg.get("call_id"), msg.get("t_ms", 0)
    event = _build(cls, raw, cls.TYPE)
    return Numbered(int(msg.get("seq", 0)), event, int(msg.get("emitted_ms", 0)))


def decode_events(messages: Iterable[str | Mapping[str, Any]]) -> list[Numbered[Event]]:
    """A call's stored events, typed, in their stored order."""
    return [decode_event(m) for m in messages]


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue
            raise _bad(where, f"field {f.name!r} is missing")
        values[f.name] = _value(hints[f.name], raw[f.name], f"{where}.{f.name}")
    return cls(**values)


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _value(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _bad(where, "must be a list")
        (item, _ellipsis) = get_args(hint)
        return tuple(_value(item, v, f"{where}[]") for v in value)
    if origin is Literal:
        if value not in get_args(hint):
            raise _bad(where, f"must be one of {list(get_args(hint))}")
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise _bad(where, "must be an object")
        return _build(hint, value, where)
    expected = {str: (str,), int: (int,), float: (int, float), bool: (bool,)}.get(hint)
    if expected is not None:
        if not isinstance(value, expected) or (hint is int and isinstance(value, bool)):
            raise _bad(where, f"must be {hint.__name__}")
        return float(value) if hint is float else value  # type: ignore[arg-type]
    return value


def encode_error(
    err: AgentAssistError, ref_seq: int | None, fatal: bool = False, call_id: str | None = None
) -> str:
    return envelope(
        "error",
        call_id,
        0,
        0,
        0,
        {
            "code": err.code,
            "message": err.message,
            "fault": err.fault,
            "fatal": fatal,
            "ref_seq": ref_seq,
        },
    )


def parse_client_message(text: str) -> ClientMessage:
    """Validate one client text message; raise ``ProtocolError`` with a stable code."""
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"message is not JSON: {exc}", code="protocol.bad_json") from exc
    except RecursionError as exc:
        raise ProtocolError("message is nested too deeply", code="protocol.bad_json") from exc
    if not isinstance(msg, dict):
        raise ProtocolError("message must be a JSON object", code="protocol.bad_json")
    _check_storable(msg)
    version = msg.get("v")
    if version != VERSION:
        if isinstance(version, int):
            raise ProtocolError(
                f"protocol version {version} is not supported (this server: {VERSION})",
                code="protocol.unsupported_version",
            )
        raise ProtocolError("envelope field 'v' must be the integer 1")
    type_, data, seq = msg.get("type"), msg.get("data"), msg.get("seq", 0)
    if not isinstance(type_, str):
        raise ProtocolError("envelope field 'type' must be a string")
    if not isinstance(data, dict):
        raise ProtocolError("envelope field 'data' must be an object")
    if not isinstance(seq, int):
        raise ProtocolError("envelope field 'seq' must be an integer")
    scoped = _CALL_PARSERS.get(type_)
    if scoped is not None:
        call_id = msg.get("call_id")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 100:
            raise ProtocolError(f"'{type_}' needs the envelope's 'call_id' (the call it is about)")
        return scoped(seq, call_id, data)
    parse = _PARSERS.get(type_)
    if parse is None:
        raise ProtocolError(f"unknown message type {type_!r}", code="protocol.unknown_type")
    t_ms = msg.get("t_ms", 0)
    if not isinstance(t_ms, int) or not 0 <= t_ms <= MAX_MS:
        raise ProtocolError(f"envelope field 't_ms' must be an integer from 0 to {MAX_MS}")
    message: ClientMessage = parse(seq, t_ms, data)
    return message


def _check_storable(msg: dict[str, Any]) -> None:
    """Refuse what no store can keep: lone surrogates (valid JSON ``"\\ud800"``, invalid
    UTF-8) anywhere, and nesting deeper than any message needs."""
    stack: list[tuple[object, int]] = [(msg, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ProtocolError("message is nested too deeply", code="protocol.bad_json")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ProtocolError(
                    "text holds a lone surrogate (not valid Unicode)",
                    code="protocol.bad_payload",
                ) from exc
        elif isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def parse_audio_frame(
    frame: bytes, n_channels: int, max_bytes: int, sample_width: int = 2
) -> tuple[int, bytes]:
    """Split a binary frame into (channel index, sample bytes); raise ``AudioFrameError``.

    Channel ``ALL_CHANNELS`` carries every channel interleaved, sample by sample.
    """
    if len(frame) > max_bytes:
        raise AudioFrameError(
            f"audio frame of {len(frame)} bytes exceeds server.max_frame_bytes ({max_bytes})",
            code="audio.frame_too_large",
        )
    if len(frame) < 2 + sample_width:
        raise AudioFrameError("audio frame shorter than its 2-byte header plus one sample")
    if frame[0] != VERSION:
        raise AudioFrameError(f"audio frame version {frame[0]} is not supported")
    interleaved = frame[1] == ALL_CHANNELS
    if frame[1] >= n_channels and not interleaved:
        raise AudioFrameError(
            f"audio frame for channel {frame[1]}, but the call has {n_channels} channel(s)"
        )
    block = sample_width * (n_channels if interleaved else 1)
    if (len(frame) - 2) % block:
        if sample_width == 2 and not interleaved:
            raise AudioFrameError("audio frame payload must be whole 16-bit samples (even length)")
        raise AudioFrameError(
            f"audio frame payload of {len(frame) - 2} bytes is not whole "
            f"{'interleaved ' if interleaved else ''}samples of {block} byte(s)"
        )
    return frame[1], frame[2:]


def audio_frame(channel: int, pcm16: bytes) -> bytes:
    """Build a binary audio frame (used by the replay client and tests)."""
    return bytes((VERSION, channel)) + pcm16


def _bad(field: str, why: str) -> ProtocolError:
    return ProtocolError(f"data.{field}: {why}", code="protocol.bad_payload")


def _hello(seq: int, t_ms: int, d: dict[str, Any]) -> Hello:
    role = d.get("role")
    if role not in ("console", "source"):
        raise _bad("role", "must be 'console' or 'source'")
    subscribe = d.get("subscribe")
    if subscribe is not None and (not isinstance(subscribe, str) or len(subscribe) > 100):
        raise _bad("subscribe", "must be '*', a call id, or null")
    resume = d.get("resume") or {}
    if not isinstance(resume, dict):
        raise _bad("resume", "must be an object {call_id, after_seq}")
    call_id, after = resume.get("call_id"), resume.get("after_seq", 0)
    if call_id is not None and (not isinstance(call_id, str) or len(call_id) > 100):
        raise _bad("resume.call_id", "must be a call id string")
    if not isinstance(after, int) or after < 0:
        raise _bad("resume.after_seq", "must be an integer >= 0")
    return Hello(seq, role, subscribe, call_id, after)


def _call_start(seq: int, t_ms: int, d: dict[str, Any]) -> CallStart:
    language = d.get("language", "auto")
    if language not in (*LANGUAGES, "auto"):
        raise _bad("language", "must be 'ja', 'en' or 'auto'")
    rate = d.get("sample_rate", 16000)
    if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise _bad("sample_rate", f"must be an integer from {MIN_RATE} to {MAX_RATE}")
    channels = d.get("channels", ["agent", "customer"])
    if (
        not isinstance(channels, list)
        or not 1 <= len(channels) <= 2
        or any(c not in SPEAKERS for c in channels)
        or len(set(channels)) != len(channels)
    ):
        raise _bad("channels", "must list 1 or 2 distinct speakers of 'agent', 'customer'")
    mode = d.get("mode", "audio")
    if mode not in ("audio", "text"):
        raise _bad("mode", "must be 'audio' or 'text'")
    encoding = d.get("encoding", "pcm16")
    if encoding not in ENCODINGS:
        raise _bad("encoding", "must be 'pcm16', 'mulaw' or 'alaw'")
    title, customer = d.get("title", ""), d.get("customer_id")
    if not isinstance(title, str):
        raise _bad("title", "must be a string")
    if customer is not None and (not isinstance(customer, str) or len(customer) > 100):
        raise _bad("customer_id", "must be a string of at most 100 characters, or null")
    agent = d.get("agent")
    if agent is not None and (not isinstance(agent, str) or not 0 < len(agent) <= 64):
        raise _bad("agent", "must be a user name (1-64 characters) or null")
    return CallStart(
        seq, language, rate, tuple(channels), title[:200], customer, mode, agent, encoding
    )


def _turn(seq: int, t_ms: int, d: dict[str, Any]) -> TurnIn:
    speaker, text, end_ms = d.get("speaker"), d.get("text"), d.get("end_ms", t_ms)
    if speaker not in SPEAKERS:
        raise _bad("speaker", "must be 'agent' or 'customer'")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise _bad("text", f"must be a string of at most {MAX_TEXT} characters")
    if not isinstance(end_ms, int) or not t_ms <= end_ms <= MAX_MS:
        raise _bad("end_ms", f"must be an integer from t_ms to {MAX_MS}")
    return TurnIn(seq, speaker, t_ms, end_ms, text)


def _call_end(seq: int, t_ms: int, d: dict[str, Any]) -> CallEnd:
    reason = d.get("reason", "hangup")
    if not isinstance(reason, str):
        raise _bad("reason", "must be a string")
    return CallEnd(seq, t_ms, reason[:100])


_PARSERS: dict[str, Callable[[int, int, dict[str, Any]], ClientMessage]] = {
    "hello": _hello,
    "call.start": _call_start,
    "turn": _turn,
    "call.end": _call_end,
}


def _feedback(seq: int, call_id: str, d: dict[str, Any]) -> Feedback:
    sid, action = d.get("suggestion_id"), d.get("action")
    if not isinstance(sid, str) or not 0 < len(sid) <= 64:
        raise _bad("suggestion_id", "must name a suggestion of the call, e.g. 's-3'")
    if action not in FEEDBACK_ACTIONS:
        raise _bad("action", f"must be one of {list(FEEDBACK_ACTIONS)}")
    return Feedback(seq, call_id, sid, action)


def _customer_link(seq: int, call_id: str, d: dict[str, Any]) -> CustomerLink:
    customer_id = d.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id or len(customer_id) > 100:
        raise _bad("customer_id", "must be a customer id string (1 to 100 characters)")
    return CustomerLink(seq, call_id, customer_id)


_CALL_PARSERS: dict[str, Callable[[int, str, dict[str, Any]], ClientMessage]] = {
    "feedback": _feedback,
    "customer.link": _customer_link,
}
"""Messages about an existing call, from any role: the envelope's ``call_id`` names it."""
