"""Reading recorded calls: any common audio file to PCM16 per speaker channel.

Files are read whole and checked before a call starts, so a bad file never leaves a
half-written call in the store. soundfile (libsndfile) reads WAV/FLAC/OGG/MP3; other
containers fall back to PyAV (shipped with faster-whisper).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from agent_assist.core.events import Speaker
from agent_assist.errors import AudioInputError

MIN_RATE, MAX_RATE, FALLBACK_RATE = 8000, 48000, 16000


@dataclass(frozen=True)
class CallAudio:
    """PCM16 samples, shape (frames, channels), one column per speaker in ``speakers``."""

    pcm16: npt.NDArray[np.int16]
    sample_rate: int
    speakers: tuple[Speaker, ...]

    @property
    def duration_s(self) -> float:
        return float(self.pcm16.shape[0]) / self.sample_rate


def read_call_audio(
    path: Path,
    speakers: tuple[Speaker, ...] = ("agent", "customer"),
    mono_speaker: Speaker | None = None,
) -> CallAudio:
    """Read ``path``; a stereo file maps channels to ``speakers`` in order.

    A mono file is refused unless ``mono_speaker`` says whose voice it is. Rates outside
    8–48 kHz are resampled to 16 kHz; others are kept (the server resamples).
    """
    if not path.is_file():
        raise AudioInputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: the file is empty (0 bytes)", code="audio.empty")
    data, rate = _decode(path)
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: the file holds no audio samples", code="audio.empty")
    channels = data.shape[1]
    if channels == 1:
        if mono_speaker is None:
            raise AudioInputError(
                f"{path}: the file is mono, but a call needs agent and customer on two channels; "
                "pass --mono customer (or agent) to replay it as one speaker",
                code="audio.mono_not_stereo",
            )
        speakers = (mono_speaker,)
    elif channels == 2:
        if len(speakers) != 2:
            raise AudioInputError(f"{path}: the file is stereo; name both channels' speakers")
    else:
        raise AudioInputError(
            f"{path}: {channels} channels; expected 1 or 2 (agent, customer)", code="audio.channels"
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        data = soxr.resample(data, rate, FALLBACK_RATE)
        rate = FALLBACK_RATE
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    return CallAudio(pcm16=pcm, sample_rate=int(rate), speakers=speakers)


def _decode(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except (sf.LibsndfileError, RuntimeError) as sf_error:
        try:
            return _decode_with_av(path)
        except Exception as exc:
            raise AudioInputError(
                f"{path}: not a readable audio file ({sf_error}; PyAV: {exc})",
                code="audio.unreadable",
            ) from exc


def _decode_with_av(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        layout = "mono" if stream.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=FALLBACK_RATE)
        chunks = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    width = 1 if layout == "mono" else 2
    if not chunks:
        return np.zeros((0, width), dtype=np.float32), FALLBACK_RATE
    planar = np.concatenate(chunks, axis=1)  # (channels, frames)
    return np.ascontiguousarray(planar.T, dtype=np.float32), FALLBACK_RATE
