"""Scripted calls through the pure core: each file under tests/calls/ states what must happen."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from agent_assist.core.events import ComplianceWarning, Event, Suggestion
from agent_assist.core.policy import PolicyBook
from agent_assist.core.script import parse_script, turn_final
from agent_assist.core.session import CallSession
from agent_assist.core.signals import SignalDetector
from tests.conftest import CALLS

CALL_FILES = sorted(CALLS.glob("*.toml"))


def run_script(path: Path, detector: SignalDetector, book: PolicyBook) -> tuple[list[Event], str]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    script = parse_script(doc, path.name)
    session = CallSession(detector, book, script.language)
    out: list[Event] = []
    for i, turn in enumerate(script.turns, start=1):
        out += session.feed(turn_final("c-test", i, turn, script.language))
    return out, session.state.phase


def _shown(event: Event) -> dict[str, Any] | None:
    if isinstance(event, Suggestion):
        return {
            "type": "suggestion",
            "kind": event.kind,
            "offer_id": event.offer_id,
            "rule_id": event.rule_id,
            "quote": event.evidence.quote,
        }
    if isinstance(event, ComplianceWarning):
        return {"type": "warning", "rule_id": event.rule_id, "quote": event.evidence.quote}
    return None


@pytest.mark.parametrize("path", CALL_FILES, ids=[p.stem for p in CALL_FILES])
def test_scripted_call(path: Path, detector: SignalDetector, policy_book: PolicyBook) -> None:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    events, phase = run_script(path, detector, policy_book)
    shown = [s for s in map(_shown, events) if s is not None]
    expected = doc.get("expect", [])
    got = [{k: s.get(k) for k in exp} for s, exp in zip(shown, expected, strict=False)]
    assert got == expected and len(shown) == len(expected), f"shown: {shown}"
    assert phase == doc["final_phase"]


def test_every_evidence_quote_is_its_span(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    for path in CALL_FILES:
        events, _ = run_script(path, detector, policy_book)
        for event in events:
            ev = getattr(event, "evidence", None)
            if ev is not None:
                assert ev.text[ev.start : ev.end] == ev.quote


def test_replaying_a_call_gives_identical_events(
    detector: SignalDetector, policy_book: PolicyBook
) -> None:
    first, _ = run_script(CALLS / "ja_demo.toml", detector, policy_book)
    second, _ = run_script(CALLS / "ja_demo.toml", detector, policy_book)
    assert first == second and first
