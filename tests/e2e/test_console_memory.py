"""The console over a long shift: its event log and its ended calls stay bounded."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, expect

from agent_assist.clients.replay import load_script, replay
from tests.conftest import CALLS, RunningServer

pytestmark = [pytest.mark.browser]


async def test_event_log_and_ended_calls_are_pruned(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(text_server.signin_url("shift-supervisor", "supervisor", "/"))
    await page.wait_for_url(text_server.http + "/")
    await expect(page.locator("[data-testid=status]")).to_have_attribute("data-state", "open")
    # a shift in miniature: shrink the bounds, then take more calls than they hold
    await page.evaluate(
        "() => Object.assign(window.agentAssist.limits, {events: 40, endedCalls: 2})"
    )
    script = load_script(CALLS / "en_demo.toml")
    ids = [(await replay(text_server.url, script, fast=True)).call_id for _ in range(5)]
    last = ids[-1]
    for _ in range(100):
        held = await page.evaluate("() => [...window.agentAssist.state.calls.keys()]")
        if last in held and len(held) <= 3:
            break
        await asyncio.sleep(0.1)
    held = await page.evaluate("() => [...window.agentAssist.state.calls.keys()]")
    assert last in held and len(held) <= 3, held  # the 2 newest ended calls (+ the followed)
    assert ids[0] not in held
    events = await page.evaluate("() => window.agentAssist.events.length")
    assert 0 < events <= 40
    # the page still works: the newest call is on screen
    await expect(page.locator("[data-testid=utterance]").first).to_be_visible()
