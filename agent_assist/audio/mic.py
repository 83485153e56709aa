"""A live microphone as a call source: sounddevice capture, PCM16 frames over the websocket.

The capture callback runs on PortAudio's thread; it only copies blocks into an asyncio
queue. ``stream_blocks`` is the source itself (hello, call.start, frames, call.end) and
takes any async iterator of PCM16 blocks, so it is tested with file audio and serves the
microphone unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import connect

from agent_assist.config import Config
from agent_assist.errors import AudioInputError, ProtocolError
from agent_assist.protocol import audio_frame

log = logging.getLogger(__name__)
BLOCK_MS = 100

Block = npt.NDArray[np.int16]  # (frames, channels)


def add_mic_parser(sub: Any) -> None:
    """The ``mic`` subcommand's options (registered by the CLI)."""
    m = sub.add_parser("mic", help="stream the microphone as a live call until Ctrl-C")
    m.add_argument("--server", help="ws:// URL (default: from config; else an embedded server)")
    m.add_argument("--device", help="input device name or index (see --list)")
    m.add_argument("--list", action="store_true", help="list input devices and exit")
    m.add_argument("--rate", type=int, default=16000, help="capture rate (8000..48000)")
    m.add_argument("--language", choices=["ja", "en", "auto"], default=None)
    m.add_argument(
        "--speaker",
        choices=["agent", "customer"],
        default="customer",
        help="whose voice a mono microphone carries (a stereo device: agent left, customer right)",
    )
    m.add_argument("--stereo", action="store_true", help="capture two channels")


async def stream_blocks(
    url: str,
    blocks: AsyncIterator[Block],
    *,
    sample_rate: int,
    speakers: tuple[str, ...],
    language: str,
    title: str = "microphone",
    on_event: Callable[[dict[str, Any]], None] | None = None,
    token: str | None = None,
) -> str:
    """Send ``blocks`` as one call; return its call id once the server has ended it."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(url, max_size=None, additional_headers=headers) as ws:
        seq = 0

        async def send(type_: str, data: dict[str, Any], call_id: str | None = None) -> None:
            nonlocal seq
            seq += 1
            msg = {"v": 1, "type": type_, "call_id": call_id, "seq": seq, "data": data}
            await ws.send(json.dumps(msg, ensure_ascii=False))

        await send("hello", {"role": "source"})
        await send(
            "call.start",
            {
                "language": language,
                "sample_rate": sample_rate,
                "channels": list(speakers),
                "title": title,
                "mode": "audio",
            },
        )
        call_id = ""
        while not call_id:
            msg = json.loads(await ws.recv())
            if msg["type"] == "error":
                raise ProtocolError(msg["data"]["message"], code=msg["data"]["code"])
            if msg["type"] == "call.started":
                call_id = msg["call_id"]
                if on_event:
                    on_event(msg)

        async def read() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "error":
                    log.warning("server: %s", msg["data"]["message"])
                elif on_event:
                    on_event(msg)
                if msg["type"] == "call.ended":
                    return

        reader = asyncio.create_task(read())
        try:
            async for block in blocks:
                for ch in range(block.shape[1]):
                    await ws.send(audio_frame(ch, block[:, ch].astype("<i2").tobytes()))
        finally:
            await send("call.end", {"reason": "hangup"}, call_id)
            await asyncio.wait_for(reader, 60)
    return call_id


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


async def run_mic(
    config: Config,
    args: argparse.Namespace,
    serve_embedded: Callable[[], Any],
    on_event: Callable[[dict[str, Any]], None],
    until_interrupted: Callable[[], Any],
) -> int:
    """The ``mic`` command: capture until Ctrl-C, stream into a (possibly embedded) server."""
    if args.list:
        print(list_devices())
        return 0
    if not 8000 <= args.rate <= 48000:
        raise AudioInputError("--rate must be 8000..48000", code="audio.bad_input")
    url, embedded, token = await serve_embedded()
    speakers = ("agent", "customer") if args.stereo else (args.speaker,)
    stop = asyncio.Event()
    stopper = asyncio.create_task(_set_when(until_interrupted, stop))
    print(f"  streaming the microphone to {url} (Ctrl-C to end the call)", flush=True)
    try:
        await stream_blocks(
            url,
            microphone_blocks(args.rate, len(speakers), args.device, stop),
            sample_rate=args.rate,
            speakers=speakers,
            language=args.language or config.asr.default_language,
            on_event=on_event,
            token=token,
        )
    finally:
        stopper.cancel()
        if embedded is not None:
            await embedded.close()
            embedded.services.close()
    return 0


async def _set_when(wait: Callable[[], Any], event: asyncio.Event) -> None:
    await wait()
    event.set()
