"""A supervisor's score for one scorecard item, with a reason, beside the automatic one.

An override changes only that call's scorecard (the store drops the call's cached score
with it); the automatic score stays visible beside it.
"""

from __future__ import annotations

from agent_assist.core.scoring import ITEM_TITLES, Override, Scorecard
from agent_assist.errors import RequestError
from agent_assist.store.base import Store


def stored_overrides(store: Store, call_id: str) -> dict[str, Override]:
    """Every item a supervisor has scored on this call."""
    return {
        item: Override(score, reason, by, at)
        for item, score, reason, by, at in store.overrides(call_id)
    }


def set_override(
    store: Store,
    card: Scorecard,
    call_id: str,
    item_id: str,
    score: float | None,
    reason: str,
    by: str,
    at: str,
) -> None:
    """Save (or with ``score`` None, clear) one item's override; refuse bad input, coded."""
    if item_id not in ITEM_TITLES or item_id not in card.items:
        raise RequestError(f"unknown scorecard item {item_id!r}", code="score.bad_item")
    if score is None:
        store.clear_override(call_id, item_id)
        return
    if not 0 <= score <= 1:
        raise RequestError("score must be between 0 and 1", code="score.bad_value")
    if not reason.strip():
        raise RequestError(
            "an override needs a reason (it is shown beside the automatic score)",
            code="score.reason_required",
        )
    store.save_override(call_id, item_id, score, reason.strip()[:500], by, at)
