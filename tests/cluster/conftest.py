"""Cluster fixtures: a private Redis, private PostgreSQL, real worker processes.

No mocks of either server: both run from the Debian packages (``scripts/setup.sh test``)
in a temporary folder on a free loopback port and are stopped after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent_assist.cluster.private_servers import PrivatePostgres, PrivateRedis
from agent_assist.config import Config, load_config
from tests.conftest import REPO


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """Append-only file on: a restart keeps what Redis acknowledged."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"), aof=True).start()
    yield server
    server.stop()


def cluster_config_file(folder: Path, redis_url: str) -> Path:
    """The repository's config with Redis on, English only, a short claim timeout."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace('dir = "models"', f'dir = "{REPO / "models"}"', 1)
    text = text.replace('redis_url = ""', f'redis_url = "{redis_url}"', 1)
    text = text.replace("claim_timeout_s = 30.0", "claim_timeout_s = 3.0", 1)
    text = text.replace("resubmit_s = 60.0", "resubmit_s = 20.0", 1)
    text = text.replace("worker_languages = []", 'worker_languages = ["en"]', 1)
    text = text.replace("heartbeat_s = 2.0", "heartbeat_s = 0.5", 1)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Workers:
    """``agent-assist worker`` processes, started and killed by name."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, *names: str, calls: int | None = None) -> None:
        """Start workers and wait until each is ready; ``calls``: ``worker --calls``."""
        extra = [] if calls is None else ["--calls", str(calls)]
        for name in names:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "agent_assist", "--config", str(self.config_path),
                 "worker", "--name", name, *extra],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
        for name in names:
            proc = self.procs[name]
            deadline = time.monotonic() + 120
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "ready" in line and time.monotonic() < deadline, f"worker {name}: {line!r}"

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def cluster_config(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = cluster_config_file(tmp_path_factory.mktemp("cluster"), redis_server.url)
    config = load_config(path)
    return replace(config, nlp=replace(config.nlp, second_opinion=False))


@pytest.fixture(scope="module")
def workers(cluster_config: Config) -> Iterator[Workers]:
    running = Workers(cluster_config.root / "config.toml")
    running.start("w1", "w2")
    yield running
    running.stop()
