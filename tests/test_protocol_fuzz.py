"""Property-based tests of the protocol parser and the audio frame decoder: whatever a
client sends gets a coded ``ProtocolError`` or a valid message, never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent_assist.errors import ProtocolError
from agent_assist.protocol import (
    MAX_DEPTH,
    MAX_MS,
    CallStart,
    TurnIn,
    parse_audio_frame,
    parse_client_message,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = ["hello", "call.start", "turn", "call.end", "feedback", "customer.link", "nope", ""]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
fields = {
    "role": st.sampled_from(["console", "source", "x"]) | json_values,
    "subscribe": st.sampled_from(["*", "c-1"]) | json_values,
    "resume": st.fixed_dictionaries({"call_id": json_values, "after_seq": json_values})
    | json_values,
    "language": st.sampled_from(["ja", "en", "auto", "fr"]) | json_values,
    "mode": st.sampled_from(["audio", "text"]) | json_values,
    "channels": st.lists(st.sampled_from(["agent", "customer", "bot"]), max_size=3) | json_values,
    "sample_rate": st.integers(min_value=0, max_value=10**6) | json_values,
    "encoding": st.sampled_from(["pcm16", "mulaw", "alaw", "mp3"]) | json_values,
    "title": json_values,
    "customer_id": json_values,
    "agent": json_values,
    "speaker": st.sampled_from(["agent", "customer"]) | json_values,
    "text": json_values,
    "end_ms": json_values,
    "reason": json_values,
    "suggestion_id": json_values,
    "action": st.sampled_from(["used", "dismissed", "accepted", "declined"]) | json_values,
}
envelopes = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 2, "1", None]),
        "type": st.sampled_from(TYPES),
        "data": st.fixed_dictionaries({}, optional=fields) | json_values,
    },
    optional={"seq": json_values, "t_ms": json_values, "call_id": json_values},
)


def must_parse_or_refuse(text: str) -> Any:
    try:
        message = parse_client_message(text)
    except ProtocolError as err:
        assert err.code.startswith("protocol.") and err.message
        return None
    # a valid message holds only what the store can keep
    for value in vars_of(message):
        if isinstance(value, str):
            value.encode("utf-8")
    if isinstance(message, TurnIn):
        assert 0 <= message.t_ms <= message.end_ms <= MAX_MS
    if isinstance(message, CallStart):
        assert message.channels and message.language in ("ja", "en", "auto")
    return message


def vars_of(message: object) -> list[object]:
    return [getattr(message, name) for name in message.__slots__]  # type: ignore[attr-defined]


@FUZZ
@given(envelopes)
def test_structured_envelopes_parse_or_get_a_coded_error(envelope: dict[str, Any]) -> None:
    must_parse_or_refuse(json.dumps(envelope))


@FUZZ
@given(st.text())
def test_any_text_parses_or_gets_a_coded_error(text: str) -> None:
    must_parse_or_refuse(text)


@FUZZ
@given(st.integers(min_value=1, max_value=5000))
@example(MAX_DEPTH - 1)
@example(MAX_DEPTH)
@example(100_000)  # deeper than Python's recursion limit
def test_deep_nesting_gets_a_coded_error(depth: int) -> None:
    body = "[" * depth + "]" * depth
    text = f'{{"v":1,"type":"hello","data":{{"role":"console","x":{body}}}}}'
    message = must_parse_or_refuse(text)
    assert (message is None) == (depth + 1 > MAX_DEPTH)  # data is 1 deep, its lists below


@FUZZ
@given(
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=2),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([1, 2]),
)
def test_any_audio_frame_decodes_or_gets_a_coded_error(
    frame: bytes, channels: int, max_bytes: int, width: int
) -> None:
    try:
        channel, payload = parse_audio_frame(frame, channels, max_bytes, width)
    except ProtocolError as err:
        assert err.code.startswith("audio.") and err.message
        return
    assert len(frame) <= max_bytes and frame[0] == 1
    assert channel < channels or channel == 255
    block = width * (channels if channel == 255 else 1)
    assert payload and len(payload) % block == 0
