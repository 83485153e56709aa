"""The scale-out benchmark's set-ups (the runs themselves are `make bench-cluster`)."""

from __future__ import annotations

import os

import pytest

from bench.scale_out import CORES, WorkerSetup, pinned_here


def test_worker_set_ups_name_their_workers_threads_and_cores() -> None:
    assert WorkerSetup.parse("2x1") == WorkerSetup(2, 1)
    assert WorkerSetup.parse("1x1:pin") == WorkerSetup(1, 1, pinned=True)
    assert WorkerSetup.parse("1") == WorkerSetup(1, CORES)  # the cores shared out
    assert WorkerSetup.parse("2x1").label == "gateway + 2 worker(s) x 1 thread(s), over Redis"
    assert f"workers on core {CORES - 1}" in WorkerSetup.parse("1x1:pin").label
    with pytest.raises(ValueError):
        WorkerSetup.parse("twox1")


@pytest.mark.skipif(CORES < 2, reason="pinning needs two cores")
def test_pinning_keeps_the_last_core_for_the_workers_and_is_undone() -> None:
    before = os.sched_getaffinity(0)
    with pinned_here(True):
        assert CORES - 1 not in os.sched_getaffinity(0)
    assert os.sched_getaffinity(0) == before
    with pinned_here(False):
        assert os.sched_getaffinity(0) == before
