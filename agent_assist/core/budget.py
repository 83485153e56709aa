"""How much an add-on may cost after a customer decided on price.

A customer who objected to the price and then chose a cheaper plan has decided: the
moment for a related add-on is there, but only one that is not "a costly add-on" past
what they asked for. Within a stated amount, the room left under it; without one, half
of what the cheaper plan saves them (they keep most of the saving), from their plan or,
when it is not known, from the saving the agent quoted. Both the offer
engine (which card to show) and compliance (which add-on is past the budget) use this
one measure, so a card never leads the agent into a warning.
"""

from __future__ import annotations

from agent_assist.core.catalog import Catalog
from agent_assist.core.phases import CallState


def addon_allowance(state: CallState, catalog: Catalog, record_plan: str = "") -> int | None:
    """Yen a month an add-on may cost after the customer's last decision, or None when
    no add-on fits a stated budget (nothing decided, or a decision that saves nothing)."""
    if state.wanted_to_leave:
        return None  # a price reason to leave: the cheaper plan is the only fitting offer
    accepted = state.last_accepted
    decided = catalog.get(accepted.product_id) if accepted else None
    if decided is None or decided.kind != "plan":
        return None
    if state.budget_yen is not None:
        room = state.budget_yen - decided.monthly_price
        return room if room > 0 else None
    before_id = record_plan or next((p for p in state.own_plans if p != decided.product_id), "")
    before = catalog.get(before_id) if before_id else None
    if before is None and state.saving_yen:
        return state.saving_yen // 2  # the saving the agent quoted for the cheaper plan
    if (
        before is None
        or before.kind != "plan"
        or before.family != decided.family
        or before.monthly_price <= decided.monthly_price
    ):
        return None
    return (before.monthly_price - decided.monthly_price) // 2
