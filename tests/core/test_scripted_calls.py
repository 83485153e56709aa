"""Scripted calls through the pure core: each file under tests/calls/ states what must happen.

``[[expect]]`` lists every suggestion and warning shown, in order (``line_has``: text
the script line must contain); ``[[expect_decision]]`` lists decisions that must be
among those recorded (a candidate rule and the rule that settled it). A call that
needs signals the detector does not have (``requires_signals``) fails, naming them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from agent_assist.core.events import ComplianceWarning, Decision, Event, Suggestion
from agent_assist.core.policy import PolicyBook
from agent_assist.core.script import parse_script
from agent_assist.core.session import CallSession, play_script
from agent_assist.core.signals import SignalDetector
from agent_assist.crm import FileCustomerDirectory
from agent_assist.nlp.spacy_analyzer import load_rule_set
from tests.conftest import CALLS

CALL_FILES = sorted(CALLS.glob("*.toml"))
KNOWN_SIGNALS = {
    rule.signal for lang in ("en", "ja") for rule in load_rule_set(lang).rules.values()
}


def run_script(path: Path, detector: SignalDetector, book: PolicyBook) -> tuple[list[Event], str]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    script = parse_script(doc, path.name)
    customers = FileCustomerDirectory.load(None, book.catalog)
    session = CallSession(detector, book, script.language, today=script.date)
    out: list[Event] = []
    if script.customer_id:
        out += session.link_customer(
            "c-test", script.customer_id, customers.lookup(script.customer_id)
        )
    out += play_script(session, script, "c-test")
    return out, session.state.phase


def _shown(event: Event) -> dict[str, Any] | None:
    if isinstance(event, Suggestion):
        return {
            "type": "suggestion",
            "kind": event.kind,
            "offer_id": event.offer_id,
            "rule_id": event.rule_id,
            "quote": event.evidence.quote,
            "line": event.line,
        }
    if isinstance(event, ComplianceWarning):
        return {"type": "warning", "rule_id": event.rule_id, "quote": event.evidence.quote}
    return None


def _missing_signals(doc: dict[str, Any]) -> list[str]:
    return sorted(set(doc.get("requires_signals", [])) - KNOWN_SIGNALS)


@pytest.mark.parametrize("path", CALL_FILES, ids=[p.stem for p in CALL_FILES])
def test_scripted_call(path: Path, detector: SignalDetector, policy_book: PolicyBook) -> None:
    check_scripted_call(path, detector, policy_book)


def check_scripted_call(path: Path, detector: SignalDetector, policy_book: PolicyBook) -> None:
    """Run one scripted call and compare what it shows with its ``[[expect]]`` tables."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    assert not (missing := _missing_signals(doc)), f"needs signals the rules lack: {missing}"
    events, phase = run_script(path, detector, policy_book)
    shown = [s for s in map(_shown, events) if s is not None]
    expected = doc.get("expect", [])
    got = [_match(s, exp) for s, exp in zip(shown, expected, strict=False)]
    assert got == expected and len(shown) == len(expected), f"shown: {shown}"
    assert phase == doc["final_phase"]
    decisions = [
        {"rule_id": e.rule_id, "decided_by": e.decided_by}
        for e in events
        if isinstance(e, Decision)
    ]
    for wanted in doc.get("expect_decision", []):
        assert wanted in decisions, f"no decision {wanted}; decisions: {decisions}"


def _match(shown: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Shown values for the expected keys; ``line_has`` lists fragments the line must contain."""
    out = {k: shown.get(k) for k in expected if k != "line_has"}
    if "line_has" in expected:
        out["line_has"] = [f for f in expected["line_has"] if f in shown.get("line", "")]
    return out


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


def test_the_suite_is_big_enough() -> None:
    docs = [tomllib.loads(p.read_text(encoding="utf-8")) for p in CALL_FILES]
    assert len(docs) >= 30
    assert {d["language"] for d in docs} == {"ja", "en"}
    assert {d.get("direction", "inbound") for d in docs} == {"inbound", "outbound"}
