"""Endpointing: cut one channel's audio into utterances from per-window speech probabilities.

Each utterance is decoded once, on its own: decoding a whole channel with long silences
(the other side talking) drops turns, and re-decoding a growing buffer costs more CPU
than real time on a laptop. Hysteresis (open at ``threshold``, stay open above
``threshold - 0.15``) keeps breaths and short dips from splitting a sentence.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from agent_assist.asr.vad import SAMPLE_RATE, WINDOW, Samples
from agent_assist.config import VadConfig

WINDOW_MS = WINDOW * 1000 // SAMPLE_RATE


@dataclass(frozen=True)
class UtteranceAudio:
    """One utterance of one channel: 16 kHz mono float32 and its span in the call."""

    index: int
    start_ms: int
    end_ms: int
    samples: Samples


class UtteranceSegmenter:
    """Feed (windows, probabilities) from ``VadStream.push``; get finished utterances."""

    def __init__(self, cfg: VadConfig) -> None:
        self._open_at = cfg.threshold
        self._stay_above = max(0.01, cfg.threshold - 0.15)
        self._silence_windows = max(1, cfg.min_silence_ms // WINDOW_MS)
        self._pad_windows = max(0, cfg.speech_pad_ms // WINDOW_MS)
        self._pause_windows = max(1, min(self._pad_windows, cfg.pause_ms // WINDOW_MS))
        self._min_speech_windows = max(1, cfg.min_speech_ms // WINDOW_MS)
        self._max_windows = int(cfg.max_utterance_s * 1000) // WINDOW_MS
        self._preroll: deque[Samples] = deque(maxlen=self._pad_windows or 1)
        self._current: list[Samples] = []
        self._start_window = 0
        self._speech_windows = 0
        self._silence_run = 0
        self._window_no = 0  # windows seen so far on this channel
        self._count = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._current)

    @property
    def open_start_ms(self) -> int:
        """Where the utterance being spoken started (only meaningful ``in_speech``)."""
        return self._start_window * WINDOW_MS

    def open_audio(self) -> Samples:
        """The audio of the utterance being spoken so far (for partial hypotheses)."""
        if not self._current:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._current)

    @property
    def open_ms(self) -> int:
        """Length of the utterance being spoken so far, without copying its audio."""
        return len(self._current) * WINDOW_MS

    @property
    def trailing_silence_ms(self) -> int:
        """Silence since the last speech window of the open utterance."""
        return self._silence_run * WINDOW_MS

    def closing_span(self) -> tuple[int, int] | None:
        """(start_ms, end_ms) of the utterance as it will be cut if no more speech comes,
        once a pause has begun (``vad.pause_ms``); checked at every window, copies nothing.

        The span ends ``speech_pad_ms`` after the last speech window, so it stays the same
        through the pause and a decode can start before the endpoint is confirmed.
        """
        if not self._current or self._silence_run < self._pause_windows:
            return None
        keep = self._kept_windows()
        if self._speech_windows < self._min_speech_windows or keep <= 0:
            return None
        return self._start_window * WINDOW_MS, (self._start_window + keep) * WINDOW_MS

    def peek_closing(self) -> UtteranceAudio | None:
        """The utterance of ``closing_span`` with its audio (for an early final).

        Early in a pause the padding after the speech has not all arrived: its remaining
        windows are digital silence, which the recogniser hears as the pause it is.
        """
        span = self.closing_span()
        if span is None:
            return None
        keep = (span[1] - span[0]) // WINDOW_MS
        frames = self._current[:keep]
        missing = keep - len(frames)
        if missing > 0:
            frames = [*frames, np.zeros(missing * WINDOW, dtype=np.float32)]
        return UtteranceAudio(
            index=self._count + 1,
            start_ms=span[0],
            end_ms=span[1],
            samples=np.concatenate(frames),
        )

    def close_now(self) -> UtteranceAudio | None:
        """Close the open utterance in its pause, before ``min_silence_ms`` (a finished
        sentence); only once its padding has arrived, so the cut is ``closing_span``'s."""
        if not self._current or self._silence_run < self._pad_windows:
            return None
        return self._close(trailing=self._silence_run)

    def _kept_windows(self) -> int:
        """Windows of the open utterance kept if it closed now: up to the pad after speech."""
        return len(self._current) - self._silence_run + self._pad_windows

    def push(self, audio: Samples, probs: Samples) -> list[UtteranceAudio]:
        done: list[UtteranceAudio] = []
        frames = audio.reshape(-1, WINDOW) if audio.size else audio.reshape(0, WINDOW)
        for frame, prob in zip(frames, probs, strict=True):
            utterance = self._step(frame, float(prob))
            if utterance is not None:
                done.append(utterance)
            self._window_no += 1
        return done

    def flush(self) -> list[UtteranceAudio]:
        """Close the open utterance at the end of the stream."""
        if not self._current:
            return []
        utterance = self._close(trailing=self._silence_run)
        return [utterance] if utterance is not None else []

    def _step(self, frame: Samples, prob: float) -> UtteranceAudio | None:
        if not self._current:
            if prob >= self._open_at:
                pre = list(self._preroll) if self._pad_windows else []
                self._current = [*pre, frame]
                self._start_window = self._window_no - len(pre)
                self._speech_windows, self._silence_run = 1, 0
                self._preroll.clear()
            elif self._pad_windows:
                self._preroll.append(frame)
            return None
        self._current.append(frame)
        if prob >= self._stay_above:
            self._speech_windows += 1
            self._silence_run = 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._silence_windows:
            return self._close(trailing=self._silence_run)
        if len(self._current) >= self._max_windows:
            return self._close(trailing=self._silence_run)
        return None

    def _close(self, trailing: int) -> UtteranceAudio | None:
        keep = len(self._current) - max(0, trailing - self._pad_windows)
        frames = self._current[:keep]
        start = self._start_window
        speech = self._speech_windows
        # the silence we cut off can pre-roll the next utterance
        for frame in self._current[keep:][-self._pad_windows :] if self._pad_windows else []:
            self._preroll.append(frame)
        self._current, self._speech_windows, self._silence_run = [], 0, 0
        if speech < self._min_speech_windows or not frames:
            return None
        self._count += 1
        return UtteranceAudio(
            index=self._count,
            start_ms=start * WINDOW_MS,
            end_ms=(start + len(frames)) * WINDOW_MS,
            samples=np.concatenate(frames),
        )
