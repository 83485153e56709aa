"""The microphone device adapter: sounddevice capture as an async iterator of PCM16 blocks.

The capture callback runs on PortAudio's thread; it only copies blocks into an asyncio
queue. Streaming the blocks into a server is ``clients.mic``'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt

from agent_assist.errors import AudioInputError

log = logging.getLogger(__name__)
BLOCK_MS = 100

Block = npt.NDArray[np.int16]  # (frames, channels)


async def microphone_blocks(
    rate: int, channels: int, device: str | None, stop: asyncio.Event
) -> AsyncIterator[Block]:
    """PCM16 blocks of ``BLOCK_MS`` from the sound card until ``stop`` is set."""
    import sounddevice as sd  # imported here: PortAudio is only needed for a live microphone

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Block] = asyncio.Queue(maxsize=100)

    def callback(indata: Any, _frames: int, _time: Any, status: Any) -> None:
        if status:
            log.warning("microphone: %s", status)
        block = np.array(indata, dtype=np.int16, copy=True)
        loop.call_soon_threadsafe(_put_latest, queue, block)

    dev: str | int | None = int(device) if device and device.isdigit() else device
    try:
        stream = sd.InputStream(
            samplerate=rate,
            channels=channels,
            dtype="int16",
            blocksize=rate * BLOCK_MS // 1000,
            device=dev,
            callback=callback,
        )
    except Exception as exc:  # PortAudio reports bad devices and rates as plain errors
        raise AudioInputError(f"cannot open the microphone: {exc}", code="audio.device") from exc
    with stream:
        while not stop.is_set():
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (getter, stopper):
                if task not in done:
                    task.cancel()
            if getter in done:
                yield getter.result()


def _put_latest(queue: asyncio.Queue[Block], block: Block) -> None:
    """A stalled network must not grow memory: drop the oldest block instead."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(block)


def list_devices() -> str:
    import sounddevice as sd

    return str(sd.query_devices())
