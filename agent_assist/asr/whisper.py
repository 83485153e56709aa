"""faster-whisper adapter: utterances of 16 kHz audio in, text with word timings out.

Models load only from the verified ``models/`` folder (never a hub). One model is loaded
per configured model name and shared by every call of that language.

Why not ``WhisperModel.transcribe``: it pads every input to Whisper's 30 s encoder
window, so a 2 s utterance pays for 30 s. Here the log-Mel features are padded only to a
per-language window (the utterance plus a margin for Japanese, 20 s for English, where
shorter windows produce repetition loops), encoded once, decoded with ctranslate2
``generate`` and aligned with ``align`` for word timings. Several utterances of one
language are encoded and decoded as one batch. A hypothesis that loops is decoded again
on the full 30 s window.

No text from nothing: a clip in which Silero VAD hears less than half of
``vad.min_speech_ms`` of speech is never decoded. Whisper's own no-speech probability is
not enough: with product names as prompt it writes words into faint noise, and how much
it writes depends on the CPU's int8 rounding. The VAD's verdict does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

from agent_assist.asr.vad import SAMPLE_RATE, WINDOW, Samples, SileroVad
from agent_assist.config import AsrConfig, LanguageAsrConfig, VadConfig
from agent_assist.core.events import Word
from agent_assist.errors import ConfigError
from agent_assist.model_files import ModelSpec, read_manifest, verify_model, verify_site_model

PHANTOM_PHRASES = frozenset(
    {
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "please subscribe",
        "subtitles by the amara.org community",
        "ご視聴ありがとうございました",
        "ご視聴ありがとうございます",
        "チャンネル登録お願いします",
        "チャンネル登録よろしくお願いします",
    }
)
"""Phrases Whisper invents from silence or noise; dropped unless confidently heard."""

FRAMES_PER_S = 100  # log-Mel frames per second (hop 160 at 16 kHz)
FULL_WINDOW = 3000  # Whisper's 30 s window, in frames
TOKENS_PER_S = 15  # generous ceiling of speech tokens per second of audio, both languages
PROMPT_TOKENS = 223  # Whisper's own limit (half its text context); each costs decode time
PREPEND_PUNCT = "\"'“¿([{-"
APPEND_PUNCT = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class Recognized:
    text: str
    language: str
    words: tuple[Word, ...]
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0


class Recognizer(Protocol):
    """What the engine needs from a speech recogniser; may live in another process."""

    def transcribe_batch(
        self, items: Sequence[tuple[Samples, int]], language: str, *, partial: bool = False
    ) -> list[Recognized]:
        """Under load the engine may also pass ``greedy=True`` (beam size 1) and
        ``fallback=True`` (the language's fallback model) for finals."""
        ...

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str: ...


@dataclass
class _Lang:
    """One language's model, tokenizer and decoding settings, resolved once."""

    model: WhisperModel
    tokenizer: Tokenizer
    cfg: LanguageAsrConfig
    prompt: list[int]
    prompt_text: str
    suppress: list[int]


class WhisperRecognizer:
    """``Recognizer`` on faster-whisper models with fitted encoder windows."""

    def __init__(self, cfg: AsrConfig, models_dir: Path, vad: VadConfig | None = None) -> None:
        manifest = read_manifest(models_dir / "manifest.toml")
        self._cfg = cfg
        vad = vad or VadConfig()
        self._gate = SileroVad()
        self._gate_threshold = vad.threshold
        window_ms = WINDOW * 1000 // SAMPLE_RATE
        # whole windows, at least 4 (128 ms): loud white noise reaches 3, real speech 20+
        self._gate_ms = max(4, -(-vad.min_speech_ms // 2 // window_ms)) * window_ms
        self._models: dict[str, WhisperModel] = {}
        self._langs: dict[str, _Lang] = {}
        self._fallbacks: dict[str, _Lang] = {}
        for language, lc in cfg.languages.items():
            if lc.model_dir:
                folder = verify_site_model(_resolve(models_dir, lc.model_dir))
                key = f"site:{folder}"
            else:
                folder, key = None, lc.model
                _require(manifest, lc.model, f"asr.languages.{language}.model")
            self._langs[language] = self._lang(language, lc, key, folder, models_dir, manifest)
            if lc.fallback_model:
                _require(manifest, lc.fallback_model, f"asr.languages.{language}.fallback_model")
                self._fallbacks[language] = self._lang(
                    language, lc, lc.fallback_model, None, models_dir, manifest
                )
        self._multilingual = next(
            (m for m in self._models.values() if m.model.is_multilingual), None
        )

    def _lang(
        self,
        language: str,
        lc: LanguageAsrConfig,
        key: str,
        folder: Path | None,
        models_dir: Path,
        manifest: dict[str, ModelSpec],
    ) -> _Lang:
        """One language on one model (loaded once, shared by every language that names it)."""
        if key not in self._models:
            folder = folder or verify_model(models_dir, manifest[key])
            cfg = self._cfg
            self._models[key] = WhisperModel(
                str(folder),
                device=cfg.device,
                compute_type=cfg.compute_type,
                cpu_threads=cfg.cpu_threads,
                num_workers=cfg.workers,
                local_files_only=True,
            )
        model = self._models[key]
        multilingual = bool(model.model.is_multilingual)
        tokenizer = Tokenizer(
            model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=language if multilingual else None,
        )
        return _Lang(
            model=model,
            tokenizer=tokenizer,
            cfg=lc,
            prompt=_prompt(tokenizer, lc.vocabulary, language),
            prompt_text=" ".join(lc.vocabulary),
            suppress=list(get_suppressed_tokens(tokenizer, [-1])),
        )

    def warm_up(self) -> None:
        """One short decode per loaded model: the first real final of a fresh server
        otherwise pays CTranslate2's first-call set-up (about a second on 2 cores)."""
        second = np.zeros(SAMPLE_RATE, dtype=np.float32)
        for lang in [*self._langs.values(), *self._fallbacks.values()]:
            feats = [lang.model.feature_extractor(second)[:, :-1]]
            frames = [feats[0].shape[-1]]
            self._decode(lang, feats, frames, self._window(lang.cfg, frames[0]), 1)

    def transcribe(self, samples: Samples, language: str, offset_ms: int) -> Recognized:
        """One final utterance (beam search, word timings)."""
        return self.transcribe_batch([(samples, offset_ms)], language)[0]

    def transcribe_batch(
        self,
        items: Sequence[tuple[Samples, int]],
        language: str,
        *,
        partial: bool = False,
        greedy: bool = False,
        fallback: bool = False,
    ) -> list[Recognized]:
        """Decode utterances of one language together.

        ``partial``: greedy, no word timings (an interim hypothesis of an open utterance).
        ``greedy``: a final with beam size 1; ``fallback``: on the language's
        ``fallback_model`` when one is configured (the degradation ladder's steps).
        Clips with no speech in them come back empty without being decoded.
        """
        heard = [i for i, (s, _) in enumerate(items) if self.hears_speech(s)]
        results = [Recognized("", language, ()) for _ in items]
        if heard:
            lang = self._fallbacks.get(language) if fallback else None
            decoded = self._transcribe(
                [items[i] for i in heard],
                language,
                partial,
                lang or self._langs[language],
                1 if greedy else None,
            )
            for i, result in zip(heard, decoded, strict=True):
                results[i] = result
        return results

    def hears_speech(self, samples: Samples) -> bool:
        """Whether Silero VAD hears enough speech in this clip to be worth decoding."""
        return self._gate.speech_ms(samples, self._gate_threshold) >= self._gate_ms

    def _transcribe(
        self,
        items: Sequence[tuple[Samples, int]],
        language: str,
        partial: bool,
        lang: _Lang,
        beam_size: int | None,
    ) -> list[Recognized]:
        feats = [lang.model.feature_extractor(s)[:, :-1] for s, _ in items]
        frames = [min(f.shape[-1], FULL_WINDOW) for f in feats]
        window = max(self._window(lang.cfg, n) for n in frames)
        beam = lang.cfg.partial_beam_size if partial else lang.cfg.beam_size
        beam = beam_size or beam
        encoded, outs = self._decode(lang, feats, frames, window, beam)
        max_new = self._max_new(lang, max(frames))
        results: list[Recognized] = []
        for i, ((_samples, offset_ms), (ids, score, no_speech)) in enumerate(
            zip(items, outs, strict=True)
        ):
            enc, i_enc = encoded, i
            capped = len(ids) >= max_new
            retried = window < FULL_WINDOW and (
                capped or _loops(lang.tokenizer.decode(ids), language)
            )
            if retried:
                enc, redo = self._decode(lang, [feats[i]], [frames[i]], FULL_WINDOW, beam)
                (ids, score, no_speech), i_enc = redo[0], 0
            result = self._result(
                lang, language, ids, score, no_speech, enc, i_enc, frames[i], offset_ms, partial
            )
            short = window < FULL_WINDOW and not retried and not partial
            if short and _cut_short(result, offset_ms, frames[i]):
                enc, redo = self._decode(lang, [feats[i]], [frames[i]], FULL_WINDOW, beam)
                ids, score, no_speech = redo[0]
                result = self._result(
                    lang, language, ids, score, no_speech, enc, 0, frames[i], offset_ms, False
                )
            results.append(result)
        return results

    def _window(self, lc: LanguageAsrConfig, frames: int) -> int:
        if lc.window_s > 0:
            window = max(frames, round(lc.window_s * FRAMES_PER_S))
        else:
            window = frames + round(lc.window_pad_s * FRAMES_PER_S)
        window = min(FULL_WINDOW, window)
        return window + window % 2  # the encoder's stride-2 convolution wants an even length

    def _max_new(self, lang: _Lang, frames: int) -> int:
        """Token budget from the audio length: a loop stops early instead of at 224."""
        return min(220 - len(lang.prompt), 10 + round(TOKENS_PER_S * frames / FRAMES_PER_S))

    def _decode(
        self,
        lang: _Lang,
        feats: list[np.ndarray[Any, Any]],
        frames: list[int],
        window: int,
        beam: int,
    ) -> tuple[ctranslate2.StorageView, list[tuple[list[int], float, float]]]:
        batch = np.zeros((len(feats), feats[0].shape[0], window), dtype=np.float32)
        for i, (f, n) in enumerate(zip(feats, frames, strict=True)):
            batch[i, :, :n] = f[:, :n]
        model = lang.model.model
        encoded = model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=False)
        max_new = self._max_new(lang, max(frames))
        generated = model.generate(
            encoded,
            [lang.prompt] * len(feats),
            beam_size=beam,
            max_length=len(lang.prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=lang.suppress,
        )
        eot = lang.tokenizer.eot
        outs = []
        for r in generated:
            ids = [t for t in r.sequences_ids[0] if t < eot]
            # scores are length-normalised sums (length_penalty 1): back to a mean log-prob
            avg = float(r.scores[0]) * len(ids) / (len(ids) + 1) if ids else -10.0
            outs.append((ids, avg, float(r.no_speech_prob)))
        return encoded, outs

    def _result(
        self,
        lang: _Lang,
        language: str,
        ids: list[int],
        avg_logprob: float,
        no_speech: float,
        encoded: ctranslate2.StorageView,
        index: int,
        frames: int,
        offset_ms: int,
        partial: bool,
    ) -> Recognized:
        text = _clean(lang.tokenizer.decode(ids))
        empty = Recognized("", language, (), no_speech, avg_logprob)
        if not text or _invented(text, language, no_speech, avg_logprob, lang.prompt_text):
            return empty
        if partial:
            return Recognized(text, language, (), no_speech, avg_logprob)
        words = self._words(lang, ids, encoded, index, frames, offset_ms)
        if _phantom(no_speech, avg_logprob, [w.p for w in words]):
            return empty
        return Recognized(text, language, words, no_speech, avg_logprob)

    def _words(
        self,
        lang: _Lang,
        ids: list[int],
        encoded: ctranslate2.StorageView,
        index: int,
        frames: int,
        offset_ms: int,
    ) -> tuple[Word, ...]:
        if encoded.shape[0] > 1:  # align needs this item's encoder output alone
            encoded = ctranslate2.StorageView.from_array(np.asarray(encoded)[index : index + 1])
        (alignment,) = lang.model.find_alignment(lang.tokenizer, [ids], encoded, frames)
        if not alignment:
            return ()
        merge_punctuations(alignment, PREPEND_PUNCT, APPEND_PUNCT)
        limit_ms = offset_ms + frames * 1000 // FRAMES_PER_S
        words = []
        for w in alignment:
            text = _clean(w["word"])
            if not text:
                continue
            start = min(limit_ms, offset_ms + round(float(w["start"]) * 1000))
            end = min(limit_ms, max(start, offset_ms + round(float(w["end"]) * 1000)))
            words.append(
                Word(text=text, start_ms=start, end_ms=end, p=round(float(w["probability"]), 3))
            )
        return tuple(words)

    def detect_language(self, samples: Samples, candidates: tuple[str, ...]) -> str:
        """Pick the most likely of ``candidates``; needs a multilingual model."""
        if self._multilingual is None or len(candidates) == 1:
            return candidates[0]
        padded = samples if samples.size >= SAMPLE_RATE else np.pad(samples, (0, SAMPLE_RATE))
        _lang, _p, probs = self._multilingual.detect_language(padded)
        scores = dict(probs)
        return max(candidates, key=lambda c: scores.get(c, 0.0))

    def languages(self) -> tuple[str, ...]:
        return tuple(self._langs)


def _require(manifest: dict[str, ModelSpec], name: str, where: str) -> None:
    if name not in manifest:
        raise ConfigError(
            "config.toml", [f"{where}: {name!r} is not in the manifest (have {sorted(manifest)})"]
        )


def _resolve(models_dir: Path, folder: str) -> Path:
    """A site model folder: absolute, or relative to the models folder."""
    path = Path(folder).expanduser()
    return path if path.is_absolute() else models_dir / path


def _prompt(tokenizer: Tokenizer, vocabulary: tuple[str, ...], language: str) -> list[int]:
    """Start of transcript, preceded by the vocabulary as "previous text" when given.

    Timestamp tokens stay on (no ``<|notimestamps|>``): without them, a window shorter
    than 30 s often ends English text a few words early; with them it does not.
    """
    start = list(tokenizer.sot_sequence)
    if not vocabulary:
        return start
    joiner = "、" if language == "ja" else ", "
    context = tokenizer.encode(" " + joiner.join(vocabulary))[-PROMPT_TOKENS:]
    return [tokenizer.sot_prev, *context, *start]


def _clean(text: str) -> str:
    """NFC, no stray replacement characters from a token cut inside a UTF-8 sequence."""
    return unicodedata.normalize("NFC", text).replace("\ufffd", "").strip()


_REPEAT = re.compile(r"(.{2,}?)(?:\s*\1){3,}", re.DOTALL)
_REPEAT_WORD = re.compile(r"\b(\w+)\b(?:\W+\1\b){2,}", re.IGNORECASE)
_SAID_AGAIN = re.compile(r"(\w.{3,}?)[\W_]*(?:\1[\W_]*)+", re.DOTALL)


def _loops(text: str, language: str) -> bool:
    """A short encoder window sometimes makes Whisper repeat itself: detect that.

    On a short clip the whole text may come out twice (ありがとうございます twice over, or
    "そうですか?そうですか?"); a phrase of four or more characters said again and nothing
    else is that, not speech ("はいはい" is not caught)."""
    if _REPEAT.search(text) or _SAID_AGAIN.fullmatch(text.strip()):
        return True
    span = 12 if language == "ja" else 30  # a phrase this long said twice is a loop
    first: dict[str, int] = {}
    compact = re.sub(r"\s+", " ", text)
    for i in range(len(compact) - span + 1):
        seen = first.setdefault(compact[i : i + span], i)
        if i - seen >= span:
            return True
    return language != "ja" and bool(_REPEAT_WORD.search(text))


def _cut_short(result: Recognized, offset_ms: int, frames: int) -> bool:
    """A short window sometimes ends the text early: the words stop long before the audio.

    The segmenter keeps ``vad.speech_pad_ms`` (~0.2 s) after the speech; words that end
    more than a second before the utterance does mean whole words were never written.
    """
    if not result.words:
        return False
    audio_end = offset_ms + frames * 1000 // FRAMES_PER_S
    return audio_end - result.words[-1].end_ms > 1200


def _invented(
    text: str, language: str, no_speech: float, avg_logprob: float, vocabulary: str
) -> bool:
    """Text Whisper makes up from noise, unless it is confident it heard speech.

    Known phantom phrases; a hypothesis that still loops after the 30 s retry; text made
    only of the vocabulary given as prompt (a prompt invites its own echo).
    """
    unsure = no_speech > 0.3 or avg_logprob < -0.5
    norm = _normalise(text)
    if norm in PHANTOM_PHRASES and (avg_logprob < -0.4 or no_speech > 0.3):
        return True
    if _loops(text, language) and unsure:
        return True
    if vocabulary and (no_speech > 0.2 or avg_logprob < -0.5):
        if language == "ja":
            chars = [c for c in text if c.isalnum()]
            known = sum(c in vocabulary for c in chars)
        else:
            chars = re.findall(r"[a-z0-9']+", norm)
            vocab_words = set(re.findall(r"[a-z0-9']+", vocabulary.lower()))
            known = sum(w in vocab_words for w in chars)
        if chars and known >= 0.8 * len(chars):
            return True
    return no_speech > 0.8 and avg_logprob < -0.8


def _phantom(no_speech_prob: float, avg_logprob: float, word_probs: list[float]) -> bool:
    """Whisper's text from silence: the model itself says "no speech" and is unsure."""
    if no_speech_prob <= 0.6:
        return False
    mean_word_p = sum(word_probs) / len(word_probs) if word_probs else 0.0
    return avg_logprob < -0.5 or mean_word_p < 0.4


def _normalise(text: str) -> str:
    return text.lower().strip(" .!?。！？、,")
