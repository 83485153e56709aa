"""The dense-call benchmark's calls and measurements (the server part runs in `make bench`)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import soundfile as sf

from bench.dense import (
    Turn,
    dense_call,
    make_calls,
    measure,
    pooled,
    single_lines,
    source_calls,
    speech_share,
)
from bench.scale_out import dense_lines


def test_dense_calls_are_mostly_speech_on_both_channels_in_both_languages(
    tmp_path: Path,
) -> None:
    sources = source_calls()
    assert {s.lang for s in sources} == {"en", "ja"} and len(sources) >= 6
    for lang in ("en", "ja"):
        audio, turns = dense_call(sources, lang, seed=1, seconds=40.0)
        duration = audio.shape[0] / 16000
        assert duration >= 40.0 and speech_share(turns, duration) >= 0.8
        assert {t.speaker for t in turns} == {"agent", "customer"}
        gaps = [b.start - a.end for a, b in pairwise(turns)]
        assert all(0.2 + 0.15 - 1e-6 <= g <= 0.7 + 0.15 + 1e-6 for g in gaps)
        for t in turns:  # each turn is on its speaker's channel only
            a, b = round(t.start * 16000), round(t.end * 16000)
            ch = ("agent", "customer").index(t.speaker)
            assert abs(audio[a:b, ch]).max() > 1000 and not audio[a:b, 1 - ch].any()
    written = make_calls(2, 20.0, tmp_path)
    assert [lang for _, lang in written] == ["ja", "en"]
    assert sf.info(written[0][0]).channels == 2
    (other := tmp_path / "seeded").mkdir()
    shifted = make_calls(1, 20.0, other, seed=2)  # another start in the pool of turns
    assert shifted[0][1] == "ja"
    assert sf.read(shifted[0][0])[0].shape != sf.read(written[0][0])[0].shape


def test_runs_of_one_set_up_pool_their_latencies_turn_by_turn() -> None:
    def row(final: list[float], suggestion: list[float], level: int) -> dict[str, object]:
        marks = {"final": final, "suggestion": suggestion, "after_final": [], "partial": []}
        return {
            "calls": 1, "customer_turns": len(final), "missed_turns": 0, "server_cores": 0.5,
            "max_level": level, "final_wait_p95_s": 0.1, "final_decode_p95_s": 0.4,
            "load_avg": 0.3, "latencies": marks,
        }  # fmt: skip

    got = pooled([row([0.2, 0.4], [0.5], 0), row([0.6], [0.7, 0.9], 2)])
    assert got["runs"] == 2 and got["customer_turns"] == 3 and got["suggestions"] == 3
    assert got["suggestion_50_s"] == 0.7 and got["suggestion_100_s"] == 0.9
    assert got["final_50_s"] == 0.4 and got["max_level"] == 2
    assert got["suggestions_in_turn"] == 0
    text = "\n".join(single_lines({**got, "after_final_50_s": 0.05, "after_final_95_s": 0.1}, 45))
    assert "3 suggestions (0 while" in text and "| 0.70 / 0.88 / 0.90 |" in text
    early = pooled([row([0.3], [-0.4, 0.3], 0)])  # the turn's first sentence carried one
    assert early["suggestions_in_turn"] == 1 and round(early["suggestion_50_s"], 2) == -0.05
    assert "**not met**" in text  # p50 0.7 s > 0.5 s
    fast = {**got, "suggestion_50_s": 0.45, "suggestion_95_s": 0.9}
    assert "**met**" in "\n".join(
        single_lines({**fast, "after_final_50_s": 0, "after_final_95_s": 0}, 45)
    )


def test_latency_is_measured_from_the_customer_turn_end() -> None:
    turns = [Turn("agent", 0.2, 2.0, "hi"), Turn("customer", 2.5, 5.0, "slow internet")]

    def final(uid: str, speaker: str, t_ms: int, end_ms: int, at: float) -> dict[str, object]:
        data = {"utterance_id": uid, "speaker": speaker, "end_ms": end_ms}
        return {"type": "transcript.final", "t_ms": t_ms, "data": data, "at": at}

    got = [
        {"type": "transcript.partial", "t_ms": 2500, "data": {"utterance_id": "c-1"}, "at": 4.0},
        final("a-1", "agent", 200, 2100, 2.4),
        final("c-1", "customer", 2500, 3600, 4.1),  # the turn came in two finals
        final("c-2", "customer", 3900, 5100, 5.6),
        {"type": "suggestion", "data": {"evidence": {"utterance_id": "c-2"}}, "at": 5.9},
    ]
    m = measure(turns, got)
    assert m["customer_turns"] == 1 and m["missed"] == 0
    assert [round(x, 2) for x in m["final"]] == [0.6]  # the last final of the turn
    assert [round(x, 2) for x in m["suggestion"]] == [0.9]
    assert [round(x, 2) for x in m["after_final"]] == [0.3]  # its final arrived at 5.6
    assert [round(x, 2) for x in m["partial"]] == [1.5]
    assert measure(turns, got[:2])["missed"] == 1


def _row(calls: int, p95: float, missed: int = 0) -> dict[str, object]:
    nan = float("nan")
    return {
        "calls": calls, "final_50_s": p95 / 2, "final_95_s": p95, "final_100_s": p95 + 0.1,
        "customer_turns": 4 * calls, "missed_turns": missed, "server_cores": 1.2,
        "max_lag_s": 0.4, "max_level": 1, "load_avg": nan,
    }  # fmt: skip


def test_the_scale_out_dense_table_counts_the_calls_each_set_up_serves() -> None:
    rows = [
        ("in-process", [_row(2, 0.8), _row(4, 1.4), _row(6, 2.2)]),
        ("gateway + 1 worker", [_row(2, 0.9), _row(4, 1.6)]),
        ("gateway + 2 workers", [_row(2, 1.1, missed=1), _row(4, 3.5)]),
    ]
    text = "\n".join(dense_lines(rows, 45.0))
    line = "| in-process | 4 | 0.70 / 1.40 / 1.50 | 16 (0) | 1.2 | 0.40 | 1 | n/a / n/a | 0 / 0 |"
    assert line + " n/a |" in text
    served = text.split("calls served at turn end")[1]
    assert "| in-process | 4 |" in served and "| gateway + 1 worker | 2 |" in served
    assert "| gateway + 2 workers | 0 |" in served, "a lost turn does not count as served"
