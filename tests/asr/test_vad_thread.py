"""The VAD thread: work in submission order off the loop, results back on the loop."""

from __future__ import annotations

import asyncio
import threading

from agent_assist.asr.vad_thread import VadThread


async def test_results_come_back_on_the_loop_in_order_and_a_failure_skips_only_its_push() -> None:
    thread = VadThread("vad-test")
    got: list[tuple[int, bool]] = []
    ran_on: set[int] = set()
    loop_thread = threading.get_ident()

    def work(i: int) -> int:
        ran_on.add(threading.get_ident())
        if i == 3:
            raise ValueError("a bad push")
        return i

    try:
        for i in range(6):
            thread.submit(
                lambda i=i: work(i), lambda r: got.append((r, threading.get_ident() == loop_thread))
            )
        done = asyncio.get_running_loop().create_future()
        thread.submit(lambda: None, done.set_result)
        await asyncio.wait_for(done, 10)
    finally:
        thread.close()
    assert got == [(0, True), (1, True), (2, True), (4, True), (5, True)]
    assert ran_on and loop_thread not in ran_on
