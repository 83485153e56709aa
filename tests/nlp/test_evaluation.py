"""The evaluation arithmetic: what counts as a hit, a miss and a false alarm."""

from __future__ import annotations

from agent_assist.nlp.evaluation import Row, read_own, score
from tests.conftest import REPO


def row(labels: str, judged: bool = True) -> Row:
    return Row("r", "en", "customer", "t", frozenset(labels.split()), judged)


def test_hits_misses_and_false_alarms() -> None:
    rows = [row("cancel_intent"), row("cancel_intent"), row(""), row(""), row("", judged=False)]
    found = [{"cancel_intent"}, set(), {"cancel_intent"}, set(), {"cancel_intent"}]
    scores, false_alarms, neutral = score(rows, found)
    cancel = scores["cancel_intent"]
    assert (cancel.tp, cancel.fn, cancel.fp) == (1, 1, 1)
    assert cancel.precision == 0.5 and cancel.recall == 0.5
    assert neutral == 2 and false_alarms == 0.5  # the unjudged row counts for nothing


def test_a_signal_the_set_does_not_label_is_not_judged_on_labelled_rows() -> None:
    scores, false_alarms, _ = score(
        [row("cancel_intent"), row("")], [{"anger", "cancel_intent"}, set()]
    )
    assert set(scores) == {"cancel_intent"} and false_alarms == 0.0


def test_own_sets_cover_every_signal_in_both_languages() -> None:
    for language, minimum in (("ja", 5), ("en", 2)):
        rows = read_own(REPO / "eval" / f"{language}_signals.csv", language)
        counts: dict[str, int] = {}
        for r in rows:
            for label in r.labels:
                counts[label] = counts.get(label, 0) + 1
        assert len(counts) == 20 and min(counts.values()) >= minimum
        # two neutral English rows were dropped: they nearly copied third-party rows
        assert sum(1 for r in rows if not r.labels) >= 18
