"""The agent console in a real headless Chromium against the real server and models."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from agent_assist.audio.files import read_call_audio
from agent_assist.clients.replay import load_script, replay
from agent_assist.config import Config
from agent_assist.runtime.services import build_services
from agent_assist.server.app import AgentAssistServer
from tests.conftest import CALLS, SAMPLES, RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.model]

# Records every suggestion card that ever appears, however briefly (fast replays replace them).
CARD_RECORDER = """
window.__cards = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('[data-testid=suggestion]')) {
    const key = el.dataset.kind + '|' + (el.dataset.rule || '');
    if (!window.__cards.includes(key)) window.__cards.push(key);
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


async def open_console(browser: Browser, server: RunningServer) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.add_init_script(CARD_RECORDER)
    await page.goto(server.signin_url("test-console-supervisor", "supervisor", "/"))
    await page.wait_for_url(server.http + "/")
    await expect(page.locator("[data-testid=status]")).to_have_attribute("data-state", "open")
    return page


async def test_live_call_shows_transcript_suggestion_and_warning(
    browser: Browser, asr_server: RunningServer, tmp_path: Path
) -> None:
    page = await open_console(browser, asr_server)
    audio = read_call_audio(SAMPLES / "en_call.flac")
    result = await replay(asr_server.url, audio, language="en", fast=True)

    await expect(page.locator("[data-testid=call-ended]")).to_be_visible()
    await expect(page.locator("[data-testid=call-id]")).to_have_text(result.call_id)
    customer = page.locator("[data-testid=utterance][data-speaker=customer]")
    agent = page.locator("[data-testid=utterance][data-speaker=agent]")
    await expect(customer.first).to_contain_text("slow")
    assert await agent.count() >= 3 and await customer.count() >= 3
    cards = await page.evaluate("window.__cards")
    assert "upsell|offer.upsell_on_speed.v2" in cards, cards
    current = page.locator("[data-testid=suggestion]")
    await expect(current).to_have_attribute("data-kind", "retention")
    warning = page.locator(
        "[data-testid=warning][data-rule='compliance.pitch_during_cancellation.v1']"
    )
    await expect(warning).to_be_visible()
    await expect(warning.locator("[data-testid=warning-quote]")).to_contain_text("upgrade")
    await page.screenshot(path=str(tmp_path / "console_en.png"))

    with sqlite3.connect(asr_server.db) as db:
        (reason,) = db.execute(
            "SELECT end_reason FROM calls WHERE call_id=?", (result.call_id,)
        ).fetchone()
        types = [
            t
            for (t,) in db.execute(
                "SELECT type FROM events WHERE call_id=? ORDER BY seq", (result.call_id,)
            )
        ]
    assert reason == "hangup"
    assert types.count("suggestion") >= 2 and "warning" in types
    assert types == [e["type"] for e in result.events]


async def test_japanese_call_renders_and_quotes_japanese(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    await replay(text_server.url, load_script(CALLS / "ja_demo.toml"), fast=True)
    await expect(page.locator("[data-testid=call-ended]")).to_be_visible()
    assert await page.evaluate("document.documentElement.lang") == "ja"
    first = page.locator("[data-testid=utterance][data-speaker=customer]").first
    await expect(first.locator("[data-testid=utterance-text]")).to_have_text(
        "最近、家のインターネットが遅くて困っています。動画が止まってしまうんです。"
    )
    quote = page.locator("[data-testid=warning] [data-testid=warning-quote]")
    await expect(quote.first).to_contain_text("アップグレード")
    await expect(page.locator("[data-testid=suggestion-line]")).to_contain_text("解約")


async def test_console_reconnects_and_resumes_after_a_server_restart(
    browser: Browser, config: Config, tmp_path: Path
) -> None:
    db = tmp_path / "calls.sqlite3"
    services = build_services(config, with_asr=False, store_path=db)
    server = AgentAssistServer(services)
    host, port = await server.start("127.0.0.1", 0)
    running = RunningServer(server, host, port, db)
    page = await open_console(browser, running)
    script = load_script(CALLS / "en_demo.toml")
    await replay(running.url, script, fast=True)
    await expect(page.locator("[data-testid=call-ended]")).to_be_visible()
    before = await page.locator("[data-testid=utterance]").count()

    await server.close()
    services.close()
    status = page.locator("[data-testid=status]")
    await expect(status).not_to_have_attribute("data-state", "open")
    services = build_services(config, with_asr=False, store_path=db)
    server = AgentAssistServer(services)
    await server.start("127.0.0.1", port)
    try:
        await expect(status).to_have_attribute("data-state", "open", timeout=15000)
        await asyncio.sleep(0.5)
        assert await page.locator("[data-testid=utterance]").count() == before  # no duplicates
        second = await replay(running.url, script, fast=True)
        await expect(page.locator("[data-testid=call-id]")).to_have_text(second.call_id)
    finally:
        await server.close()
        services.close()
