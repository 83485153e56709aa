"""Signal detection: from a final utterance to speaker-aware signals with evidence.

Tokenising and phrase matching are the analyzer's job (spaCy, behind ``Analyzer``);
this module decides what a match means: whose words count for which signal, whether
a negation in scope cancels it ("not slow", 遅くない), and which characters are the
evidence. It is pure and deterministic.

A ``SecondOpinion`` (a sentence classifier behind a protocol) may add signals the
patterns missed, for paraphrases. Rules are precise, the model recalls: a rule hit
always stands; a model score counts only above its abstain threshold, only for a signal
the speaker can have, and never for a signal whose trigger phrase was negated here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from agent_assist.core.events import Evidence, SignalDetected, Speaker, TranscriptFinal

CUE_PREFIX = "cue."
"""Signals named ``cue.*`` are constructions (a product named, a proposing frame, a soft
no ...) that mean something only in the call's context; they never leave the session."""


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
    model_veto: frozenset[str] = frozenset()
    """Signals the model may not add to an utterance holding any negation cue: it reads
    "not slow" much like "slow", and has no scope to check."""


def has_negation(tokens: Sequence[Token], scope: NegationScope) -> bool:
    return any(t.lemma.lower() in scope.cues or t.text.lower() in scope.cues for t in tokens)


@dataclass(frozen=True, slots=True)
class SignalRule:
    """A versioned rule: which signal its patterns mean and whose words count."""

    rule_id: str
    signal: str
    speakers: frozenset[Speaker]
    negatable: bool
    detail: str = ""
    """Copied to ``SignalDetected.detail`` (e.g. the kind of offer the words show)."""
    veto: bool = False
    """A look-alike ("cancel that message", "cancellation fee"): its words are not the
    signal, so an overlapping hit of the signal is dropped and the model may not add it."""


class SecondOpinion(Protocol):
    """A classifier that scores every signal for one text, for paraphrases rules miss.

    ``model_id`` is versioned (it becomes part of the cited rule id); ``thresholds``
    are the per-signal abstain thresholds chosen when the model was trained.
    """

    model_id: str
    thresholds: Mapping[str, float]

    def scores(self, text: str, language: str) -> Mapping[str, float]: ...


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
        second_opinion: SecondOpinion | None = None,
    ) -> None:
        self._analyzers = analyzers
        self._rules = rules
        self._negation = negation
        self._second_opinion = second_opinion
        speakers: dict[str, set[Speaker]] = {}
        for rule in rules.values():
            speakers.setdefault(rule.signal, set()).update(rule.speakers)
        self._speakers_of = {signal: frozenset(s) for signal, s in speakers.items()}

    @property
    def second_opinion(self) -> SecondOpinion | None:
        return self._second_opinion

    def feed(self, final: TranscriptFinal) -> list[SignalDetected]:
        """The utterance's signals, without the cues only the call session reads."""
        return [s for s in self.read(final) if not s.signal.startswith(CUE_PREFIX)]

    def read(self, final: TranscriptFinal) -> list[SignalDetected]:
        """Signals and cues (``cue.*``: constructions read in context by ``core.acts``)."""
        analyzer = self._analyzers.get(final.language)
        if analyzer is None or not final.text.strip():
            return []
        analysis = analyzer.analyze(final.text)
        scope = self._negation.get(final.language)
        found: dict[str, SignalDetected] = {}
        details: dict[str, str] = {}
        vetoed: set[str] = set()
        look_alikes: list[tuple[str, PhraseHit]] = []
        spans: dict[str, list[PhraseHit]] = {}
        more: list[SignalDetected] = []
        for hit in analysis.hits:
            rule = self._rules.get(hit.rule_id)
            if rule is not None and rule.veto and final.speaker in rule.speakers:
                look_alikes.append((rule.signal, hit))
                vetoed.add(rule.signal)
        # plain rules give the evidence first; a rule that names a detail (the offer's
        # kind) fills in the detail, and the evidence only when no plain rule matched
        for hit in sorted(analysis.hits, key=lambda h: (self._has_detail(h), h.start, h.end)):
            rule = self._rules.get(hit.rule_id)
            if rule is None or rule.veto or final.speaker not in rule.speakers:
                continue
            if any(s == rule.signal and overlaps(hit, v) for s, v in look_alikes):
                continue
            if rule.negatable and scope is not None and is_negated(analysis.tokens, hit, scope):
                vetoed.add(rule.signal)
                continue
            if rule.detail:
                details.setdefault(rule.signal, rule.detail)
            if rule.signal in found:
                # a cue is read where it stands (which sentence, which clause): every
                # further place it occurs is kept, with its own rule's detail
                if rule.signal.startswith(CUE_PREFIX) and not any(
                    overlaps(hit, h) for h in spans.get(rule.signal, [])
                ):
                    spans.setdefault(rule.signal, []).append(hit)
                    more.append(rule_signal(final, analysis.tokens, rule, hit, rule.detail))
                continue
            spans[rule.signal] = [hit]
            found[rule.signal] = rule_signal(final, analysis.tokens, rule, hit)
        out = [replace(sig, detail=details.get(signal, "")) for signal, sig in found.items()]
        out += more
        if self._second_opinion is not None:
            if scope is not None and has_negation(analysis.tokens, scope):
                vetoed |= scope.model_veto
            out += self._model_signals(final, found.keys() | vetoed)
        return out

    def _has_detail(self, hit: PhraseHit) -> bool:
        rule = self._rules.get(hit.rule_id)
        return rule is not None and bool(rule.detail)

    def _model_signals(
        self, final: TranscriptFinal, settled: Collection[str]
    ) -> list[SignalDetected]:
        """Signals only the model saw: above threshold, speaker's own, not negated."""
        model = self._second_opinion
        assert model is not None
        out: list[SignalDetected] = []
        for signal, score in sorted(model.scores(final.text, final.language).items()):
            threshold = model.thresholds.get(signal)
            if threshold is None or score < threshold or signal in settled:
                continue
            if final.speaker not in self._speakers_of.get(signal, frozenset()):
                continue
            out.append(
                SignalDetected(
                    call_id=final.call_id,
                    t_ms=final.t_ms,
                    signal=signal,
                    speaker=final.speaker,
                    rule_id=f"model.{signal}.{model.model_id}",
                    evidence=whole_utterance(final),
                )
            )
        return out


def rule_signal(
    final: TranscriptFinal,
    tokens: Sequence[Token],
    rule: SignalRule,
    hit: PhraseHit,
    detail: str = "",
) -> SignalDetected:
    """One rule hit as a signal: the first hit of a signal gets its detail later (from
    whichever rule names one), a further cue keeps its own rule's detail."""
    return SignalDetected(
        call_id=final.call_id,
        t_ms=final.t_ms,
        signal=rule.signal,
        speaker=final.speaker,
        rule_id=rule.rule_id,
        evidence=evidence_for(final, tokens, hit),
        detail=detail,
    )


def overlaps(a: PhraseHit, b: PhraseHit) -> bool:
    return a.start < b.end and b.start < a.end


def whole_utterance(final: TranscriptFinal) -> Evidence:
    """A model judges the whole utterance: its evidence is the text without outer spaces."""
    text = final.text
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return Evidence(
        utterance_id=final.utterance_id,
        speaker=final.speaker,
        text=text,
        start=start,
        end=end,
        quote=text[start:end],
    )


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
