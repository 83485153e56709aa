"""When the recognition stream asks the engine for interim work: pure decisions, no I/O.

Partials and early finals cost decoder time that finals need more, so each is asked
for only when it can still help: enough new speech since the last partial, none in
flight, the engine not lagging, and the language known.
"""

from __future__ import annotations

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
