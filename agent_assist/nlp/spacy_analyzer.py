"""spaCy adapter: tokenise, lemmatise and match signal patterns for one language.

Japanese uses ``spacy.blank("ja")`` (SudachiPy with sudachidict-core: dictionary forms,
so 遅くて matches 遅い); English uses ``spacy.blank("en")`` with the lookup lemmatizer
from spacy-lookups-data. Both load in well under a second and need no model download.

Speech recognition often hears Japanese right but writes the wrong kanji (解約 → 開約).
Each token therefore carries its SudachiPy reading in katakana as ``token._.reading``
(usable in Matcher patterns), and rules may list ``readings`` that are searched across
token boundaries in the utterance's reading.
"""

from __future__ import annotations

import bisect
import tomllib
import unicodedata
import warnings
from importlib import resources
from pathlib import Path

import spacy
from spacy.matcher import Matcher
from spacy.tokens import Token as SpacyToken

from agent_assist.core.rulebook import SignalRuleSet, parse_signal_rules
from agent_assist.core.signals import Analysis, PhraseHit, Token
from agent_assist.errors import ConfigError

MAX_CHARS = 2000
"""Longer texts are cut: an utterance is never this long, and matching stays bounded."""

_HIRAGANA_TO_KATAKANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}


def katakana(text: str) -> str:
    return text.translate(_HIRAGANA_TO_KATAKANA)


def _reading(token: SpacyToken) -> str:
    values: list[str] = token.morph.get("Reading", [])
    return katakana(values[0] if values else token.text)


if not SpacyToken.has_extension("reading"):
    SpacyToken.set_extension("reading", getter=_reading)


def same_length_fold(text: str, lower_shouting: bool = False) -> str:
    """Full-width letters and digits to ASCII (ＡＢＣ１２３ → ABC123), character by character;
    with ``lower_shouting``, an all-capitals text to lower case (English lemma tables are
    lower case).

    Each character maps to exactly one, so evidence offsets still point into the
    original text; characters whose normal form is longer are kept as they are.
    """
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 and folded.isascii() else ch)
    joined = "".join(out)
    if lower_shouting and joined.isupper():
        joined = "".join(c.lower() if len(c.lower()) == 1 else c for c in joined)
    return joined


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
        self._readings = rule_set.readings
        problems: list[str] = []
        for rule_id, patterns in rule_set.patterns.items():
            if not patterns:
                continue
            try:
                self._matcher.add(rule_id, patterns)
            except (ValueError, KeyError) as exc:
                problems.append(f"rule {rule_id}: spaCy refused a pattern: {exc}")
        if problems:
            raise ConfigError(f"signals/{rule_set.language}.toml", problems)

    def analyze(self, text: str) -> Analysis:
        doc = self._nlp(same_length_fold(text[:MAX_CHARS], self.language == "en"))
        tokens = tuple(
            Token(text=t.text, lemma=t.lemma_ or t.text, start=t.idx, end=t.idx + len(t.text))
            for t in doc
        )
        hits = [
            PhraseHit(rule_id=self._nlp.vocab.strings[match_id], start=start, end=end)
            for match_id, start, end in self._matcher(doc)
        ]
        if self._readings and len(doc):
            hits += self._reading_hits([t._.reading for t in doc])
        return Analysis(tokens=tokens, hits=tuple(hits))

    def _reading_hits(self, readings: list[str]) -> list[PhraseHit]:
        """Rule readings found in the joined token readings, starting on a token."""
        starts: list[int] = []
        pos = 0
        for r in readings:
            starts.append(pos)
            pos += len(r)
        joined = "".join(readings)
        hits: list[PhraseHit] = []
        for rule_id, kana_list in self._readings.items():
            for kana in kana_list:
                at = joined.find(kana)
                while at >= 0:
                    first = bisect.bisect_right(starts, at) - 1
                    if starts[first] == at:
                        last = bisect.bisect_left(starts, at + len(kana))
                        hits.append(PhraseHit(rule_id=rule_id, start=first, end=last))
                    at = joined.find(kana, at + 1)
        return hits
