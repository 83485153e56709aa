"""What every platform parser produces, and the clock that places a stream's audio.

Each platform module is sans-I/O: platform messages in, a list of these actions out.
The asyncio gateway performs them (reply on the socket, start or continue a call, push
audio, let the stream go). ``CallClock`` is the pure rule for "audio at this position":
a gap becomes silence and audio the call already has (a resent chunk after a reconnect)
is dropped, so a call's clock never runs backwards or skips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agent_assist.audio.g711 import Pcm16
from agent_assist.core.events import Language, Speaker
from agent_assist.core.events import language_of as core_language_of

CALL_SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
"""Every platform call becomes a two-channel call in this order."""


@dataclass(frozen=True, slots=True)
class Begin:
    """Start a call, or continue the live one with the same ``call_key`` (a resume)."""

    call_key: str
    stream_id: str
    sample_rate: int
    agent: str | None = None
    language: Language | None = None
    title: str = ""
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Audio:
    """Samples of one speaker at ``at`` (samples since the stream began; None: next)."""

    speaker: Speaker
    pcm: Pcm16
    at: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A text message back to the platform."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The stream is over. ``final``: the platform ended the call; else it may come back."""

    reason: str
    final: bool


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (after any replies) with a websocket code and reason."""

    code: int = 1000
    reason: str = ""


Action = Begin | Audio | Reply | Finish | Close


def speaker_for(speaker: Speaker, swap: bool) -> Speaker:
    if not swap:
        return speaker
    return "customer" if speaker == "agent" else "agent"


def truthy(value: object) -> bool:
    """Metadata flags arrive as strings from some platforms (``"true"``, ``"1"``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def language_of(value: object) -> Language | None:
    """``ja-JP`` / ``en-US`` / ``ja`` → ``ja`` / ``en``; anything else → None (default)."""
    if not isinstance(value, str):
        return None
    return core_language_of(value.strip().lower()[:2])


@dataclass
class CallClock:
    """Per-channel write positions of one call, in samples at the call's rate."""

    channels: int
    max_gap: int
    position: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.position:
            self.position = [0] * self.channels

    def place(self, channel: int, at: int, pcm: Pcm16) -> Pcm16:
        """The samples to append to ``channel`` so that ``pcm`` lands at ``at``."""
        here = self.position[channel]
        if at > here:
            gap = at - here
            if gap > self.max_gap:  # a broken clock: do not invent minutes of silence
                gap = 0
            out = np.concatenate([np.zeros(gap, dtype=np.int16), pcm]) if gap else pcm
        else:
            out = pcm[here - at :]  # the call already has this part
        self.position[channel] += int(out.size)
        return out

    @property
    def end(self) -> int:
        return max(self.position)
