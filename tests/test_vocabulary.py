"""Signal names, their groups and the supported languages are defined once, in core."""

from __future__ import annotations

from agent_assist.core.events import LANGUAGES
from agent_assist.core.signals import CUE_PREFIX
from agent_assist.core.vocabulary import (
    COMPLAINT_SIGNALS,
    CUE_NAMES,
    DISCOVERED_NEED_SIGNALS,
    NEED_SIGNALS,
    OFFER_SIGNALS,
    REFUSAL_SIGNALS,
    SIGNAL_NAMES,
)
from agent_assist.nlp.spacy_analyzer import load_rule_set


def test_the_bundled_rules_detect_exactly_the_named_signals() -> None:
    for language in LANGUAGES:
        detected = {rule.signal for rule in load_rule_set(language).rules.values()}
        assert detected == SIGNAL_NAMES | CUE_NAMES, language
        assert all(c.startswith(CUE_PREFIX) for c in CUE_NAMES)
        assert not any(s.startswith(CUE_PREFIX) for s in SIGNAL_NAMES)


def test_every_group_names_known_signals() -> None:
    groups = (NEED_SIGNALS, DISCOVERED_NEED_SIGNALS, OFFER_SIGNALS, COMPLAINT_SIGNALS)
    for group in (*groups, REFUSAL_SIGNALS):
        assert group and group <= SIGNAL_NAMES
    assert NEED_SIGNALS < DISCOVERED_NEED_SIGNALS
