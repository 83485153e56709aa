"""Conformance of the telephony adapters: each platform's simulator drives a real server
on 127.0.0.1 port 0 with the bundled sample calls converted to the platform's audio, and
real faster-whisper recognises them. One server (models loaded once) serves the module.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_assist.audio.files import CallAudio, read_call_audio
from agent_assist.cli import main
from agent_assist.clients.replay import load_script, replay
from agent_assist.config import Config
from agent_assist.runtime.services import build_services
from agent_assist.server.app import AgentAssistServer
from agent_assist.telephony import audiohook
from agent_assist.telephony.config import (
    AudioHookConfig,
    AudioSocketConfig,
    FreeSwitchConfig,
    TelephonyConfig,
    TwilioConfig,
)
from agent_assist.telephony.replay_as import replay_as
from agent_assist.telephony.simulators import (
    AudioForkCall,
    AudioHookCall,
    AudioSocketCall,
    CallWatcher,
    TwilioCall,
)
from tests.conftest import REPO, SAMPLES

pytestmark = pytest.mark.asyncio(loop_scope="module")

TWILIO_TOKEN = "twilio-auth-token-for-tests"
HOOK_KEY = "audiohook-api-key"
HOOK_SECRET = base64.b64encode(b"client secret of the integration").decode()
FS_TOKEN = "freeswitch-url-token"
ORG = str(uuid.uuid4())


@dataclasses.dataclass
class Platforms:
    server: AgentAssistServer
    base: str  # ws://host:port
    host: str
    token: str  # a supervisor's, for the watcher

    def url(self, path: str) -> str:
        return self.base + path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def platforms(
    config: Config, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platforms]:
    telephony = TelephonyConfig(
        grace_s=1.5,
        twilio=TwilioConfig(enabled=True, auth_token=TWILIO_TOKEN),
        audiohook=AudioHookConfig(
            enabled=True,
            api_key=HOOK_KEY,
            client_secret=HOOK_SECRET,
            organization_id=ORG,
            transcript_events=True,
        ),
        freeswitch=FreeSwitchConfig(enabled=True, token=FS_TOKEN, username="fs", password="pw"),
        audiosocket=AudioSocketConfig(enabled=True, port=0, agent="desk-7", language="en"),
    )
    # 8 concurrent streams are the point of one test: lift the site's admission limits
    server = dataclasses.replace(config.server, max_calls=16, refuse_lag_ms=0)
    cfg = dataclasses.replace(config, telephony=telephony, server=server)
    db = tmp_path_factory.mktemp("telephony") / "calls.sqlite3"
    services = await asyncio.to_thread(build_services, cfg, with_asr=True, store_path=db)
    server = AgentAssistServer(services)
    host, port = await server.start("127.0.0.1", 0)
    server.auth.add_user("boss", "supervisor")
    token = server.auth.api_token("boss")
    yield Platforms(server, f"ws://{host}:{port}", host, token)
    await server.close()
    services.close()


@pytest.fixture(scope="module")
def en_call() -> CallAudio:
    return read_call_audio(SAMPLES / "en_call.flac")


@pytest.fixture(scope="module")
def ja_call() -> CallAudio:
    return read_call_audio(SAMPLES / "ja_call.flac")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def finals(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["data"]["speaker"], e["data"]["text"]) for e in events if e["type"] == "transcript.final"
    ]


def said(events: list[dict[str, Any]], speaker: str) -> str:
    return " ".join(t for s, t in finals(events) if s == speaker).lower()


# -- each platform against the real server ----------------------------------------------


async def test_twilio_call_lands_on_the_right_speakers_with_suggestions(
    platforms: Platforms, en_call: CallAudio, tmp_path: Path
) -> None:
    platforms.server.auth.add_user("alice", "agent")
    sim = TwilioCall(
        platforms.url("/telephony/twilio"),
        TWILIO_TOKEN,
        parameters={"agent": "alice", "language": "en"},
    )
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        await sim.send(en_call, fast=True)
        call_id = await watcher.wait_call(sim.call_sid)
        events = await watcher.wait_ended(call_id)
    assert "nova mobile" in said(events, "agent")
    assert "internet" in said(events, "customer")
    ended = events[-1]["data"]
    assert ended["reason"] == "hangup" and ended["duration_ms"] == pytest.approx(44_200, abs=300)
    assert platforms.server.agent_of(call_id) == "alice"
    # Same suggestions and warnings as the same call's script through our own protocol.
    scripted = await replay(
        platforms.base + f"/ws?token={platforms.token}",
        load_script(SAMPLES / "en_call.toml"),
        fast=True,
    )

    def kinds(evs: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {
            (
                e["type"],
                e["data"]["offer_id"] if e["type"] == "suggestion" else e["data"]["rule_id"],
            )
            for e in evs
            if e["type"] in ("suggestion", "warning")
        }

    want = kinds(scripted.events)
    assert {t for t, _ in want} == {"suggestion", "warning"}, want
    assert want <= kinds(events), (want, kinds(events))


async def test_twilio_wrong_signature_is_refused(platforms: Platforms, en_call: CallAudio) -> None:
    sim = TwilioCall(platforms.url("/telephony/twilio"), "not-the-token")
    with pytest.raises(InvalidStatus) as err:
        await sim.send(en_call, end_ms=200)
    assert err.value.response.status_code == 401


async def test_twilio_drop_and_resume_continues_one_call(
    platforms: Platforms, en_call: CallAudio
) -> None:
    sim = TwilioCall(
        platforms.url("/telephony/twilio"), TWILIO_TOKEN, parameters={"language": "en"}
    )
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        await sim.send(en_call, end_ms=6000, stop=False)  # the socket drops mid-call
        await asyncio.sleep(0.3)
        await sim.send(en_call, start_ms=5000, end_ms=11_000)  # resends 1 s, same stream
        call_id = await watcher.wait_call(sim.call_sid)
        events = await watcher.wait_ended(call_id)
    assert [e["type"] for e in events].count("call.started") == 1
    assert len({e["call_id"] for e in events}) == 1
    assert events[-1]["data"]["duration_ms"] == pytest.approx(11_000, abs=300)
    assert "nova mobile" in said(events, "agent") and said(events, "customer")


async def test_audiohook_japanese_call_with_probe_pause_and_continuation(
    platforms: Platforms, ja_call: CallAudio
) -> None:
    url = platforms.url("/telephony/audiohook")
    probe = AudioHookCall(
        url,
        HOOK_KEY,
        HOOK_SECRET,
        organization_id=ORG,
        conversation_id=audiohook.PROBE_CONVERSATION,
    )
    calls_before = len(platforms.server.services.store.list_calls())
    assert await probe.send(ja_call) == "probe"
    assert probe.opened_after_s is not None and probe.opened_after_s < 5
    assert [m["type"] for m in probe.received] == ["opened", "closed"]
    sim = AudioHookCall(
        url,
        HOOK_KEY,
        HOOK_SECRET,
        organization_id=ORG,
        language="ja-JP",
        custom_config={"agent": "hanako"},
    )
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        assert await sim.send(ja_call, end_ms=14_000, pause_ms=(9_000, 10_000)) == "end"
        assert sim.opened_after_s is not None and sim.opened_after_s < 5
        types = [m["type"] for m in sim.received if m["type"] != "event"]
        assert types == ["opened", "pong", "closed"]
        seqs = [m["seq"] for m in sim.received]
        assert seqs == list(range(1, len(seqs) + 1))  # one server sequence, events included
        # Genesys opens a new session for the same conversation: the call continues.
        assert await sim.send(ja_call, start_ms=14_000, end_ms=24_000, linger_s=4) == "end"
        call_id = await watcher.wait_call(sim.conversation_id)
        events = await watcher.wait_ended(call_id)
    assert [e["type"] for e in events].count("call.started") == 1
    assert events[0]["data"]["language"] == "ja"
    assert events[-1]["data"]["duration_ms"] == pytest.approx(24_000, abs=400)
    agent, customer = said(events, "agent"), said(events, "customer")
    assert "ノヴァ" in agent or "モバイル" in agent or "お電話" in agent, agent
    assert customer, finals(events)
    assert platforms.server.agent_of(call_id) == "hanako"
    # Our finals went back to Genesys as transcript events on the right channel.
    entities = [
        e for m in sim.received if m["type"] == "event" for e in m["parameters"]["entities"]
    ]
    assert entities and {e["type"] for e in entities} == {"transcript"}
    channels = {e["data"]["channel"] for e in entities}
    assert channels <= {"external", "internal"} and "internal" in channels
    texts = [e["data"]["alternatives"][0]["interpretations"][0]["transcript"] for e in entities]
    assert any(t in agent or t.lower() in agent for t in texts)
    assert len(platforms.server.services.store.list_calls()) == calls_before + 1
    assert not watcher.call_titled(audiohook.PROBE_CONVERSATION)  # the probe made no call


async def test_audiohook_refuses_bad_signature_and_foreign_organisation(
    platforms: Platforms, ja_call: CallAudio
) -> None:
    url = platforms.url("/telephony/audiohook")
    forged = AudioHookCall(url, HOOK_KEY, base64.b64encode(b"guess").decode(), organization_id=ORG)
    with pytest.raises(InvalidStatus) as err:
        await forged.send(ja_call, end_ms=100)
    assert err.value.response.status_code == 401
    # Signed for our organisation, but 'open' names another one.
    sim = AudioHookCall(url, HOOK_KEY, HOOK_SECRET, organization_id=ORG)
    session = str(uuid.uuid4())
    async with connect(url, additional_headers=sim.headers(session)) as ws:
        await ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": session,
                    "type": "open",
                    "seq": 1,
                    "serverseq": 0,
                    "position": "PT0S",
                    "parameters": {
                        "organizationId": str(uuid.uuid4()),
                        "conversationId": str(uuid.uuid4()),
                        "media": [
                            {
                                "type": "audio",
                                "format": "PCMU",
                                "channels": ["external"],
                                "rate": 8000,
                            }
                        ],
                    },
                }
            )
        )
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "unauthorized"
    # The same signed request again (a replayed nonce) is refused.
    replayed = sim.headers(str(uuid.uuid4()))
    async with connect(url, additional_headers=replayed):
        pass
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers=replayed):
            pass


async def test_freeswitch_stereo_fork_drop_and_resume(
    platforms: Platforms, en_call: CallAudio
) -> None:
    sim = AudioForkCall(
        platforms.url(f"/telephony/freeswitch?token={FS_TOKEN}"),
        metadata={"agent": "bob", "language": "en"},
    )
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        await sim.send(en_call, end_ms=7000, hangup=False)  # network blip
        await asyncio.sleep(0.3)
        await sim.send(en_call, start_ms=7000, end_ms=12_000)
        call_id = await watcher.wait_call(sim.call_id)
        events = await watcher.wait_ended(call_id)
    assert [e["type"] for e in events].count("call.started") == 1
    assert "nova mobile" in said(events, "agent")
    assert said(events, "customer")
    assert platforms.server.agent_of(call_id) == "bob"
    # the second socket's audio follows the first's: no loss, no overlap
    assert events[-1]["data"]["duration_ms"] == pytest.approx(12_000, abs=300)
    assert events[-1]["data"]["reason"] == "hangup"


async def test_freeswitch_auth_and_layout_are_enforced(
    platforms: Platforms, en_call: CallAudio
) -> None:
    wrong = AudioForkCall(platforms.url("/telephony/freeswitch?token=nope"))
    with pytest.raises(InvalidStatus):
        await wrong.send(en_call, end_ms=100)
    jambonz = AudioForkCall(
        platforms.url("/telephony/freeswitch"),
        basic_auth=("fs", "pw"),
        subprotocol="audio.jambonz.org",
        metadata={"mixType": "mixed"},
    )
    async with connect(
        jambonz.url,
        subprotocols=["audio.jambonz.org"],  # type: ignore[list-item]
        additional_headers={"Authorization": "Basic " + base64.b64encode(b"fs:pw").decode()},
    ) as ws:
        assert ws.subprotocol == "audio.jambonz.org"
        await ws.send(json.dumps({"callSid": "j-1", "mixType": "mixed", "sampleRate": 8000}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.reason == "telephony.unsupported_layout"


async def test_asterisk_audiosocket_legs_pair_into_one_call(
    platforms: Platforms, en_call: CallAudio
) -> None:
    port = platforms.server.telephony.audiosocket_port
    assert port
    sim = AudioSocketCall(platforms.host, port)
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        await asyncio.gather(
            sim.send_leg(en_call, "customer", end_ms=11_000),
            sim.send_leg(en_call, "agent", end_ms=11_000),
        )
        call_id = await watcher.wait_call(str(sim.call_uuid)[:35])
        events = await watcher.wait_ended(call_id)
    assert [e["type"] for e in events].count("call.started") == 1
    assert "nova mobile" in said(events, "agent")
    assert "internet" in said(events, "customer")
    assert platforms.server.agent_of(call_id) == "desk-7"
    assert events[-1]["data"]["duration_ms"] == pytest.approx(11_000, abs=300)


async def test_eight_concurrent_streams_and_a_swapped_call(
    platforms: Platforms, en_call: CallAudio
) -> None:
    short = CallAudio(en_call.pcm16[: 16000 * 6], en_call.sample_rate, en_call.speakers)
    sims: list[tuple[str, Any]] = []
    for i in range(8):
        if i % 4 == 0:
            s: Any = TwilioCall(
                platforms.url("/telephony/twilio"),
                TWILIO_TOKEN,
                parameters={"language": "en", "swap": "true" if i == 0 else ""},
            )
            sims.append((s.call_sid, s.send(short)))
        elif i % 4 == 1:
            s = AudioHookCall(
                platforms.url("/telephony/audiohook"),
                HOOK_KEY,
                HOOK_SECRET,
                organization_id=ORG,
                language="en-US",
            )
            sims.append((s.conversation_id, s.send(short, ping=False)))
        elif i % 4 == 2:
            s = AudioForkCall(
                platforms.url(f"/telephony/freeswitch?token={FS_TOKEN}"),
                metadata={"language": "en"},
                sample_rate=8000,
            )
            sims.append((s.call_id, s.send(short)))
        else:
            s = AudioSocketCall(platforms.host, platforms.server.telephony.audiosocket_port or 0)
            sims.append((str(s.call_uuid)[:35], s.send(short)))
    t0 = time.monotonic()
    async with CallWatcher(platforms.base + "/ws", platforms.token) as watcher:
        await asyncio.gather(*(send for _, send in sims))
        ids = [await watcher.wait_call(needle) for needle, _ in sims]
        results = [await watcher.wait_ended(call_id) for call_id in ids]
    assert len(set(ids)) == 8
    for events in results:
        assert events[0]["type"] == "call.started"
        assert finals(events), events
    assert finals(results[0])[0][0] == "customer"  # swapped: the greeting is on the other side
    assert finals(results[4])[0][0] == "agent"
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("platform", ["twilio", "audiohook", "freeswitch", "audiosocket"])
async def test_replay_as_sends_a_recording_through_each_adapter(
    platforms: Platforms, en_call: CallAudio, config: Config, platform: str
) -> None:
    short = CallAudio(en_call.pcm16[: 16000 * 6], en_call.sample_rate, en_call.speakers)
    cfg = dataclasses.replace(config, telephony=platforms.server.services.config.telephony)
    result = await replay_as(
        platform,
        platforms.base,
        short,
        cfg,
        console_token=platforms.token,
        audiosocket_port=platforms.server.telephony.audiosocket_port,
        language="en",
        fast=True,
    )
    assert result.events[0]["type"] == "call.started"
    assert result.events[-1]["type"] == "call.ended"
    assert "nova mobile" in said(result.events, "agent")


async def test_replay_command_takes_as(tmp_path: Path) -> None:
    """The command line starts an embedded server with the adapter on (fresh secrets)."""
    short = read_call_audio(SAMPLES / "en_call.flac")
    wav = tmp_path / "greeting.wav"
    import soundfile

    soundfile.write(wav, short.pcm16[: 16000 * 6], short.sample_rate)
    out = tmp_path / "events.jsonl"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        (REPO / "config.toml")
        .read_text(encoding="utf-8")
        .replace('path = "var/agent-assist.sqlite3"', f'path = "{tmp_path / "db.sqlite3"}"')
        .replace('dir = "models"', f'dir = "{REPO / "models"}"')
        .replace("port = 8765", f"port = {free_port()}"),  # no --server: embedded server
        encoding="utf-8",
    )
    rc = await asyncio.to_thread(
        main,
        [
            "--config",
            str(cfg),
            "replay",
            "--as",
            "twilio",
            "--fast",
            "--language",
            "en",
            "--events",
            str(out),
            str(wav),
        ],
    )
    assert rc == 0
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert events[0]["type"] == "call.started" and events[-1]["type"] == "call.ended"
    assert "nova mobile" in said(events, "agent")
