"""The call archive: the FLAC holds exactly the audio pushed, each side on its channel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from agent_assist.store.audio_archive import AudioArchive


def test_uneven_frames_keep_order_and_channels(tmp_path: Path) -> None:
    archive = AudioArchive(tmp_path)
    rng = np.random.default_rng(3)
    agent = rng.integers(-20000, 20000, 16000 * 3, dtype=np.int16)
    customer = rng.integers(-20000, 20000, 16000 * 2 + 123, dtype=np.int16)
    rec = archive.recorder("c-1", 16000, ("customer", "agent"))  # customer on channel 0
    for i in range(0, agent.size, 320):  # the two sides arrive in uneven frames
        rec.push(1, agent[i : i + 320].astype("<i2").tobytes())
        j = i * 2 // 3
        rec.push(0, customer[j : j + 213].astype("<i2").tobytes())
    rec.close()
    data, rate = sf.read(tmp_path / "c-1.flac", dtype="int16", always_2d=True)
    assert rate == 16000 and data.shape == (agent.size, 2)
    assert np.array_equal(data[:, 0], agent)  # agent left
    pushed = np.concatenate(
        [customer[j : j + 213] for j in (i * 2 // 3 for i in range(0, agent.size, 320))]
    )
    assert np.array_equal(data[: pushed.size, 1], pushed)  # customer right, in order
    assert not data[pushed.size :, 1].any()  # the shorter side padded with silence
    assert archive.path_for("c-1") == tmp_path / "c-1.flac"
