"""Signal detection: from a final utterance to speaker-aware signals with evidence.

Tokenising and phrase matching are the analyzer's job (spaCy, behind ``Analyzer``);
this module decides what a match means: whose words count for which signal, whether
a negation in scope cancels it ("not slow", 遅くない), and which characters are the
evidence. It is pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent_assist.core.events import Evidence, SignalDetected, Speaker, TranscriptFinal


@dataclass(frozen=True, slots=True)
class Token:
    """One token as the matcher saw it; ``start``/``end`` are character offsets."""

    text: str
    lemma: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PhraseHit:
    """A pattern of ``rule_id`` matched tokens ``[start, end)``."""

    rule_id: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Analysis:
    tokens: tuple[Token, ...]
    hits: tuple[PhraseHit, ...]


class Analyzer(Protocol):
    """Tokenises and matches phrase patterns for one language."""

    language: str

    def analyze(self, text: str) -> Analysis: ...


@dataclass(frozen=True, slots=True)
class NegationScope:
    """Which lemmas negate a trigger, on which side, and how far before a break stops them.

    English negates before the phrase ("not slow"); Japanese after it (遅くない,
    解約はしません). Breaks (punctuation, "but", けど) end the scope.
    """

    cues: frozenset[str]
    side: str  # "before" | "after"
    window: int
    breaks: frozenset[str]


@dataclass(frozen=True, slots=True)
class SignalRule:
    """A versioned rule: which signal its patterns mean and whose words count."""

    rule_id: str
    signal: str
    speakers: frozenset[Speaker]
    negatable: bool


def is_negated(tokens: Sequence[Token], hit: PhraseHit, scope: NegationScope) -> bool:
    """True when a negation cue sits within the scope window of the hit."""
    if scope.side == "before":
        indices: Sequence[int] = range(hit.start - 1, max(-1, hit.start - 1 - scope.window), -1)
    else:
        indices = range(hit.end, min(len(tokens), hit.end + scope.window))
    for i in indices:
        token = tokens[i]
        key = token.lemma.lower()
        if key in scope.breaks or token.text in scope.breaks:
            return False
        if key in scope.cues or token.text.lower() in scope.cues:
            return True
    return False


class SignalDetector:
    """Stage: ``TranscriptFinal`` in, ``SignalDetected`` out (one per signal and utterance)."""

    def __init__(
        self,
        analyzers: Mapping[str, Analyzer],
        rules: Mapping[str, SignalRule],
        negation: Mapping[str, NegationScope],
    ) -> None:
        self._analyzers = analyzers
        self._rules = rules
        self._negation = negation

    def feed(self, final: TranscriptFinal) -> list[SignalDetected]:
        analyzer = self._analyzers.get(final.language)
        if analyzer is None or not final.text.strip():
            return []
        analysis = analyzer.analyze(final.text)
        scope = self._negation.get(final.language)
        found: dict[str, SignalDetected] = {}
        for hit in sorted(analysis.hits, key=lambda h: (h.start, h.end)):
            rule = self._rules.get(hit.rule_id)
            if rule is None or final.speaker not in rule.speakers or rule.signal in found:
                continue
            if rule.negatable and scope is not None and is_negated(analysis.tokens, hit, scope):
                continue
            found[rule.signal] = SignalDetected(
                call_id=final.call_id,
                t_ms=final.t_ms,
                signal=rule.signal,
                speaker=final.speaker,
                rule_id=rule.rule_id,
                evidence=evidence_for(final, analysis.tokens, hit),
            )
        return list(found.values())


def evidence_for(final: TranscriptFinal, tokens: Sequence[Token], hit: PhraseHit) -> Evidence:
    """The character span of a hit inside the utterance text."""
    start = tokens[hit.start].start
    end = tokens[hit.end - 1].end
    return Evidence(
        utterance_id=final.utterance_id,
        speaker=final.speaker,
        text=final.text,
        start=start,
        end=end,
        quote=final.text[start:end],
    )
