"""Partials that never take words back: commit only what successive hypotheses agree on.

Each partial re-decodes the open utterance, and Whisper revises its last words as more
audio arrives. Showing raw hypotheses makes text flicker and lets a signal fire on a word
that then disappears. The stabiliser keeps a committed prefix and extends it by the
longest common prefix of the two latest hypotheses (LocalAgreement-2), holding back the
very last unit, which the audio may have cut mid-word.

Units: English words (compared without case or edge punctuation); Japanese characters
(Python ``str`` items are whole code points, so no multibyte character is ever split;
text is NFC-normalised so a composed and a decomposed kana compare equal). Spaces, which
Whisper scatters in Japanese output, are not units.
"""

from __future__ import annotations

import unicodedata

_EDGE_PUNCT = ".,!?;:\"'()[]…"


class Stabilizer:
    """Feed hypotheses of one open utterance; read the committed text."""

    def __init__(self, language: str) -> None:
        self._chars = language == "ja"
        self._committed: list[str] = []
        self._previous: list[str] = []

    @property
    def text(self) -> str:
        return ("" if self._chars else " ").join(self._committed)

    def feed(self, hypothesis: str) -> bool:
        """Add a hypothesis; True when the committed text grew."""
        units = self._units(hypothesis)
        previous, self._previous = self._previous, units
        n = len(self._committed)
        if [self._key(u) for u in units[:n]] != [self._key(u) for u in self._committed]:
            return False  # the new hypothesis contradicts what is committed: wait
        agree = n
        limit = min(len(previous), len(units) - 1)
        while agree < limit and self._key(previous[agree]) == self._key(units[agree]):
            agree += 1
        if agree <= n:
            return False
        self._committed.extend(units[n:agree])
        return True

    def reset(self) -> None:
        self._committed, self._previous = [], []

    def _units(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", text).replace("\ufffd", "")
        if self._chars:
            return [c for c in text if not c.isspace()]
        return text.split()

    def _key(self, unit: str) -> str:
        return unit if self._chars else unit.strip(_EDGE_PUNCT).lower()
