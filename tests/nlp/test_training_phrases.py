"""The training phrases and the scripts that make and check them: copies follow their
seeds, the generator reproduces the committed copies, no phrase nearly copies a
third-party row, every signal has hundreds of phrases in both languages, and the head's
training (grouped folds, thresholds, ONNX export) does what it says."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort
import pytest

from agent_assist.errors import ConfigError
from agent_assist.nlp import intents
from agent_assist.nlp.intents import LANGUAGES, VARIANT_FILE, load_examples, load_seeds
from agent_assist.nlp.signal_model import HEAD_INPUT, HEAD_OUTPUT
from tests.conftest import REPO

SHARED_EVAL = REPO.parent / "shared" / "eval"
PHRASES_PER_SIGNAL = 140
SEEDS_PER_SIGNAL = 30


def load_script(name: str) -> ModuleType:
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_copy_keeps_its_seeds_signals() -> None:
    seeds = {(e.language, e.group): e.labels for e in load_examples(variants=False)}
    copies = [e for e in load_examples() if not e.is_seed]
    assert len(copies) > 2 * len(seeds)
    for e in copies:
        assert seeds[(e.language, e.group)] == e.labels, e.text
        assert e.text != e.group


def test_a_copy_of_a_removed_seed_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "ja.toml": 'language = "ja"\n',
        "en.toml": '[[intent]]\nsignal = "refusal"\nphrases = ["no thanks"]\n',
        "variants/en.toml": (
            '[[variant]]\nsignal = "refusal"\nseed = "no thanks"\ntexts = ["um no thanks"]\n'
            '[[variant]]\nsignal = "refusal"\nseed = "gone"\ntexts = ["um gone"]\n'
        ),
    }
    monkeypatch.setattr(intents, "_read", lambda name: files.get(name, ""))
    got = [(e.text, e.group) for e in load_examples()]
    assert got == [("no thanks", "no thanks"), ("um no thanks", "no thanks")]
    files["variants/en.toml"] = '[[variant]]\nsignal = "refusal"\ntexts = ["x"]\n'
    with pytest.raises(ConfigError, match="needs a signal, a seed"):
        load_examples()


def test_generated_copies_are_what_the_generator_writes() -> None:
    """The copies are committed; editing the seeds without re-running the script fails."""
    generator = load_script("make_phrase_variants")
    for language in LANGUAGES:
        path = REPO / "agent_assist" / "data" / "intents" / VARIANT_FILE.format(language=language)
        assert path.read_text(encoding="utf-8") == generator.render(
            language, load_seeds(language)
        ), f"re-run scripts/make_phrase_variants.py ({language})"


def test_recognised_copies_lose_punctuation_case_and_some_words() -> None:
    generator = load_script("make_phrase_variants")
    rng = random.Random(1)
    english = {generator.en_recognised("I want to cancel my Contract.", rng) for _ in range(30)}
    assert all(o == o.lower() and "." not in o for o in english)
    assert {"i wanna cancel my contract", "i want to cancel my contact"} & english
    japanese = {generator.ja_recognised("料金が高いです。解約します。", rng) for _ in range(30)}
    assert all("。" not in o for o in japanese)
    assert any("両金" in o or "開約" in o or "かいやく" in o for o in japanese)


def test_disfluent_copies_keep_the_words_of_the_seed() -> None:
    generator = load_script("make_phrase_variants")
    rng = random.Random(2)
    for _ in range(30):
        out = generator.en_disfluent("the bill is too high", rng, agent=False)
        assert "too high" in out and out != "the bill is too high"
        ja = generator.ja_disfluent("料金が高いです", rng, agent=True)
        assert ja.endswith("料金が高いです") and ja != "料金が高いです"


def test_every_signal_has_hundreds_of_phrases_in_both_languages() -> None:
    phrases: Counter[tuple[str, str]] = Counter()
    seeds: Counter[tuple[str, str]] = Counter()
    for e in load_examples():
        for label in e.labels or {"none"}:
            phrases[(label, e.language)] += 1
            seeds[(label, e.language)] += e.is_seed
    signals = {label for label, _ in phrases}
    for signal in signals:
        for language in LANGUAGES:
            assert phrases[(signal, language)] >= PHRASES_PER_SIGNAL, (signal, language)
            assert seeds[(signal, language)] >= SEEDS_PER_SIGNAL, (signal, language)


@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="third-party set not present")
def test_no_training_phrase_nearly_copies_a_third_party_row() -> None:
    leaks = load_script("check_phrase_leaks")
    rows = leaks.third_party_texts(SHARED_EVAL)
    found = [
        p
        for language in LANGUAGES
        for p in leaks.near_copies([e.text for e in load_seeds(language)], rows)
    ]
    # only our phrases are shown, never the rows they resemble
    assert found == [], "run scripts/check_phrase_leaks.py --remove"


def test_the_leak_check_finds_a_near_copy_and_spares_a_paraphrase() -> None:
    leaks = load_script("check_phrase_leaks")
    rows = [leaks.comparable("I would like to cancel my phone contract please")]
    assert leaks.near_copies(
        [
            "I'd like to cancel my phone contract, please!",
            "please cancel my phone contract I would like to",
        ],
        rows,
    ) == [
        "I'd like to cancel my phone contract, please!",
        "please cancel my phone contract I would like to",
    ]
    assert leaks.near_copies(["my data is always gone by the twentieth"], rows) == []


def test_cross_validation_thresholds_trade_false_alarms_for_recall() -> None:
    train = load_script("train_signal_head")
    # neutral phrase 0 fires signal 0 at 0.9, phrase 1 fires signal 1 at 0.6
    none_scores = np.array([[0.9, 0.1], [0.1, 0.6], [0.1, 0.1], [0.1, 0.1]])
    could_add = np.ones_like(none_scores, dtype=bool)
    assert train.model_false_alarms(none_scores, could_add, np.array([0.5, 0.5])) == 0.5
    # what the rules settle (could_add False) is not the model's false alarm
    none_rules = np.zeros_like(could_add)
    assert train.model_false_alarms(none_scores, none_rules, np.array([0.5, 0.5])) == 0
    # signal 0's true phrases score 0.7, signal 1's 0.45: raising signal 1 costs nothing,
    # so it goes first, just past its neutral phrase; then signal 0, past 0.9
    scores = np.array([[0.7, 0.0]] * 10 + [[0.0, 0.45]] * 10)
    truth = np.array([[True, False]] * 10 + [[False, True]] * 10)
    thr, rate = train.raise_thresholds(np.array([0.5, 0.5]), none_scores, could_add, scores, truth)
    assert thr.tolist() == [0.925, 0.625] and rate == 0
    # a threshold never passes 0.975: a phrase scored 0.99 stays a false alarm
    none_scores[0, 0] = 0.99
    thr, rate = train.raise_thresholds(np.array([0.5, 0.5]), none_scores, could_add, scores, truth)
    assert thr.tolist() == [0.5, 0.625] and rate == 0.25


@pytest.mark.parametrize("hidden", [0, 16])
def test_a_trained_head_runs_the_same_in_onnx(tmp_path: Path, hidden: int) -> None:
    train = load_script("train_signal_head")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 512))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.zeros((60, 3))
    y[np.arange(60), np.arange(60) % 3] = 1
    x[:, :3] += 2 * y  # separable: the head must learn it
    head = train.fit(x, y, l2=1e-4, epochs=200, hidden=hidden, seed=1)
    expected = head.predict(x)
    assert (expected.argmax(axis=1) == y.argmax(axis=1)).mean() > 0.9
    path = tmp_path / "head.onnx"
    train.export(head, {"model_id": "t"}, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([HEAD_OUTPUT], {HEAD_INPUT: x.astype(np.float32)})[0]
    assert np.allclose(got, expected, atol=1e-4)
    assert len(head.layers) == (2 if hidden else 1)
