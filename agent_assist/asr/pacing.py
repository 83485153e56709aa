"""When the recognition stream asks the engine for interim work, and when a finished
sentence may end an utterance early: pure decisions, no I/O.

Partials and early finals cost decoder time that finals need more, so each is asked
for only when it can still help: enough new speech since the last partial, none in
flight, the engine not lagging, and the language known.

A final can only come once its utterance is closed, and ``vad.min_silence_ms`` of
silence is most of the wait from a customer's last word to the suggestion it triggers.
A pause after a sentence that reads finished is most often the end of the turn, so the
stream may close it sooner (``vad.sentence_end_ms``), with the early final it already has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pacing:
    """The knobs of ``[partials]`` and ``asr.early_final`` the stream obeys."""

    partials: bool = True
    interval_ms: int = 1000
    min_audio_ms: int = 800
    max_lag_ms: int = 1000
    early_final: bool = True


def wants_partial(
    p: Pacing, *, open_ms: int, last_ms: int, busy: bool, language_known: bool, ended: bool
) -> bool:
    """A partial of the open utterance (``open_ms`` long; the last one asked at ``last_ms``)."""
    if not p.partials or busy or not language_known or ended:
        return False
    return open_ms >= p.min_audio_ms and open_ms - last_ms >= p.interval_ms


def wants_early_final(p: Pacing, *, language_known: bool, lag_ms: int) -> bool:
    """Decode the utterance at its first pause, before the endpoint is confirmed."""
    return p.early_final and language_known and lag_ms <= p.max_lag_ms


def same_span(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """An early guess is kept only when the utterance closed exactly where it was cut."""
    return a == b


_FULL_STOPS = frozenset("。．.!！?？")
_TRAILING_OFF = ("...", "…", "‥")
_CLOSING_QUOTES = "」』)）\"'”’ "
# polite sentence-final forms Whisper often leaves unpunctuated in Japanese
_JA_FINAL_FORMS = re.compile(r"(です|ます|ました|ません|でした|ください)(よね|よ|ね|か)?$")


def ends_sentence(text: str, language: str) -> bool:
    """Whether recognised text reads as a finished sentence: it ends with a full stop,
    question or exclamation mark (not an ellipsis, which trails off), or in Japanese with
    a polite sentence-final form. A comma, a particle or a bare word is unfinished."""
    t = text.rstrip().rstrip(_CLOSING_QUOTES)
    if not t or t.endswith(_TRAILING_OFF):
        return False
    if t[-1] in _FULL_STOPS:
        return True
    return language == "ja" and _JA_FINAL_FORMS.search(t) is not None
