"""One call's understanding pipeline: final transcripts in, everything the agent sees out.

The same ``CallSession`` serves a live call, a replayed recording and a scripted call,
so a stored call can be replayed through exactly the code path that served it.
"""

from __future__ import annotations

from agent_assist.core.events import Event, TranscriptFinal
from agent_assist.core.phases import CallState
from agent_assist.core.policy import Policy, PolicyBook
from agent_assist.core.signals import SignalDetector


class CallSession:
    """Composes signal detection, call state and policy for one call."""

    def __init__(self, detector: SignalDetector, book: PolicyBook, language: str) -> None:
        self._detector = detector
        self._book = book
        self.language = language
        self.state = CallState()
        self._policy = Policy(book, language)

    def set_language(self, language: str) -> None:
        """Fix the language once detected (calls may start as ``auto``)."""
        self.language = language
        self._policy = Policy(self._book, language)

    def feed(self, event: Event) -> list[Event]:
        """Process one event; return the derived events in the order they happened."""
        if not isinstance(event, TranscriptFinal):
            return []
        signals = self._detector.feed(event)
        if not signals:
            return []
        phase_before = self.state.phase
        changes = self.state.apply(signals)
        decisions = self._policy.decide(signals, phase_before, self.state)
        return [*signals, *changes, *decisions]
