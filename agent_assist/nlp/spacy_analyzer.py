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

import re
import tomllib
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import spacy
from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.tokens import Token as SpacyToken
from spacy.vocab import Vocab

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


_HEARD_ABOUT = re.compile(
    r"\b(think|thinks|thought|thinking|talk|talked|talking|worry|worried|care|forget|"
    r"know|hear|heard|how|what)(\s+)(i'?m\s+out(?:ed)?)\b"
    r"(?!\s+(?:of|now|here|there|for|to|in|on|at|already|again)\b)",
    re.IGNORECASE,
)
"""Recognisers hear "about" after the verbs that take it as "I'm out" ("let me think I'm
out it"): a mishearing of a function word that the rules' constructions depend on."""


_HEARD_GIG = re.compile(
    r"\b(\d+|three|five|ten|twenty|fifty|hundred)(\s+)(good|get|geek|keg|gigue|giga)\b"
    r"(?=\s+(?:plan|plans|cap|limit|allowance|one|data|package|tier|bundle|sim|a\s+month)\b)",
    re.IGNORECASE,
)
"""The catalogue's allowance word after a number, as recognisers hear it ("the 50 good
plan", "my 20 get cap"): a number of gigs is the only thing sold by the number."""


def heard_as_said(text: str) -> tuple[str, list[int] | None]:
    """English words as said where recognition commonly mishears them ("think I'm out"
    → "think about", "the 50 good plan" → "the 50 gig plan", "im" → "i'm"), with, for
    each character of the result, the offset of the original character it stands for
    (None when nothing changed), so evidence still quotes what was heard."""
    where: list[int] | None = None
    for pattern, replace_in in (
        (_HEARD_ABOUT, lambda m: (m.start(3), m.end(3), "about")),
        (_HEARD_GIG, lambda m: (m.start(3), m.end(3), "gig")),
        (_BARE_CONTRACTION, _restored_contraction),
    ):
        text, where = _rewrite(text, where, pattern, replace_in)
    return text, where


def _restored_contraction(m: re.Match[str]) -> tuple[int, int, str] | None:
    heard = m.group(1)
    if len(heard) > 1 and heard.isupper():
        return None  # an abbreviation (ID), not a contraction
    said = _CONTRACTIONS[heard.lower()]
    if heard[0].isupper():
        said = said[0].upper() + said[1:]
    return m.start(1), m.end(1), said


def _rewrite(
    text: str,
    where: list[int] | None,
    pattern: re.Pattern[str],
    replace_in: Callable[[re.Match[str]], tuple[int, int, str] | None],
) -> tuple[str, list[int] | None]:
    """Replace one span per match; the offset map is carried through (each character
    of a replacement points into the span it replaced)."""
    out: list[str] = []
    new_where: list[int] = []
    base = where if where is not None else list(range(len(text) + 1))
    last = 0
    changed = False
    for m in pattern.finditer(text):
        span = replace_in(m)
        if span is None:
            continue
        start, end, said = span
        out.append(text[last:start])
        new_where.extend(base[last:start])
        out.append(said)
        new_where.extend(base[min(start + i, end - 1)] for i in range(len(said)))
        last = end
        changed = True
    if not changed:
        return text, where
    out.append(text[last:])
    new_where.extend(base[last:])
    return "".join(out), new_where


_CONTRACTIONS = {
    "im": "i'm",
    "ive": "i've",
    "id": "i'd",
    "youre": "you're",
    "youve": "you've",
    "youd": "you'd",
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "cant": "can't",
    "wont": "won't",
    "isnt": "isn't",
    "wasnt": "wasn't",
    "arent": "aren't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "wouldnt": "wouldn't",
    "couldnt": "couldn't",
    "shouldnt": "shouldn't",
    "thats": "that's",
    "theres": "there's",
    "whats": "what's",
    "lets": "let's",
    "itll": "it'll",
    "thatll": "that'll",
    "theyre": "they're",
    "weve": "we've",
}
"""Contractions as a recogniser (or a hurried typist) writes them, without the apostrophe;
ambiguous ones (ill, its, were, well, id as "ID" in capitals) are left alone."""
_BARE_CONTRACTION = re.compile(r"\b(" + "|".join(_CONTRACTIONS) + r")\b", re.IGNORECASE)


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
        self._readings = rule_set.readings
        self._kana = KanaReadings() if rule_set.readings else None
        self._by_first = readings_by_first_kana(rule_set.readings)
        self._matchers = AnchoredMatchers(self._nlp.vocab)
        problems: list[str] = []
        for rule_id, patterns in rule_set.patterns.items():
            for pattern in patterns:
                try:
                    self._matchers.add(rule_id, pattern)
                except (ValueError, KeyError) as exc:
                    problems.append(f"rule {rule_id}: spaCy refused a pattern: {exc}")
        if problems:
            raise ConfigError(f"signals/{rule_set.language}.toml", problems)

    def analyze(self, text: str) -> Analysis:
        folded = same_length_fold(text[:MAX_CHARS], self.language == "en")
        where: list[int] | None = None
        if self.language == "en":
            folded, where = heard_as_said(folded)
        doc = self._nlp(folded)
        if where is None:
            tokens = tuple(
                Token(text=t.text, lemma=t.lemma_ or t.text, start=t.idx, end=t.idx + len(t.text))
                for t in doc
            )
        else:
            at = where
            tokens = tuple(
                Token(
                    text=t.text,
                    lemma=t.lemma_ or t.text,
                    start=at[t.idx],
                    end=at[t.idx + len(t.text) - 1] + 1,
                )
                for t in doc
            )
        hits = [
            PhraseHit(rule_id=rule_id, start=start, end=end)
            for rule_id, start, end in self._matchers(doc)
        ]
        if self._readings and len(doc):
            hits += self._reading_hits([t._.reading for t in doc], [t.text for t in doc])
        return Analysis(tokens=tokens, hits=tuple(hits))

    def _reading_hits(self, readings: list[str], texts: list[str]) -> list[PhraseHit]:
        """Rule readings found across tokens, starting on a token: each token may be read
        as SudachiPy reads it or, when recognition wrote the wrong kanji, kanji by kanji
        with any of their dictionary readings (開約 → カイヤク, 両金 → リョウキン); long
        readings also match with voicing ignored (家族改善 → カゾクカイセン)."""
        assert self._kana is not None
        lattice: list[TokenKana] = []
        token_of: list[int] = []
        inner: list[bool] = []
        for i, (text, reading) in enumerate(zip(texts, readings, strict=True)):
            if len(text) >= INNER_FROM and text == reading and _all_katakana(text):
                # a run of katakana the dictionary does not know (アイネソレニスル): a
                # recogniser's spelling of several words, so a reading may start inside it
                for k, ch in enumerate(text):
                    lattice.append(self._kana.candidates(ch, ch))
                    token_of.append(i)
                    inner.append(k > 0)
            else:
                lattice.append(self._kana.candidates(text, reading))
                token_of.append(i)
                inner.append(False)
        hits: list[PhraseHit] = []
        for start, token in enumerate(lattice):
            for folded, firsts in ((False, token.exact_firsts), (True, token.folded_firsts)):
                for first in firsts:
                    for rule_id, kana in self._by_first[folded].get(first, ()):
                        if inner[start] and len(kana) < INNER_FROM:
                            continue
                        end = _spell(lattice, start, kana, folded)
                        if end:
                            hits.append(PhraseHit(rule_id, token_of[start], token_of[end - 1] + 1))
        return hits


INNER_FROM = 5
"""Readings this long may also start inside an unknown run of katakana."""

_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc]+")


def _all_katakana(text: str) -> bool:
    return _KATAKANA_RUN.fullmatch(text) is not None


_ANCHOR_ATTRS = {
    "LOWER": "lower_",
    "LEMMA": "lemma_",
    "TEXT": "text",
    "ORTH": "text",
    "NORM": "norm_",
}


class AnchoredMatchers:
    """The rules' token patterns, matched only where they can start.

    spaCy's ``Matcher`` tries every pattern at every token, so its cost grows with the
    number of patterns. Most patterns start with a required plain word (an ``IN`` list is
    split into one pattern per word): one-word patterns become a dictionary lookup, and
    longer ones are grouped by their first word, each group run only on an utterance
    that holds that word. The rest run as before. The matches are the same.
    """

    def __init__(self, vocab: Vocab) -> None:
        self._vocab = vocab
        self._validator = Matcher(vocab, validate=True)
        self._words: dict[tuple[str, str], set[str]] = {}
        self._groups: dict[tuple[str, str], Matcher] = {}
        self._rest = Matcher(vocab, validate=True)
        self._attrs: set[str] = set()

    def add(self, rule_id: str, pattern: list[dict[str, object]]) -> None:
        self._validator.add(rule_id, [pattern])  # spaCy's own check of every pattern
        self._validator.remove(rule_id)
        for one in by_first_value(pattern):
            anchor = _anchor(one[0]) if one else None
            if anchor is None:
                self._rest.add(rule_id, [one])
            elif len(one) == 1:
                self._words.setdefault(anchor, set()).add(rule_id)
                self._attrs.add(anchor[0])
            else:
                group = self._groups.get(anchor)
                if group is None:
                    group = self._groups[anchor] = Matcher(self._vocab)
                group.add(rule_id, [one])
                self._attrs.add(anchor[0])

    def __call__(self, doc: Doc) -> list[tuple[str, int, int]]:
        strings = self._vocab.strings
        found: set[tuple[str, int, int]] = set()
        seen: set[tuple[str, str]] = set()
        for i, token in enumerate(doc):
            for attr in self._attrs:
                key = (attr, getattr(token, _ANCHOR_ATTRS[attr]))
                for rule_id in self._words.get(key, ()):
                    found.add((rule_id, i, i + 1))
                seen.add(key)
        matchers = [self._groups[k] for k in seen if k in self._groups]
        if len(self._rest):
            matchers.append(self._rest)
        for matcher in matchers:
            for match_id, start, end in matcher(doc):
                found.add((strings[match_id], start, end))
        return sorted(found, key=lambda h: (h[1], h[2], h[0]))


def _anchor(token: dict[str, object]) -> tuple[str, str] | None:
    """The required plain word a token pattern asks for, if that is all it asks."""
    if len(token) != 1:
        return None
    ((attr, value),) = token.items()
    if attr not in _ANCHOR_ATTRS or not isinstance(value, str):
        return None
    return attr, value


def by_first_value(pattern: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """One pattern per value of its first token's ``IN`` list, where that token is
    required: the same matches, but a token is tried against a plain value (compared in
    the matcher's compiled code) instead of a set predicate evaluated at every token."""
    if not pattern:
        return [pattern]
    first = pattern[0]
    if "OP" in first or len(first) != 1:
        return [pattern]
    ((attr, value),) = first.items()
    if not isinstance(value, dict) or set(value) != {"IN"}:
        return [pattern]
    values = value["IN"]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return [pattern]
    return [[{attr: v}, *pattern[1:]] for v in dict.fromkeys(values)]


def readings_by_first_kana(
    readings: dict[str, list[str]],
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """Rule readings keyed by their first kana (exact, and unvoiced for long ones), so a
    token is tried only against the readings that can start with it."""
    exact: dict[str, list[tuple[str, str]]] = {}
    folded: dict[str, list[tuple[str, str]]] = {}
    for rule_id, kana_list in readings.items():
        for kana in kana_list:
            target, fold = spelled_as(kana)
            (folded if fold else exact).setdefault(target[0], []).append((rule_id, target))
    return exact, folded


def spelled_as(kana: str) -> tuple[str, bool]:
    """What a rule reading is matched as: itself, or unvoiced when it is long enough for
    voicing to be forgiven (then True)."""
    if len(kana) >= VOICING_FOLD_FROM:
        return unvoiced(kana), True
    return kana, False


VOICING_FOLD_FROM = 7
"""Readings at least this long also match with voicing ignored: long enough that a
sound-alike is the same word misheard, not another word (今日中 is not 教習)."""

_UNVOICED = str.maketrans(
    "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴ",
    "カキクケコサシスセソタチツテトハヒフヘホハヒフヘホウ",
)


def unvoiced(kana: str) -> str:
    """Katakana without voicing marks or long-vowel bars: how a misheard word still sounds."""
    return kana.translate(_UNVOICED).replace("ー", "")


@dataclass(frozen=True, slots=True)
class TokenKana:
    """The ways one token may sound: as read, kanji by kanji, and unvoiced."""

    exact: frozenset[str]
    folded: frozenset[str]
    exact_firsts: frozenset[str]
    folded_firsts: frozenset[str]


def find_reading(lattice: list[TokenKana], kana: str) -> list[tuple[int, int]]:
    """Token spans ``[start, end)`` whose readings spell ``kana`` from a token's start
    (the last token may go on past it)."""
    target, folded = spelled_as(kana)
    out: list[tuple[int, int]] = []
    for start in range(len(lattice)):
        end = _spell(lattice, start, target, folded)
        if end:
            out.append((start, end))
    return out


def _spell(lattice: list[TokenKana], at: int, rest: str, folded: bool) -> int:
    if at >= len(lattice):
        return 0
    token = lattice[at]
    for reading in token.folded if folded else token.exact:
        if not reading:
            continue
        if reading.startswith(rest):
            return at + 1
        if rest.startswith(reading):
            end = _spell(lattice, at + 1, rest[len(reading) :], folded)
            if end:
                return end
    return 0


class KanaReadings:
    """Per-kanji readings from SudachiPy's own dictionary, cached per token."""

    MAX_KANJI = 4
    MAX_READINGS = 24
    CACHE = 20_000

    def __init__(self) -> None:
        from sudachipy import Dictionary

        self._dictionary = Dictionary(dict="core")
        self._kanji: dict[str, tuple[str, ...]] = {}
        self._tokens: dict[tuple[str, str], TokenKana] = {}

    def candidates(self, text: str, reading: str) -> TokenKana:
        key = (text, reading)
        found = self._tokens.get(key)
        if found is None:
            exact = {reading, *self._kanji_by_kanji(text)}
            folded = {unvoiced(r) for r in exact} - {""}
            found = TokenKana(
                frozenset(exact),
                frozenset(folded),
                frozenset(r[0] for r in exact if r),
                frozenset(r[0] for r in folded),
            )
            if len(self._tokens) >= self.CACHE:
                self._tokens.clear()
            self._tokens[key] = found
        return found

    def _kanji_by_kanji(self, text: str) -> list[str]:
        """Other ways the token may sound. A word the dictionary knows (条件, 両金) sounds
        only as the dictionary reads it (all its readings: 両金 → リョウガネ, リョウキン);
        a lone kanji (開, 約し, 戒) is what a recogniser leaves of a word it wrote wrong,
        so it may sound as any reading of that kanji."""
        kanji = sum(1 for c in text if _is_kanji(c))
        if kanji == 0 or len(text) > self.MAX_KANJI:
            return []
        if kanji > 1:
            return list(self.word(text))
        spelled = [""]
        for ch in text:
            options = self.kanji(ch) if _is_kanji(ch) else (katakana(ch),)
            if not options:
                return []
            spelled = [s + o for s in spelled for o in options][: self.MAX_READINGS]
        return spelled

    def word(self, text: str) -> tuple[str, ...]:
        """Every reading the dictionary gives a word written this way."""
        found = self._kanji.get(text)
        if found is None:
            found = tuple(
                sorted({katakana(m.reading_form()) for m in self._dictionary.lookup(text)})
            )
            self._kanji[text] = found
        return found

    def kanji(self, ch: str) -> tuple[str, ...]:
        """Every short reading the dictionary gives a single kanji (開 → カイ, ヒラキ ...)."""
        found = self._kanji.get(ch)
        if found is None:
            found = tuple(
                sorted(
                    {
                        katakana(m.reading_form())
                        for m in self._dictionary.lookup(ch)
                        if 0 < len(m.reading_form()) <= 3
                    }
                )
            )
            self._kanji[ch] = found
        return found


def _is_kanji(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or ch == "\u3005"
