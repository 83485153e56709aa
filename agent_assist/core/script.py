"""Scripted calls: text turns with speaker and time, for tests of every stage after ASR.

Format (TOML)::

    title = "Demo: slow internet"
    language = "en"
    [[turn]]
    speaker = "customer"   # or "agent"
    start = 5.8            # seconds into the call
    end = 10.6
    text = "My internet connection is so slow."
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from agent_assist.core.events import SPEAKERS, Speaker, TranscriptFinal
from agent_assist.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Speaker
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class ScriptedCall:
    title: str
    language: str
    turns: tuple[Turn, ...]


def parse_script(doc: Mapping[str, Any], source: str) -> ScriptedCall:
    """Validate a scripted call; raise ``ConfigError`` listing every problem."""
    problems: list[str] = []
    language = doc.get("language")
    if language not in ("ja", "en"):
        problems.append("language: must be 'ja' or 'en'")
    raw_turns = doc.get("turn")
    if not isinstance(raw_turns, list) or not raw_turns:
        problems.append("turn: at least one [[turn]] is required")
        raw_turns = []
    turns: list[Turn] = []
    for i, raw in enumerate(raw_turns):
        where = f"turn[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        speaker, text = raw.get("speaker"), raw.get("text")
        start, end = raw.get("start"), raw.get("end")
        if speaker not in SPEAKERS:
            problems.append(f"{where}.speaker: must be one of {list(SPEAKERS)}")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.text: must be non-empty text")
        if not isinstance(start, int | float) or start < 0:
            problems.append(f"{where}.start: must be seconds >= 0")
            start = 0
        if not isinstance(end, int | float) or end < start:
            problems.append(f"{where}.end: must be seconds >= start")
            end = start
        turns.append(
            Turn(cast(Speaker, speaker), round(start * 1000), round(end * 1000), str(text))
        )
    if problems:
        raise ConfigError(source, problems)
    turns.sort(key=lambda t: (t.end_ms, t.start_ms))
    return ScriptedCall(
        title=str(doc.get("title", source)), language=str(language), turns=tuple(turns)
    )


def turn_final(call_id: str, index: int, turn: Turn, language: str) -> TranscriptFinal:
    """The final transcript a scripted turn stands for."""
    return TranscriptFinal(
        call_id=call_id,
        t_ms=turn.start_ms,
        utterance_id=f"{turn.speaker}-{index:04d}",
        speaker=turn.speaker,
        end_ms=turn.end_ms,
        language=language,
        text=turn.text,
    )
