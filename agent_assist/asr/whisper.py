"""faster-whisper adapter: one utterance of 16 kHz audio in, text with word timings out.

Models load only from the verified ``models/`` folder (never a hub). One model is loaded
per configured model name and shared by every call of that language.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from faster_whisper import WhisperModel

from agent_assist.asr.vad import SAMPLE_RATE, Samples
from agent_assist.config import AsrConfig
from agent_assist.core.events import Word
from agent_assist.errors import ConfigError
from agent_assist.model_files import read_manifest, verify_model

PHANTOM_PHRASES = frozenset(
    {
        "thanks for watching",
        "thank you for watching",
        "please subscribe",
        "ご視聴ありがとうございました",
        "ご視聴ありがとうございます",
        "チャンネル登録お願いします",
    }
)
"""Phrases Whisper invents from silence or noise; dropped unless confidently heard."""


@dataclass(frozen=True)
class Recognized:
    text: str
    language: str
    words: tuple[Word, ...]


class Recognizer(Protocol):
    """What the engine needs from a speech recogniser; may live in another process."""

    def transcribe(self, samples: Samples, language: str, offset_ms: int) -> Recognized: ...

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str: ...


class WhisperRecognizer:
    """``Recognizer`` on faster-whisper with per-language model and beam size."""

    def __init__(self, cfg: AsrConfig, models_dir: Path) -> None:
        manifest = read_manifest(models_dir / "manifest.toml")
        self._cfg = cfg
        self._models: dict[str, WhisperModel] = {}
        self._by_language: dict[str, WhisperModel] = {}
        for language, lc in cfg.languages.items():
            if lc.model not in manifest:
                raise ConfigError(
                    "config.toml",
                    [
                        f"asr.languages.{language}.model: {lc.model!r} is not in the manifest "
                        f"(have {sorted(manifest)})"
                    ],
                )
            if lc.model not in self._models:
                folder = verify_model(models_dir, manifest[lc.model])
                self._models[lc.model] = WhisperModel(
                    str(folder),
                    device=cfg.device,
                    compute_type=cfg.compute_type,
                    cpu_threads=cfg.cpu_threads,
                    local_files_only=True,
                )
            self._by_language[language] = self._models[lc.model]
        self._multilingual = next(
            (
                self._models[lc.model]
                for lc in cfg.languages.values()
                if self._models[lc.model].model.is_multilingual
            ),
            None,
        )

    def transcribe(self, samples: Samples, language: str, offset_ms: int) -> Recognized:
        model = self._by_language[language]
        lc = self._cfg.languages[language]
        segments, _info = model.transcribe(
            samples,
            language=language if model.model.is_multilingual else None,
            beam_size=lc.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            temperature=(0.0, 0.2, 0.4),
        )
        texts: list[str] = []
        words: list[Word] = []
        for seg in segments:
            if _phantom(
                seg.no_speech_prob, seg.avg_logprob, [w.probability for w in seg.words or ()]
            ):
                continue
            text = seg.text.strip()
            if _normalise(text) in PHANTOM_PHRASES and seg.avg_logprob < -0.4:
                continue
            texts.append(text)
            words.extend(
                Word(
                    text=w.word.strip(),
                    start_ms=offset_ms + round(w.start * 1000),
                    end_ms=offset_ms + round(w.end * 1000),
                    p=round(w.probability, 3),
                )
                for w in seg.words or ()
            )
        joiner = "" if language == "ja" else " "
        return Recognized(text=joiner.join(texts).strip(), language=language, words=tuple(words))

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        """Pick the most likely of ``candidates``; needs a multilingual model."""
        if self._multilingual is None or len(candidates) == 1:
            return candidates[0]
        padded = samples if samples.size >= SAMPLE_RATE else np.pad(samples, (0, SAMPLE_RATE))
        _lang, _p, probs = self._multilingual.detect_language(padded)
        scores = dict(probs)
        return max(candidates, key=lambda c: scores.get(c, 0.0))


def _phantom(no_speech_prob: float, avg_logprob: float, word_probs: list[float]) -> bool:
    """Whisper's text from silence: the model itself says "no speech" and is unsure."""
    if no_speech_prob <= 0.6:
        return False
    mean_word_p = sum(word_probs) / len(word_probs) if word_probs else 0.0
    return avg_logprob < -0.5 or mean_word_p < 0.4


def _normalise(text: str) -> str:
    return text.lower().strip(" .!?。！？、,")
