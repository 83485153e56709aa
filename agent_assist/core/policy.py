"""Offer policy and compliance: what to suggest next, and when to warn the agent.

Rules are data (``data/policy/*.toml``, parsed and validated here against the
catalogue); ``OfferEngine`` and ``ComplianceChecker`` interpret them against the call
state and the customer's record; the call session composes them. Pure: no I/O, deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from agent_assist.core.catalog import Catalog
from agent_assist.core.customer import TIERS
from agent_assist.core.events import LANGUAGES, OfferKind, Severity
from agent_assist.core.lines import ALL_FACTS, BASE_FACTS, OFFER_FACTS, placeholders
from agent_assist.core.phases import PHASES
from agent_assist.errors import ConfigError

Localized = Mapping[str, str]
OFFER_KINDS = ("upsell", "cross_sell", "downsell")
SEVERITIES = ("low", "medium", "high")
TARGETS = ("higher_tier", "lower_tier", "accessory", "product")
CONDITIONS = ("", "budget_upsell", "unrelated_cross_sell")
ALLOWANCES = ("downsell_after_price_no",)
REASON_KEYS = (
    "retention",
    "upset",
    "closing",
    "phase",
    "once",
    "no_need",
    "customer_fit",
    "budget",
    "downsell_once",
    "no_target",
    "unrelated",
    "dismissed",
    "declined",
    "lower_rank",
    "one_at_a_time",
    *ALLOWANCES,
)
"""Every reason the engine can give for holding a candidate back (or letting one pass)."""
SALES_PHASES = frozenset({"opening", "discovery", "offer_open", "declined", "accepted"})


@dataclass(frozen=True)
class OfferRule:
    rule_id: str
    kind: OfferKind
    on: tuple[str, ...]
    target: str
    family: str | None
    default: str | None
    product: str | None
    phases: frozenset[str]
    phases_before: frozenset[str]
    requires_need: bool
    min_usage: float | None
    renewal_within_days: int | None
    tiers: frozenset[str]
    min_customer_turns: int
    detail_in: frozenset[str] | None
    once: bool
    priority: int
    expires_s: float
    line: Localized
    line_generic: Localized
    reason: Localized


@dataclass(frozen=True)
class CareRule:
    """No sale: what the agent should do instead (retention, an upset customer)."""

    rule_id: str
    on: tuple[str, ...]
    offer: Localized
    line: Localized
    reason: Localized


@dataclass(frozen=True)
class Reason:
    rule_id: str
    text: Localized


@dataclass(frozen=True)
class ComplianceRule:
    rule_id: str
    signals: tuple[str, ...]
    in_phases: frozenset[str]
    severity: Severity
    reference: str
    title: Localized
    message: Localized
    instead: Localized
    condition: str = ""
    allow: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PolicyBook:
    operator: str
    catalog: Catalog
    offer_rules: tuple[OfferRule, ...]
    care_rules: tuple[CareRule, ...]
    compliance: tuple[ComplianceRule, ...]
    reasons: Mapping[str, Reason]
    tier_bonus: Mapping[str, int]
    need_tags: Mapping[str, str]


def parse_policy(doc: Mapping[str, Any], source: str, catalog: Catalog) -> PolicyBook:
    """Validate a policy document against the catalogue; raise ``ConfigError`` listing all."""
    p = _Problems()
    offer_rules = [
        _offer_rule(raw, i, p, catalog) for i, raw in enumerate(_tables(doc, "offer_rule", p))
    ]
    if not offer_rules:
        p.add("offer_rule: at least one [[offer_rule]] table is required")
    care_rules = []
    for i, raw in enumerate(_tables(doc, "care_rule", p)):
        where = f"care_rule[{i}]"
        care_rules.append(
            CareRule(
                rule_id=p.rule_id(raw.get("id"), f"{where}.id"),
                on=tuple(p.triggers(raw.get("on"), f"{where}.on")),
                offer=p.localized(raw.get("offer"), f"{where}.offer"),
                line=p.localized(raw.get("line"), f"{where}.line"),
                reason=p.localized(raw.get("reason"), f"{where}.reason"),
            )
        )
    raw_reasons = doc.get("reasons")
    reasons: dict[str, Reason] = {}
    if not isinstance(raw_reasons, dict):
        p.add(f"reasons: a [reasons.<key>] table is required for each of {list(REASON_KEYS)}")
        raw_reasons = {}
    for key in REASON_KEYS:
        entry = raw_reasons.get(key)
        if not isinstance(entry, dict):
            p.add(f"reasons.{key}: missing (the engine gives this reason)")
            continue
        reasons[key] = Reason(
            p.rule_id(entry.get("id"), f"reasons.{key}.id"),
            p.localized(entry.get("text"), f"reasons.{key}.text"),
        )
    p.problems += [f"reasons.{k}: unknown reason key" for k in raw_reasons if k not in REASON_KEYS]
    compliance = [
        _compliance_rule(raw, i, p) for i, raw in enumerate(_tables(doc, "compliance", p))
    ]
    tier_bonus = doc.get("tier_bonus", {})
    if not isinstance(tier_bonus, dict) or not all(
        k in TIERS and isinstance(v, int) for k, v in tier_bonus.items()
    ):
        p.add(f"tier_bonus: must map tiers {list(TIERS)} to integers")
        tier_bonus = {}
    need_tags = doc.get("need_tags", {})
    if not isinstance(need_tags, dict) or not all(isinstance(v, str) for v in need_tags.values()):
        p.add("need_tags: must map signal names to need tags")
        need_tags = {}
    ids = [r.rule_id for r in offer_rules] + [r.rule_id for r in care_rules]
    ids += [r.rule_id for r in compliance] + [r.rule_id for r in reasons.values()]
    p.problems += [f"{i}: duplicate rule id" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if p.problems:
        raise ConfigError(source, p.problems)
    return PolicyBook(
        operator=str(doc.get("operator", catalog.operator)),
        catalog=catalog,
        offer_rules=tuple(offer_rules),
        care_rules=tuple(care_rules),
        compliance=tuple(compliance),
        reasons=reasons,
        tier_bonus=tier_bonus,
        need_tags=need_tags,
    )


def _offer_rule(raw: Mapping[str, Any], i: int, p: _Problems, catalog: Catalog) -> OfferRule:
    where = f"offer_rule[{i}]"
    rule_id = p.rule_id(raw.get("id"), f"{where}.id")
    where = f"offer_rule[{i}] ({rule_id})"
    kind = raw.get("kind")
    if kind not in OFFER_KINDS:
        p.add(f"{where}.kind: must be one of {list(OFFER_KINDS)}")
    target = raw.get("target")
    if target not in TARGETS:
        p.add(f"{where}.target: must be one of {list(TARGETS)}")
    family = raw.get("family")
    families = {prod.family for prod in catalog.products.values()}
    if family is not None and family not in families:
        p.add(f"{where}.family: unknown family {family!r} (catalogue has {sorted(families)})")
    refs: dict[str, str | None] = {}
    for key in ("default", "product"):
        ref = raw.get(key)
        if ref is not None and catalog.get(ref) is None:
            p.add(f"{where}.{key}: unknown product {ref!r} (not in the catalogue)")
        refs[key] = ref if isinstance(ref, str) else None
    if target == "product" and refs["product"] is None:
        p.add(f"{where}.product: required when target = 'product'")
    phases = frozenset(p.strings(raw.get("phases", []), f"{where}.phases"))
    phases_before = frozenset(p.strings(raw.get("phases_before", []), f"{where}.phases_before"))
    p.problems += [
        f"{where}.phases: unknown phase {x!r}" for x in phases | phases_before if x not in PHASES
    ]
    min_usage = raw.get("min_usage")
    if min_usage is not None and (not isinstance(min_usage, int | float) or not 0 < min_usage <= 2):
        p.add(f"{where}.min_usage: must be a share of the cap between 0 and 2 (0.8 = 80 %)")
        min_usage = None
    renewal = raw.get("renewal_within_days")
    if renewal is not None and (not isinstance(renewal, int) or renewal < 0):
        p.add(f"{where}.renewal_within_days: must be an integer >= 0")
        renewal = None
    tiers = frozenset(p.strings(raw.get("tiers", []), f"{where}.tiers"))
    p.problems += [f"{where}.tiers: unknown tier {t!r}" for t in tiers if t not in TIERS]
    detail_in = raw.get("detail_in")
    priority, expires = raw.get("priority", 50), raw.get("expires_s", 90)
    if not isinstance(priority, int):
        p.add(f"{where}.priority: must be an integer")
        priority = 0
    if not isinstance(expires, int | float) or expires <= 0:
        p.add(f"{where}.expires_s: must be seconds > 0")
        expires = 90
    line = p.template(raw.get("line"), f"{where}.line", ALL_FACTS)
    generic = p.template(raw.get("line_generic"), f"{where}.line_generic", OFFER_FACTS | BASE_FACTS)
    return OfferRule(
        rule_id=rule_id,
        kind=cast(OfferKind, kind),
        on=tuple(p.triggers(raw.get("on"), f"{where}.on")),
        target=str(target),
        family=family if isinstance(family, str) else None,
        default=refs["default"],
        product=refs["product"],
        phases=phases or SALES_PHASES,
        phases_before=phases_before,
        requires_need=bool(raw.get("requires_need", False)),
        min_usage=None if min_usage is None else float(min_usage),
        renewal_within_days=renewal,
        tiers=tiers,
        min_customer_turns=int(raw.get("min_customer_turns", 0)),
        detail_in=None
        if detail_in is None
        else frozenset(p.strings(detail_in, f"{where}.detail_in", allow_empty=True)),
        once=bool(raw.get("once", True)),
        priority=priority,
        expires_s=float(expires),
        line=line,
        line_generic=generic,
        reason=p.template(raw.get("reason"), f"{where}.reason", frozenset()),
    )


def _compliance_rule(raw: Mapping[str, Any], i: int, p: _Problems) -> ComplianceRule:
    where = f"compliance[{i}]"
    rule_id = p.rule_id(raw.get("id"), f"{where}.id")
    where = f"compliance[{i}] ({rule_id})"
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        p.add(f"{where}.severity: must be one of {list(SEVERITIES)}")
    signals = raw.get("signal")
    if isinstance(signals, str):
        signals = [signals]
    in_phases = frozenset(p.strings(raw.get("in_phases", []), f"{where}.in_phases"))
    p.problems += [f"{where}.in_phases: unknown phase {x!r}" for x in in_phases if x not in PHASES]
    condition = raw.get("condition", "")
    if condition not in CONDITIONS:
        p.add(f"{where}.condition: must be one of {[c for c in CONDITIONS if c]}")
    allow = frozenset(p.strings(raw.get("allow", []), f"{where}.allow"))
    p.problems += [f"{where}.allow: unknown allowance {a!r}" for a in allow if a not in ALLOWANCES]
    return ComplianceRule(
        rule_id=rule_id,
        signals=tuple(p.strings(signals, f"{where}.signal")),
        in_phases=in_phases,
        severity=cast(Severity, severity),
        reference=p.text(raw.get("reference"), f"{where}.reference"),
        title=p.localized(raw.get("title"), f"{where}.title"),
        message=p.localized(raw.get("message"), f"{where}.message"),
        instead=p.localized(raw.get("instead"), f"{where}.instead"),
        condition=str(condition),
        allow=allow,
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

    def rule_id(self, value: object, where: str) -> str:
        text = self.text(value, where)
        if text and not text.rsplit(".", 1)[-1].startswith("v"):
            self.add(f"{where}: {text!r} must end in a version such as '.v1'")
        return text

    def strings(self, value: object, where: str, allow_empty: bool = False) -> list[str]:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and (v or allow_empty) for v in value
        ):
            self.add(f"{where}: must be a list of strings")
            return []
        return value

    def triggers(self, value: object, where: str) -> list[str]:
        found = self.strings(value, where)
        if not found:
            self.add(f"{where}: at least one trigger such as 'customer:speed_complaint'")
        for t in found:
            side, _, name = t.partition(":")
            if side not in ("customer", "agent", "feedback") or not name:
                self.add(
                    f"{where}: {t!r} must be 'customer:<signal>', 'agent:<signal>' "
                    "or 'feedback:<action>'"
                )
        return found

    def localized(self, value: object, where: str) -> Localized:
        if not isinstance(value, dict):
            self.add(f"{where}: must be a table with {list(LANGUAGES)} texts")
            return {}
        missing = [lang for lang in LANGUAGES if not isinstance(value.get(lang), str)]
        if missing:
            self.add(f"{where}: missing text for {missing}")
        return {k: str(v) for k, v in value.items()}

    def template(self, value: object, where: str, allowed: frozenset[str]) -> Localized:
        texts = self.localized(value, where)
        for lang, text in texts.items():
            try:
                unknown = placeholders(text) - allowed
            except ValueError as exc:
                self.add(f"{where}.{lang}: malformed template ({exc})")
                continue
            if unknown:
                self.add(f"{where}.{lang}: unknown or unavailable facts {sorted(unknown)}")
        return texts


def _tables(doc: Mapping[str, Any], key: str, p: _Problems) -> list[dict[str, Any]]:
    raw = doc.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        p.add(f"{key}: must be a list of [[{key}]] tables")
        return []
    return raw
