"""The call-level evaluation: the development calls through the live session path.

Floors are what the product reaches on the development sets (dev, and test, held out in
round 1 and read since) today, so a regression in any situation kind fails here. The
held-out set (``eval/calls/holdout``, written by others, measured once by the
integrator) is only run for its aggregates, and the test checks that its report never
names a call.
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


@pytest.fixture(scope="module")
def dev_results(
    combined_detector: SignalDetector, policy_book: PolicyBook, config: Config
) -> list[CallResult]:
    _, customers = load_book(config)
    return evaluate_folder(DEV, combined_detector, policy_book, customers, sorted(SIGNAL_NAMES))


def test_the_sets_are_complete() -> None:
    for folder, per_language in ((DEV, 15), (TEST, 45)):
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
    for path in names:
        (blind / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--rules-only", "--aggregate-only", str(blind)]) == 0
    out = capsys.readouterr().out
    assert "### blind, all: 3 calls" in out
    assert not any(p.stem in out for p in names)
    assert "### test, all: 90 calls" in out  # development: its misses may be printed
    for name in HELD_OUT_FOLDERS:
        assert f"### {name}, all: 80 calls" in out
        assert not any(p.stem in out for p in (EVAL_CALLS / name).glob("*.toml"))


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
