"""The call-level evaluation: the development calls through the live session path.

Floors are what the product reaches on the development sets (dev; test, held out in
round 1; round2 and its recognised twin round2_asr, held out in round 2; round3 and
round3_asr, held out in round 3; round4 and round4_asr, held out in round 4; all read
since) today, so a regression fails here. The
held-out set (``eval/calls/holdout`` and ``holdout_asr``, the round's blind set written by
others from the definitions only, put there at the end of a round) is only run for its
aggregates, and the test checks that its report never names a call, and that its absence
is reported, not an error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_assist.config import Config
from agent_assist.core.policy import PolicyBook
from agent_assist.core.signals import SignalDetector
from agent_assist.core.vocabulary import SIGNAL_NAMES
from agent_assist.nlp.call_eval import (
    HELD_OUT_FOLDERS,
    CallResult,
    evaluate_folder,
    load_book,
    load_call,
    main,
    section,
    summarise,
    without_punctuation,
)
from tests.conftest import REPO

EVAL_CALLS = REPO / "eval" / "calls"
DEV = EVAL_CALLS / "dev"
TEST = REPO / "eval" / "calls" / "test"
ROUND2 = EVAL_CALLS / "round2"
ROUND2_ASR = EVAL_CALLS / "round2_asr"
ROUND3 = EVAL_CALLS / "round3"
ROUND3_ASR = EVAL_CALLS / "round3_asr"
ROUND4 = EVAL_CALLS / "round4"
ROUND4_ASR = EVAL_CALLS / "round4_asr"


@pytest.fixture(scope="module")
def dev_results(
    combined_detector: SignalDetector, policy_book: PolicyBook, config: Config
) -> list[CallResult]:
    _, customers = load_book(config)
    return evaluate_folder(DEV, combined_detector, policy_book, customers, sorted(SIGNAL_NAMES))


def test_the_sets_are_complete() -> None:
    sets = (
        (DEV, 15),
        (TEST, 45),
        (ROUND2, 40),
        (ROUND2_ASR, 40),
        (ROUND3, 40),
        (ROUND3_ASR, 40),
        (ROUND4, 40),
        (ROUND4_ASR, 40),
    )
    for folder, per_language in sets:
        for lang in ("en", "ja"):
            assert len(list(folder.glob(f"{lang}_*.toml"))) == per_language


def test_dev_floors(dev_results: list[CallResult]) -> None:
    s = summarise(dev_results)
    warnings, offers = s.warning_total(), s.offer_total()
    assert s.calls == 30 and warnings.total >= 25 and offers.total >= 35
    assert warnings.hit / warnings.total >= 0.95
    assert offers.hit / offers.total >= 0.90
    assert s.clean_share <= 0.10
    assert s.scorecard.hit / s.scorecard.total >= 0.95
    for rule, tally in s.warnings.items():  # no situation kind may fall to nothing
        assert tally.hit >= 1, rule


@pytest.fixture(scope="module")
def test_results(
    combined_detector: SignalDetector, policy_book: PolicyBook, config: Config
) -> list[CallResult]:
    _, customers = load_book(config)
    return evaluate_folder(TEST, combined_detector, policy_book, customers, sorted(SIGNAL_NAMES))


def test_test_set_floors(test_results: list[CallResult]) -> None:
    s = summarise(test_results)
    warnings, offers = s.warning_total(), s.offer_total()
    assert s.calls == 90 and warnings.total >= 80 and offers.total >= 120
    assert warnings.hit / warnings.total >= 0.95
    assert offers.hit / offers.total >= 0.90
    assert s.clean_share <= 0.05
    assert s.scorecard.hit / s.scorecard.total >= 0.95


def test_only_the_holdout_folder_is_aggregate_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert HELD_OUT_FOLDERS == ("holdout", "holdout_asr")
    blind = tmp_path / "blind"
    blind.mkdir()
    names = sorted(DEV.glob("en_*.toml"))[:3]
    stems = [f"en_9{i}_unseen_call_{i}" for i in range(len(names))]
    for path, stem in zip(names, stems, strict=True):
        (blind / f"{stem}.toml").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--rules-only", "--aggregate-only", str(blind)]) == 0
    out = capsys.readouterr().out
    assert "### blind, all: 3 calls" in out
    assert not any(stem in out for stem in stems)
    assert "### test, all: 90 calls" in out  # development: its misses may be printed
    assert "### round2, all: 80 calls" in out
    assert "### round3, all: 80 calls" in out
    assert "### round4, all: 80 calls" in out
    for name in HELD_OUT_FOLDERS:
        folder = EVAL_CALLS / name
        if folder.is_dir():  # the blind set: aggregates, never a call
            assert f"### {name}, all:" in out
            assert not any(p.stem in out for p in folder.glob("*.toml"))
        else:
            assert f"{folder} not found: skipped" in out


def test_a_held_out_report_names_no_call(dev_results: list[CallResult]) -> None:
    report = "\n".join(section("held-out", dev_results, show_misses=False))
    assert not any(r.call.name in report for r in dev_results)
    shown = "\n".join(section("dev", dev_results, show_misses=True))
    assert "all compliance situations" in report and "all expected offers" in shown


def test_a_label_on_the_wrong_speaker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'title = "x"\nlanguage = "en"\n'
        '[[turn]]\nspeaker = "agent"\ntext = "Hello"\n'
        '[[turn]]\nspeaker = "customer"\ntext = "I want to cancel"\n'
        '[[expect]]\nkind = "warning"\nrule = "pressure_language"\nturn = 2\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"not the agent.s turn"):
        load_call(path)


def test_calls_can_run_without_punctuation(tmp_path: Path) -> None:
    call = load_call(sorted(DEV.glob("en_*.toml"))[0])
    plain = without_punctuation(call)
    assert len(plain.script.turns) == len(call.script.turns) and plain.expects == call.expects
    for turn in plain.script.turns:
        assert turn.text == turn.text.lower()
        assert not any(mark in turn.text for mark in "?!,;")
        assert not turn.text.endswith(".")
    ja = without_punctuation(load_call(sorted(DEV.glob("ja_*.toml"))[0]))
    assert not any(mark in t.text for t in ja.script.turns for mark in "。、？！")


@pytest.mark.parametrize(
    ("folder", "compliance", "offers", "clean_share", "scorecard"),
    [
        (ROUND2, 0.97, 0.86, 0.05, 0.97),
        (ROUND2_ASR, 0.78, 0.72, 0.05, 0.90),
        (ROUND3, 0.95, 0.85, 0.05, 0.97),
        (ROUND3_ASR, 0.72, 0.68, 0.10, 0.82),
        (ROUND4, 0.95, 0.79, 0.05, 0.97),
        (ROUND4_ASR, 0.66, 0.67, 0.05, 0.80),
    ],
)
def test_later_rounds_floors(
    combined_detector: SignalDetector,
    policy_book: PolicyBook,
    config: Config,
    folder: Path,
    compliance: float,
    offers: float,
    clean_share: float,
    scorecard: float,
) -> None:
    _, customers = load_book(config)
    s = summarise(
        evaluate_folder(folder, combined_detector, policy_book, customers, sorted(SIGNAL_NAMES))
    )
    warnings, shown = s.warning_total(), s.offer_total()
    assert s.calls == 80
    assert warnings.hit / warnings.total >= compliance
    assert shown.hit / shown.total >= offers
    assert s.clean_share <= clean_share
    assert s.scorecard.hit / s.scorecard.total >= scorecard
