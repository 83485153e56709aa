"""spaCy adapter: tokenise, lemmatise and match signal patterns for one language.

Japanese uses ``spacy.blank("ja")`` (SudachiPy with sudachidict-core: dictionary forms,
so 遅くて matches 遅い); English uses ``spacy.blank("en")`` with the lookup lemmatizer
from spacy-lookups-data. Both load in well under a second and need no model download.
"""

from __future__ import annotations

import tomllib
import warnings
from importlib import resources
from pathlib import Path

import spacy
from spacy.matcher import Matcher

from agent_assist.core.rulebook import SignalRuleSet, parse_signal_rules
from agent_assist.core.signals import Analysis, PhraseHit, Token
from agent_assist.errors import ConfigError

MAX_CHARS = 2000
"""Longer texts are cut: an utterance is never this long, and matching stays bounded."""


def load_rule_set(language: str, path: Path | None = None) -> SignalRuleSet:
    """Read the rule file for ``language`` (bundled by default) and validate it."""
    if path is None:
        ref = resources.files("agent_assist") / "data" / "signals" / f"{language}.toml"
        text, source = ref.read_text(encoding="utf-8"), f"signals/{language}.toml"
    else:
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    return parse_signal_rules(doc, source)


class SpacyAnalyzer:
    """``Analyzer`` backed by a blank spaCy pipeline and a validated ``Matcher``."""

    def __init__(self, rule_set: SignalRuleSet) -> None:
        self.language = rule_set.language
        with warnings.catch_warnings():
            # spaCy 3.8 still calls SudachiPy's deprecated Dictionary.create()
            warnings.filterwarnings("ignore", "Dictionary.create", DeprecationWarning)
            self._nlp = spacy.blank(rule_set.language)
        if rule_set.language == "en":
            self._nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
            self._nlp.initialize()
        self._matcher = Matcher(self._nlp.vocab, validate=True)
        problems: list[str] = []
        for rule_id, patterns in rule_set.patterns.items():
            try:
                self._matcher.add(rule_id, patterns)
            except (ValueError, KeyError) as exc:
                problems.append(f"rule {rule_id}: spaCy refused a pattern: {exc}")
        if problems:
            raise ConfigError(f"signals/{rule_set.language}.toml", problems)

    def analyze(self, text: str) -> Analysis:
        doc = self._nlp(text[:MAX_CHARS])
        tokens = tuple(
            Token(text=t.text, lemma=t.lemma_ or t.text, start=t.idx, end=t.idx + len(t.text))
            for t in doc
        )
        hits = tuple(
            PhraseHit(rule_id=self._nlp.vocab.strings[match_id], start=start, end=end)
            for match_id, start, end in self._matcher(doc)
        )
        return Analysis(tokens=tokens, hits=hits)
