"""Train the signal classifier head on the project's own phrases and export it to ONNX.

    .venv/bin/python scripts/train_signal_head.py            # writes models/signal_head.onnx

The sentence encoder (models/use-multilingual/encoder.onnx) stays frozen; the head is a
small network over the signals plus "none" in plain numpy: one hidden layer (ReLU) and a
softmax, or with ``--hidden 0`` a softmax regression. Abstain thresholds come from 5-fold
cross-validation on the training phrases only, grouped so that a hand-written phrase and
its generated copies (data/intents/variants/) fall in the same fold: per signal, the
lowest threshold whose out-of-fold precision reaches the target, never below 0.5, then
raised where the model would add signals to too many neutral phrases. The evaluation
sets are never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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

MODEL_ID = "v2"
SEED = 20261122
THRESHOLD_FLOOR = 0.5
PRECISION_TARGET = 0.9
FALSE_ALARM_TARGET = 0.02
FOLDS = 5
HIDDEN = 0


class Head:
    """Weights of the head: ``w1, b1`` only when it has a hidden layer."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.layers = layers

    def predict(self, x: np.ndarray) -> np.ndarray:
        return forward(x, self.layers)[-1]


def variants(text: str) -> list[str]:
    """The phrase as written and as ASR tends to give it (no final punctuation)."""
    bare = text.rstrip("。．.!！?？")
    return [text] if bare == text else [text, bare]


def forward(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Activations of every layer: ReLU between layers, softmax at the end."""
    out = [x]
    for i, (w, b) in enumerate(layers):
        z = out[-1] @ w + b
        if i < len(layers) - 1:
            out.append(np.maximum(z, 0))
        else:
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            out.append(e / e.sum(axis=1, keepdims=True))
    return out


def fit(x: np.ndarray, y: np.ndarray, l2: float, epochs: int, hidden: int, seed: int) -> Head:
    """The head, trained full-batch with Adam on cross-entropy.

    Classes are weighted by 1/sqrt(count) so the many neutral phrases do not drown the
    rare signals; a phrase with two signals shares its target between them.
    """
    rng = np.random.default_rng(seed)
    n, d = x.shape
    classes = y.shape[1]
    sizes = [d, hidden, classes] if hidden else [d, classes]
    layers = [
        (rng.normal(0, np.sqrt(2 / a), (a, b)) if hidden else np.zeros((a, b)), np.zeros(b))
        for a, b in itertools.pairwise(sizes)
    ]
    target = y / y.sum(axis=1, keepdims=True)
    class_weight = 1 / np.sqrt(y.sum(axis=0))
    sample_weight = (target * (class_weight / class_weight.mean())).sum(axis=1, keepdims=True)
    moments = [[np.zeros_like(p) for p in layer for _ in range(2)] for layer in layers]
    lr, beta1, beta2, eps = (0.01 if hidden else 0.05), 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        acts = forward(x, layers)
        delta = sample_weight * (acts[-1] - target) / n
        grads: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(len(layers) - 1, -1, -1):
            w, _b = layers[i]
            grads.append((acts[i].T @ delta + l2 * w, delta.sum(axis=0)))
            if i:
                delta = (delta @ w.T) * (acts[i] > 0)
        grads.reverse()
        corr1, corr2 = 1 - beta1**t, 1 - beta2**t
        for i, ((w, b), (g_w, g_b)) in enumerate(zip(layers, grads, strict=True)):
            m_w, v_w, m_b, v_b = moments[i]
            m_w[:] = beta1 * m_w + (1 - beta1) * g_w
            v_w[:] = beta2 * v_w + (1 - beta2) * g_w**2
            m_b[:] = beta1 * m_b + (1 - beta1) * g_b
            v_b[:] = beta2 * v_b + (1 - beta2) * g_b**2
            w -= lr * (m_w / corr1) / (np.sqrt(v_w / corr2) + eps)
            b -= lr * (m_b / corr1) / (np.sqrt(v_b / corr2) + eps)
    return Head(layers)


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
    """A ``SecondOpinion`` that scores every signal 1: what the model could add at all."""

    model_id = "probe"

    def __init__(self, signals: list[str]) -> None:
        self.thresholds = dict.fromkeys(signals, 0.0)

    def scores(self, text: str, language: str) -> dict[str, float]:
        return dict.fromkeys(self.thresholds, 1.0)


def addable(rows: list[tuple[str, str]], signals: list[str]) -> list[list[int]]:
    """Per neutral phrase, the signals the model could add to it as either speaker (a
    neutral phrase has none): its own speaker's signals, less what the rules settled or
    vetoed (a negated trigger, a look-alike). Rule false alarms are the rules' business;
    this is what the model's thresholds answer for."""
    detector = build_detector(second_opinion=FixedScores(signals))
    index = {s: j for j, s in enumerate(signals)}
    out: list[list[int]] = []
    for text, language in rows:
        added = {
            sig.signal
            for speaker in ("customer", "agent")
            for sig in detector.feed(TranscriptFinal("t", 0, "u", speaker, 0, language, text))
            if sig.rule_id.startswith("model.")
        }
        out.append(sorted(index[s] for s in added))
    return out


def model_false_alarms(scores: np.ndarray, could_add: np.ndarray, thresholds: np.ndarray) -> float:
    """Share of neutral phrases on which the model adds a signal (``could_add``: phrases
    x signals, what the rules leave to the model)."""
    fired = ((scores >= thresholds) & could_add).any(axis=1)
    return float(fired.mean()) if len(fired) else 0.0


def raise_thresholds(
    thresholds: np.ndarray,
    none_scores: np.ndarray,
    could_add: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
) -> tuple[np.ndarray, float]:
    """While the model adds a signal to more than ``FALSE_ALARM_TARGET`` of the neutral
    phrases, raise one threshold just past the lowest neutral phrase it fires on, choosing
    the signal that removes the most false alarms per true phrase given up (all scores
    out-of-fold, so no phrase is judged by a head that saw it). Where a phrase fires two
    signals no single raise removes it: then the raise that silences one firing counts,
    at a thousandth of the weight."""
    thr = thresholds.copy()
    rate = model_false_alarms(none_scores, could_add, thr)
    while rate > FALSE_ALARM_TARGET:
        best: tuple[float, int, float] | None = None
        for j in range(len(thr)):
            firing = none_scores[could_add[:, j] & (none_scores[:, j] >= thr[j]), j]
            if not len(firing):
                continue
            step = np.ceil((firing.min() - THRESHOLD_FLOOR) / 0.025 + 1e-9)
            new = round(THRESHOLD_FLOOR + 0.025 * float(step), 3)
            if new > 0.975:
                continue
            trial = thr.copy()
            trial[j] = new
            removed = (rate - model_false_alarms(none_scores, could_add, trial)) * len(none_scores)
            lost = int(((scores[:, j] >= thr[j]) & (scores[:, j] < new) & truth[:, j]).sum())
            gain = (removed + 1 / 1000) / (lost + 1)
            if best is None or gain > best[0]:
                best = (gain, j, new)
        if best is None:
            break
        thr[best[1]] = best[2]
        rate = model_false_alarms(none_scores, could_add, thr)
    return thr, rate


def export(head: Head, metadata: dict[str, str], path: Path) -> None:
    nodes = []
    initializers = []
    current = HEAD_INPUT
    for i, (w, b) in enumerate(head.layers):
        last = i == len(head.layers) - 1
        nodes += [
            helper.make_node("MatMul", [current, f"W{i}"], [f"z{i}_w"]),
            helper.make_node("Add", [f"z{i}_w", f"B{i}"], [f"z{i}"]),
        ]
        if last:
            nodes.append(helper.make_node("Softmax", [f"z{i}"], [HEAD_OUTPUT], axis=-1))
        else:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"]))
            current = f"h{i}"
        initializers += [
            numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
            numpy_helper.from_array(b.astype(np.float32), f"B{i}"),
        ]
    dims = head.layers[0][0].shape[0], head.layers[-1][0].shape[1]
    graph = helper.make_graph(
        nodes,
        "signal_head",
        [helper.make_tensor_value_info(HEAD_INPUT, TensorProto.FLOAT, ["n", dims[0]])],
        [helper.make_tensor_value_info(HEAD_OUTPUT, TensorProto.FLOAT, ["n", dims[1]])],
        initializers,
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


def embed(encoder: SentenceEncoder, texts: list[str], cache: Path | None) -> np.ndarray:
    """Sentence vectors of ``texts``, from ``cache`` when it holds these very texts."""
    key = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if str(stored["key"]) == key:
            return np.asarray(stored["x"], dtype=np.float64)
    x = np.concatenate([encoder.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    if cache is not None:
        with cache.open("wb") as fh:
            np.savez(fh, key=np.array(key), x=x)
    return x.astype(np.float64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "models" / "signal_head.onnx")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="0: softmax regression")
    parser.add_argument("--show-false-alarms", action="store_true")
    parser.add_argument(
        "--cache", type=Path, help="keep the sentence vectors here between runs (.npy)"
    )
    args = parser.parse_args()

    manifest = read_manifest(REPO / "models" / "manifest.toml")
    encoder_spec = manifest["use-multilingual"]
    encoder = SentenceEncoder(verify_model(REPO / "models", encoder_spec) / "encoder.onnx")
    examples = load_examples()
    labels = [*sorted({s for e in examples for s in e.labels}), NONE]
    signals = labels[:-1]
    seed_of: dict[tuple[str, str], int] = {}
    texts: list[str] = []
    rows: list[int] = []  # the example behind each text
    for i, e in enumerate(examples):
        seed_of.setdefault((e.language, e.group), len(seed_of))
        for v in variants(e.text):
            texts.append(v)
            rows.append(i)
    x = embed(encoder, texts, args.cache)
    y = np.array(
        [
            [
                1.0 if s in examples[r].labels or (s == NONE and not examples[r].labels) else 0.0
                for s in labels
            ]
            for r in rows
        ]
    )
    group = np.array([seed_of[(examples[r].language, examples[r].group)] for r in rows])
    seeds = sum(e.is_seed for e in examples)
    print(
        f"{seeds} hand-written phrases, {len(examples)} with generated copies, "
        f"{len(texts)} texts with bare variants; {len(labels)} labels; hidden {args.hidden}"
    )

    # cross-validation by seed: a phrase and its copies stay in one fold
    rng = np.random.default_rng(SEED)
    fold_of = rng.permutation(len(seed_of)) % FOLDS
    oof = np.zeros_like(y)
    for k in range(FOLDS):
        test = fold_of[group] == k
        head = fit(x[~test], y[~test], args.l2, args.epochs, args.hidden, SEED + k)
        oof[test] = head.predict(x[test])
    thresholds: dict[str, float] = {}
    print(f"{'signal':24} thr   P(oof) R(oof)")
    for j, s in enumerate(signals):
        t, p, r = pick_threshold(oof[:, j], y[:, j] > 0)
        thresholds[s] = t
        print(f"{s:24} {t:.3f} {p:.2f}   {r:.2f}")
    # then, while the model (after the rules' negation and look-alike vetoes) adds a
    # signal to too many "none" phrases, raise the threshold of the signal it adds most
    none_idx = np.where(y[:, -1] > 0)[0]
    allowed = addable([(texts[i], examples[rows[i]].language) for i in none_idx], signals)
    could_add = np.zeros((len(none_idx), len(signals)), dtype=bool)
    for r, js in enumerate(allowed):
        could_add[r, js] = True
    thr, rate = raise_thresholds(
        np.array([thresholds[s] for s in signals]),
        oof[none_idx, :-1],
        could_add,
        oof[:, :-1],
        y[:, :-1] > 0,
    )
    thresholds = {s: round(float(t), 3) for s, t in zip(signals, thr, strict=True)}
    if args.show_false_alarms:
        for r, i in enumerate(none_idx):
            hits = [signals[j] for j in np.where(could_add[r] & (oof[i, :-1] >= thr))[0]]
            if hits:
                print(f"  model adds {hits} to neutral: {texts[i]}")
    print(f"model-added false alarms on 'none' phrases (out-of-fold): {rate:.3f}")
    tp = fp = fn = 0
    for j in range(len(signals)):
        pred, truth = oof[:, j] >= thr[j], y[:, j] > 0
        tp += int((pred & truth).sum())
        fp += int((pred & ~truth).sum())
        fn += int((~pred & truth).sum())
    print(
        f"out-of-fold after thresholds: micro P {tp / max(tp + fp, 1):.3f} "
        f"R {tp / max(tp + fn, 1):.3f}"
    )
    print("thresholds:", json.dumps(thresholds))

    head = fit(x, y, args.l2, args.epochs, args.hidden, SEED)
    metadata = {
        "model_id": MODEL_ID,
        "labels": json.dumps(labels),
        "thresholds": json.dumps(thresholds),
        "intents_sha256": digest(),
        "encoder_sha256": encoder_spec.files[0].sha256,
        "phrases": str(len(examples)),
        "seed_phrases": str(seeds),
        "hidden": str(args.hidden),
        "trained_by": "scripts/train_signal_head.py",
    }
    export(head, metadata, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
