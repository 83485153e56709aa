"""Which offer, if any, to suggest now: candidates from rules, ranked, one shown, all explained.

A customer utterance (or the agent's "accepted" mark) makes every offer rule it triggers
a candidate. Each candidate is checked in a fixed order (phase, once, need heard,
customer fit, budget, one downsell, a product to offer, dismissed, declined); the
survivors are ranked by priority plus the customer tier's bonus and at most one is shown.
Every candidate yields a ``Decision`` naming the rule that settled it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent_assist.core.acts import REASK_RULE
from agent_assist.core.budget import addon_allowance
from agent_assist.core.catalog import Product
from agent_assist.core.customer import CustomerContext
from agent_assist.core.decisions import DecisionLog
from agent_assist.core.events import (
    Event,
    Evidence,
    OfferFeedback,
    SignalDetected,
    Suggestion,
    TranscriptFinal,
)
from agent_assist.core.lines import facts_for, render
from agent_assist.core.phases import CallState, Phase
from agent_assist.core.policy import OFFER_KINDS, CareRule, OfferRule, PolicyBook

_BLOCKED_BY_PHASE = {"retention": "retention", "care": "upset", "closing": "closing"}
_SETTLED_BY_PHASE = {"declined": "declined", "accepted": "accepted"}


@dataclass(frozen=True, slots=True)
class _Trigger:
    """What set a rule off: a customer signal, or the agent's mark on a suggestion."""

    call_id: str
    t_ms: int
    evidence: Evidence
    detail: str


@dataclass(frozen=True, slots=True)
class _Target:
    product: Product
    base: Product | None
    """What the offer is compared with (price difference, speed factor)."""
    base_is_real: bool
    """The base is the customer's own product or their decision, not a catalogue neighbour:
    only then may the line say "your ..."."""
    decided: Product | None = None


@dataclass
class _Shown:
    suggestion: Suggestion
    status: str = "shown"  # shown | used | dismissed | accepted | declined


class OfferEngine:
    def __init__(
        self,
        book: PolicyBook,
        language: str,
        customer: CustomerContext | None,
        today: dt.date | None,
        log: DecisionLog,
    ) -> None:
        self.book = book
        self.catalog = book.catalog
        self.language = language
        self.customer = customer
        self.today = today
        self._log = log
        self._shown: dict[str, _Shown] = {}
        self._current: str | None = None
        self._rules_shown: set[str] = set()
        self._decided_when_shown: dict[str, str] = {}
        """For a once-per-decision rule (an add-on after a decision): the decision it
        answered; a later, different decision is a new moment for one more card."""
        self._dismissed: set[str] = set()
        self._declined: set[str] = set()
        self._downsells_shown = 0
        self._care_shown: set[str] = set()

    # -- inputs ---------------------------------------------------------------------------

    def on_customer(
        self, signals: Sequence[SignalDetected], phase_before: Phase, state: CallState
    ) -> list[Event]:
        if not signals:
            return []
        self._settle_current(phase_before, state)
        triggers = {
            f"customer:{s.signal}": _Trigger(s.call_id, s.t_ms, s.evidence, s.detail)
            for s in signals
        }
        return [
            *self._care(triggers, phase_before, state),
            *self._offers(triggers, phase_before, state),
        ]

    def on_feedback(self, fb: OfferFeedback, phase_before: Phase, state: CallState) -> list[Event]:
        shown = self._shown.get(fb.suggestion_id)
        if shown is None:
            return []
        shown.status = fb.action
        if fb.action in ("dismissed", "declined", "accepted") and self._current == fb.suggestion_id:
            self._current = None
        if fb.offer_id and fb.action == "dismissed":
            self._dismissed.add(fb.offer_id)
        if fb.offer_id and fb.action == "declined":
            self._declined.add(fb.offer_id)
        if fb.action != "accepted" or shown.suggestion.kind == "retention":
            return []
        trigger = _Trigger(fb.call_id, fb.t_ms, shown.suggestion.evidence, "")
        return self._offers({"feedback:accepted": trigger}, phase_before, state)

    def resolve_agent_offer(
        self, final: TranscriptFinal, signals: Sequence[SignalDetected], state: CallState
    ) -> tuple[str, str, str]:
        """What the agent just offered: (kind, product id, suggestion id), each "" if unknown.

        The product is the one the agent names (catalogue aliases), else the current
        suggestion's; the kind is what the signal says, else what the catalogue implies.
        """
        by_name = {s.signal: s for s in signals}
        if not {"offer_made", "downsell_offer"} & by_name.keys():
            return ("", "", "")
        # the main thing offered: a plan named wins over an add-on named beside it
        named = self.catalog.find_all_named(final.text, self.language)
        # what the customer has or just took is the ground of the offer, not the offer
        # ("you're on the 50 GB plan; device protection is ¥700")
        fresh = [n for n in named if not self._holds(n[0].product_id, state)]
        named = fresh or named
        plans = [n for n in named if n[0].kind == "plan"]
        product = (plans or named)[0][0] if named else None
        # two plans named ("300 Mbps gets squeezed; our fiber 1 gig plan is ¥5,180"): the
        # words' direction says which is put to the customer and which is the ground
        worded = by_name.get("offer_made")
        if len(plans) > 1 and worded is not None and worded.detail in ("upsell", "downsell"):
            prices = [n[0].monthly_price for n in plans]
            pick = max(prices) if worded.detail == "upsell" else min(prices)
            product = next(n[0] for n in plans if n[0].monthly_price == pick)
        # the offer made again without its name ("shall I just set it up?") is the offer
        # the customer refused, not whatever card is on screen now
        worded = by_name.get("offer_made")
        if product is None and worded is not None and worded.rule_id == REASK_RULE:
            refused = next((o for o in reversed(state.offers) if o.outcome == "declined"), None)
            if refused is not None and refused.product_id:
                again = self.catalog.get(refused.product_id)
                return (refused.kind, again.product_id if again else "", "")
        current = self._valid_current(final.t_ms)
        sid = ""
        if current is not None and current.kind != "retention":
            if product is None:
                product = self.catalog.get(current.offer_id)
            if product is not None and product.product_id == current.offer_id:
                sid = current.suggestion_id
        # direction: the catalogue relative to what the customer has (or what is in
        # play) first, then the words; unknown stays unknown (never taken as a downsell)
        made = by_name.get("offer_made")
        said = made.detail if made is not None and made.detail in OFFER_KINDS else ""
        if not said and "downsell_offer" in by_name:
            said = "downsell"
        if product is not None and product.kind == "plan" and said == "cross_sell":
            said = ""  # an add-on word beside a plan says nothing of the plan's direction
        # against what the customer has (or just refused on price) the catalogue decides;
        # against mere talk in the call (an earlier card, an earlier offer) the words do
        kind = self._relate(product, state, final.t_ms, own_only=True) if product else ""
        if not kind:
            kind = said
        if not kind and product is not None:
            kind = self._relate(product, state, final.t_ms)
        if not kind and product is not None:  # the same product again: the same direction
            kind = next(
                (o.kind for o in reversed(state.offers) if o.product_id == product.product_id),
                "",
            )
        if not kind and "downsell_offer" in by_name:
            kind = "downsell"
        if not kind and sid:
            kind = self._shown[sid].suggestion.kind
        return (kind, product.product_id if product else "", sid)

    def _holds(self, product_id: str, state: CallState) -> bool:
        if self.customer is not None and self.customer.holds(product_id):
            return True
        return product_id in state.own_plans or any(
            o.product_id == product_id and o.outcome == "accepted" for o in state.offers
        )

    def suggestion(self, suggestion_id: str) -> Suggestion | None:
        shown = self._shown.get(suggestion_id)
        return shown.suggestion if shown else None

    # -- care: no sale, what to do instead --------------------------------------------------

    def _care(
        self, triggers: Mapping[str, _Trigger], phase_before: Phase, state: CallState
    ) -> list[Event]:
        # a new mood opens a card; so does anger inside a cancellation (the phase stays
        # retention, but an upset customer needs the apology first), once per call
        upset_leaving = state.phase == "retention" and "customer:anger" in triggers
        if state.phase == phase_before and not upset_leaving:
            return []
        for rule in self.book.care_rules:
            trig = next((triggers[t] for t in rule.on if t in triggers), None)
            if trig is None:
                continue
            if state.phase == phase_before and rule.rule_id in self._care_shown:
                return []
            return self._show_care(rule, trig)
        return []

    def _show_care(self, rule: CareRule, trig: _Trigger) -> list[Event]:
        lang = self.language
        suggestion = Suggestion(
            call_id=trig.call_id,
            t_ms=trig.t_ms,
            suggestion_id=f"s-{len(self._shown) + 1}",
            kind="retention",
            offer_id="",
            offer=rule.offer[lang],
            line=rule.line[lang],
            reason=rule.reason[lang],
            rule_id=rule.rule_id,
            evidence=trig.evidence,
            expires_ms=0,
            priority=100,
        )
        self._shown[suggestion.suggestion_id] = _Shown(suggestion)
        self._current = None
        self._care_shown.add(rule.rule_id)
        return [suggestion, self._decision(suggestion, rule.rule_id, rule.reason[lang], trig)]

    # -- offers ---------------------------------------------------------------------------

    def _offers(
        self, triggers: Mapping[str, _Trigger], phase_before: Phase, state: CallState
    ) -> list[Event]:
        candidates: list[tuple[OfferRule, _Trigger]] = []
        for rule in self.book.offer_rules:
            trig = next((triggers[t] for t in rule.on if t in triggers), None)
            if trig is None or (rule.phases_before and phase_before not in rule.phases_before):
                continue
            if rule.detail_in is not None and trig.detail not in rule.detail_in:
                continue
            candidates.append((rule, trig))
        held: list[Event] = []
        eligible: list[tuple[int, OfferRule, _Target, _Trigger]] = []
        for rule, trig in candidates:
            key, target = self._evaluate(rule, state)
            if key is not None or target is None:
                held.append(self._held(rule, key or "no_target", trig, target))
            else:
                bonus = self.book.tier_bonus.get(self.customer.tier, 0) if self.customer else 0
                eligible.append((rule.priority + bonus, rule, target, trig))
        if not eligible:
            return held
        eligible.sort(key=lambda e: -e[0])
        priority, rule, target, trig = eligible[0]
        current = self._valid_current(trig.t_ms)
        if (
            current is not None
            and current.kind != "retention"
            and (current.priority > priority or current.offer_id == target.product.product_id)
        ):
            return held + [self._held(r, "one_at_a_time", t, tg) for _, r, tg, t in eligible]
        shown = self._show(rule, target, trig, priority)
        return [
            *shown,
            *held,
            *(self._held(r, "lower_rank", t, tg) for _, r, tg, t in eligible[1:]),
        ]

    def _evaluate(self, rule: OfferRule, state: CallState) -> tuple[str | None, _Target | None]:
        if state.phase not in rule.phases:
            return _BLOCKED_BY_PHASE.get(state.phase, "phase"), None
        if rule.once and rule.rule_id in self._rules_shown and not self._new_decision(rule, state):
            return "once", None
        if rule.requires_need and not (state.needs_heard or state.needs_asked):
            return "no_need", None
        if not self._fits(rule, state):
            return "customer_fit", None
        max_price: int | None = None
        if rule.kind == "upsell" and state.budget_stated:
            # a higher tier still within the amount the customer named is no upsell past
            # the budget (compliance reads it the same way); without an amount, none
            if state.budget_yen is None:
                return "budget", None
            max_price = state.budget_yen
        if rule.kind == "cross_sell" and state.budget_stated:
            # after a decision on price, only an add-on that keeps within it
            record = self.customer.plan_id if self.customer else ""
            max_price = addon_allowance(state, self.catalog, record)
            if max_price is None:
                return "budget", None
        if rule.kind == "downsell" and (self._downsells_shown or state.downsells_offered()):
            return "downsell_once", None
        target = self._target(rule, state, max_price)
        if target is None:
            if max_price is not None:
                return "budget", None
            return ("unrelated" if rule.target == "accessory" else "no_target"), None
        if (
            rule.kind == "upsell"
            and max_price is not None
            and target.product.monthly_price > max_price
        ):
            return "budget", None
        if rule.kind != "cross_sell" and any(
            o.outcome == "accepted" and o.product_id == target.product.product_id
            for o in state.offers
        ):
            return "no_target", target  # the customer just took it: it is theirs now
        if target.product.product_id in self._dismissed:
            return "dismissed", target
        if target.product.product_id in self._declined_products(state):
            return "declined", target
        return None, target

    def _new_decision(self, rule: OfferRule, state: CallState) -> bool:
        """An add-on card answers one decision: once the customer has decided on
        something else since (they took the add-on itself, or a further change), the
        moment is new."""
        if rule.target != "accessory":
            return False
        accepted = state.last_accepted
        before = self._decided_when_shown.get(rule.rule_id)
        return accepted is not None and before is not None and accepted.product_id != before

    def _fits(self, rule: OfferRule, state: CallState) -> bool:
        if state.customer_turns < rule.min_customer_turns:
            return False
        c = self.customer
        if c is None:  # an unknown caller: only the rules that need no record (tiers are
            # a record's, so they do not hold an unknown caller back)
            return rule.min_usage is None and rule.renewal_within_days is None
        if rule.tiers and c.tier not in rule.tiers:
            return False
        if rule.min_usage is not None:
            ratio = c.usage_ratio(self.catalog)
            if ratio is None or ratio < rule.min_usage:
                return False
        if rule.renewal_within_days is not None:
            days = c.days_to_renewal(self.today)
            if days is None or not 0 <= days <= rule.renewal_within_days:
                return False
        return True

    def _target(
        self, rule: OfferRule, state: CallState, max_price: int | None = None
    ) -> _Target | None:
        cat, c = self.catalog, self.customer
        if rule.target == "product":
            product = cat.get(rule.product)
            if product is None or (c is not None and c.holds(product.product_id)):
                return None
            if (
                c is not None
                and product.kind == "option"
                and not (product.accessory_of & {c.plan_id, *c.products})
            ):
                return None
            return _Target(product, cat.get(c.plan_id) if c else None, c is not None)
        if rule.target == "accessory":
            return self._accessory(state, max_price)
        upward = rule.target == "higher_tier"
        if not upward:
            last = state.last_offer
            offered = cat.get(last.product_id) if last and last.outcome == "declined" else None
            low = cat.get(offered.lower_tier) if offered else None
            if offered and low and not (c is not None and c.holds(low.product_id)):
                return _Target(low, offered, False)
            family = rule.family or (offered.family if offered else None)
        else:
            family = rule.family
        held = None
        if c is not None:
            held = c.held_in_family(cat, family) if family else cat.get(c.plan_id)
        elif state.own_plans:  # no record, but the customer said what they have
            own = [p for p in map(cat.get, state.own_plans) if p is not None]
            held = next((p for p in own if family is None or p.family == family), None)
        if held is not None:
            step = cat.get(held.higher_tier if upward else held.lower_tier)
            return _Target(step, held, True) if step else None
        default = cat.get(rule.default)
        if default is None or (c is not None and c.holds(default.product_id)):
            return None
        neighbour = cat.get(default.lower_tier if upward else default.higher_tier)
        return _Target(default, neighbour, False)

    def _accessory(self, state: CallState, max_price: int | None = None) -> _Target | None:
        """The add-on that completes what the customer just decided, best fit to the needs."""
        accepted = state.last_accepted
        decided = self.catalog.get(accepted.product_id) if accepted else None
        if decided is None:
            return None
        if decided.kind == "option":  # an add-on decided: its siblings fit what it attaches to
            return self._sibling(decided, state, max_price)
        tags = {self.book.need_tags.get(n, n) for n in state.needs_heard}
        c = self.customer
        blocked = self._dismissed | self._declined_products(state)
        options = [
            o
            for o in self.catalog.accessories_of(decided.product_id)
            if o.product_id not in blocked
            and (max_price is None or o.monthly_price <= max_price)
            and not (c is not None and c.holds(o.product_id))
            and not (o.needs_only and not o.needs & tags)
        ]
        if not options:
            return None
        best = max(options, key=lambda o: len(o.needs & tags))
        return _Target(best, decided, True, decided)

    def _sibling(
        self, decided: Product, state: CallState, max_price: int | None = None
    ) -> _Target | None:
        tags = {self.book.need_tags.get(n, n) for n in state.needs_heard}
        c = self.customer
        blocked = self._dismissed | self._declined_products(state) | {decided.product_id}
        options = [
            o
            for o in self.catalog.products.values()
            if o.kind == "option"
            and o.accessory_of & decided.accessory_of
            and o.product_id not in blocked
            and (max_price is None or o.monthly_price <= max_price)
            and not (c is not None and c.holds(o.product_id))
            and not (o.needs_only and not o.needs & tags)
        ]
        if not options:
            return None
        best = max(options, key=lambda o: len(o.needs & tags))
        return _Target(best, decided, True, decided)

    def _relate(
        self, product: Product, state: CallState, t_ms: int, *, own_only: bool = False
    ) -> str:
        """Upsell, downsell or cross-sell, from the catalogue, relative to what is in play
        (``own_only``: to what the customer has or just refused on price)."""
        if product.kind == "option":
            return "cross_sell"
        # right after a no on price, the offer is judged against what was just refused
        # ("too expensive" to the unlimited plan, then the 50 GB: one cheaper option)
        last = state.last_offer
        refused = (
            [last.product_id]
            if last is not None and last.outcome == "declined" and last.declined_on_price
            else []
        )
        in_play = refused + (
            [self.customer.plan_id, *self.customer.products]
            if self.customer
            else list(state.own_plans)
        )
        if not own_only:
            in_play += [o.product_id for o in reversed(state.offers)]
            current = self._valid_current(t_ms)
            in_play += [current.offer_id] if current is not None else []
        reference = next(
            (
                p
                for p in map(self.catalog.get, in_play)
                if p is not None and p.family == product.family and p.kind == "plan"
            ),
            None,
        )
        if reference is None or reference.product_id == product.product_id:
            return ""
        return "upsell" if product.monthly_price > reference.monthly_price else "downsell"

    # -- output ---------------------------------------------------------------------------

    def _show(self, rule: OfferRule, target: _Target, trig: _Trigger, priority: int) -> list[Event]:
        lang = self.language
        facts = facts_for(
            self.catalog,
            lang,
            target.product,
            target.base,
            self.customer,
            self.today,
            target.decided,
        )
        templates = [rule.line, rule.line_generic] if target.base_is_real else [rule.line_generic]
        suggestion = Suggestion(
            call_id=trig.call_id,
            t_ms=trig.t_ms,
            suggestion_id=f"s-{len(self._shown) + 1}",
            kind=rule.kind,
            offer_id=target.product.product_id,
            offer=target.product.name[lang],
            line=render(templates, facts, lang),
            reason=rule.reason[lang],
            rule_id=rule.rule_id,
            evidence=trig.evidence,
            expires_ms=trig.t_ms + round(rule.expires_s * 1000),
            priority=priority,
        )
        self._shown[suggestion.suggestion_id] = _Shown(suggestion)
        self._current = suggestion.suggestion_id
        self._rules_shown.add(rule.rule_id)
        if rule.target == "accessory" and target.decided is not None:
            self._decided_when_shown[rule.rule_id] = target.decided.product_id
        if rule.kind == "downsell":
            self._downsells_shown += 1
        return [suggestion, self._decision(suggestion, rule.rule_id, rule.reason[lang], trig)]

    def _decision(self, s: Suggestion, rule_id: str, reason: str, trig: _Trigger) -> Event:
        return self._log.record(
            call_id=trig.call_id,
            t_ms=trig.t_ms,
            outcome="shown",
            subject="suggestion",
            rule_id=rule_id,
            decided_by=rule_id,
            reason=reason,
            kind=s.kind,
            offer_id=s.offer_id,
            ref_id=s.suggestion_id,
            evidence=trig.evidence,
        )

    def _held(self, rule: OfferRule, key: str, trig: _Trigger, target: _Target | None) -> Event:
        reason = self.book.reasons[key]
        return self._log.record(
            call_id=trig.call_id,
            t_ms=trig.t_ms,
            outcome="suppressed",
            subject="suggestion",
            rule_id=rule.rule_id,
            decided_by=reason.rule_id,
            reason=reason.text[self.language],
            kind=rule.kind,
            offer_id=target.product.product_id if target else "",
            evidence=trig.evidence,
        )

    # -- the current suggestion -------------------------------------------------------------

    def _valid_current(self, t_ms: int) -> Suggestion | None:
        shown = self._shown.get(self._current) if self._current else None
        if shown is None or shown.status not in ("shown", "used"):
            return None
        s = shown.suggestion
        return s if not s.expires_ms or t_ms < s.expires_ms else None

    def _settle_current(self, phase_before: Phase, state: CallState) -> None:
        """An answer to the offer, or a change of mood, ends the current suggestion."""
        if state.phase == phase_before or self._current is None:
            return
        if state.phase in _SETTLED_BY_PHASE:
            self._shown[self._current].status = _SETTLED_BY_PHASE[state.phase]
        if state.phase in (*_SETTLED_BY_PHASE, *_BLOCKED_BY_PHASE):
            self._current = None

    def _declined_products(self, state: CallState) -> set[str]:
        return self._declined | {
            o.product_id for o in state.offers if o.outcome == "declined" and o.product_id
        }
