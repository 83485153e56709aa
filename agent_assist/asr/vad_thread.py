"""Voice activity detection off the event loop: one thread serves every call's channels.

Silero runs once per 32 ms window per channel; with many calls that is thousands of small
onnxruntime calls a minute, and on the event loop each one delays every socket, partial
and final behind it. ``VadThread`` takes each push's work in arrival order (so one
channel's windows stay in order and its recurrent state is only touched here), runs it
while the loop goes on, and hands results back in batches: one loop wake-up carries
every push that finished since the last, across all calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_Item = tuple[asyncio.AbstractEventLoop, Callable[[], Any], Callable[[Any], None]]


class VadThread:
    """Runs ``work`` in submission order on one daemon thread; ``done(result)`` on the loop."""

    def __init__(self, name: str = "vad") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        """Loop wake-ups so far (each carries one or more finished pushes)."""

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """From the event loop: queue ``work``; ``done`` gets its result there, in order.

        A ``work`` that raises is logged and its ``done`` is not called (the channel's
        audio of that push is lost, the call goes on).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((loop, work, done))

    def close(self) -> None:
        """Stop after the work already queued (nothing more is accepted by the thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[Any], None], Any]]] = {}
            while item is not None:
                loop, work, done = item
                try:
                    batch.setdefault(loop, []).append((done, work()))
                except Exception:
                    log.exception("voice activity detection failed for one push")
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            for loop, results in batch.items():
                self.batches += 1
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
                    loop.call_soon_threadsafe(_deliver, results)
            if item is None:
                return


def _deliver(results: list[tuple[Callable[[Any], None], Any]]) -> None:
    for done, result in results:
        try:
            done(result)
        except Exception:
            log.exception("handling a voice activity result failed")
