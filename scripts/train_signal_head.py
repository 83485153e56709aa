"""Train the signal classifier head on the project's own phrases and export it to ONNX.

    .venv/bin/python scripts/train_signal_head.py            # writes models/signal_head.onnx

The sentence encoder (models/use-multilingual/encoder.onnx) stays frozen; the head is a
softmax regression over the signals plus "none", in plain numpy. Abstain thresholds come
from 5-fold cross-validation on the training phrases only: per signal, the lowest
threshold whose out-of-fold precision reaches the target, never below 0.5. The
evaluation sets are never read here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from agent_assist.core.events import TranscriptFinal  # noqa: E402
from agent_assist.model_files import read_manifest, verify_model  # noqa: E402
from agent_assist.nlp.detector import build_detector  # noqa: E402
from agent_assist.nlp.intents import NONE, digest, load_examples  # noqa: E402
from agent_assist.nlp.signal_model import HEAD_INPUT, HEAD_OUTPUT, SentenceEncoder  # noqa: E402

MODEL_ID = "v1"
SEED = 20261122
THRESHOLD_FLOOR = 0.5
PRECISION_TARGET = 0.9
FALSE_ALARM_TARGET = 0.03


def variants(text: str) -> list[str]:
    """The phrase as written and as ASR tends to give it (no final punctuation)."""
    bare = text.rstrip("。．.!！?？")
    return [text] if bare == text else [text, bare]


def fit(x: np.ndarray, y: np.ndarray, l2: float, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression over the signals plus "none" (the last column), full-batch Adam.

    Classes are weighted by 1/sqrt(count) so the many neutral phrases do not drown the
    rare signals; a phrase with two signals shares its target between them.
    """
    n, d = x.shape
    classes = y.shape[1]
    w = np.zeros((d, classes))
    b = np.zeros(classes)
    target = y / y.sum(axis=1, keepdims=True)
    class_weight = 1 / np.sqrt(y.sum(axis=0))
    sample_weight = (target * (class_weight / class_weight.mean())).sum(axis=1, keepdims=True)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        grad = sample_weight * (predict(x, w, b) - target) / n
        g_w = x.T @ grad + l2 * w
        g_b = grad.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w**2
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b**2
        corr1, corr2 = 1 - beta1**t, 1 - beta2**t
        w -= lr * (m_w / corr1) / (np.sqrt(v_w / corr2) + eps)
        b -= lr * (m_b / corr1) / (np.sqrt(v_b / corr2) + eps)
    return w, b


def predict(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def pick_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Lowest threshold (>= floor) with out-of-fold precision >= target; else best F1."""
    best: tuple[float, float, float] | None = None
    best_f1 = (-1.0, 0.9, 0.0, 0.0)
    for t in np.arange(THRESHOLD_FLOOR, 0.99, 0.025):
        pred = scores >= t
        tp = float((pred & truth).sum())
        precision = tp / max(pred.sum(), 1)
        recall = tp / max(truth.sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        if best is None and precision >= PRECISION_TARGET and pred.sum() > 0:
            best = (round(float(t), 3), precision, recall)
        if f1 > best_f1[0]:
            best_f1 = (f1, round(float(t), 3), precision, recall)
    return best if best is not None else best_f1[1:]


class FixedScores:
    """A ``SecondOpinion`` that replays precomputed (out-of-fold) scores."""

    model_id = "oof"

    def __init__(self, thresholds: dict[str, float]) -> None:
        self.thresholds = thresholds
        self.current: dict[str, float] = {}

    def scores(self, text: str, language: str) -> dict[str, float]:
        return self.current


def model_false_alarms(
    rows: list[tuple[str, str, np.ndarray]],
    signals: list[str],
    thresholds: dict[str, float],
    show: bool = False,
) -> tuple[float, dict[str, int]]:
    """Share of neutral phrases on which the model adds a signal the rules did not veto,
    and how often each signal was the one added.

    Rule false alarms are the rules' business; this measures what the model adds, as
    either speaker (a neutral phrase has none), after negation and look-alike vetoes.
    """
    fixed = FixedScores(thresholds)
    detector = build_detector(second_opinion=fixed)
    fired = 0
    culprits: dict[str, int] = {}
    for text, language, scores in rows:
        fixed.current = dict(zip(signals, map(float, scores), strict=False))
        added = {
            sig.signal
            for speaker in ("customer", "agent")
            for sig in detector.feed(TranscriptFinal("t", 0, "u", speaker, 0, language, text))
            if sig.rule_id.startswith("model.")
        }
        fired += bool(added)
        if added and show:
            print(f"  model adds {sorted(added)} to neutral: {text}")
        for signal in added:
            culprits[signal] = culprits.get(signal, 0) + 1
    return fired / max(len(rows), 1), culprits


def export(w: np.ndarray, b: np.ndarray, metadata: dict[str, str], path: Path) -> None:
    labels = w.shape[1]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [HEAD_INPUT, "W"], ["logits_w"]),
            helper.make_node("Add", ["logits_w", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], [HEAD_OUTPUT], axis=-1),
        ],
        "signal_head",
        [helper.make_tensor_value_info(HEAD_INPUT, TensorProto.FLOAT, ["n", w.shape[0]])],
        [helper.make_tensor_value_info(HEAD_OUTPUT, TensorProto.FLOAT, ["n", labels])],
        [
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(b.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="agent-assist"
    )
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "models" / "signal_head.onnx")
    parser.add_argument("--l2", type=float, default=1e-5)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--show-false-alarms", action="store_true")
    args = parser.parse_args()

    manifest = read_manifest(REPO / "models" / "manifest.toml")
    encoder_spec = manifest["use-multilingual"]
    encoder = SentenceEncoder(verify_model(REPO / "models", encoder_spec) / "encoder.onnx")
    examples = load_examples()
    labels = [*sorted({s for e in examples for s in e.labels}), NONE]
    texts: list[str] = []
    groups: list[int] = []
    for i, e in enumerate(examples):
        for v in variants(e.text):
            texts.append(v)
            groups.append(i)
    x = np.concatenate([encoder.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    x = x.astype(np.float64)
    y = np.array(
        [
            [
                1.0 if s in examples[g].labels or (s == NONE and not examples[g].labels) else 0.0
                for s in labels
            ]
            for g in groups
        ]
    )
    group_arr = np.array(groups)
    print(f"{len(examples)} phrases ({len(texts)} with variants), {len(labels)} signals")

    # 5-fold cross-validation by phrase (a phrase's variants stay in one fold)
    rng = np.random.default_rng(SEED)
    fold_of = rng.permutation(len(examples)) % 5
    oof = np.zeros_like(y)
    for k in range(5):
        test = fold_of[group_arr] == k
        w, b = fit(x[~test], y[~test], args.l2, args.epochs)
        oof[test] = predict(x[test], w, b)
    thresholds: dict[str, float] = {}
    print(f"{'signal':24} thr   P(oof) R(oof)")
    signals = labels[:-1]
    for j, s in enumerate(signals):
        t, p, r = pick_threshold(oof[:, j], y[:, j] > 0)
        thresholds[s] = t
        print(f"{s:24} {t:.3f} {p:.2f}   {r:.2f}")
    # then, while the model (after the rules' negation and look-alike vetoes) adds a
    # signal to too many "none" phrases, raise the threshold of the signal it adds most
    none_rows = [
        (texts[i], examples[groups[i]].language, oof[i]) for i in np.where(y[:, -1] > 0)[0]
    ]
    while True:
        rate, culprits = model_false_alarms(none_rows, signals, thresholds)
        raisable = {s: n for s, n in culprits.items() if thresholds[s] < 0.975}
        if rate <= FALSE_ALARM_TARGET or not raisable:
            break
        worst = max(raisable, key=lambda k: raisable[k])
        thresholds[worst] = round(thresholds[worst] + 0.025, 3)
    if args.show_false_alarms:
        model_false_alarms(none_rows, signals, thresholds, show=True)
    print(f"model-added false alarms on 'none' phrases (out-of-fold): {rate:.3f}")
    print("thresholds:", json.dumps(thresholds))

    w, b = fit(x, y, args.l2, args.epochs)
    metadata = {
        "model_id": MODEL_ID,
        "labels": json.dumps(labels),
        "thresholds": json.dumps(thresholds),
        "intents_sha256": digest(),
        "encoder_sha256": encoder_spec.files[0].sha256,
        "phrases": str(len(examples)),
        "trained_by": "scripts/train_signal_head.py",
    }
    export(w, b, metadata, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
