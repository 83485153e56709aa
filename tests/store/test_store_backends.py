"""The same store suite on SQLite and on a private PostgreSQL (real servers, no mocks)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent_assist.cluster.private_servers import PrivatePostgres
from agent_assist.store.base import CallFilter, CallRow, Store
from agent_assist.store.postgres import MIGRATIONS, PostgresStore, StoreUnavailable
from agent_assist.store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Any = SqliteStore(tmp_path / "calls.sqlite3")
    else:
        server: PrivatePostgres = request.getfixturevalue("postgres")
        opened = PostgresStore(server.create_database(f"t_{uuid.uuid4().hex[:12]}"))
    yield opened
    opened.close()


def call(call_id: str, started: str = "2026-12-01T10:00:00Z") -> CallRow:
    return CallRow(call_id, started, "en", f"title {call_id}", None, "text",
                   ("agent", "customer"), None, None, None, 0)  # fmt: skip


def event(store: Any, call_id: str, seq: int, type_: str, data: dict[str, Any]) -> str:
    body = json.dumps({"v": 1, "type": type_, "call_id": call_id, "seq": seq, "t_ms": seq * 100,
                       "data": data}, ensure_ascii=False)  # fmt: skip
    store.append_event(call_id, seq, type_, seq * 100, seq * 10, body, data)
    return body


def test_events_resume_exactly_and_transcript_follows(store: Any) -> None:
    store.create_call(call("c1"))
    bodies = [event(store, "c1", 1, "call.started", {})]
    bodies.append(event(store, "c1", 2, "transcript.final", {"utterance_id": "customer-0001",
                  "speaker": "customer", "end_ms": 900, "text": "解約したい 100%"}))  # fmt: skip
    bodies.append(event(store, "c1", 3, "signal", {"signal": "churn_risk"}))
    assert store.events_after("c1", 0) == bodies
    assert store.events_after("c1", 2) == bodies[2:]
    assert store.events_after("c1", 0, 2) == bodies[:2]  # a page of history
    assert store.get_call("c1").last_seq == 3
    assert store.transcript("c1") == [("customer", 200, 900, "解約したい 100%")]
    assert [e["seq"] for e in store.call_events("c1")] == [1, 2, 3]
    with pytest.raises((Exception,)):  # a sequence number is never stored twice
        event(store, "c1", 3, "signal", {"signal": "again"})
    assert store.events_after("c1", 0) == bodies


def test_calls_end_list_and_close_interrupted(store: Any) -> None:
    store.create_call(call("old", "2026-12-01T09:00:00Z"))
    store.create_call(call("new", "2026-12-01T11:00:00Z"))
    store.set_language("new", "ja")
    store.end_call("old", "2026-12-01T09:05:00Z", "hangup", 300000)
    assert [c.call_id for c in store.list_calls()] == ["new", "old"]
    old = store.get_call("old")
    assert (old.ended_at, old.end_reason, old.duration_ms) == ("2026-12-01T09:05:00Z", "hangup",
                                                               300000)  # fmt: skip
    assert store.get_call("new").language == "ja" and store.get_call("missing") is None
    assert store.close_interrupted("2026-12-01T12:00:00Z") == 1
    assert store.get_call("new").end_reason == "server_restart"


def test_users_and_tokens(store: Any) -> None:
    store.add_user("ann", "agent", None, "2026-12-01T00:00:00Z")
    store.add_user("sam", "supervisor", "hash", "2026-12-01T00:00:00Z")
    store.add_user("sam", "supervisor", None, "2026-12-01T00:00:00Z")  # keeps the password
    assert store.get_user("sam").password == "hash"
    assert [u.name for u in store.list_users()] == ["ann", "sam"]
    store.add_token("t1", "ann", "signin", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z")
    store.add_token("t2", "ann", "api", "2026-12-01T00:00:00Z", None)
    assert store.token_user("t1", ("signin",), "2026-12-01T00:30:00Z").name == "ann"
    assert store.token_user("t1", ("session",), "2026-12-01T00:30:00Z") is None
    assert store.token_user("t1", ("signin",), "2026-12-01T02:00:00Z") is None  # expired
    assert store.use_token("t1", "2026-12-01T00:31:00Z") is True
    assert store.use_token("t1", "2026-12-01T00:32:00Z") is False  # a replayed link
    assert store.token_user("t1", ("signin",), "2026-12-01T00:33:00Z") is None
    store.delete_token("t2")
    assert store.token_user("t2", ("api",), "2026-12-01T00:30:00Z") is None
    store.add_token("t3", "ann", "session", "2026-12-01T00:00:00Z", None)
    assert store.disable_user("ann") is True and store.disable_user("nobody") is False
    assert store.get_user("ann").disabled
    assert store.token_user("t3", ("session",), "2026-12-01T00:30:00Z") is None


def test_review_search_overrides_scores_recordings(store: Any) -> None:
    for cid, hour in (("a1", "09"), ("a2", "10"), ("b1", "11")):
        store.create_call(call(cid, f"2026-12-01T{hour}:00:00Z"))
    store.set_call_agent("a1", "ann")
    store.set_call_agent("a2", "ann")
    store.set_call_agent("b1", "bob")
    assert store.call_agent("a1") == "ann" and store.call_agent("zz") is None
    event(store, "a2", 1, "signal", {"signal": "churn_risk"})
    event(store, "b1", 1, "warning", {"rule_id": "pressure.last_chance"})
    event(store, "b1", 2, "transcript.final", {"utterance_id": "agent-0001",
          "speaker": "agent", "end_ms": 500, "text": "The Fiber plan is ready"})  # fmt: skip
    store.end_call("a1", "2026-12-01T09:10:00Z", "hangup", 1)

    def ids(**kw: Any) -> list[str]:
        return [row.call_id for row, _agent in store.find_calls(CallFilter(**kw))]

    assert ids() == ["b1", "a2", "a1"]
    assert ids(agent="ann") == ["a2", "a1"]
    assert ids(since="2026-12-01T10:00:00Z", until="2026-12-01T11:00:00Z") == ["a2"]
    assert ids(ended_only=True) == ["a1"]
    assert ids(signal="churn") == ["a2"]
    assert ids(warning="pressure") == ["b1"]
    assert ids(text="fiber") == ["b1"]
    assert ids(limit=1) == ["b1"]
    assert store.find_calls(CallFilter(agent="bob"))[0][1] == "bob"

    store.cache_score("a1", "card", 80.0, 75.0, False, '{"total": 80}')
    assert store.cached_score("a1", "card") == '{"total": 80}'
    assert store.cached_score("a1", "other") is None
    store.save_override("a1", "empathy", 5.0, "heard it", "sam", "2026-12-01T12:00:00Z")
    assert store.cached_score("a1", "card") is None  # an override invalidates the cache
    store.save_override("a1", "empathy", 7.0, "on review", "sam", "2026-12-01T12:01:00Z")
    assert store.overrides("a1") == [("empathy", 7.0, "on review", "sam",
                                      "2026-12-01T12:01:00Z")]  # fmt: skip
    store.clear_override("a1", "empathy")
    assert store.overrides("a1") == []

    store.set_recording("a1", "/audio/a1.flac", 16000)
    store.set_recording("a1", "/audio/a1-v2.flac", 16000)
    assert store.recording("a1") == "/audio/a1-v2.flac" and store.recording("b1") is None
    store.mark_analyzed("sha", "/in/a1.wav", "a1", "2026-12-01T13:00:00Z")
    assert store.analyzed_call("sha") == "a1"  # ended with a hangup: counts as done
    store.mark_analyzed("sha2", "/in/b1.wav", "b1", "2026-12-01T13:00:00Z")
    assert store.analyzed_call("sha2") is None  # never finished


def test_postgres_migrations_are_recorded_and_run_once(postgres: PrivatePostgres) -> None:
    url = postgres.create_database(f"m_{uuid.uuid4().hex[:12]}")
    first = PostgresStore(url)
    first.create_call(call("kept"))
    first.close()
    again = PostgresStore(url)  # a second start applies nothing and loses nothing
    assert again.get_call("kept") is not None
    again.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
        conn.execute("INSERT INTO schema_migrations (version) VALUES (999)")
    with pytest.raises(StoreUnavailable, match="newer than this release"):
        PostgresStore(url)


def test_open_calls_extent_recording_info_and_self_reported(store: Any) -> None:
    store.create_call(call("live", "2026-12-01T10:00:00Z"))
    store.create_call(call("done", "2026-12-01T11:00:00Z"))
    store.end_call("done", "2026-12-01T11:05:00Z", "hangup", 1000)
    assert [c.call_id for c in store.open_calls()] == ["live"]
    assert store.call_extent("live") == (0, 0)
    event(store, "live", 1, "call.started", {})
    event(store, "live", 2, "transcript.final", {"utterance_id": "agent-0001",
          "speaker": "agent", "end_ms": 950, "text": "hello"})  # fmt: skip
    assert store.call_extent("live") == (950, 20)  # the utterance reaches past its event
    store.set_recording("live", "/audio/live.flac", 8000)
    assert store.recording_info("live") == ("/audio/live.flac", 8000)
    assert store.recording_info("done") is None
    store.mark_self_reported("done")
    store.mark_self_reported("done")  # once is enough
    counted = [r.call_id for r, _ in store.find_calls(CallFilter(counted_only=True))]
    assert counted == ["live"]


def test_token_listing_rotation_revocation_and_purge(store: Any) -> None:
    store.add_user("src", "source", None, "2026-12-01T00:00:00Z")
    store.add_token("aa11" + "0" * 60, "src", "api", "2026-12-01T00:00:01Z", None)
    store.add_token("bb22" + "0" * 60, "src", "api", "2026-12-01T00:00:02Z", None)
    store.replace_api_tokens("src", "cc33" + "0" * 60, "2026-12-01T00:00:03Z")
    assert [t[0] for t in store.list_tokens("src")] == ["cc33" + "0" * 8]
    store.add_token("dd44" + "0" * 60, "src", "signin", "2026-12-01T00:00:04Z",
                    "2026-12-01T01:00:00Z")  # fmt: skip
    store.add_token("dd45" + "0" * 60, "src", "signin", "2026-12-01T00:00:05Z", None)
    assert store.delete_tokens_by_prefix("dd4") == 2  # ambiguous: nothing deleted
    assert store.delete_tokens_by_prefix("zz") == 0  # not hex
    assert store.delete_tokens_by_prefix("dd45") == 1
    assert store.use_token("cc33" + "0" * 60, "2026-12-01T00:10:00Z")
    assert store.purge_tokens("2026-12-01T02:00:00Z") == 2  # the spent and the expired
    assert store.list_tokens("src") == []


def test_postgres_restart_costs_one_request_and_no_data(postgres: PrivatePostgres) -> None:
    store = PostgresStore(postgres.create_database(f"r_{uuid.uuid4().hex[:12]}"))
    try:
        store.create_call(call("before"))
        postgres.stop()
        postgres.start()
        with pytest.raises(psycopg.OperationalError):
            store.get_call("before")  # the request that finds the connection dropped fails
        assert store.get_call("before") is not None  # the next reconnects; nothing lost
        store.create_call(call("after"))
        assert [c.call_id for c in store.list_calls()] == ["after", "before"]  # newest first
    finally:
        store.close()
    with pytest.raises(StoreUnavailable):
        store.get_call("before")
