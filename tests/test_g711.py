"""G.711 μ-law and A-law by table: the standard's code words, and a faithful round trip."""

from __future__ import annotations

import numpy as np

from agent_assist.audio import g711


def test_known_code_words() -> None:
    mu = g711.ULAW_TO_PCM16
    assert (mu[0xFF], mu[0x7F], mu[0x00], mu[0x80]) == (0, 0, -32124, 32124)
    a = g711.ALAW_TO_PCM16
    assert (a[0xD5], a[0x55], a[0x2A], a[0xAA]) == (8, -8, -32256, 32256)
    for table in (mu, a):
        assert len(set(table.tolist())) >= 255  # one value per code word (μ-law has ±0)
        assert np.all(np.diff(np.sort(table.astype(int))) >= 0)


def test_round_trip_error_is_within_the_quantiser_step() -> None:
    t = np.arange(8000) / 8000
    x = (12000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    for encoding in ("mulaw", "alaw"):
        payload = g711.encode(x, encoding)
        assert len(payload) == x.size  # one byte per sample
        y = g711.decode(payload, encoding).astype(int)
        err = np.abs(y - x.astype(int))
        assert err.max() <= 512  # the largest step of the top segment is 1024
        snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean(err.astype(float) ** 2))
        assert snr > 30


def test_pcm16_passes_through() -> None:
    x = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    assert np.array_equal(g711.decode(g711.encode(x, "pcm16"), "pcm16"), x)
