"""bench.sentence_end scores a turn by its finals joined: error rate and utterances."""

from __future__ import annotations

from agent_assist.core.events import TranscriptFinal
from bench.sentence_end import score


def final(speaker: str, start: int, end: int, text: str) -> TranscriptFinal:
    return TranscriptFinal(
        call_id="c", t_ms=start, utterance_id=f"{speaker}-{start}", speaker=speaker,  # type: ignore[arg-type]
        end_ms=end, language="en", text=text,
    )  # fmt: skip


def test_a_turn_cut_in_two_is_scored_whole() -> None:
    turns = [
        {"speaker": "customer", "start": 1.0, "end": 4.0, "text": "Too much. I want to leave."},
        {"speaker": "agent", "start": 4.5, "end": 6.0, "text": "I understand."},
    ]
    finals = [
        final("customer", 900, 2200, "Too much."),
        final("customer", 2600, 4100, "I want to leave."),
        final("agent", 4400, 6100, "I understand the."),
    ]
    edits, length, n_turns, utterances = score(finals, turns, "en")
    assert (n_turns, utterances) == (2, 3)
    assert length == 8 and edits == 1  # "the" inserted; the split turn reads right
