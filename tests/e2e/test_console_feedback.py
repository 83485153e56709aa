"""The console's marks, customer box and "why?" panel in real headless Chromium.

The real server (text mode, no speech models) takes scripted turns from a real source
connection; the console sends `feedback` and `customer.link` on its own socket, and what
the server stores in SQLite is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.clients.replay import load_script, replay
from agent_assist.core.phases import PHASES
from tests.conftest import CALLS, RunningServer
from tests.server.test_server import db_rows, msg, recv_json

pytestmark = [pytest.mark.browser]

FEEDBACK = ("used", "accepted", "declined", "dismissed")


async def open_console(browser: Browser, server: RunningServer) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(server.signin_url("test-console-agent-desk", "supervisor", "/"))
    await page.wait_for_url(server.http + "/")
    await expect(page.locator("[data-testid=status]")).to_have_attribute("data-state", "open")
    return page


class Source:
    """A live text-mode call pushed turn by turn, its events read in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.call_id = ""
        self.seq = 2
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, language: str, customer_id: str | None = None) -> str:
        await self.ws.send(msg("hello", {"role": "source"}))
        assert (await recv_json(self.ws))["type"] == "ready"
        start = {"language": language, "mode": "text", "title": "console marks"}
        if customer_id:
            start["customer_id"] = customer_id
        await self.ws.send(msg("call.start", start, seq=self.seq))
        started = await recv_json(self.ws)
        assert started["type"] == "call.started"
        self.call_id = str(started["call_id"])
        self._reader = asyncio.create_task(self._read())
        return self.call_id

    async def turn(self, speaker: str, text: str, start_ms: int, end_ms: int) -> None:
        self.seq += 1
        turn = {"speaker": speaker, "text": text, "end_ms": end_ms}
        await self.ws.send(msg("turn", turn, self.call_id, seq=self.seq, t_ms=start_ms))

    async def wait_for(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        """The first event of that type this source received (waiting for it)."""
        async with asyncio.timeout(timeout):
            while True:
                found = [e for e in self.events if e["type"] == type_]
                if found:
                    return found[0]
                await asyncio.sleep(0.05)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.events.append(json.loads(raw))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@contextlib.asynccontextmanager
async def live_call(
    server: RunningServer, language: str, customer_id: str | None = None
) -> AsyncIterator[Source]:
    async with connect(server.url) as ws:
        source = Source(ws)
        await source.start(language, customer_id)
        try:
            yield source
        finally:
            await source.close()


def stored(server: RunningServer, call_id: str, type_: str) -> list[dict[str, Any]]:
    rows = db_rows(
        server.db, "SELECT body FROM events WHERE call_id=? AND type=? ORDER BY seq", call_id, type_
    )
    return [json.loads(body) for (body,) in rows]


async def test_dismiss_is_sent_stored_and_marks_the_card(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    async with live_call(text_server, "en") as call:
        await call.turn("customer", "The internet is so slow at night.", 1000, 4000)
        card = page.locator("[data-testid=suggestion]")
        await expect(card).to_have_attribute("data-suggestion-id", "s-1")
        await expect(card).to_have_attribute("data-offer-id", "fiber_1g")
        await expect(card).not_to_have_attribute("data-feedback", "dismissed")
        for action in FEEDBACK:
            await expect(card.locator(f"[data-testid=feedback-{action}]")).to_be_enabled()
        await expect(card.locator("[data-testid=feedback-dismissed]")).to_have_text("Dismiss")

        await card.locator("[data-testid=feedback-dismissed]").click()
        await expect(card).to_have_attribute("data-feedback", "dismissed")
        await expect(card.locator("[data-testid=suggestion-feedback]")).to_have_text("Dismissed")
        for action in FEEDBACK:
            await expect(card.locator(f"[data-testid=feedback-{action}]")).to_be_disabled()
        marks = stored(text_server, call.call_id, "offer.feedback")
        assert [m["data"] for m in marks] == [
            {
                "suggestion_id": "s-1",
                "offer_id": "fiber_1g",
                "kind": "upsell",
                "action": "dismissed",
            }
        ]

        # The same complaint again: the engine holds the dismissed offer back, and says why.
        await call.turn("customer", "Also the connection keeps dropping.", 10000, 13000)
        held = page.locator(
            "[data-testid=decision][data-outcome=suppressed]"
            "[data-decided-by='suppress.dismissed.v1']"
        )
        await expect(held).to_have_count(1)
        await expect(card).to_have_attribute("data-suggestion-id", "s-1")


async def test_used_then_accepted_moves_the_card_to_history_with_its_outcome(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    async with live_call(text_server, "en", customer_id="C-1003") as call:
        text = "Video calls at home keep freezing, the connection is slow."
        await call.turn("customer", text, 1000, 4000)
        card = page.locator("[data-testid=suggestion]")
        await expect(card).to_have_attribute("data-offer-id", "fiber_1g")
        await card.locator("[data-testid=feedback-used]").click()
        await expect(card).to_have_attribute("data-feedback", "used")
        # After "used" the customer's answer is still to come; the line cannot be used twice.
        await expect(card.locator("[data-testid=feedback-used]")).to_be_disabled()
        await expect(card.locator("[data-testid=feedback-accepted]")).to_be_enabled()

        await card.locator("[data-testid=feedback-accepted]").click()
        # Accepting opens the cross-sell window: the related add-on replaces the card.
        await expect(card).to_have_attribute("data-offer-id", "mesh_wifi")
        await expect(card).to_have_attribute("data-kind", "cross_sell")
        await expect(card).not_to_have_attribute("data-feedback", "accepted")
        old = page.locator("[data-testid=suggestion-old][data-suggestion-id=s-1]")
        await expect(old).to_have_attribute("data-feedback", "accepted")
        await page.locator("[data-testid=suggestion-history] summary").click()
        await expect(old.locator("[data-testid=suggestion-old-feedback]")).to_have_text("Accepted")
        await expect(page.locator("[data-testid=phase]")).to_have_attribute(
            "data-phase", "accepted"
        )
        actions = [m["data"]["action"] for m in stored(text_server, call.call_id, "offer.feedback")]
        assert actions == ["used", "accepted"]


async def test_link_a_customer_from_the_form_and_see_an_unknown_id_refused(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    async with live_call(text_server, "en") as call:
        await call.turn("agent", "Thank you for calling, how can I help?", 500, 2500)
        await expect(page.locator("[data-testid=call-id]")).to_have_text(call.call_id)
        box = page.locator("[data-testid=customer-box]")
        field = box.locator("[data-testid=customer-link-input]")
        await expect(field).to_be_visible()
        await expect(box.locator("[data-testid=customer]")).to_have_count(0)

        await field.fill("C-404")
        await box.locator("[data-testid=customer-link-submit]").click()
        error = box.locator("[data-testid=customer-error]")
        await expect(error).to_have_attribute("data-code", "customer.unknown")
        await expect(error).to_have_text("No such customer in the CRM.")
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(box.locator("[data-testid=customer]")).to_have_count(0)
        assert stored(text_server, call.call_id, "customer.linked") == []

        await field.fill("C-1001")
        await field.press("Enter")
        customer = box.locator("[data-testid=customer]")
        await expect(customer).to_have_attribute("data-customer-id", "C-1001")
        await expect(customer.locator("[data-testid=customer-name]")).to_contain_text("Aoi Tanaka")
        await expect(customer.locator("[data-testid=customer-usage]")).to_have_text("18.2/20 GB")
        await expect(customer.locator("[data-testid=customer-plan]")).to_contain_text("¥3,480")
        await expect(customer.locator("[data-testid=customer-renewal]")).to_contain_text(
            "2027-01-20"
        )
        await expect(customer.locator("[data-testid=customer-tier]")).to_have_text("Tier A")
        await expect(error).to_be_hidden()
        await expect(field).to_have_count(0)  # linked: the form is gone
        linked = stored(text_server, call.call_id, "customer.linked")
        assert [e["data"]["customer_id"] for e in linked] == ["C-1001"]

        # The engine reasons on the record from now on: usage near the cap, the bigger plan.
        await call.turn("customer", "My phone gets really slow every month.", 3000, 5000)
        await expect(page.locator("[data-testid=suggestion]")).to_have_attribute(
            "data-offer-id", "data_50gb"
        )


async def test_why_lists_the_decisions_of_a_scripted_call_newest_first(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    script = load_script(CALLS / "en_dismissed_not_repeated.toml")
    result = await replay(text_server.url, script, fast=True)
    await expect(page.locator("[data-testid=call-ended]")).to_be_visible()
    decisions = [e["data"] for e in result.events if e["type"] == "decision"]
    assert decisions[-1]["decided_by"] == "suppress.dismissed.v1"

    # The source marked the card dismissed; the call is over, so no buttons are left.
    card = page.locator("[data-testid=suggestion]")
    await expect(card).to_have_attribute("data-feedback", "dismissed")
    await expect(card.locator("[data-testid^=feedback-]")).to_have_count(0)

    why = page.locator("[data-testid=why]")
    items = why.locator("[data-testid=decision]")
    await expect(items.first).to_be_hidden()  # a disclosure: closed until asked
    await why.locator("summary").click()
    await expect(items).to_have_count(len(decisions))
    newest = items.first
    await expect(newest).to_be_visible()
    await expect(newest).to_have_attribute("data-outcome", "suppressed")
    await expect(newest).to_have_attribute("data-decided-by", "suppress.dismissed.v1")
    await expect(newest).to_contain_text("offer.upsell_on_speed.v2")
    await expect(newest).to_contain_text(decisions[-1]["reason"])
    await expect(newest).to_contain_text("dropping")
    shown = why.locator("[data-testid=decision][data-outcome=shown]")
    await expect(shown).to_have_attribute("data-decided-by", "offer.upsell_on_speed.v2")


async def test_japanese_retention_card_offers_only_dismiss_and_greys_out_when_expired(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    async with live_call(text_server, "ja") as call:
        await call.turn("customer", "月末になるとスマホがすごく遅くなるんです。", 1000, 3000)
        card = page.locator("[data-testid=suggestion]")
        await expect(card).to_have_attribute("data-kind", "upsell")
        labels = [await card.locator(f"[data-testid=feedback-{a}]").inner_text() for a in FEEDBACK]
        assert labels == ["案内した", "承諾", "お断り", "対象外"]
        expires = int((await call.wait_for("suggestion"))["data"]["expires_ms"])
        assert expires > 3000
        await expect(card).not_to_have_attribute("data-expired", "true")
        # Audio time passes the card's expiry: it greys out.
        await call.turn("agent", "少々お待ちください。", expires + 1000, expires + 2000)
        await expect(card).to_have_attribute("data-expired", "true")
        await expect(card.locator("[data-testid=suggestion-expired]")).to_have_text("期限切れ")

        await call.turn(
            "customer", "もう解約しようかと思っています。", expires + 3000, expires + 5000
        )
        await expect(card).to_have_attribute("data-kind", "retention")
        await expect(card).not_to_have_attribute("data-expired", "true")
        await expect(card.locator("[data-testid^=feedback-]")).to_have_count(1)
        await expect(card.locator("[data-testid=feedback-dismissed]")).to_have_text("対象外")
        await expect(page.locator("[data-testid=phase]")).to_have_text("解約防止")


async def test_every_engine_phase_has_a_label_in_both_languages(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    for lang in ("en", "ja"):
        labels = await page.evaluate(
            "([names, lang]) => names.map((n) => window.agentAssist.phaseLabel(n, lang))",
            [list(PHASES), lang],
        )
        missing = [p for p, label in zip(PHASES, labels, strict=True) if not label]
        assert not missing, (lang, missing)


async def test_an_unknown_id_from_telephony_shows_no_record_and_keeps_the_form(
    browser: Browser, text_server: RunningServer
) -> None:
    page = await open_console(browser, text_server)
    async with live_call(text_server, "en", customer_id="C-9999") as call:
        await expect(page.locator("[data-testid=call-id]")).to_have_text(call.call_id)
        customer = page.locator("[data-testid=customer]")
        await expect(customer).to_have_attribute("data-known", "false")
        await expect(customer).to_have_attribute("data-customer-id", "C-9999")
        await expect(customer).to_contain_text("not in the CRM")
        await expect(customer.locator("[data-testid=customer-plan]")).to_have_count(0)
        await expect(page.locator("[data-testid=customer-link-input]")).to_be_visible()
