"""The live wall shows the box's load from the health report, and when it is full."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from websockets.asyncio.client import connect

from agent_assist.config import Config
from tests.conftest import _serve
from tests.server.test_admission import call_start

pytestmark = [pytest.mark.browser]


async def test_wall_shows_calls_against_capacity_and_a_full_box(
    browser: Browser, config: Config, tmp_path: Path
) -> None:
    limited = replace(config, server=replace(config.server, max_calls=1))
    async with _serve(limited, tmp_path / "calls.sqlite3", with_asr=False) as server:
        page = await browser.new_page()
        await page.goto(server.signin_url("sue", "supervisor", "/wall.html"))
        await page.wait_for_url(server.http + "/wall.html")
        load = page.locator("[data-testid=box-load]")
        await expect(page.locator("[data-testid=box-load-calls]")).to_have_text("0 / 1")
        await expect(page.locator("[data-testid=box-load-detail]")).to_contain_text(
            "full quality"
        )
        await expect(load).to_have_attribute("data-accepting", "true")
        async with connect(server.url) as ws:
            assert (await call_start(ws))["type"] == "call.started"
            await expect(page.locator("[data-testid=box-load-calls]")).to_have_text("1 / 1")
            await expect(load).to_have_attribute("data-accepting", "false")
            await expect(page.locator("[data-testid=box-load-detail]")).to_contain_text(
                "new calls refused"
            )
