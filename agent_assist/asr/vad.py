"""Streaming voice activity detection with Silero VAD v6 on onnxruntime.

The ONNX file ships inside the pinned faster-whisper wheel, so no download is needed.
One ``SileroVad`` (one ONNX session) serves every channel; each channel keeps its own
recurrent state in a ``VadStream``, so probabilities do not depend on how audio was
chunked on the wire. Live calls run their windows on the model's ``VadThread``
(``submit``), off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from agent_assist.asr.vad_thread import VadThread

SAMPLE_RATE = 16000
WINDOW = 512  # samples per probability: 32 ms at 16 kHz
CONTEXT = 64  # samples of the previous window the model also sees

Samples = npt.NDArray[np.float32]


class SileroVad:
    """The shared model; ``stream()`` gives a per-channel detector."""

    def __init__(self) -> None:
        path = resources.files("faster_whisper") / "assets" / "silero_vad_v6.onnx"
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self._thread = VadThread()

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run one push's detection off the event loop, in order; ``done`` on the loop."""
        self._thread.submit(work, done)

    def close(self) -> None:
        self._thread.close()

    def stream(self) -> VadStream:
        return VadStream(self)

    def speech_ms(self, samples: Samples, threshold: float) -> int:
        """How much of a whole clip the model calls speech (windows at ``threshold`` or more).

        A fresh state per clip: the answer depends on this audio alone, so a recogniser can
        refuse to decode a clip with no speech in it, whatever the caller cut.
        """
        _body, probs = self.stream().push(samples)
        return int(np.count_nonzero(probs >= threshold)) * WINDOW * 1000 // SAMPLE_RATE

    def run(self, windows: Samples, h: Samples, c: Samples) -> tuple[Samples, Samples, Samples]:
        probs, h, c = self._session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(probs, dtype=np.float32).reshape(-1), h, c


class VadStream:
    """Speech probability per 32 ms window for one channel's 16 kHz audio."""

    def __init__(self, model: SileroVad) -> None:
        self._model = model
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: Samples) -> tuple[Samples, Samples]:
        """Feed audio; return (whole windows consumed, one probability per window)."""
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = data.size // WINDOW
        self._pending = data[n * WINDOW :].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        body = data[: n * WINDOW]
        frames = body.reshape(n, WINDOW)
        contexts = np.empty((n, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = frames[:-1, -CONTEXT:]
        self._context = frames[-1, -CONTEXT:].copy()
        windows = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        probs, self._h, self._c = self._model.run(windows, self._h, self._c)
        return body, probs
