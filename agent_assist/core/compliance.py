"""Compliance: warn the agent, with the rule, the reference and the words, before trust breaks.

Each rule fires on an agent signal in given phases (the phase before the utterance),
optionally under a named condition (an upsell past a stated budget, an add-on unrelated
to the decision). A named allowance lets one smaller offer after a price "no" pass; the
pass is recorded as a decision so a reviewer sees why no warning came.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_assist.core.budget import addon_allowance
from agent_assist.core.customer import CustomerContext
from agent_assist.core.decisions import DecisionLog
from agent_assist.core.events import ComplianceWarning, Event, SignalDetected
from agent_assist.core.phases import CallState, Phase, stated_amount
from agent_assist.core.policy import ComplianceRule, PolicyBook


class ComplianceChecker:
    def __init__(
        self,
        book: PolicyBook,
        language: str,
        customer: CustomerContext | None,
        log: DecisionLog,
    ) -> None:
        self.book = book
        self.language = language
        self.customer = customer
        self._log = log
        self._warnings = 0
        self._tolerated_downsells = 0

    def check(
        self,
        signals: Sequence[SignalDetected],
        phase_before: Phase,
        state: CallState,
        offer: tuple[str, str, str],
        contexts: set[str] | None = None,
    ) -> list[Event]:
        """Warnings for one agent utterance; ``offer`` is (kind, product, suggestion);
        ``contexts``: the situations it was said in (``CallState.contexts`` before it)."""
        by_name = {s.signal: s for s in signals}
        out: list[Event] = []
        if contexts is None:
            contexts = state.contexts(phase_before)
        for rule in self.book.compliance:
            sig = next((by_name[n] for n in rule.signals if n in by_name), None)
            if sig is None or (rule.in_phases and not contexts & set(rule.in_phases)):
                continue
            if rule.condition and not self._condition(
                rule.condition, offer, state, sig.evidence.text, sig.detail
            ):
                continue
            if "downsell_after_price_no" in rule.allow and self._tolerated(
                offer[0], phase_before, state
            ):
                reason = self.book.reasons["downsell_after_price_no"]
                out.append(
                    self._log.record(
                        call_id=sig.call_id,
                        t_ms=sig.t_ms,
                        outcome="suppressed",
                        subject="warning",
                        rule_id=rule.rule_id,
                        decided_by=reason.rule_id,
                        reason=reason.text[self.language],
                        kind=offer[0],
                        offer_id=offer[1],
                        evidence=sig.evidence,
                    )
                )
                continue
            out.append(self._warning(rule, sig))
        return out

    def _condition(
        self,
        name: str,
        offer: tuple[str, str, str],
        state: CallState,
        said: str = "",
        said_kind: str = "",
    ) -> bool:
        kind, product_id, _ = offer
        main = self.book.catalog.get(product_id)
        if (
            name == "budget_upsell"
            and state.budget_stated
            and said
            and kind != "cross_sell"
            and (main is None or main.kind == "plan")
        ):
            # a plan with an add-on put on top in the same breath ("the 20 GB plan saves
            # you 1,000, and I'd add device protection at 700"): the add-on is pricier than
            # what the customer asked for, before anything was decided
            taken = {o.product_id for o in state.offers if o.outcome == "accepted"}
            beside = self.book.catalog.find_all_named(said, self.language)
            if any(
                p.kind == "option"
                and p.product_id not in taken
                and not (self.customer is not None and self.customer.holds(p.product_id))
                for p, _, _ in beside
            ):
                return True
        if name == "budget_upsell":
            # something pricier than the customer said they can pay for: a bigger plan or
            # an add-on on top; within a stated amount (the plan's price, or the monthly
            # amount the agent quotes for it, "with the annual discount it is 2,980") is not
            product = self.book.catalog.get(product_id)
            quoted = stated_amount(said) if said else None
            is_plan = product is None or product.kind == "plan"
            if state.budget_yen is None:
                within = False
            elif quoted is not None and is_plan:
                # the amount the agent says is what the customer hears: it outweighs a
                # product guessed from the card on screen
                within = quoted <= state.budget_yen
            else:
                # an add-on's price comes on top of the bill: only a plan's price counts
                within = (
                    product is not None
                    and product.kind == "plan"
                    and product.monthly_price <= state.budget_yen
                )
            if product is not None and product.kind == "option" and kind == "cross_sell":
                # after a decision on price, an add-on within what it leaves is not costly
                record = self.customer.plan_id if self.customer else ""
                allowance = addon_allowance(state, self.book.catalog, record)
                within = allowance is not None and product.monthly_price <= allowance
            # a plan quoted above the stated amount is pricier whatever card was on
            # screen, unless the words themselves offer the cheaper plan
            quoted_over = (
                state.budget_yen is not None
                and quoted is not None
                and is_plan
                and quoted > state.budget_yen
                and said_kind != "downsell"
            )
            return state.budget_stated and (
                (kind in ("upsell", "cross_sell") and not within) or quoted_over
            )
        if name == "unrelated_cross_sell":
            product = self.book.catalog.get(product_id)
            if product is None or product.kind != "option":
                return False
            tags = {self.book.need_tags.get(n, n) for n in state.needs_heard}
            bought = [o for o in state.offers[:-1] if o.outcome == "accepted" and o.product_id]
            decided = self.book.catalog.get(bought[-1].product_id) if bought else None
            if decided is None:
                return False  # nothing decided that the add-on could be unrelated to
            if product.needs_only:  # it fits only through a need the customer named
                return not (product.needs & tags)
            if decided.kind == "option" and not decided.adds_line:
                # an add-on after an add-on: related through a need named or as one of the
                # same kind, not because both could sit on some line (security pack ->
                # device protection); an option that is a line (a family line) takes the
                # add-ons of its kind of line, as a plan does
                return not (product.needs & tags) and product.family != decided.family
            if decided.kind == "option":
                shared = product.accessory_of & decided.accessory_of
                return not (product.needs & tags) and not shared
            return not (product.needs & tags) and decided.product_id not in product.accessory_of
        return False

    def _tolerated(self, kind: str, phase_before: Phase, state: CallState) -> bool:
        """One smaller offer right after a price refusal (or a price reason to cancel)."""
        if kind != "downsell" or self._tolerated_downsells >= 1:
            return False
        declined = [o for o in state.offers if o.outcome == "declined"]
        # the no was to a cheaper offer already: another cheaper one is the second
        if declined and declined[-1].kind == "downsell":
            return False
        after_price_no = bool(declined) and declined[-1].declined_on_price
        price_reason_to_leave = phase_before == "retention" and state.budget_stated
        if not (after_price_no or price_reason_to_leave):
            return False
        self._tolerated_downsells += 1
        return True

    def _warning(self, rule: ComplianceRule, sig: SignalDetected) -> ComplianceWarning:
        self._warnings += 1
        lang = self.language
        return ComplianceWarning(
            call_id=sig.call_id,
            t_ms=sig.t_ms,
            warning_id=f"w-{self._warnings}",
            rule_id=rule.rule_id,
            severity=rule.severity,
            title=rule.title[lang],
            message=rule.message[lang],
            instead=rule.instead[lang],
            reference=rule.reference,
            evidence=sig.evidence,
        )
