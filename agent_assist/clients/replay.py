"""Replay a recorded or scripted call, into a server or in-process, as telephony would.

Audio goes out in 100 ms frames per channel, interleaved in time order, at real-time
pace (or as fast as possible with ``fast``). A scripted call (TOML turns) goes out as
``turn`` messages in text mode. Every event the server sends back for the call can be
written to a JSONL file, one protocol message per line, exactly as the console gets it.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent_assist.audio.files import CallAudio
from agent_assist.clients.source import CallSource, EventSink, LocalSource, SourceClient
from agent_assist.core.events import LanguageChoice
from agent_assist.core.script import ScriptedCall, ScriptFeedback, parse_script
from agent_assist.errors import AgentAssistError, ConfigError
from agent_assist.protocol import CallStart, Feedback, TurnIn

if TYPE_CHECKING:
    from agent_assist.runtime.desk import CallDesk

FRAME_MS = 100
"""Audio per frame a replay sends; phone gateways send 20 ms (``frame_ms``)."""


@dataclass
class ReplayResult:
    call_id: str
    events: list[dict[str, Any]]


def load_script(path: Path) -> ScriptedCall:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"not a valid scripted call (TOML): {exc}"]) from exc
    return parse_script(doc, str(path))


async def replay(
    url: str,
    call: CallAudio | ScriptedCall,
    *,
    language: LanguageChoice = "auto",
    title: str = "",
    fast: bool = False,
    events_out: TextIO | None = None,
    on_event: EventSink | None = None,
    token: str | None = None,
    agent: str | None = None,
    on_progress: Callable[[float], None] | None = None,
    frame_ms: int = FRAME_MS,
) -> ReplayResult:
    """Stream ``call`` to the server at ``url`` and return the events it sent back.

    ``token`` signs the connection in (``Authorization: Bearer``); ``agent`` names the
    agent the call belongs to; ``on_progress`` hears the fraction of the call sent;
    ``frame_ms``: audio per frame (the end of speech is seen at a frame's end).
    """
    async with SourceClient.connect(
        url, token=token, sink=events_out, on_event=on_event
    ) as client:
        return await play(client, call, language, title, fast, agent, on_progress, frame_ms)


async def replay_in_process(
    desk: CallDesk,
    call: CallAudio | ScriptedCall,
    *,
    language: LanguageChoice = "auto",
    title: str = "",
    fast: bool = False,
    events_out: TextIO | None = None,
    on_event: EventSink | None = None,
    agent: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ReplayResult:
    """Like ``replay``, through this process's pipeline: no server, no socket."""
    return await play(
        LocalSource(desk, events_out, on_event), call, language, title, fast, agent, on_progress
    )


def call_start(
    call: CallAudio | ScriptedCall, language: LanguageChoice, title: str, agent: str | None
) -> CallStart:
    """The ``call.start`` of a recorded or scripted call."""
    if isinstance(call, ScriptedCall):
        return CallStart(
            0,
            call.language,
            16000,
            ("agent", "customer"),
            title or call.title,
            call.customer_id,
            "text",
            agent,
        )
    return CallStart(0, language, call.sample_rate, call.speakers, title, None, "audio", agent)


async def play(
    source: CallSource,
    call: CallAudio | ScriptedCall,
    language: LanguageChoice,
    title: str,
    fast: bool,
    agent: str | None,
    on_progress: Callable[[float], None] | None,
    frame_ms: int = FRAME_MS,
) -> ReplayResult:
    """Start the call, send its audio or turns (and the agent's marks), end it."""
    call_id = await source.start(call_start(call, language, title, agent))
    t0 = time.monotonic()
    if isinstance(call, ScriptedCall):
        end_ms = await _send_turns(source, call, call_id, t0, fast)
    else:
        end_ms = await _send_audio(source, call, t0, fast, on_progress, frame_ms)
    await source.end(call_id, end_ms)
    if source.errors:
        first = source.errors[0]["data"]
        raise AgentAssistError(
            f"server refused part of the replay: {first['message']}", code=first["code"]
        )
    return ReplayResult(call_id=call_id, events=source.events)


async def _pace(t0: float, at_ms: int, fast: bool) -> None:
    if fast:
        await asyncio.sleep(0)  # let the reader run
        return
    delay = t0 + at_ms / 1000 - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _send_audio(
    source: CallSource,
    audio: CallAudio,
    t0: float,
    fast: bool,
    on_progress: Callable[[float], None] | None = None,
    frame_ms: int = FRAME_MS,
) -> int:
    step = audio.sample_rate * frame_ms // 1000
    total = int(audio.pcm16.shape[0])
    every = max(1, 1000 // frame_ms)  # progress about once a second
    for i, start in enumerate(range(0, total, step)):
        await _pace(t0, i * frame_ms, fast)
        if on_progress is not None and i % every == 0:
            on_progress(start / total)
        await source.send_block(audio.pcm16[start : start + step])
    return round(total * 1000 / audio.sample_rate)


async def _send_turns(
    source: CallSource, call: ScriptedCall, call_id: str, t0: float, fast: bool
) -> int:
    marks = list(call.feedback)
    for turn in call.turns:
        while marks and marks[0].at_ms < turn.end_ms:
            await _send_mark(source, marks.pop(0), call_id, t0, fast)
        await _pace(t0, turn.end_ms, fast)
        await source.send_turn(
            call_id, TurnIn(0, turn.speaker, turn.start_ms, turn.end_ms, turn.text)
        )
    for mark in marks:
        await _send_mark(source, mark, call_id, t0, fast)
    return max(t.end_ms for t in call.turns)


async def _send_mark(
    source: CallSource, mark: ScriptFeedback, call_id: str, t0: float, fast: bool
) -> None:
    """The agent's console mark, once the server has shown the suggestion it is about."""
    await _pace(t0, mark.at_ms, fast)
    deadline = time.monotonic() + 10
    while mark.suggestion_id not in source.suggestions and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await source.send_feedback(Feedback(0, call_id, mark.suggestion_id, mark.action))
