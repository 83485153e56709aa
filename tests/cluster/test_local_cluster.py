"""``agent-assist cluster``: a private Redis, workers and a gateway from one command."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.cluster.conftest import cluster_config_file

pytestmark = pytest.mark.model


def test_local_cluster_starts_serves_and_stops(tmp_path: Path) -> None:
    config = cluster_config_file(tmp_path, "redis://127.0.0.1:1/0")  # replaced by the command
    text = config.read_text(encoding="utf-8").replace(
        "second_opinion = true", "second_opinion = false"
    )
    config.write_text(text, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_assist", "--config", str(config), "cluster",
         "--workers", "1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        gateway = worker = None
        deadline = time.monotonic() + 120
        while (gateway is None or worker is None) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the cluster command exited early"
            gateway = gateway or re.search(r"gateway on (http://\S+/).*Redis at (\S+) ", line)
            worker = worker or re.search(r"worker (local-1) ready", line)
        assert gateway is not None and worker is not None
        with urllib.request.urlopen(gateway.group(1) + "healthz", timeout=5) as answer:
            assert answer.status == 200
        r = redis.Redis.from_url(gateway.group(2))
        deadline = time.monotonic() + 10
        roles: list[str] = []
        while sorted(roles) != ["gateway", "worker"] and time.monotonic() < deadline:
            roles = [
                json.loads(r.get(k) or b"{}").get("role", "") for k in r.keys("agent-assist:node:*")
            ]
            time.sleep(0.2)
        assert sorted(roles) == ["gateway", "worker"]
        r.close()
        assert (tmp_path / "var" / "cluster" / "redis" / "redis.log").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()


def test_a_worker_refuses_a_capacity_out_of_range(tmp_path: Path) -> None:
    config = cluster_config_file(tmp_path, "redis://127.0.0.1:1/0")
    done = subprocess.run(
        [sys.executable, "-m", "agent_assist", "--config", str(config), "worker", "--calls", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--calls: must be 1..10000" in done.stderr
