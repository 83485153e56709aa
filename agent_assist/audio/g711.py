"""G.711 μ-law and A-law, the 8 kHz codecs of telephone networks, by lookup table.

``audioop`` is deprecated (gone in Python 3.13), and G.711 is fully specified by its
256 code words: decoding is one table lookup per byte. Encoding (for tests and gateway
simulators) picks the code word whose decoded value is nearest, which is what the
standard's segment quantiser does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Encoding = Literal["pcm16", "mulaw", "alaw"]
ENCODINGS: tuple[Encoding, ...] = ("pcm16", "mulaw", "alaw")
BYTES_PER_SAMPLE: dict[str, int] = {"pcm16": 2, "mulaw": 1, "alaw": 1}

Pcm16 = npt.NDArray[np.int16]


def _ulaw_table() -> Pcm16:
    code = ~np.arange(256, dtype=np.int32) & 0xFF  # code words are sent inverted
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> Pcm16:
    code = np.arange(256, dtype=np.int32) ^ 0x55  # even bits are sent inverted
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


ULAW_TO_PCM16 = _ulaw_table()
ALAW_TO_PCM16 = _alaw_table()
_TABLES = {"mulaw": ULAW_TO_PCM16, "alaw": ALAW_TO_PCM16}


def decode(payload: bytes, encoding: str) -> Pcm16:
    """Bytes of one channel in ``encoding`` to PCM16 samples."""
    if encoding == "pcm16":
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)
    return _TABLES[encoding][np.frombuffer(payload, dtype=np.uint8)]


def encode(pcm16: Pcm16, encoding: str) -> bytes:
    """PCM16 samples to ``encoding`` bytes (nearest code word)."""
    if encoding == "pcm16":
        return pcm16.astype("<i2").tobytes()
    table = _TABLES[encoding]
    order = np.argsort(table, kind="stable")
    values = table[order].astype(np.int32)
    x = pcm16.astype(np.int32)
    idx = np.clip(np.searchsorted(values, x), 1, 255)
    nearer_left = (x - values[idx - 1]) <= (values[idx] - x)
    best = np.where(nearer_left, idx - 1, idx)
    return order[best].astype(np.uint8).tobytes()
