"""Call audio archive: each audio call kept as one stereo FLAC, agent left, customer right.

The review page plays it back in step with the transcript, so the file keeps the call's
own time base: sample 0 is ``t_ms`` 0. Channels arrive as separate frames at different
moments; the recorder interleaves what both sides have delivered and pads the shorter
side with silence at the end. A one-speaker call gets a silent second channel.

FLAC encoding runs on one writer thread shared by every call (in order, per file), in
blocks of ``BLOCK_S`` seconds, so the event loop that receives audio only interleaves
samples and hands over a block a second per call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)
ORDER = ("agent", "customer")
BLOCK_S = 1.0


class CallRecorder:
    """Writes one call's audio as it arrives; ``close()`` finishes the file."""

    def __init__(
        self,
        path: Path,
        sample_rate: int,
        speakers: Sequence[str],
        writer: Executor | None = None,
    ) -> None:
        self.path = path
        self._writer = writer
        self.sample_rate = sample_rate
        self._slot = [ORDER.index(s) for s in speakers]
        self._pending: list[list[np.ndarray]] = [[] for _ in speakers]
        self._counts = [0] * len(speakers)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: sf.SoundFile | None = sf.SoundFile(
            path, "w", samplerate=sample_rate, channels=2, format="FLAC", subtype="PCM_16"
        )

    def push(self, channel: int, pcm16: bytes) -> None:
        """Add little-endian PCM16 of one channel; writes what both channels now cover."""
        if self._file is None:
            return
        samples = np.frombuffer(pcm16, dtype="<i2")
        self._pending[channel].append(samples)
        self._counts[channel] += samples.size
        ready = min(self._counts)
        if ready >= self.sample_rate * BLOCK_S:
            self._write(ready)

    def _take(self, channel: int, n: int) -> np.ndarray:
        data = np.concatenate(self._pending[channel]) if self._pending[channel] else np.zeros(0)
        head, tail = data[:n], data[n:]
        self._pending[channel] = [tail] if tail.size else []
        self._counts[channel] -= head.size
        if head.size < n:
            head = np.concatenate([head, np.zeros(n - head.size, dtype="<i2")])
        return head.astype("<i2", copy=False)

    def _write(self, n: int) -> None:
        assert self._file is not None
        frame = np.zeros((n, 2), dtype="<i2")
        for channel, slot in enumerate(self._slot):
            frame[:, slot] = self._take(channel, n)
        if self._writer is None:
            self._file.write(frame)
        else:  # one thread, first in first out: frames stay in order
            self._writer.submit(self._file.write, frame)

    def close(self) -> None:
        if self._file is None:
            return
        rest = max(self._counts)
        if rest > 0:
            self._write(rest)
        file, self._file = self._file, None
        if self._writer is None:
            file.close()
        else:  # after every frame queued before it; wait, so the file is whole when we return
            self._writer.submit(file.close).result()


class AudioArchive:
    """Where call recordings live: ``<folder>/<call_id>.flac``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flac")

    def recorder(self, call_id: str, sample_rate: int, speakers: Sequence[str]) -> CallRecorder:
        return CallRecorder(self.folder / f"{call_id}.flac", sample_rate, speakers, self._writer)

    def path_for(self, call_id: str) -> Path | None:
        path = self.folder / f"{call_id}.flac"
        return path if path.is_file() else None
