"""Call phases and policy parsing: the table drives the state; bad files list every problem."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from agent_assist.core.events import Evidence, SignalDetected, Speaker
from agent_assist.core.phases import TRANSITIONS, CallState
from agent_assist.core.policy import parse_policy
from agent_assist.errors import ConfigError


def sig(signal: str, speaker: Speaker = "customer") -> SignalDetected:
    ev = Evidence(utterance_id="u", speaker=speaker, text="x", start=0, end=1, quote="x")
    return SignalDetected(
        call_id="c", t_ms=0, signal=signal, speaker=speaker, rule_id="r", evidence=ev
    )


def test_cancellation_wins_within_one_utterance() -> None:
    state = CallState(phase="offer_open")
    changes = state.apply([sig("cancel_intent"), sig("price_objection")])
    assert [c.to_phase for c in changes] == ["declined", "retention"]
    assert state.phase == "retention"


def test_offer_history_records_a_price_refusal() -> None:
    state = CallState()
    state.apply([sig("offer_made", "agent")])
    state.apply([sig("price_objection")])
    assert state.phase == "declined"
    assert state.last_offer is not None and state.last_offer.outcome == "declined"
    assert state.last_offer.declined_on_price


def test_every_transition_targets_a_known_phase() -> None:
    phases = {"opening", "discovery", "offer_open", "declined", "accepted", "retention", "closing"}
    for (source, trigger), (target, rule_id) in TRANSITIONS.items():
        assert source in phases | {"*"} and target in phases
        assert trigger.split(":")[0] in ("agent", "customer") and rule_id.endswith(".v1")


def test_bundled_policy_parses() -> None:
    text = (resources.files("agent_assist") / "data/policy/nova_mobile.toml").read_text("utf-8")
    book = parse_policy(tomllib.loads(text), "nova_mobile.toml")
    assert {r.rule_id for r in book.compliance} >= {"compliance.pitch_during_cancellation.v1"}


def test_broken_policy_lists_every_problem_by_key_path() -> None:
    doc = {
        "offers": {"a": {"name": {"en": "A"}}},
        "offer_rule": [
            {
                "id": "x",
                "signal": "s",
                "kind": "megasell",
                "offer": "zzz",
                "line": {"en": "l", "ja": "l"},
                "reason": {"en": "r", "ja": "r"},
            }
        ],
        "compliance": [{"id": "c", "signal": "s", "severity": "extreme"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_policy(doc, "broken.toml")
    text = str(info.value)
    for fragment in [
        "offers.a.name: missing text for ['ja']",
        "offer_rule[0].kind",
        "offer_rule[0].offer: unknown offer 'zzz'",
        "retention: a [retention] table",
        "compliance[0].severity",
        "compliance[0].title",
    ]:
        assert fragment in text
