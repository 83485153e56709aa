"""Signal names and the groups the stages read them in, defined once.

The bundled rule files may only detect names listed here (a test checks both ways), so
supervision can list and filter signals without loading a language model.
"""

from __future__ import annotations

SIGNAL_NAMES = frozenset(
    {
        "agreement",
        "anger",
        "benefit_framing",
        "cancel_intent",
        "closing_summary",
        "company_centric",
        "competitor_mention",
        "downsell_offer",
        "empathy",
        "greeting",
        "identity_verification",
        "life_change",
        "needs_question",
        "offer_made",
        "pressure_language",
        "price_objection",
        "refusal",
        "renewal_timing",
        "satisfaction",
        "speed_complaint",
        "usage_limit",
    }
)
"""Every signal a detector may emit."""

CUE_NAMES = frozenset(
    {
        "cue.calm",
        "cue.confirm",
        "cue.decision",
        "cue.logistics",
        "cue.need",
        "cue.own",
        "cue.price",
        "cue.product",
        "cue.proposal",
        "cue.question",
        "cue.reask",
        "cue.service",
        "cue.soft_no",
        "cue.topic",
        "cue.yes",
        "cue.yours",
    }
)
"""Constructions the rules also hear, read in the call's context by ``core.acts`` and
never emitted (data/signals/TAXONOMY.md says what each one is)."""

NEED_SIGNALS = frozenset(
    {
        "speed_complaint",
        "usage_limit",
        "price_objection",
        "life_change",
        "renewal_timing",
        "competitor_mention",
    }
)
"""Customer signals that mean a need has been heard (the call is past its opening)."""

DISCOVERED_NEED_SIGNALS = NEED_SIGNALS | {"satisfaction"}
"""What the scorecard counts as a need the agent uncovered: the needs, plus what the
customer says they are happy with (which tells the agent what not to sell)."""

OFFER_SIGNALS = frozenset({"offer_made", "downsell_offer"})
COMPLAINT_SIGNALS = frozenset({"speed_complaint", "cancel_intent", "anger", "usage_limit"})
REFUSAL_SIGNALS = frozenset({"refusal", "price_objection", "cancel_intent"})

assert NEED_SIGNALS | OFFER_SIGNALS | COMPLAINT_SIGNALS | REFUSAL_SIGNALS <= SIGNAL_NAMES
