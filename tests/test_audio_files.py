"""Reading recorded calls: clear errors for bad files, resampling instead of refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agent_assist.audio.files import read_call_audio
from agent_assist.errors import AudioInputError
from tests.conftest import shared_audio


def test_stereo_file_maps_channels_to_speakers() -> None:
    audio = read_call_audio(shared_audio("en/stereo_diarization.wav"))
    assert audio.speakers == ("agent", "customer")
    assert audio.pcm16.shape == (80000, 2) and audio.sample_rate == 16000


def test_mono_file_needs_a_speaker() -> None:
    path = shared_audio("en/OSR_us_000_0034_8k.wav")
    with pytest.raises(AudioInputError, match="--mono customer") as info:
        read_call_audio(path)
    assert info.value.code == "audio.mono_not_stereo"
    audio = read_call_audio(path, mono_speaker="customer")
    assert audio.speakers == ("customer",) and audio.sample_rate == 8000


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "audio.empty"),
        (b"this is a text file, not audio\n" * 20, "audio.unreadable"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt garbage", "audio.unreadable"),
    ],
)
def test_bad_files_get_specific_errors(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(content)
    with pytest.raises(AudioInputError) as info:
        read_call_audio(path)
    assert info.value.code == code


def test_header_only_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioInputError) as info:
        read_call_audio(path)
    assert info.value.code == "audio.empty"


def test_unusual_rates_are_resampled(tmp_path: Path) -> None:
    path = tmp_path / "hi.wav"
    sf.write(path, np.zeros((96000, 2), dtype=np.float32), 96000)
    audio = read_call_audio(path)
    assert audio.sample_rate == 16000 and abs(audio.duration_s - 1.0) < 0.01
    path = tmp_path / "c.flac"
    sf.write(path, np.zeros((44100, 2), dtype=np.float32), 44100)
    assert read_call_audio(path).sample_rate == 44100  # in range: the server resamples


def test_three_channels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    sf.write(path, np.zeros((1600, 3), dtype=np.float32), 16000)
    with pytest.raises(AudioInputError, match="3 channels"):
        read_call_audio(path)
