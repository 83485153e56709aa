"""Call audio archive: each audio call kept as one stereo FLAC, agent left, customer right.

The review page plays it back in step with the transcript, so the file keeps the call's
own time base: sample 0 is ``t_ms`` 0. Channels arrive as separate frames at different
moments; the recorder interleaves what both sides have delivered and pads the shorter
side with silence at the end. A one-speaker call gets a silent second channel; a side
that stays silent for longer than ``MAX_SKEW_S`` is padded as it goes, so the buffer of
the other side stays bounded.

While the call runs, the interleaved samples are appended to a raw spool file
(``<call_id>.pcm``) with one system call per write: a killed process loses nothing it
had written. ``close()`` (off the event loop) encodes the spool to FLAC and removes it;
after a crash, ``recover()`` does the same for whatever the spool holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)
ORDER = ("agent", "customer")
MAX_SKEW_S = 30
"""Seconds one side may run ahead of a silent other side before that one is padded."""
ENCODE_BLOCK = 1 << 20
"""Sample frames read from the spool per FLAC write (bounded memory for long calls)."""


class CallRecorder:
    """Spools one call's audio as it arrives; ``close()`` finishes the FLAC."""

    def __init__(self, path: Path, sample_rate: int, speakers: Sequence[str]) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._slot = [ORDER.index(s) for s in speakers]
        self._pending: list[list[np.ndarray]] = [[] for _ in speakers]
        self._counts = [0] * len(speakers)
        self._max_skew = MAX_SKEW_S * sample_rate
        path.parent.mkdir(parents=True, exist_ok=True)
        self._spool: BinaryIO | None = spool_path(path).open("wb", buffering=0)

    def push(self, channel: int, pcm16: bytes) -> None:
        """Add little-endian PCM16 of one channel; writes what both channels now cover."""
        if self._spool is None:
            return
        samples = np.frombuffer(pcm16, dtype="<i2")
        self._pending[channel].append(samples)
        self._counts[channel] += samples.size
        ready = min(self._counts)
        if max(self._counts) - ready > self._max_skew:  # the other side is silent: pad it
            ready = max(self._counts) - self._max_skew
        if ready > 0:
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
        assert self._spool is not None
        frame = np.zeros((n, 2), dtype="<i2")
        for channel, slot in enumerate(self._slot):
            frame[:, slot] = self._take(channel, n)
        self._spool.write(frame.tobytes())

    def close(self) -> None:
        """Write what is left and encode the FLAC (seconds for a long call: not on the loop)."""
        if self._spool is None:
            return
        rest = max(self._counts)
        if rest > 0:
            self._write(rest)
        self._spool.close()
        self._spool = None
        encode_spool(self.path, self.sample_rate)


def spool_path(flac: Path) -> Path:
    return flac.with_suffix(".pcm")


def encode_spool(flac: Path, sample_rate: int) -> bool:
    """Encode ``<call>.pcm`` (interleaved stereo PCM16) to ``<call>.flac``; False if none.

    A spool cut mid-sample by a crash is read up to its last whole stereo sample."""
    spool = spool_path(flac)
    if not spool.is_file():
        return False
    partial = flac.with_suffix(".flac.part")
    with (
        spool.open("rb") as raw,
        sf.SoundFile(
            partial, "w", samplerate=sample_rate, channels=2, format="FLAC", subtype="PCM_16"
        ) as out,
    ):
        while block := raw.read(ENCODE_BLOCK * 4):
            whole = len(block) - len(block) % 4
            out.write(np.frombuffer(block[:whole], dtype="<i2").reshape(-1, 2))
    partial.replace(flac)
    spool.unlink()
    return True


def spooled_ms(flac: Path, sample_rate: int) -> int:
    """Length of the audio a spool holds (what was recorded before a crash), in ms."""
    spool = spool_path(flac)
    return spool.stat().st_size // 4 * 1000 // sample_rate if spool.is_file() else 0


class AudioArchive:
    """Where call recordings live: ``<folder>/<call_id>.flac``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def recorder(self, call_id: str, sample_rate: int, speakers: Sequence[str]) -> CallRecorder:
        return CallRecorder(self.folder / f"{call_id}.flac", sample_rate, speakers)

    def path_for(self, call_id: str) -> Path | None:
        path = self.folder / f"{call_id}.flac"
        return path if path.is_file() else None
