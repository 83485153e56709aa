"""Signal rules as data: parse and validate a per-language rule document.

The document is plain data (read from ``agent_assist/data/signals/<lang>.toml`` by the
shell); every problem is reported at once, by key path, so an operator fixing a rule
file sees all of them in one go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from agent_assist.core.events import SPEAKERS, Speaker
from agent_assist.core.signals import NegationScope, SignalRule
from agent_assist.errors import ConfigError

Pattern = list[dict[str, Any]]


@dataclass(frozen=True)
class SignalRuleSet:
    language: str
    rules: dict[str, SignalRule]
    patterns: dict[str, list[Pattern]]
    negation: NegationScope
    readings: dict[str, list[str]] = field(default_factory=dict)
    """Per rule, katakana readings matched across tokens (robust to wrong kanji from ASR)."""


OFFER_DETAILS = ("upsell", "cross_sell", "downsell")
DETAIL_SIGNALS = ("offer_made", "cue.product")
"""Signals whose rules may name the kind of offer their words show."""
KATAKANA = frozenset(chr(c) for c in range(0x30A1, 0x30FB)) | {"ー"}


def parse_signal_rules(doc: Mapping[str, Any], source: str) -> SignalRuleSet:
    """Validate a rule document; raise ``ConfigError`` listing every problem."""
    problems: list[str] = []
    language = doc.get("language")
    if not isinstance(language, str) or not language:
        problems.append("language: must be a language code such as 'ja' or 'en'")
        language = "?"
    negation = _parse_negation(doc.get("negation"), problems)
    rules: dict[str, SignalRule] = {}
    patterns: dict[str, list[Pattern]] = {}
    readings: dict[str, list[str]] = {}
    raw_rules = doc.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append("rule: at least one [[rule]] table is required")
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        where = f"rule[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not rule_id.count("."):
            problems.append(f"{where}.id: must be a dotted, versioned id like 'en.refusal.v1'")
            continue
        where = f"rule[{i}] ({rule_id})"
        if rule_id in rules:
            problems.append(f"{where}.id: duplicate rule id")
        signal = raw.get("signal")
        if not isinstance(signal, str) or not signal:
            problems.append(f"{where}.signal: must be a signal name")
        speakers = raw.get("speakers")
        if (
            not isinstance(speakers, list)
            or not speakers
            or any(s not in SPEAKERS for s in speakers)
        ):
            problems.append(f"{where}.speakers: must be a non-empty list of {list(SPEAKERS)}")
            speakers = []
        negatable = raw.get("negatable", True)
        if not isinstance(negatable, bool):
            problems.append(f"{where}.negatable: must be true or false")
        veto = raw.get("veto", False)
        if not isinstance(veto, bool):
            problems.append(f"{where}.veto: must be true or false")
        detail = raw.get("detail", "")
        if detail != "" and (signal not in DETAIL_SIGNALS or detail not in OFFER_DETAILS):
            problems.append(
                f"{where}.detail: only {DETAIL_SIGNALS} rules name one of {OFFER_DETAILS}"
            )
            detail = ""
        kana = raw.get("readings", [])
        if not isinstance(kana, list) or not all(
            isinstance(k, str) and len(k) >= 3 and set(k) <= KATAKANA for k in kana
        ):
            problems.append(f"{where}.readings: must be katakana strings of 3 or more characters")
            kana = []
        pats = raw.get("patterns", [])
        if not isinstance(pats, list) or not (pats or kana):
            problems.append(f"{where}.patterns: must be a non-empty list of token patterns")
            pats = []
        for j, pat in enumerate(pats):
            if not isinstance(pat, list) or not pat or not all(isinstance(t, dict) for t in pat):
                problems.append(f"{where}.patterns[{j}]: must be a non-empty list of token tables")
        rules[rule_id] = SignalRule(
            rule_id=rule_id,
            signal=str(signal),
            speakers=frozenset(cast(list[Speaker], speakers)),
            negatable=bool(negatable),
            detail=str(detail),
            veto=bool(veto),
        )
        patterns[rule_id] = cast(list[Pattern], pats)
        if kana:
            readings[rule_id] = cast(list[str], kana)
    if problems:
        raise ConfigError(source, problems)
    return SignalRuleSet(language, rules, patterns, negation, readings)


def _parse_negation(raw: object, problems: list[str]) -> NegationScope:
    empty = NegationScope(cues=frozenset(), side="before", window=0, breaks=frozenset())
    if not isinstance(raw, dict):
        problems.append("negation: a [negation] table is required")
        return empty
    side = raw.get("side")
    if side not in ("before", "after"):
        problems.append("negation.side: must be 'before' or 'after'")
    window = raw.get("window")
    if not isinstance(window, int) or not 1 <= window <= 10:
        problems.append("negation.window: must be an integer from 1 to 10")
        window = 0
    lists: dict[str, frozenset[str]] = {}
    for key in ("cues", "breaks", "model_veto"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"negation.{key}: must be a list of strings")
            value = []
        lists[key] = frozenset(v.lower() for v in value)
    return NegationScope(
        cues=lists["cues"],
        side=str(side),
        window=window,
        breaks=lists["breaks"],
        model_veto=lists["model_veto"],
    )
