"""Supervisor pages in a real headless Chromium against the real server: the live wall during
a replayed call, the review page playing the stored audio and jumping to a cited moment, a
saved override, and an agent refused another agent's call."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from agent_assist.audio.files import read_call_audio
from agent_assist.clients.replay import load_script, replay
from agent_assist.core.script import ScriptedCall, Turn
from tests.conftest import CALLS, SAMPLES, RunningServer

pytestmark = [pytest.mark.browser]

SHOTS = Path("/tmp/agent-assist-shots")

# A short call at real pace (about 7 s): complaint, offer, cancellation, a pitch anyway.
LIVE_CALL = ScriptedCall(
    title="Wall test: slow line, then cancel",
    language="en",
    turns=(
        Turn("agent", 200, 1200, "Thank you for calling, how can I help?"),
        Turn("customer", 1400, 2600, "My internet is so slow these days."),
        Turn("agent", 2800, 3800, "I'm sorry. How do you use it at home?"),
        Turn("customer", 4000, 5000, "Honestly, I want to cancel my contract."),
        Turn("agent", 5200, 6400, "You should upgrade, this offer is only available today."),
        Turn("customer", 6600, 7200, "No thanks."),
    ),
)


async def until_property(
    element: Locator, name: str, ok: Callable[[Any], bool], timeout: float = 15.0
) -> Any:
    """Poll an element's property until ``ok`` holds; the condition is Python's.

    The pages' CSP (``script-src 'self'``, no ``'unsafe-eval'``) blocks what
    ``wait_for_function`` does with a string; reading a property does not need it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await element.evaluate(f"el => el.{name}")
        if ok(value) or loop.time() > deadline:
            assert ok(value), f"timed out waiting on {name}: last value {value!r}"
            return value
        await asyncio.sleep(0.1)


async def signed_in(
    chromium: Browser, server: RunningServer, name: str, role: str, path: str
) -> Page:
    page = await chromium.new_page(viewport={"width": 1440, "height": 900})
    await page.goto(server.signin_url(name, role, path))
    await page.wait_for_url(server.http + path)
    return page


async def test_live_wall_updates_during_a_replayed_call(
    browser: Browser,
    text_server: RunningServer,
) -> None:
    page = await signed_in(browser, text_server, "sue", "supervisor", "/wall.html")
    await expect(page.locator("[data-testid=status]")).to_have_attribute("data-state", "open")
    await expect(page.locator("[data-testid=wall-empty]")).to_be_visible()
    replaying = asyncio.create_task(
        replay(text_server.url, LIVE_CALL, fast=False, agent="ann", title="Wall test")
    )
    tile = page.locator("[data-testid=wall-tile]")
    await expect(tile).to_have_count(1)
    await expect(tile.locator("[data-testid=tile-agent]")).to_have_text("ann")
    await expect(
        tile.locator("[data-testid=tile-signals] [data-signal=speed_complaint]")
    ).to_be_visible()
    assert not replaying.done(), "the wall must update while the call is live"
    await expect(page.locator("[data-testid=active-count]")).to_have_text("1")
    await tile.click()  # follow it live, read-only
    drawer = page.locator("[data-testid=drawer]")
    await expect(drawer).to_be_visible()
    await expect(tile.locator("[data-testid=tile-phase]")).to_have_attribute(
        "data-phase", "retention"
    )
    alert = page.locator("[data-testid=alert][data-rule='compliance.pitch_during_cancellation.v1']")
    await expect(alert).to_be_visible()
    await expect(tile.locator("[data-testid=tile-warnings]")).to_contain_text(
        "Pitch during cancellation"
    )
    await expect(tile.locator("[data-testid=tile-temp]")).to_have_attribute("data-level", "hot")
    await expect(drawer.locator("[data-testid=drawer-line]").nth(4)).to_contain_text("upgrade")
    await expect(page.locator("[data-testid=alert-count]")).to_have_text("2")  # + pressure
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / "wall.png"))
    result = await replaying
    await expect(drawer.locator("[data-testid=drawer-line]")).to_have_count(6)
    ended = page.locator(f"[data-testid=ended-tiles] [data-call='{result.call_id}']")
    await expect(ended).to_be_visible()
    await expect(page.locator("[data-testid=active-count]")).to_have_text("0")


@pytest.mark.model
async def test_review_plays_the_stored_audio_jumps_to_a_cited_moment_and_saves_an_override(
    browser: Browser,
    asr_server: RunningServer,
) -> None:
    audio = read_call_audio(SAMPLES / "en_call.flac")
    result = await replay(asr_server.url, audio, language="en", fast=True, agent="ann")
    page = await signed_in(
        browser, asr_server, "sue", "supervisor", f"/review.html?call={result.call_id}"
    )
    player = page.locator("[data-testid=audio]")
    await expect(page.locator("[data-testid=line]").first).to_be_visible()
    await until_property(player, "readyState", lambda state: state >= 1)
    duration = await player.evaluate("a => a.duration")
    assert abs(duration - audio.duration_s) < 0.5, (duration, audio.duration_s)

    await page.locator("[data-testid=play]").click()
    await until_property(player, "currentTime", lambda at: at > 0.5)
    await page.locator("[data-testid=play]").click()  # pause

    compliance = page.locator("[data-testid=item][data-item=compliance]")
    moment = compliance.locator("[data-testid=moment]").first
    cited_ms = int(await moment.get_attribute("data-t") or 0)
    cited_utt = await moment.get_attribute("data-utterance")
    assert cited_ms > 20000 and cited_utt
    await moment.click()
    # the seek lands asynchronously: wait for the player to reach the cited moment
    await until_property(player, "currentTime", lambda at: abs(at - cited_ms / 1000) < 1.5)
    line = page.locator(f"[data-testid=line][data-utterance='{cited_utt}']")
    await expect(line).to_have_class(re.compile(r"(^|\s)line--now(\s|$)"))
    await expect(line.locator("[data-testid=line-text]")).to_contain_text("upgrade")
    await expect(page.locator("[data-testid=transcript]")).to_have_attribute(
        "data-cited", cited_utt
    )

    # talk share and evidence are on the page
    await expect(page.locator("[data-testid=customer-share]")).to_contain_text("%")
    warning = page.locator(
        "[data-testid=warning][data-rule='compliance.pitch_during_cancellation.v1']"
    )
    await expect(warning).to_contain_text("upgrade")
    await expect(page.locator("[data-testid=call-failed]")).to_be_visible()

    # override an item: the automatic score stays visible beside it
    needs = page.locator("[data-testid=item][data-item=needs_discovery]")
    auto = await needs.get_attribute("data-auto")
    await needs.locator("[data-testid=override-toggle] summary").click()
    form = needs.locator("[data-testid=override-form]")
    await form.locator("input[name=points]").fill("5")
    await form.locator("input[name=reason]").fill("only closed questions")
    await form.locator("button[type=submit]").click()
    needs = page.locator("[data-testid=item][data-item=needs_discovery]")
    await expect(needs.locator("[data-testid=item-override]")).to_contain_text(
        "only closed questions"
    )
    await expect(needs.locator("[data-testid=item-points]")).to_have_text("5/15")
    await expect(needs.locator("[data-testid=item-auto]")).to_contain_text("auto 15/15")
    assert auto == "1"
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / "review.png"), full_page=True)
    await page.reload()
    await expect(
        page.locator("[data-testid=item][data-item=needs_discovery] [data-testid=item-override]")
    ).to_contain_text("only closed questions")
    with sqlite3.connect(asr_server.db) as db:
        rows = db.execute(
            "SELECT item_id, score, reason, by_user FROM score_overrides WHERE call_id=?",
            (result.call_id,),
        ).fetchall()
    assert rows == [("needs_discovery", pytest.approx(5 / 15), "only closed questions", "sue")]


async def test_an_agent_is_refused_another_agents_call(
    browser: Browser,
    text_server: RunningServer,
) -> None:
    ann = await replay(text_server.url, load_script(CALLS / "en_demo.toml"), fast=True, agent="ann")
    ben = await replay(text_server.url, load_script(CALLS / "ja_demo.toml"), fast=True, agent="ben")
    page = await signed_in(browser, text_server, "ben", "agent", f"/review.html?call={ann.call_id}")
    error = page.locator("[data-testid=call-error]")
    # refused exactly as a call that does not exist: ids of other agents' calls stay secret
    await expect(error).to_have_attribute("data-status", "404")
    await expect(error).to_contain_text("No such call")
    response = await page.request.get(f"{text_server.http}/api/calls/{ann.call_id}")
    assert response.status == 404
    refused = await page.evaluate(
        """callId => new Promise(resolve => {
             const ws = new WebSocket(`ws://${location.host}/ws`);
             ws.onopen = () => ws.send(JSON.stringify({v: 1, type: "hello", call_id: null, seq: 1,
                 t_ms: 0, data: {role: "console", subscribe: callId}}));
             ws.onmessage = ev => resolve(JSON.parse(ev.data).data.code);
           })""",
        ann.call_id,
    )
    assert refused == "call.unknown"
    # their own call opens, and the list holds only theirs
    await page.goto(f"{text_server.http}/review.html?call={ben.call_id}")
    await expect(page.locator("[data-testid=line]").first).to_be_visible()
    await expect(page.locator("[data-testid=no-audio]")).to_be_visible()
    await page.goto(f"{text_server.http}/review.html")
    rows = page.locator("[data-testid=call-row]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-call", ben.call_id)
    wall = await page.goto(f"{text_server.http}/wall.html")
    assert wall is not None and wall.status == 403


async def test_review_filters_list_the_real_signals_and_warning_rules(
    browser: Browser, text_server: RunningServer
) -> None:
    result = await replay(text_server.url, LIVE_CALL, fast=True, agent="ann")
    page = await signed_in(browser, text_server, "sue", "supervisor", "/review.html")
    signal_options = page.locator("[data-testid=filter-signal] option")
    await expect(signal_options).to_have_count(1 + 21)  # "any" and every signal name
    values = await signal_options.evaluate_all("os => os.map(o => o.value)")
    assert {"speed_complaint", "cancel_intent", "pressure_language"} <= set(values)
    warnings = await page.locator("[data-testid=filter-warning] option").evaluate_all(
        "os => os.map(o => o.value)"
    )
    assert "compliance.pitch_during_cancellation.v1" in warnings
    assert all(w.startswith("compliance.") for w in warnings[1:]) and len(warnings) > 2
    # choosing a warning lists the call that has it
    await page.select_option(
        "[data-testid=filter-warning]", "compliance.pitch_during_cancellation.v1"
    )
    await page.locator("[data-testid=filters] button[type=submit]").click()
    await expect(page.locator(f"[data-call='{result.call_id}']").first).to_be_visible()
