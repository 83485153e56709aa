"""One vocabulary both ways: every wire event decodes back to the event that was encoded,
and every client message parses back to the message that was built."""

from __future__ import annotations

import json

import pytest

from agent_assist.core.events import WIRE_EVENTS, Event
from agent_assist.errors import ProtocolError
from agent_assist.protocol import (
    CallEnd,
    CallStart,
    ClientMessage,
    CustomerLink,
    Feedback,
    Hello,
    TurnIn,
    decode_event,
    encode_client_message,
    encode_event,
    parse_client_message,
)
from tests.test_protocol import SAMPLES


def test_the_samples_cover_every_wire_event() -> None:
    assert {type(e) for e in SAMPLES} == set(WIRE_EVENTS)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_every_wire_event_round_trips(event: Event) -> None:
    wire = encode_event(event, seq=7, emitted_ms=12)
    decoded = decode_event(wire)
    assert decoded.event == event
    assert (decoded.seq, decoded.emitted_ms) == (7, 12)
    assert decode_event(json.loads(wire)).event == event  # stored bodies are dicts too


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_a_missing_or_mistyped_field_fails_loudly(event: Event) -> None:
    wire = json.loads(encode_event(event, seq=1, emitted_ms=0))
    required = [k for k, v in wire["data"].items() if v not in ((), [], "", 0, None)]
    if not required:
        pytest.skip("every field has a default")
    missing = {**wire, "data": {k: v for k, v in wire["data"].items() if k != required[0]}}
    with pytest.raises(ProtocolError):
        decode_event(missing)
    wrong = {**wire, "data": {**wire["data"], required[0]: {"not": "this"}}}
    with pytest.raises(ProtocolError):
        decode_event(wrong)


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ProtocolError) as err:
        decode_event({"type": "nope", "data": {}})
    assert err.value.code == "protocol.unknown_type"


CLIENT: list[ClientMessage] = [
    Hello(1, "source", None, None, 0),
    Hello(2, "console", "*", "c-1", 40),
    CallStart(3, "ja", 8000, ("customer",), "t", "cust-1", "audio", "ann", "mulaw"),
    CallStart(4, "auto", 16000, ("agent", "customer"), "", None, "text"),
    TurnIn(5, "customer", 100, 900, "遅いです"),
    CallEnd(6, 1000, "hangup"),
    Feedback(7, "c-1", "s-2", "accepted"),
    CustomerLink(8, "c-1", "cust-9"),
]


@pytest.mark.parametrize("msg", CLIENT, ids=lambda m: type(m).__name__)
def test_every_client_message_round_trips(msg: ClientMessage) -> None:
    assert parse_client_message(encode_client_message(msg)) == msg


def test_client_messages_cover_every_kind() -> None:
    assert {type(m) for m in CLIENT} == {Hello, CallStart, TurnIn, CallEnd, Feedback, CustomerLink}
