"""SQLite storage: calls, their transcripts and every event, surviving restarts.

The ``Store`` protocol is all the runtime sees, so a PostgreSQL adapter can replace
this one. Each event is written in its own transaction together with its transcript
row, so a crash never leaves half an event behind.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id     TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    language    TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    customer_id TEXT,
    mode        TEXT NOT NULL,
    channels    TEXT NOT NULL,
    ended_at    TEXT,
    end_reason  TEXT,
    duration_ms INTEGER,
    last_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    call_id    TEXT NOT NULL REFERENCES calls(call_id),
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    t_ms       INTEGER NOT NULL,
    emitted_ms INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE IF NOT EXISTS utterances (
    call_id      TEXT NOT NULL REFERENCES calls(call_id),
    utterance_id TEXT NOT NULL,
    speaker      TEXT NOT NULL,
    start_ms     INTEGER NOT NULL,
    end_ms       INTEGER NOT NULL,
    text         TEXT NOT NULL,
    PRIMARY KEY (call_id, utterance_id)
);
CREATE INDEX IF NOT EXISTS events_by_type ON events(type);
"""


@dataclass(frozen=True)
class CallRow:
    call_id: str
    started_at: str
    language: str
    title: str
    customer_id: str | None
    mode: str
    channels: tuple[str, ...]
    ended_at: str | None
    end_reason: str | None
    duration_ms: int | None
    last_seq: int


class Store(Protocol):
    def create_call(self, row: CallRow) -> None: ...
    def append_event(
        self,
        call_id: str,
        seq: int,
        type_: str,
        t_ms: int,
        emitted_ms: int,
        body: str,
        data: dict[str, Any],
    ) -> None: ...
    def end_call(self, call_id: str, ended_at: str, reason: str, duration_ms: int) -> None: ...
    def set_language(self, call_id: str, language: str) -> None: ...
    def get_call(self, call_id: str) -> CallRow | None: ...
    def list_calls(self, limit: int = 100) -> list[CallRow]: ...
    def events_after(self, call_id: str, after_seq: int) -> list[str]: ...
    def transcript(self, call_id: str) -> list[tuple[str, int, int, str]]: ...
    def close_interrupted(self, ended_at: str) -> int: ...
    def close(self) -> None: ...


class SqliteStore:
    """``Store`` on one SQLite file (WAL mode), used from the event-loop thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def create_call(self, row: CallRow) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO calls (call_id, started_at, language, title, customer_id, mode, "
                "channels, last_seq) VALUES (?,?,?,?,?,?,?,0)",
                (
                    row.call_id,
                    row.started_at,
                    row.language,
                    row.title,
                    row.customer_id,
                    row.mode,
                    ",".join(row.channels),
                ),
            )

    def append_event(
        self,
        call_id: str,
        seq: int,
        type_: str,
        t_ms: int,
        emitted_ms: int,
        body: str,
        data: dict[str, Any],
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO events (call_id, seq, type, t_ms, emitted_ms, body) "
                "VALUES (?,?,?,?,?,?)",
                (call_id, seq, type_, t_ms, emitted_ms, body),
            )
            if type_ == "transcript.final":
                self._db.execute(
                    "INSERT OR REPLACE INTO utterances VALUES (?,?,?,?,?,?)",
                    (
                        call_id,
                        data["utterance_id"],
                        data["speaker"],
                        t_ms,
                        data["end_ms"],
                        data["text"],
                    ),
                )
            self._db.execute("UPDATE calls SET last_seq=? WHERE call_id=?", (seq, call_id))

    def end_call(self, call_id: str, ended_at: str, reason: str, duration_ms: int) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE calls SET ended_at=?, end_reason=?, duration_ms=? WHERE call_id=?",
                (ended_at, reason, duration_ms, call_id),
            )

    def set_language(self, call_id: str, language: str) -> None:
        with self._tx():
            self._db.execute("UPDATE calls SET language=? WHERE call_id=?", (language, call_id))

    def get_call(self, call_id: str) -> CallRow | None:
        cur = self._db.execute("SELECT * FROM calls WHERE call_id=?", (call_id,))
        row = cur.fetchone()
        return _call_row(row) if row else None

    def list_calls(self, limit: int = 100) -> list[CallRow]:
        cur = self._db.execute("SELECT * FROM calls ORDER BY started_at DESC LIMIT ?", (limit,))
        return [_call_row(r) for r in cur.fetchall()]

    def events_after(self, call_id: str, after_seq: int) -> list[str]:
        cur = self._db.execute(
            "SELECT body FROM events WHERE call_id=? AND seq>? ORDER BY seq", (call_id, after_seq)
        )
        return [r[0] for r in cur.fetchall()]

    def transcript(self, call_id: str) -> list[tuple[str, int, int, str]]:
        cur = self._db.execute(
            "SELECT speaker, start_ms, end_ms, text FROM utterances WHERE call_id=? "
            "ORDER BY start_ms, utterance_id",
            (call_id,),
        )
        return [tuple(r) for r in cur.fetchall()]

    def close_interrupted(self, ended_at: str) -> int:
        """Mark calls left open by a crash as ended; their events stay."""
        with self._tx():
            cur = self._db.execute(
                "UPDATE calls SET ended_at=?, end_reason='server_restart' WHERE ended_at IS NULL",
                (ended_at,),
            )
        return cur.rowcount

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _call_row(r: tuple[Any, ...]) -> CallRow:
    return CallRow(
        call_id=r[0],
        started_at=r[1],
        language=r[2],
        title=r[3],
        customer_id=r[4],
        mode=r[5],
        channels=tuple(r[6].split(",")),
        ended_at=r[7],
        end_reason=r[8],
        duration_ms=r[9],
        last_seq=r[10],
    )


def event_bodies_as_dicts(bodies: list[str]) -> list[dict[str, Any]]:
    return [json.loads(b) for b in bodies]
