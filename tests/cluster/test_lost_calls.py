"""Which open calls count as lost, and ending each once, on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from agent_assist.cluster.lost_calls import LOST_REASON, LostCalls
from agent_assist.runtime.services import close_open_call
from agent_assist.store.base import CallRow
from agent_assist.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def open_call(store: SqliteStore, call_id: str) -> None:
    store.create_call(CallRow(call_id, "2026-12-03T10:00:00Z", "en", "", None, "text",
                              ("agent", "customer"), None, None, None, 0))  # fmt: skip
    body = json.dumps({"v": 1, "type": "call.started", "call_id": call_id, "seq": 1,
                       "t_ms": 0, "emitted_ms": 0, "data": {}})  # fmt: skip
    store.append_event(call_id, 1, "call.started", 0, 0, body, {})


def test_a_call_no_live_gateway_holds_is_due_after_the_grace_and_ended_once(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "calls.sqlite3")
    for call_id in ("mine", "held", "orphan", "back"):
        open_call(store, call_id)
    clock = Clock()
    lost = LostCalls(store, lambda: ["mine"], 5.0, close_open_call,
                     lambda: "2026-12-03T10:01:00Z", clock)  # fmt: skip
    assert lost.due({"held"}) == []  # first seen unheld now: the grace starts
    clock.now += 4.9
    assert lost.due({"held"}) == []
    clock.now += 0.2
    assert lost.due({"held", "back"}) == ["orphan"]  # "back" is held again: starts over
    clock.now += 4.9
    assert lost.due({"held"}) == ["orphan"]  # "back" unheld again from now
    ended = lost.end("orphan")
    assert ended is not None and ended[0] == 2
    assert json.loads(ended[1])["data"]["reason"] == LOST_REASON
    assert lost.end("orphan") is None  # a second sweep finds it ended
    row = store.get_call("orphan")
    assert row is not None and row.end_reason == LOST_REASON and row.last_seq == 2
    clock.now += 4.9
    assert lost.due({"held"}) == []
    clock.now += 0.2
    assert lost.due({"held"}) == ["back"]
    assert {r.call_id for r in store.open_calls()} == {"mine", "held", "back"}
    assert lost.ended == ["orphan"]
    store.close()
