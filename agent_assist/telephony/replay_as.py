"""``agent-assist replay --as PLATFORM FILE``: a recording sent through a platform adapter.

The recording goes out exactly as the platform would send it (its simulator, with the
credentials from ``[telephony.*]``), while a console connection hears the call, so a site
sees the same events as with a plain replay and knows its set-up works end to end.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Callable
from typing import Any, TextIO

from agent_assist.audio.files import CallAudio
from agent_assist.clients.replay import ReplayResult
from agent_assist.config import Config
from agent_assist.errors import ConfigError
from agent_assist.telephony.config import secret
from agent_assist.telephony.simulators import (
    PLATFORMS,
    AudioForkCall,
    AudioHookCall,
    AudioSocketCall,
    CallWatcher,
    TwilioCall,
)


def enable_for_replay(config: Config, platform: str) -> Config:
    """An embedded server's config with ``platform`` on and fresh secrets where none are set."""
    tel = config.telephony
    token = secrets.token_urlsafe(16)
    if platform == "twilio":
        tel = dataclasses.replace(
            tel,
            twilio=dataclasses.replace(
                tel.twilio, enabled=True, auth_token=tel.twilio.auth_token or token, public_url=""
            ),
        )
    elif platform == "audiohook":
        hook = tel.audiohook
        tel = dataclasses.replace(
            tel,
            audiohook=dataclasses.replace(
                hook,
                enabled=True,
                api_key=hook.api_key or token,
                client_secret=hook.client_secret
                or base64.b64encode(secrets.token_bytes(32)).decode(),
                organization_id="",
            ),
        )
    elif platform == "freeswitch":
        tel = dataclasses.replace(
            tel,
            freeswitch=dataclasses.replace(
                tel.freeswitch, enabled=True, token=tel.freeswitch.token or token
            ),
        )
    else:
        tel = dataclasses.replace(
            tel,
            audiosocket=dataclasses.replace(
                tel.audiosocket, enabled=True, host="127.0.0.1", port=0
            ),
        )
    return dataclasses.replace(config, telephony=tel)


async def replay_as(
    platform: str,
    ws_base: str,
    audio: CallAudio,
    config: Config,
    *,
    console_token: str | None,
    audiosocket_port: int | None = None,
    language: str = "auto",
    agent: str | None = None,
    fast: bool = False,
    events_out: TextIO | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> ReplayResult:
    """Send ``audio`` as ``platform`` to the server at ``ws_base`` (``ws://host:port``)."""
    if platform not in PLATFORMS:
        raise ConfigError("replay --as", [f"unknown platform {platform!r}: {', '.join(PLATFORMS)}"])
    tel = config.telephony
    lang = "" if language == "auto" else language
    needle = "\0"  # set once the simulator has its platform call id
    async with CallWatcher(ws_base + "/ws", console_token) as watcher:

        def seen(msg: dict[str, Any]) -> None:
            if msg.get("call_id") != watcher.call_titled(needle):
                return
            if events_out is not None:
                events_out.write(json.dumps(msg, ensure_ascii=False) + "\n")
            if on_event is not None:
                on_event(msg)

        watcher.on_event = seen
        if platform == "twilio":
            params = {"language": lang, **({"agent": agent} if agent else {})}
            tw = TwilioCall(
                ws_base + tel.twilio.path,
                secret(tel.twilio.auth_token, "TWILIO_AUTH_TOKEN"),
                parameters=params,
            )
            if tel.twilio.public_url:
                tw.signed_url = tel.twilio.public_url.rstrip("/") + tel.twilio.path
            needle = tw.call_sid
            await tw.send(audio, fast=fast)
        elif platform == "audiohook":
            hook = tel.audiohook
            ah = AudioHookCall(
                ws_base + hook.path,
                secret(hook.api_key, "AUDIOHOOK_API_KEY"),
                secret(hook.client_secret, "AUDIOHOOK_CLIENT_SECRET"),
                language={"ja": "ja-JP", "en": "en-US"}.get(lang, ""),
                custom_config={"agent": agent} if agent else {},
            )
            if hook.organization_id:
                ah.organization_id = hook.organization_id
            needle = ah.conversation_id
            await ah.send(audio, fast=fast)
        elif platform == "freeswitch":
            fs = tel.freeswitch
            token = secret(fs.token, "FREESWITCH_TOKEN")
            meta = {"language": lang, **({"agent": agent} if agent else {})}
            fork = AudioForkCall(
                ws_base + fs.path + (f"?token={token}" if token else ""), metadata=meta
            )
            if not token and fs.username:
                fork.basic_auth = (fs.username, secret(fs.password, "FREESWITCH_PASSWORD"))
            needle = fork.call_id
            await fork.send(audio, fast=fast)
        else:
            host = ws_base.split("//", 1)[1].rsplit(":", 1)[0]
            sock = AudioSocketCall(host, audiosocket_port or tel.audiosocket.port)
            needle = str(sock.call_uuid)[:35]
            await sock.send(audio, fast=fast)
        call_id = await watcher.wait_call(needle)
        events = await watcher.wait_ended(call_id, timeout=max(60.0, tel.grace_s + 60))
    return ReplayResult(call_id=call_id, events=events)
