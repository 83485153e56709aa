"""The live wall of a cluster gateway shows the cluster: workers, gateways, languages."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.cluster.private_servers import PrivateRedis
from agent_assist.cluster.worker import RecognitionWorker
from agent_assist.config import Config
from tests.conftest import RunningServer, _serve
from tests.e2e.test_supervisor import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = PrivateRedis().start()
    yield server.url
    server.remove()


@pytest.fixture
async def cluster_gateway(
    config: Config, redis_url: str, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    cluster = replace(config.cluster, redis_url=redis_url, heartbeat_s=0.5)
    async with _serve(replace(config, cluster=cluster), tmp_path / "calls.sqlite3", False) as gw:
        yield gw


async def test_wall_shows_the_cluster(
    browser: Browser,
    cluster_gateway: RunningServer,
    recognizer: WhisperRecognizer,
    config: Config,
    redis_url: str,
) -> None:
    cluster = replace(config.cluster, redis_url=redis_url, heartbeat_s=0.5)
    worker = RecognitionWorker(recognizer, replace(config, cluster=cluster), "wall-worker")
    stop = threading.Event()
    serving = threading.Thread(target=worker.run, args=(stop,))
    serving.start()
    try:
        page = await signed_in(browser, cluster_gateway, "sue", "supervisor", "/wall.html")
        tile = page.locator("[data-testid=cluster]")
        await expect(tile).to_be_visible()
        await expect(page.locator("[data-testid=cluster-workers]")).to_have_text("1")
        detail = page.locator("[data-testid=cluster-detail]")
        await expect(detail).to_contain_text("1 gateway(s)")
        await expect(detail).to_contain_text(f"audio 0 of {config.cluster.worker_calls}")
        await expect(detail).to_contain_text("en, ja")
    finally:
        stop.set()
        serving.join(timeout=10)
    await expect(page.locator("[data-testid=cluster-workers]")).to_have_text("0", timeout=20_000)


async def test_a_single_box_has_no_cluster(text_server: RunningServer) -> None:
    def ask() -> object:
        request = urllib.request.Request(
            f"{text_server.http}/api/cluster",
            headers={"Authorization": f"Bearer {text_server.token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    assert await asyncio.to_thread(ask) == {"enabled": False}
