"""Offer policy and compliance: what to suggest next, and when to warn the agent.

Rules are data (``data/policy/*.toml``, parsed and validated here); this module only
interprets them against the call state. Pure: no I/O, deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from agent_assist.core.events import (
    ComplianceWarning,
    Event,
    OfferKind,
    Severity,
    SignalDetected,
    Suggestion,
)
from agent_assist.core.phases import CallState, Phase
from agent_assist.errors import ConfigError

Localized = Mapping[str, str]
LANGUAGES = ("en", "ja")
OFFER_KINDS = ("upsell", "cross_sell", "downsell")
SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class OfferRule:
    rule_id: str
    signal: str
    kind: OfferKind
    offer_id: str
    once: bool
    not_in: frozenset[str]
    line: Localized
    reason: Localized


@dataclass(frozen=True)
class RetentionRule:
    rule_id: str
    offer: Localized
    line: Localized
    reason: Localized


@dataclass(frozen=True)
class ComplianceRule:
    rule_id: str
    signal: str
    in_phases: frozenset[str]
    severity: Severity
    reference: str
    title: Localized
    message: Localized
    instead: Localized
    allow_one_downsell_after_price_no: bool = False


@dataclass(frozen=True)
class PolicyBook:
    operator: str
    offer_names: Mapping[str, Localized]
    offer_rules: tuple[OfferRule, ...]
    retention: RetentionRule
    compliance: tuple[ComplianceRule, ...]


def parse_policy(doc: Mapping[str, Any], source: str) -> PolicyBook:
    """Validate a policy document; raise ``ConfigError`` listing every problem."""
    p = _Problems()
    offers_raw = doc.get("offers")
    offer_names: dict[str, Localized] = {}
    if not isinstance(offers_raw, dict) or not offers_raw:
        p.add("offers: at least one [offers.<id>] table is required")
    else:
        for offer_id, raw in offers_raw.items():
            offer_names[offer_id] = p.localized(
                raw.get("name") if isinstance(raw, dict) else None, f"offers.{offer_id}.name"
            )
    offer_rules = []
    for i, raw in enumerate(_tables(doc, "offer_rule", p)):
        where = f"offer_rule[{i}]"
        kind = raw.get("kind")
        if kind not in OFFER_KINDS:
            p.add(f"{where}.kind: must be one of {list(OFFER_KINDS)}")
        offer_id = p.text(raw.get("offer"), f"{where}.offer")
        if offer_id and offer_id not in offer_names:
            p.add(f"{where}.offer: unknown offer {offer_id!r} (not under [offers])")
        offer_rules.append(
            OfferRule(
                rule_id=p.text(raw.get("id"), f"{where}.id"),
                signal=p.text(raw.get("signal"), f"{where}.signal"),
                kind=cast(OfferKind, kind),
                offer_id=offer_id,
                once=bool(raw.get("once", True)),
                not_in=frozenset(p.strings(raw.get("not_in", []), f"{where}.not_in")),
                line=p.localized(raw.get("line"), f"{where}.line"),
                reason=p.localized(raw.get("reason"), f"{where}.reason"),
            )
        )
    raw_ret = doc.get("retention")
    ret: dict[str, Any] = raw_ret if isinstance(raw_ret, dict) else {}
    if not ret:
        p.add("retention: a [retention] table is required")
    retention = RetentionRule(
        rule_id=p.text(ret.get("id"), "retention.id"),
        offer=p.localized(ret.get("offer"), "retention.offer"),
        line=p.localized(ret.get("line"), "retention.line"),
        reason=p.localized(ret.get("reason"), "retention.reason"),
    )
    compliance = []
    for i, raw in enumerate(_tables(doc, "compliance", p)):
        where = f"compliance[{i}]"
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            p.add(f"{where}.severity: must be one of {list(SEVERITIES)}")
        compliance.append(
            ComplianceRule(
                rule_id=p.text(raw.get("id"), f"{where}.id"),
                signal=p.text(raw.get("signal"), f"{where}.signal"),
                in_phases=frozenset(p.strings(raw.get("in_phases", []), f"{where}.in_phases")),
                severity=cast(Severity, severity),
                reference=p.text(raw.get("reference"), f"{where}.reference"),
                title=p.localized(raw.get("title"), f"{where}.title"),
                message=p.localized(raw.get("message"), f"{where}.message"),
                instead=p.localized(raw.get("instead"), f"{where}.instead"),
                allow_one_downsell_after_price_no=bool(
                    raw.get("allow_one_downsell_after_price_no", False)
                ),
            )
        )
    if p.problems:
        raise ConfigError(source, p.problems)
    return PolicyBook(
        operator=str(doc.get("operator", "")),
        offer_names=offer_names,
        offer_rules=tuple(offer_rules),
        retention=retention,
        compliance=tuple(compliance),
    )


class Policy:
    """Decides suggestions (customer side) and warnings (agent side) for one call."""

    def __init__(self, book: PolicyBook, language: str) -> None:
        self._book = book
        self._lang = language if language in LANGUAGES else "en"
        self._used_rules: set[str] = set()
        self._suggestions = 0
        self._warnings = 0
        self._downsells_after_no = 0

    def decide(
        self, signals: Sequence[SignalDetected], phase_before: Phase, state: CallState
    ) -> list[Event]:
        """Given one utterance's signals and the phase around it, return what to show."""
        if not signals:
            return []
        if signals[0].speaker == "agent":
            return self._warn(signals, phase_before, state)
        return self._suggest(signals, state)

    def _suggest(self, signals: Sequence[SignalDetected], state: CallState) -> list[Event]:
        if state.phase == "retention":
            retention = self._book.retention
            cancel = next((s for s in signals if s.signal == "cancel_intent"), None)
            if cancel is None or retention.rule_id in self._used_rules:
                return []
            self._used_rules.add(retention.rule_id)
            r = retention
            return [self._suggestion(cancel, "retention", "", r.offer, r.line, r.reason, r.rule_id)]
        by_signal = {s.signal: s for s in signals}
        for rule in self._book.offer_rules:
            sig = by_signal.get(rule.signal)
            if sig is None or state.phase in rule.not_in:
                continue
            if rule.once and rule.rule_id in self._used_rules:
                continue
            self._used_rules.add(rule.rule_id)
            name = self._book.offer_names[rule.offer_id]
            return [
                self._suggestion(
                    sig, rule.kind, rule.offer_id, name, rule.line, rule.reason, rule.rule_id
                )
            ]
        return []

    def _warn(
        self, signals: Sequence[SignalDetected], phase_before: Phase, state: CallState
    ) -> list[Event]:
        names = {s.signal for s in signals}
        out: list[Event] = []
        for rule in self._book.compliance:
            sig = next((s for s in signals if s.signal == rule.signal), None)
            if sig is None or (rule.in_phases and phase_before not in rule.in_phases):
                continue
            if rule.allow_one_downsell_after_price_no and self._tolerated_downsell(names, state):
                continue
            self._warnings += 1
            out.append(
                ComplianceWarning(
                    call_id=sig.call_id,
                    t_ms=sig.t_ms,
                    warning_id=f"w-{self._warnings}",
                    rule_id=rule.rule_id,
                    severity=rule.severity,
                    title=rule.title[self._lang],
                    message=rule.message[self._lang],
                    instead=rule.instead[self._lang],
                    reference=rule.reference,
                    evidence=sig.evidence,
                )
            )
        return out

    def _tolerated_downsell(self, agent_signals: set[str], state: CallState) -> bool:
        """One smaller offer right after a price refusal is allowed (door-in-the-face)."""
        declined = [o for o in state.offers if o.outcome == "declined"]
        if (
            "downsell_offer" not in agent_signals
            or not declined
            or not declined[-1].declined_on_price
        ):
            return False
        if self._downsells_after_no >= 1:
            return False
        self._downsells_after_no += 1
        return True

    def _suggestion(
        self,
        sig: SignalDetected,
        kind: OfferKind,
        offer_id: str,
        offer: Localized,
        line: Localized,
        reason: Localized,
        rule_id: str,
    ) -> Suggestion:
        self._suggestions += 1
        return Suggestion(
            call_id=sig.call_id,
            t_ms=sig.t_ms,
            suggestion_id=f"s-{self._suggestions}",
            kind=kind,
            offer_id=offer_id,
            offer=offer[self._lang],
            line=line[self._lang],
            reason=reason[self._lang],
            rule_id=rule_id,
            evidence=sig.evidence,
        )


class _Problems:
    """Collects validation problems by key path while parsing continues."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str) or not value:
            self.add(f"{where}: must be a non-empty string")
            return ""
        return value

    def strings(self, value: object, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(f"{where}: must be a list of strings")
            return []
        return value

    def localized(self, value: object, where: str) -> Localized:
        if not isinstance(value, dict):
            self.add(f"{where}: must be a table with {list(LANGUAGES)} texts")
            return {}
        missing = [lang for lang in LANGUAGES if not isinstance(value.get(lang), str)]
        if missing:
            self.add(f"{where}: missing text for {missing}")
        return {k: str(v) for k, v in value.items()}


def _tables(doc: Mapping[str, Any], key: str, p: _Problems) -> list[dict[str, Any]]:
    raw = doc.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        p.add(f"{key}: must be a list of [[{key}]] tables")
        return []
    return raw
