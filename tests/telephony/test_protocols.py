"""The adapters' sans-I/O parts: signatures, the call clock, framing and layouts."""

from __future__ import annotations

import base64
import json
import uuid

import numpy as np
import pytest

from agent_assist.audio import g711
from agent_assist.errors import TelephonyError
from agent_assist.telephony import audiohook, twilio
from agent_assist.telephony.audiosocket import TlvReader, leg_uuids, message
from agent_assist.telephony.freeswitch import AudioForkStream
from agent_assist.telephony.stream import Audio, Begin, CallClock, Reply

HOOK_KEY = "audiohook-api-key"
HOOK_SECRET = base64.b64encode(b"client secret of the integration").decode()
ORG = str(uuid.uuid4())


# -- sans-I/O units --------------------------------------------------------------------


def test_twilio_signature_is_hmac_sha1_of_the_url() -> None:
    # Computed independently: printf %s URL | openssl dgst -sha1 -hmac TOKEN -binary | base64
    url = "wss://example.com/telephony/twilio"
    assert twilio.signature("12345", url) == "vPMlwK81P1PjXlPOeB+WJPZK+Eo="
    assert twilio.signature_ok("12345", url, "vPMlwK81P1PjXlPOeB+WJPZK+Eo=")
    assert not twilio.signature_ok("12346", url, "vPMlwK81P1PjXlPOeB+WJPZK+Eo=")
    assert not twilio.signature_ok("12345", url, None)


def test_audiohook_signature_verifies_and_refuses_tampering() -> None:
    headers = {
        "host": "assist.example.com",
        "audiohook-organization-id": ORG,
        "audiohook-session-id": str(uuid.uuid4()),
        "audiohook-correlation-id": str(uuid.uuid4()),
        "x-api-key": HOOK_KEY,
    }
    now = 1_800_000_000
    nonce = "n" * 24
    sig_input, sig = audiohook.sign_request(headers, "/ah", HOOK_KEY, HOOK_SECRET, nonce, now)
    signed = {**headers, "signature-input": sig_input, "signature": sig}
    assert audiohook.verify_request(signed, "/ah", HOOK_KEY, HOOK_SECRET, 10, now + 1) == nonce
    cases = {
        "auth.bad_signature": {**signed, "audiohook-session-id": str(uuid.uuid4())},
        "auth.bad_api_key": {**signed, "x-api-key": "other"},
    }
    for code, bad in cases.items():
        with pytest.raises(TelephonyError) as err:
            audiohook.verify_request(bad, "/ah", HOOK_KEY, HOOK_SECRET, 10, now + 1)
        assert err.value.code == code
    with pytest.raises(TelephonyError) as err:
        audiohook.verify_request(signed, "/ah", HOOK_KEY, HOOK_SECRET, 10, now + 30)
    assert err.value.code == "auth.signature_expired"
    with pytest.raises(TelephonyError):  # another client secret
        audiohook.verify_request(signed, "/ah", HOOK_KEY, base64.b64encode(b"x").decode(), 10, now)
    short_in, short_sig = audiohook.sign_request(
        headers, "/ah", HOOK_KEY, HOOK_SECRET, "short", now
    )
    with pytest.raises(TelephonyError):
        audiohook.verify_request(
            {**headers, "signature-input": short_in, "signature": short_sig},
            "/ah",
            HOOK_KEY,
            HOOK_SECRET,
            10,
            now,
        )


def test_call_clock_fills_gaps_with_silence_and_drops_resent_audio() -> None:
    clock = CallClock(2, max_gap=8000)
    one = np.ones(160, dtype=np.int16)
    assert clock.place(0, 0, one).size == 160
    assert clock.place(0, 80, one).size == 80  # half of it the call already has
    gap = clock.place(0, 400, one)
    assert gap.size == 400 - 240 + 160 and not gap[:160].any()
    assert clock.place(0, 0, one).size == 0
    assert clock.place(1, 100_000, one).size == 160  # a broken clock invents no minutes


def test_audiosocket_messages_survive_any_tcp_split() -> None:
    stream = message(0x01, uuid.uuid4().bytes) + message(0x10, b"\x01\x00" * 160) + message(0x00)
    reader = TlvReader()
    got = [m for i in range(0, len(stream), 7) for m in reader.feed(stream[i : i + 7])]
    assert [k for k, _ in got] == [0x01, 0x10, 0x00]
    customer, agent = leg_uuids(uuid.UUID(int=0))
    assert str(customer).endswith("1") and str(agent).endswith("2")


def test_layouts_the_adapters_do_not_understand_get_coded_errors() -> None:
    fork = AudioForkStream()
    with pytest.raises(TelephonyError) as err:
        fork.receive_text(json.dumps({"callSid": "x", "mixType": "mixed"}))
    assert err.value.code == "telephony.unsupported_layout"
    with pytest.raises(TelephonyError) as err:
        AudioForkStream().receive_bytes(b"\x00\x00")
    assert err.value.code == "telephony.metadata_required"
    stream = twilio.TwilioStream()
    start = {
        "callSid": "CA1",
        "tracks": ["inbound", "sideways"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    with pytest.raises(TelephonyError) as err:
        stream.receive_text(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))
    assert err.value.code == "telephony.unknown_track"
    hook = audiohook.AudioHookSession(ORG)
    open_msg = {
        "version": "2",
        "id": "s",
        "type": "open",
        "seq": 1,
        "serverseq": 0,
        "position": "PT0S",
        "parameters": {
            "organizationId": ORG,
            "conversationId": "c",
            "media": [{"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000}],
        },
    }
    (reply,) = hook.receive_text(json.dumps(open_msg))
    assert isinstance(reply, Reply)
    body = json.loads(reply.text)
    assert (
        body["type"] == "disconnect" and "telephony.unsupported_media" in body["parameters"]["info"]
    )


def test_audiohook_stereo_is_split_external_customer_internal_agent() -> None:
    hook = audiohook.AudioHookSession(ORG)
    open_msg = {
        "version": "2",
        "id": "s",
        "type": "open",
        "seq": 1,
        "serverseq": 0,
        "position": "PT0S",
        "parameters": {
            "organizationId": ORG,
            "conversationId": "c",
            "media": [
                {
                    "type": "audio",
                    "format": "PCMU",
                    "channels": ["external", "internal"],
                    "rate": 8000,
                }
            ],
        },
    }
    actions = hook.receive_text(json.dumps(open_msg))
    assert isinstance(actions[0], Reply) and isinstance(actions[1], Begin)
    assert json.loads(actions[0].text)["parameters"]["media"][0]["channels"] == [
        "external",
        "internal",
    ]
    ext = np.full(160, 8000, dtype=np.int16)
    frame = g711.encode(np.stack([ext, -ext], 1).reshape(-1), "mulaw")
    customer, agent = hook.receive_bytes(frame)
    assert isinstance(customer, Audio) and isinstance(agent, Audio)
    assert (customer.speaker, agent.speaker) == ("customer", "agent")
    assert customer.pcm.mean() > 7000 and agent.pcm.mean() < -7000
