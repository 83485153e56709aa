"""The browser-microphone page in a real headless Chromium: a real recording stands in for
the microphone (Chromium's fake capture device), PCM16 goes over the websocket, the real
server and model answer with finals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import RunningServer, shared_audio
from tests.e2e.conftest import CHROMIUM_ARGS, chromium_path

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    data, rate = sf.read(shared_audio("en/stereo_diarization.wav"), dtype="float32")
    x = np.concatenate([data[:, 0], np.zeros(rate * 3, np.float32)])
    path = tmp_path / "mic.wav"
    sf.write(path, x, rate, subtype="PCM_16")
    return path


@pytest.fixture
async def browser(speech_wav: Path) -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=path,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={speech_wav}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield b
        await b.close()


async def test_browser_microphone_call(asr_server: RunningServer, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(asr_server.signin_url("test-mic-agent", "agent", "/mic.html"))
    await page.wait_for_url(f"{asr_server.http}/mic.html")
    await page.select_option("[data-testid=mic-language]", "en")
    await page.click("[data-testid=mic-start]")
    await expect(page.get_by_test_id("mic-status")).to_contain_text("live:", timeout=15_000)
    finals = page.get_by_test_id("mic-finals")
    await expect(finals).to_contain_text("wizard", timeout=30_000)
    await page.click("[data-testid=mic-stop]")
    await expect(page.get_by_test_id("mic-status")).to_contain_text("ended", timeout=30_000)
    text = (await finals.inner_text()).lower()
    assert "customer:" in text and "curtain" in text
