"""Scripted calls: text turns with speaker and time, for tests of every stage after ASR.

Format (TOML)::

    title = "Demo: slow internet"
    language = "en"
    [[turn]]
    speaker = "customer"   # or "agent"
    start = 5.8            # seconds into the call
    end = 10.6
    text = "My internet connection is so slow."

Optional: ``customer_id`` (a CRM record to link), ``direction`` ("inbound" or
"outbound"), ``date`` (the call's date, for days to renewal), and ``[[feedback]]``
tables (``at`` seconds, ``suggestion_id``, ``action``): the agent's marks in the console,
applied after every turn that ended by then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from agent_assist.core.events import (
    FEEDBACK_ACTIONS,
    SPEAKERS,
    FeedbackAction,
    Language,
    Speaker,
    TranscriptFinal,
    language_of,
)
from agent_assist.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Speaker
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class ScriptFeedback:
    at_ms: int
    suggestion_id: str
    action: FeedbackAction


@dataclass(frozen=True)
class ScriptedCall:
    title: str
    language: Language
    turns: tuple[Turn, ...]
    customer_id: str | None = None
    direction: str = "inbound"
    date: dt.date | None = None
    feedback: tuple[ScriptFeedback, ...] = ()


def parse_script(doc: Mapping[str, Any], source: str) -> ScriptedCall:
    """Validate a scripted call; raise ``ConfigError`` listing every problem."""
    problems: list[str] = []
    language = language_of(doc.get("language"))
    if language is None:
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
    customer_id, direction, date = (
        doc.get("customer_id"),
        doc.get("direction", "inbound"),
        doc.get("date"),
    )
    if customer_id is not None and (not isinstance(customer_id, str) or not customer_id):
        problems.append("customer_id: must be a customer id string")
    if direction not in ("inbound", "outbound"):
        problems.append("direction: must be 'inbound' or 'outbound'")
    if date is not None and not isinstance(date, dt.date):
        problems.append("date: must be a TOML date such as 2026-11-22")
    feedback = _feedback(doc.get("feedback", []), problems)
    if problems or language is None:
        raise ConfigError(source, problems)
    turns.sort(key=lambda t: (t.end_ms, t.start_ms))
    return ScriptedCall(
        title=str(doc.get("title", source)),
        language=language,
        turns=tuple(turns),
        customer_id=customer_id,
        direction=str(direction),
        date=date,
        feedback=feedback,
    )


def _feedback(raw: object, problems: list[str]) -> tuple[ScriptFeedback, ...]:
    if not isinstance(raw, list):
        problems.append("feedback: must be a list of [[feedback]] tables")
        return ()
    out = []
    for i, item in enumerate(raw):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a table")
            continue
        at, sid, action = item.get("at"), item.get("suggestion_id"), item.get("action")
        if not isinstance(at, int | float) or at < 0:
            problems.append(f"{where}.at: must be seconds >= 0")
            at = 0
        if not isinstance(sid, str) or not sid:
            problems.append(f"{where}.suggestion_id: must name a suggestion such as 's-1'")
        if action not in FEEDBACK_ACTIONS:
            problems.append(f"{where}.action: must be one of {list(FEEDBACK_ACTIONS)}")
        out.append(ScriptFeedback(round(at * 1000), str(sid), cast(FeedbackAction, action)))
    return tuple(sorted(out, key=lambda f: f.at_ms))


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
