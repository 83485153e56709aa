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
from agent_assist.telephony.stream import Audio, Begin, CallClock, Finish, Reply

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


def _hook_open(hook: audiohook.AudioHookSession, media: str = "PCMU") -> None:
    hook.receive_text(
        json.dumps(
            {
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
                            "format": media,
                            "channels": ["external", "internal"],
                            "rate": 8000,
                        }
                    ],
                },
            }
        )
    )


def _hook_msg(seq: int, type_: str, **parameters: object) -> str:
    return json.dumps(
        {
            "version": "2",
            "id": "s",
            "type": type_,
            "seq": seq,
            "serverseq": 1,
            "position": "PT1S",
            "parameters": parameters,
        }
    )


def test_audiohook_update_discarded_and_sequence_rules() -> None:
    hook = audiohook.AudioHookSession(ORG)
    with pytest.raises(TelephonyError) as err:
        hook.receive_bytes(b"\xff\xff")
    assert err.value.code == "telephony.bad_message"  # audio before 'opened'
    _hook_open(hook, "L16")
    (updated,) = hook.receive_text(_hook_msg(2, "update", language="ja-JP"))
    assert isinstance(updated, Reply)
    reply = json.loads(updated.text)
    assert (reply["type"], reply["clientseq"], reply["seq"]) == ("updated", 2, 2)
    stereo = np.zeros((80, 2), dtype="<i2").tobytes()
    first = hook.receive_bytes(stereo)
    assert [a.at for a in first if isinstance(a, Audio)] == [0, 0]
    assert hook.receive_text(_hook_msg(3, "discarded", start="PT0.01S", discarded="PT0.5S")) == []
    after = hook.receive_bytes(stereo)
    assert [a.at for a in after if isinstance(a, Audio)] == [80 + 4000, 80 + 4000]
    with pytest.raises(TelephonyError) as err:
        hook.receive_text(_hook_msg(3, "ping"))  # seq repeated
    assert err.value.code == "telephony.bad_sequence"
    with pytest.raises(TelephonyError) as err:
        hook.receive_bytes(b"\x00" * 3)  # not whole stereo L16 samples
    assert err.value.code == "audio.bad_frame"


def test_twilio_places_media_by_timestamp_and_drops_resent_messages() -> None:
    stream = twilio.TwilioStream()
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    start = {
        "callSid": "CA1",
        "streamSid": "MZ1",
        "tracks": ["inbound", "outbound"],
        "mediaFormat": fmt,
        "customParameters": {"agent": "alice", "language": "ja-JP"},
    }
    (begin,) = stream.receive_text(
        json.dumps({"event": "start", "sequenceNumber": "1", "start": start})
    )
    assert isinstance(begin, Begin)
    assert (begin.call_key, begin.agent, begin.language) == ("twilio:CA1", "alice", "ja")
    payload = base64.b64encode(b"\xff" * 160).decode()

    def media(seq: int, track: str, ms: int) -> str:
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": str(seq),
                "media": {"track": track, "chunk": "1", "timestamp": str(ms), "payload": payload},
            }
        )

    (a,) = stream.receive_text(media(2, "outbound", 1000))
    assert isinstance(a, Audio) and (a.speaker, a.at, a.pcm.size) == ("agent", 8000, 160)
    assert stream.receive_text(media(2, "outbound", 1000)) == []  # the same message again
    stop = stream.receive_text(json.dumps({"event": "stop", "sequenceNumber": "3"}))
    assert stop[0] == Finish("hangup", final=True)
    assert stream.connection_lost(1000) == []  # stopped: nothing left to resume


def test_audiosocket_rates_legs_and_order() -> None:
    from agent_assist.telephony.audiosocket import AudioSocketLeg

    customer, agent = leg_uuids(uuid.uuid4())
    leg = AudioSocketLeg(agent="desk-1")
    assert leg.receive(0x01, agent.bytes) == []
    begin, audio = leg.receive(0x12, b"\x00\x00" * 320)
    assert isinstance(begin, Begin) and begin.sample_rate == 16000 and begin.agent == "desk-1"
    assert isinstance(audio, Audio) and audio.speaker == "agent"
    assert begin.call_key == f"audiosocket:{str(customer)[:35]}"
    assert leg.receive(0x03, b"5") == []  # DTMF carries no speech
    with pytest.raises(TelephonyError) as err:
        leg.receive(0x10, b"\x00\x00")
    assert err.value.code == "telephony.unsupported_media"  # the rate changed mid-stream
    with pytest.raises(TelephonyError) as err:
        AudioSocketLeg().receive(0x10, b"\x00\x00")
    assert err.value.code == "telephony.bad_message"  # audio before the UUID
    with pytest.raises(TelephonyError) as err:
        AudioSocketLeg().receive(0x01, uuid.UUID(int=7).bytes)
    assert err.value.code == "telephony.unknown_track"  # the last digit names no leg


def test_freeswitch_mono_fork_names_its_party_and_keeps_split_samples() -> None:
    fork = AudioForkStream()
    (begin,) = fork.receive_text(
        json.dumps({"uuid": "u-1", "mixType": "mono", "speaker": "agent", "sampleRate": "16k"})
    )
    assert isinstance(begin, Begin) and begin.sample_rate == 16000
    assert begin.stream_id.startswith("u-1:mono:agent:")  # one stream per connection
    assert fork.receive_bytes(b"\x01") == []  # half a sample waits for the next frame
    (audio,) = fork.receive_bytes(b"\x00\x02\x00")
    assert isinstance(audio, Audio) and audio.speaker == "agent"
    assert audio.pcm.tolist() == [1, 2]
    assert fork.connection_lost(1006)[0] == Finish("disconnected", final=False)


def test_swap_channels_config_exchanges_the_parties_on_every_platform() -> None:
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    tw = twilio.TwilioStream(swap_channels=True)
    tw.receive_text(
        json.dumps(
            {
                "event": "start",
                "start": {"callSid": "CA2", "tracks": ["inbound"], "mediaFormat": fmt},
            }
        )
    )
    (a,) = tw.receive_text(
        json.dumps(
            {
                "event": "media",
                "media": {
                    "track": "inbound",
                    "timestamp": "0",
                    "payload": base64.b64encode(b"\xff").decode(),
                },
            }
        )
    )
    assert isinstance(a, Audio) and a.speaker == "agent"
    fork = AudioForkStream(swap_channels=True)
    fork.receive_text(json.dumps({"callSid": "x", "mixType": "stereo"}))
    first, _second = fork.receive_bytes(b"\x00\x00\x00\x00")
    assert isinstance(first, Audio) and first.speaker == "agent"
    hook = audiohook.AudioHookSession(ORG, swap_channels=True)
    _hook_open(hook)
    assert hook.channels == ["agent", "customer"]


def test_telephony_config_is_read_and_checked() -> None:
    from pathlib import Path

    from agent_assist.config import parse_config
    from agent_assist.errors import ConfigError

    doc = {
        "telephony": {
            "grace_s": 3,
            "twilio": {"enabled": True, "auth_token": "t"},
            "audiosocket": {"port": 0, "agent": "desk-1"},
        }
    }
    cfg = parse_config(doc, "test", Path("."))
    assert cfg.telephony.grace_s == 3.0 and cfg.telephony.twilio.enabled
    assert cfg.telephony.audiosocket.agent == "desk-1"
    bad = {
        "telephony": {
            "grace_s": -1,
            "twilio": {"path": "ws", "nonsense": 1},
            "freeswitch": {"path": "/telephony/audiohook"},
        }
    }
    with pytest.raises(ConfigError) as err:
        parse_config(bad, "test", Path("."))
    text = str(err.value)
    for needle in (
        "telephony.grace_s",
        "telephony.twilio.path",
        "telephony.twilio.nonsense",
        "its own path",
    ):
        assert needle in text, text


def test_twilio_signature_uses_the_public_url_behind_a_proxy() -> None:
    """Twilio signs the URL it dialled; a proxy in front changes Host, so config names it."""
    from dataclasses import replace
    from pathlib import Path
    from types import SimpleNamespace

    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from agent_assist.config import Config, parse_config
    from agent_assist.telephony.gateway import TelephonyGateway

    doc = {
        "auth": {"enabled": False},
        "telephony": {
            "twilio": {
                "enabled": True,
                "auth_token": "tok",
                "public_url": "wss://assist.example.com/",
            }
        },
    }
    cfg: Config = parse_config(doc, "test", Path("."))
    host = SimpleNamespace(services=SimpleNamespace(config=cfg), auth=None)
    gateway = TelephonyGateway(host)  # type: ignore[arg-type]
    path = "/telephony/twilio?site=tokyo"

    def request(url: str) -> Request:
        sig = twilio.signature("tok", url)
        return Request(path, Headers({"Host": "127.0.0.1:8765", "X-Twilio-Signature": sig}))

    good = request("wss://assist.example.com" + path)
    assert gateway.check_request(None, good) is None  # type: ignore[arg-type]
    refused = gateway.check_request(None, request("wss://127.0.0.1:8765" + path))  # type: ignore[arg-type]
    assert refused is not None and refused.status_code == 401
    assert b"auth.bad_signature" in refused.body
    plain = replace(cfg.telephony.twilio, public_url="")
    gateway.config = replace(cfg.telephony, twilio=plain)
    assert gateway.check_request(None, request("wss://127.0.0.1:8765" + path)) is None  # type: ignore[arg-type]


def test_secrets_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_assist.telephony.config import secret

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-env")
    assert secret("", "TWILIO_AUTH_TOKEN") == "from-env"
    assert secret("in-config", "TWILIO_AUTH_TOKEN") == "in-config"
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    assert secret("", "TWILIO_AUTH_TOKEN") == ""
