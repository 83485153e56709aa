"""The real server: calls linked to a CRM record, the agent's marks from a console, all stored."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect

from agent_assist.clients.replay import load_script, replay
from tests.conftest import CALLS, RunningServer
from tests.server.test_server import db_rows, msg, recv_json, recv_until


async def test_customer_link_and_feedback_from_a_console(text_server: RunningServer) -> None:
    async with connect(text_server.url) as source, connect(text_server.url) as console:
        await console.send(msg("hello", {"role": "console", "subscribe": "*"}))
        assert (await recv_json(console))["type"] == "ready"
        await source.send(msg("hello", {"role": "source"}))
        await recv_json(source)
        start = {"language": "en", "mode": "text", "customer_id": "C-1001"}
        await source.send(msg("call.start", start, seq=2))
        started = await recv_json(source)
        call_id = started["call_id"]
        linked = await recv_json(source)
        assert linked["type"] == "customer.linked" and linked["data"]["known"] is True
        assert linked["data"]["usage_gb"] == 18.2 and linked["data"]["tier"] == "A"
        turn = {
            "speaker": "customer",
            "text": "My phone gets really slow every month.",
            "end_ms": 900,
        }
        await source.send(msg("turn", turn, call_id, seq=3))
        seen = await recv_until(console, "suggestion")
        suggestion = seen[-1]["data"]
        assert suggestion["offer_id"] == "data_50gb" and "18.2 of your 20 GB" in suggestion["line"]

        mark = {"suggestion_id": suggestion["suggestion_id"], "action": "dismissed"}
        await console.send(msg("feedback", mark, call_id, seq=2))
        fb = await recv_until(console, "offer.feedback")
        assert fb[-1]["data"] == {
            "suggestion_id": suggestion["suggestion_id"],
            "offer_id": "data_50gb",
            "kind": "upsell",
            "action": "dismissed",
        }
        await console.send(msg("feedback", {"suggestion_id": "s-99", "action": "used"}, call_id))
        err = await recv_until(console, "error")
        assert err[-1]["data"]["code"] == "feedback.unknown_suggestion"
        await console.send(msg("customer.link", {"customer_id": "C-404"}, call_id))
        err = await recv_until(console, "error")
        assert err[-1]["data"]["code"] == "customer.unknown"
        await console.send(msg("feedback", {"suggestion_id": "s-1", "action": "used"}, "c-gone"))
        err = await recv_until(console, "error")
        assert err[-1]["data"]["code"] == "call.unknown"

        # the same complaint again: the dismissed offer does not come back (the next-ranked
        # one, fiber for the Home 300 Mbps line the customer also holds, may)
        await source.send(msg("turn", {**turn, "end_ms": 2000}, call_id, seq=4))
        await source.send(msg("call.end", {}, call_id, seq=5))
        rest = await recv_until(source, "call.ended")
        later = [m["data"]["offer_id"] for m in rest if m["type"] == "suggestion"]
        assert later == ["data_50gb", "fiber_1g"]  # the first, then only the next-ranked
        decisions = [m["data"] for m in rest if m["type"] == "decision"]
        assert {"rule_id": "offer.upsell_on_usage.v1", "decided_by": "suppress.dismissed.v1"} in [
            {k: d[k] for k in ("rule_id", "decided_by")} for d in decisions
        ]
    stored = [
        json.loads(b)["type"]
        for (b,) in db_rows(text_server.db, "SELECT body FROM events WHERE call_id=?", call_id)
    ]
    assert {"customer.linked", "offer.feedback", "decision", "suggestion"} <= set(stored)


async def test_replay_sends_the_scripts_customer_and_marks(text_server: RunningServer) -> None:
    result = await replay(
        text_server.url, load_script(CALLS / "en_marked_accepted_cross_sell.toml"), fast=True
    )
    types = [e["type"] for e in result.events]
    assert "customer.linked" in types and "offer.feedback" in types
    offers = [e["data"]["offer_id"] for e in result.events if e["type"] == "suggestion"]
    assert offers == ["fiber_1g", "mesh_wifi"]
