"""Call phases and policy parsing: the table drives the state; bad files list every problem."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from agent_assist.core.catalog import Catalog
from agent_assist.core.events import Evidence, SignalDetected, Speaker
from agent_assist.core.phases import PHASES, TRANSITIONS, CallState
from agent_assist.core.policy import PolicyBook, parse_policy
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
    state.apply([sig("offer_made", "agent")], "agent", ("upsell", "fiber_1g", "s-1"))
    state.apply([sig("price_objection")])
    assert state.phase == "declined" and state.budget_stated
    last = state.last_offer
    assert last is not None and last.outcome == "declined" and last.declined_on_price
    assert (last.kind, last.product_id, last.suggestion_id) == ("upsell", "fiber_1g", "s-1")


def test_an_upset_customer_calms_down_after_two_calm_turns() -> None:
    state = CallState(phase="discovery")
    assert [c.to_phase for c in state.apply([sig("anger")])] == ["care"]
    assert state.note_calm_turn("c", 1) == []
    (change,) = state.note_calm_turn("c", 2)
    assert (change.to_phase, change.rule_id) == ("discovery", "phase.customer_calmed.v1")


def test_anger_during_retention_stays_retention() -> None:
    state = CallState(phase="retention")
    assert state.apply([sig("anger")]) == [] and state.phase == "retention"


def test_agent_marks_settle_the_open_offer() -> None:
    state = CallState()
    state.apply([sig("offer_made", "agent")], "agent", ("upsell", "data_50gb", "s-1"))
    (change,) = state.apply_feedback("accepted", "c", 9, "upsell", "data_50gb", "s-1")
    assert change.to_phase == "accepted" and state.last_accepted is not None
    assert state.last_accepted.product_id == "data_50gb"


def test_every_transition_targets_a_known_phase() -> None:
    for (source, trigger), (target, rule_id) in TRANSITIONS.items():
        assert source in (*PHASES, "*") and target in PHASES
        assert trigger.split(":")[0] in ("agent", "customer", "feedback")
        pinned = target == source
        assert (pinned and rule_id == "") or (not pinned and rule_id.endswith(".v1"))


def test_bundled_policy_parses(policy_book: PolicyBook) -> None:
    ids = {r.rule_id for r in policy_book.compliance}
    assert {
        "compliance.pitch_during_cancellation.v1",
        "compliance.pitch_during_complaint.v1",
        "compliance.push_after_no.v1",
        "compliance.past_budget.v2",
        "compliance.company_centric.v1",
        "compliance.pressure_language.v1",
        "compliance.unrelated_cross_sell.v1",
        "compliance.pitch_before_needs.v1",
    } <= ids
    assert {r.kind for r in policy_book.offer_rules} == {"upsell", "cross_sell", "downsell"}
    refs = " ".join(r.reference for r in policy_book.compliance)
    assert "特定商取引法 第17条" in refs and "電気通信事業法 第27条の2" in refs


def _bundled(name: str) -> dict[str, object]:
    text = (resources.files("agent_assist") / "data" / name).read_text("utf-8")
    return tomllib.loads(text)


def test_broken_policy_lists_every_problem_by_key_path(policy_book: PolicyBook) -> None:
    catalog: Catalog = policy_book.catalog
    doc = {
        "offer_rule": [
            {
                "id": "x",
                "on": ["customer:slow", "robot:beep"],
                "kind": "megasell",
                "target": "sideways",
                "default": "zzz",
                "family": "boats",
                "line": {"en": "{offer} for {price_diff} and {moon_phase}", "ja": "{offer"},
                "line_generic": {"en": "{usage_gb}", "ja": "x"},
                "reason": {"en": "r"},
            }
        ],
        "compliance": [{"id": "c.v1", "signal": "s", "severity": "extreme", "condition": "odd"}],
        "reasons": {"retention": {"id": "suppress.retention.v1", "text": {"en": "t", "ja": "t"}}},
    }
    with pytest.raises(ConfigError) as info:
        parse_policy(doc, "broken.toml", catalog)
    text = str(info.value)
    for fragment in [
        "offer_rule[0].id: 'x' must end in a version",
        "offer_rule[0] (x).kind",
        "offer_rule[0] (x).target",
        "offer_rule[0] (x).family: unknown family 'boats'",
        "offer_rule[0] (x).default: unknown product 'zzz'",
        "offer_rule[0] (x).on: 'robot:beep'",
        "offer_rule[0] (x).line.en: unknown or unavailable facts ['moon_phase']",
        "offer_rule[0] (x).line.ja: malformed template",
        "offer_rule[0] (x).line_generic.en: unknown or unavailable facts ['usage_gb']",
        "offer_rule[0] (x).reason: missing text for ['ja']",
        "reasons.upset: missing",
        "compliance[0] (c.v1).severity",
        "compliance[0] (c.v1).condition",
        "compliance[0] (c.v1).title",
    ]:
        assert fragment in text, fragment


def test_bundled_files_parse_on_their_own() -> None:
    assert _bundled("policy/nova_mobile.toml")["operator"] == "Nova Mobile"
