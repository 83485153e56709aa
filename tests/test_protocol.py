"""The wire protocol: docs/protocol.md examples round-trip, and bad messages get stable codes."""

from __future__ import annotations

import json
import re

import pytest

from agent_assist.core.events import (
    WIRE_EVENTS,
    CallEnded,
    CallStarted,
    ComplianceWarning,
    CustomerLinked,
    Decision,
    Event,
    Evidence,
    OfferFeedback,
    PhaseChanged,
    SignalDetected,
    Suggestion,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)
from agent_assist.errors import CODES, AudioFrameError, ProtocolError
from agent_assist.protocol import (
    CallEnd,
    CallStart,
    CustomerLink,
    Feedback,
    Hello,
    TurnIn,
    audio_frame,
    decode_event,
    encode_client_message,
    encode_error,
    encode_event,
    encode_ready,
    parse_audio_frame,
    parse_client_message,
)
from tests.conftest import REPO

DOC = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
BLOCKS = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, re.S)]
ENVELOPES = [b for b in BLOCKS if "v" in b]


def _documented_payloads() -> dict[str, dict[str, object]]:
    """Map each server event type to the payload example that follows its heading."""
    names = {
        "call.started",
        "transcript.final",
        "transcript.partial",
        "signal",
        "phase",
        "suggestion",
        "warning",
        "call.ended",
        "error",
        "decision",
        "offer.feedback",
        "customer.linked",
    }
    found: dict[str, dict[str, object]] = {}
    current = None
    for chunk in re.split(r"(```json\n.*?```)", DOC, flags=re.S):
        if chunk.startswith("```json"):
            block = json.loads(chunk[8:-3])
            if current and "v" not in block:
                found.setdefault(current, block)
            continue
        for line in chunk.splitlines():
            m = re.match(r"^`([a-z.]+)`", line)
            if m and m.group(1) in names:
                current = m.group(1)
    return found


PAYLOADS = _documented_payloads()

EV = Evidence(
    utterance_id="customer-0001", speaker="customer", text="遅い", start=0, end=2, quote="遅い"
)
SAMPLES: list[Event] = [
    CallStarted(
        call_id="c",
        t_ms=0,
        language="ja",
        channels=("agent", "customer"),
        title="t",
        customer_id=None,
        mode="audio",
        started_at="2026-11-22T10:00:00Z",
    ),
    TranscriptFinal(
        call_id="c",
        t_ms=1,
        utterance_id="u",
        speaker="customer",
        end_ms=2,
        language="ja",
        text="遅い",
        words=(Word("遅い", 1, 2, 0.9),),
    ),
    TranscriptPartial(call_id="c", t_ms=1, utterance_id="u", speaker="customer", text="遅"),
    SignalDetected(
        call_id="c", t_ms=1, signal="speed_complaint", speaker="customer", rule_id="r", evidence=EV
    ),
    PhaseChanged(
        call_id="c", t_ms=1, from_phase="discovery", to_phase="retention", rule_id="r", evidence=EV
    ),
    Suggestion(
        call_id="c",
        t_ms=1,
        suggestion_id="s-1",
        kind="upsell",
        offer_id="o",
        offer="O",
        line="l",
        reason="r",
        rule_id="r",
        evidence=EV,
    ),
    ComplianceWarning(
        call_id="c",
        t_ms=1,
        warning_id="w-1",
        rule_id="r",
        severity="high",
        title="t",
        message="m",
        instead="i",
        reference="ref",
        evidence=EV,
    ),
    Decision(
        call_id="c",
        t_ms=1,
        decision_id="d-1",
        outcome="suppressed",
        subject="suggestion",
        rule_id="offer.x.v1",
        kind="upsell",
        offer_id="",
        decided_by="suppress.retention.v1",
        reason="r",
        ref_id="",
        evidence=EV,
    ),
    OfferFeedback(
        call_id="c", t_ms=1, suggestion_id="s-1", offer_id="o", kind="upsell", action="used"
    ),
    CustomerLinked(
        call_id="c",
        t_ms=0,
        customer_id="C-1",
        known=True,
        name="n",
        plan_id="p",
        plan="P",
        monthly_price=1,
        usage_gb=1.0,
        cap_gb=2.0,
        renewal_date="2027-01-01",
        tenure_months=3,
        churn_risk="low",
        tier="A",
        summary="s",
    ),
    CallEnded(call_id="c", t_ms=9, reason="hangup", duration_ms=9),
]


def test_doc_has_examples_for_every_client_message() -> None:
    types = {e["type"] for e in ENVELOPES}
    assert {
        "hello",
        "ready",
        "call.start",
        "call.end",
        "turn",
        "feedback",
        "customer.link",
    } <= types


@pytest.mark.parametrize(
    "example", [e for e in ENVELOPES if e["type"] != "ready"], ids=lambda e: e["type"]
)
def test_doc_client_examples_parse(example: dict[str, object]) -> None:
    msg = parse_client_message(json.dumps(example))
    expected = {
        "hello": Hello,
        "call.start": CallStart,
        "turn": TurnIn,
        "call.end": CallEnd,
        "feedback": Feedback,
        "customer.link": CustomerLink,
    }
    assert isinstance(msg, expected[str(example["type"])])


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_events_match_the_documented_payloads(event: Event) -> None:
    wire = json.loads(encode_event(event, seq=3, emitted_ms=40))
    assert {k: wire[k] for k in ("v", "type", "call_id", "seq", "emitted_ms")} == {
        "v": 1,
        "type": event.TYPE,
        "call_id": "c",
        "seq": 3,
        "emitted_ms": 40,
    }
    documented = PAYLOADS[event.TYPE]
    assert set(wire["data"]) == set(documented), f"doc and code disagree for {event.TYPE}"


def test_japanese_goes_on_the_wire_unescaped() -> None:
    assert "遅い" in encode_event(SAMPLES[1], 1, 1)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "protocol.bad_json"),
        ("[1, 2]", "protocol.bad_json"),
        ('{"v": 2, "type": "hello", "data": {}}', "protocol.unsupported_version"),
        ('{"type": "hello", "data": {}}', "protocol.bad_envelope"),
        ('{"v": 1, "type": "hello"}', "protocol.bad_envelope"),
        ('{"v": 1, "type": "dance", "data": {}}', "protocol.unknown_type"),
        ('{"v": 1, "type": "hello", "data": {"role": "admin"}}', "protocol.bad_payload"),
        ('{"v": 1, "type": "call.start", "data": {"sample_rate": 4000}}', "protocol.bad_payload"),
        (
            '{"v": 1, "type": "call.start", "data": {"channels": ["agent", "agent"]}}',
            "protocol.bad_payload",
        ),
        (
            '{"v": 1, "type": "turn", "t_ms": 5, "data": {"speaker": "customer", "text": "x", '
            '"end_ms": 1}}',
            "protocol.bad_payload",
        ),
        ('{"v": 1, "type": "feedback", "data": {"suggestion_id": "s-1"}}', "protocol.bad_envelope"),
        (
            '{"v": 1, "type": "feedback", "call_id": "c", "data": {"suggestion_id": "s-1", '
            '"action": "loved"}}',
            "protocol.bad_payload",
        ),
        ('{"v": 1, "type": "customer.link", "call_id": "c", "data": {}}', "protocol.bad_payload"),
    ],
)
def test_bad_messages_get_stable_codes(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert info.value.code == code


def test_audio_frames() -> None:
    pcm = b"\x01\x00\x02\x00"
    assert parse_audio_frame(audio_frame(1, pcm), 2, 1024) == (1, pcm)
    for frame, code in [
        (audio_frame(0, b"\x00" * 2000), "audio.frame_too_large"),
        (audio_frame(2, pcm), "audio.bad_frame"),
        (bytes((9, 0)) + pcm, "audio.bad_frame"),
        (audio_frame(0, b"\x01\x02\x03"), "audio.bad_frame"),
        (b"\x01", "audio.bad_frame"),
    ]:
        with pytest.raises(AudioFrameError) as info:
            parse_audio_frame(frame, 2, 1024)
        assert info.value.code == code


# -- every documented example, values included, is exactly what the code reads and writes --


def _envelope_of(type_: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "v": 1,
        "type": type_,
        "call_id": "c-doc",
        "seq": 5,
        "t_ms": 1200,
        "emitted_ms": 1300,
        "data": data,
    }


@pytest.mark.parametrize("type_", sorted(set(PAYLOADS) - {"error"}), ids=lambda t: t)
def test_documented_event_payloads_round_trip_with_their_values(type_: str) -> None:
    documented = PAYLOADS[type_]
    evidence = documented.get("evidence")
    if isinstance(evidence, dict):  # a documented quote is its span, as the code promises
        assert evidence["text"][evidence["start"] : evidence["end"]] == evidence["quote"]
    decoded = decode_event(_envelope_of(type_, documented))
    wire = json.loads(encode_event(decoded.event, decoded.seq, decoded.emitted_ms))
    assert wire == _envelope_of(type_, documented)


def test_every_wire_event_has_a_documented_payload() -> None:
    assert {cls.TYPE for cls in WIRE_EVENTS} <= set(PAYLOADS)


@pytest.mark.parametrize(
    "example", [e for e in ENVELOPES if e["type"] != "ready"], ids=lambda e: str(e["type"])
)
def test_documented_client_messages_round_trip_with_their_values(
    example: dict[str, object],
) -> None:
    msg = parse_client_message(json.dumps(example))
    call_id = example["call_id"]
    built = json.loads(encode_client_message(msg, call_id if isinstance(call_id, str) else None))
    assert parse_client_message(json.dumps(built)) == msg
    assert {k: v for k, v in built.items() if k != "data"} == {
        k: v for k, v in example.items() if k != "data"
    }
    data = example["data"]
    assert isinstance(data, dict)
    # an example may leave out optional fields; every value it gives is sent as written
    assert {k: built["data"][k] for k in data} == data


def test_documented_ready_is_what_the_server_sends() -> None:
    (example,) = [e for e in ENVELOPES if e["type"] == "ready"]
    data = example["data"]
    assert isinstance(data, dict)
    built = encode_ready(str(data["server"]), list(data["active_calls"]))
    assert json.loads(built) == example


def test_documented_error_is_what_the_server_sends() -> None:
    documented = PAYLOADS["error"]
    code = str(documented["code"])
    err = AudioFrameError(str(documented["message"]), code=code)
    assert CODES[code].fault == documented["fault"]
    built = json.loads(encode_error(err, ref_seq=12, fatal=bool(documented["fatal"])))
    assert built["data"] == documented
