"""The ONNX second opinion: real encoder, real trained head, combined with the rules."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import onnxruntime as ort
import pytest

from agent_assist.config import Config
from agent_assist.core.events import Speaker, TranscriptFinal
from agent_assist.core.signals import SignalDetector
from agent_assist.errors import ModelError
from agent_assist.nlp.detector import build_detector, load_signal_classifier
from agent_assist.nlp.intents import digest, load_examples
from agent_assist.nlp.signal_model import OnnxSignalClassifier, model_text
from tests.conftest import REPO
from tests.core.test_scripted_calls import CALL_FILES

HEAD = REPO / "models" / "signal_head.onnx"


def feed(detector: SignalDetector, language: str, speaker: Speaker, text: str) -> list[str]:
    final = TranscriptFinal("c", 0, "u1", speaker, 1, language, text)
    return [s.rule_id for s in detector.feed(final)]


def test_head_is_small_and_trained_on_the_current_phrases() -> None:
    assert HEAD.stat().st_size < 200_000
    meta = ort.InferenceSession(str(HEAD)).get_modelmeta().custom_metadata_map
    # editing data/intents/*.toml without `make train-signal-head` leaves a stale head
    assert meta["intents_sha256"] == digest()
    labels = json.loads(meta["labels"])
    thresholds = json.loads(meta["thresholds"])
    assert labels[-1] == "none" and set(thresholds) == set(labels[:-1])
    assert all(0.5 <= t < 1 for t in thresholds.values())


def test_model_scores_are_probabilities(config: Config) -> None:
    model = load_signal_classifier(config)
    scores = model.scores("I want to cancel my contract", "en")
    assert set(scores) == set(model.labels)
    assert abs(sum(scores.values()) - 1) < 1e-3
    assert max(scores, key=lambda k: scores[k]) == "cancel_intent"
    assert model.scores("   ", "en") == {}


def test_model_recalls_a_paraphrase_the_rules_miss(
    detector: SignalDetector, combined_detector: SignalDetector
) -> None:
    model = combined_detector.second_opinion
    assert model is not None
    for language, text, signal in [
        ("en", "This costs a small fortune.", "price_objection"),
        ("en", "Our household got bigger since the twins arrived.", "life_change"),
        ("ja", "来年から息子が高校生になるんです", "life_change"),
    ]:
        assert feed(detector, language, "customer", text) == []
        assert feed(combined_detector, language, "customer", text) == [
            f"model.{signal}.{model.model_id}"
        ]


def test_model_signals_respect_speaker_and_negation(combined_detector: SignalDetector) -> None:
    # a negated trigger vetoes the model too
    assert feed(combined_detector, "en", "customer", "I don't want to cancel.") == []
    assert feed(combined_detector, "ja", "customer", "解約はしません。") == []
    # customer signals are never read into the agent's words, by rules or by the model
    rules = feed(combined_detector, "en", "agent", "I want to cancel my contract.")
    assert not any("cancel_intent" in r for r in rules)


def test_a_look_alike_vetoes_rule_and_model(combined_detector: SignalDetector) -> None:
    assert feed(combined_detector, "en", "customer", "Can you cancel the last message?") == []


def test_model_evidence_is_the_whole_utterance(combined_detector: SignalDetector) -> None:
    text = "  This costs a small fortune. "
    final = TranscriptFinal("c", 0, "u9", "customer", 1, "en", text)
    sig = next(s for s in combined_detector.feed(final) if s.rule_id.startswith("model."))
    assert sig.evidence.quote == text.strip() == text[sig.evidence.start : sig.evidence.end]


@pytest.mark.parametrize("path", CALL_FILES, ids=[p.stem for p in CALL_FILES])
def test_scripted_calls_hold_with_the_model(
    path: Path, combined_detector: SignalDetector, policy_book: object
) -> None:
    """The model adds signals, but the suggestions and warnings of every call stand."""
    from tests.core.test_scripted_calls import check_scripted_call

    check_scripted_call(path, combined_detector, policy_book)  # type: ignore[arg-type]


def test_disabled_second_opinion_needs_no_encoder(config: Config, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    shutil.copy(REPO / "models" / "manifest.toml", tmp_path / "models" / "manifest.toml")
    off = replace(config, root=tmp_path, nlp=replace(config.nlp, second_opinion=False))
    assert build_detector(off).second_opinion is None
    on = replace(config, root=tmp_path)
    with pytest.raises(ModelError, match="use-multilingual") as info:
        build_detector(on)
    assert info.value.code == "model.missing"


def test_a_missing_head_names_the_fix(config: Config, tmp_path: Path) -> None:
    model = load_signal_classifier(config)
    with pytest.raises(ModelError, match="train-signal-head"):
        OnnxSignalClassifier(model._encoder, tmp_path / "absent.onnx")


@pytest.mark.parametrize(
    "text",
    ["", "😀😀😀", "ＡＢＣ１２３　全角", "slow 遅い mixed 解約", "x" * 50_000, "\x00\u200b\ufeff"],
)
def test_odd_input_through_the_model(combined_detector: SignalDetector, text: str) -> None:
    for language in ("ja", "en"):
        for speaker in ("agent", "customer"):
            final = TranscriptFinal("c", 0, "u1", speaker, 1, language, text)  # type: ignore[arg-type]
            for sig in combined_detector.feed(final):  # no error, and evidence is a real span
                ev = sig.evidence
                assert ev.text == text and text[ev.start : ev.end] == ev.quote != ""


def test_model_text_folds_width_and_case_and_bounds_length() -> None:
    assert model_text("ＣＡＮＣＥＬ  My\tPlan") == "cancel my plan"
    assert len(model_text("a" * 10_000)) == 300


def test_evaluation_sets_are_kept_apart_from_training_phrases() -> None:
    training = {model_text(e.text).rstrip("。.!?！？") for e in load_examples()}
    for path in sorted((REPO / "eval").glob("*_signals.csv")):
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                assert model_text(row["text"]).rstrip("。.!?！？") not in training, row["id"]
