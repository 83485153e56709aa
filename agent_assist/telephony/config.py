"""``[telephony.*]`` in config.toml: which phone platforms may stream calls in, and how
each one proves who it is. Every adapter is off until enabled; secrets can also come from
the environment (named per field below) so config.toml need not hold them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TwilioConfig:
    enabled: bool = False
    path: str = "/telephony/twilio"
    auth_token: str = ""
    """The account's auth token: signs ``X-Twilio-Signature`` (or $TWILIO_AUTH_TOKEN)."""
    public_url: str = ""
    """The ``wss://host`` Twilio dials, when a proxy in front changes Host; empty: from Host."""
    source: str = "twilio"
    swap_channels: bool = False


@dataclass(frozen=True)
class AudioHookConfig:
    enabled: bool = False
    path: str = "/telephony/audiohook"
    api_key: str = ""
    client_secret: str = ""
    """Base64, as Genesys shows it; empty: unsigned requests with the right key are accepted."""
    organization_id: str = ""
    """When set, only this Genesys organisation may connect."""
    max_signature_age_s: int = 10
    transcript_events: bool = False
    """Send our final transcripts back to Genesys as ``event`` messages (transcript entities)."""
    source: str = "genesys"
    swap_channels: bool = False


@dataclass(frozen=True)
class FreeSwitchConfig:
    """mod_audio_fork, mod_audio_stream and jambonz ``listen`` (one wire format)."""

    enabled: bool = False
    path: str = "/telephony/freeswitch"
    token: str = ""
    """Accepted as ``?token=`` in the URL or as a bearer token."""
    username: str = ""
    password: str = ""
    """Basic auth (jambonz ``wsAuth``)."""
    source: str = "freeswitch"
    swap_channels: bool = False


@dataclass(frozen=True)
class AudioSocketConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9092
    source: str = "asterisk"
    agent: str = ""
    """AudioSocket carries no names: the agent of every call on this listener, if any."""
    language: str = ""


@dataclass(frozen=True)
class TelephonyConfig:
    grace_s: float = 10.0
    """A stream that drops may reconnect this long and continue the same call."""
    max_gap_s: float = 60.0
    """A longer hole in a stream's clock is not filled with silence (a broken timestamp)."""
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    audiohook: AudioHookConfig = field(default_factory=AudioHookConfig)
    freeswitch: FreeSwitchConfig = field(default_factory=FreeSwitchConfig)
    audiosocket: AudioSocketConfig = field(default_factory=AudioSocketConfig)


PLATFORM_SECTIONS: dict[str, type] = {
    "twilio": TwilioConfig,
    "audiohook": AudioHookConfig,
    "freeswitch": FreeSwitchConfig,
    "audiosocket": AudioSocketConfig,
}


def secret(value: str, env: str) -> str:
    """A configured secret, or the environment variable ``env`` when config leaves it empty."""
    return value or os.environ.get(env, "")


def check_telephony(cfg: TelephonyConfig, problems: list[str]) -> None:
    if not 0 <= cfg.grace_s <= 600:
        problems.append("telephony.grace_s: must be 0..600 seconds")
    if not 1 <= cfg.max_gap_s <= 3600:
        problems.append("telephony.max_gap_s: must be 1..3600 seconds")
    paths = [cfg.twilio.path, cfg.audiohook.path, cfg.freeswitch.path]
    for name, path in zip(("twilio", "audiohook", "freeswitch"), paths, strict=True):
        if not path.startswith("/") or path == "/ws":
            problems.append(f"telephony.{name}.path: must start with '/' and not be '/ws'")
    if len(set(paths)) != len(paths):
        problems.append("telephony: every platform needs its own path")
    if not 0 <= cfg.audiosocket.port <= 65535:
        problems.append("telephony.audiosocket.port: must be 0..65535")
    if cfg.audiohook.max_signature_age_s < 1:
        problems.append("telephony.audiohook.max_signature_age_s: must be at least 1")
    for name, lang in (("audiosocket", cfg.audiosocket.language),):
        if lang not in ("", "ja", "en", "auto"):
            problems.append(f"telephony.{name}.language: must be 'ja', 'en', 'auto' or empty")
