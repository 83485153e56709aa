"""SQLite storage: calls, their transcripts and every event, surviving restarts.

The ``Store`` protocol (``store/base.py``) is all the runtime sees, so a PostgreSQL
adapter can replace this one. Each event is written in its own transaction together
with its transcript row, so a crash never leaves half an event behind.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from agent_assist.store.base import CallFilter, CallRow, Store, UserRow

__all__ = ["CallFilter", "CallRow", "SqliteStore", "Store", "UserRow"]

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

SUPERVISION_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'source')),
    password   TEXT,
    created_at TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('signin', 'session', 'api')),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    used_at    TEXT
);
CREATE TABLE IF NOT EXISTS call_agents (
    call_id TEXT PRIMARY KEY REFERENCES calls(call_id),
    agent   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_agents_by_agent ON call_agents(agent);
CREATE TABLE IF NOT EXISTS score_overrides (
    call_id TEXT NOT NULL REFERENCES calls(call_id),
    item_id TEXT NOT NULL,
    score   REAL NOT NULL,
    reason  TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (call_id, item_id)
);
CREATE TABLE IF NOT EXISTS scores (
    call_id    TEXT PRIMARY KEY REFERENCES calls(call_id),
    card       TEXT NOT NULL,
    total      REAL,
    auto_total REAL,
    failed     INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recordings (
    call_id     TEXT PRIMARY KEY REFERENCES calls(call_id),
    path        TEXT NOT NULL,
    sample_rate INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS self_reported (
    call_id TEXT PRIMARY KEY REFERENCES calls(call_id)
);
CREATE TABLE IF NOT EXISTS analyzed (
    sha256      TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    call_id     TEXT NOT NULL REFERENCES calls(call_id),
    analyzed_at TEXT NOT NULL
);
"""


class SqliteStore:
    """``Store`` on one SQLite file (WAL mode), used from the event-loop thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._db.executescript(SUPERVISION_SCHEMA)
        self.path = path

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

    def events_after(self, call_id: str, after_seq: int, limit: int | None = None) -> list[str]:
        """Bodies of a call's events after ``after_seq``, in order; at most ``limit``."""
        cur = self._db.execute(
            "SELECT body FROM events WHERE call_id=? AND seq>? ORDER BY seq LIMIT ?",
            (call_id, after_seq, -1 if limit is None else limit),
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

    def open_calls(self) -> list[CallRow]:
        """Calls without an end (live in a running server, or left open by a crash)."""
        cur = self._db.execute("SELECT * FROM calls WHERE ended_at IS NULL ORDER BY rowid")
        return [_call_row(r) for r in cur.fetchall()]

    def call_extent(self, call_id: str) -> tuple[int, int]:
        """(latest call time in ms any stored event or utterance reaches, latest emitted_ms)."""
        t_ms, emitted = self._db.execute(
            "SELECT COALESCE(MAX(t_ms), 0), COALESCE(MAX(emitted_ms), 0) FROM events "
            "WHERE call_id=?",
            (call_id,),
        ).fetchone()
        (end_ms,) = self._db.execute(
            "SELECT COALESCE(MAX(end_ms), 0) FROM utterances WHERE call_id=?", (call_id,)
        ).fetchone()
        return max(int(t_ms), int(end_ms)), int(emitted)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # -- supervision: users and tokens, call agents, scores, recordings ------------------

    def add_user(self, name: str, role: str, password: str | None, created_at: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO users (name, role, password, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
                "password=COALESCE(excluded.password, users.password), disabled=0",
                (name, role, password, created_at),
            )

    def get_user(self, name: str) -> UserRow | None:
        row = self._db.execute(
            "SELECT name, role, password, disabled FROM users WHERE name=?", (name,)
        ).fetchone()
        return UserRow(row[0], row[1], row[2], bool(row[3])) if row else None

    def list_users(self) -> list[UserRow]:
        cur = self._db.execute("SELECT name, role, password, disabled FROM users ORDER BY name")
        return [UserRow(r[0], r[1], r[2], bool(r[3])) for r in cur.fetchall()]

    def disable_user(self, name: str) -> bool:
        with self._tx():
            cur = self._db.execute("UPDATE users SET disabled=1 WHERE name=?", (name,))
            self._db.execute("DELETE FROM tokens WHERE user=?", (name,))
        return cur.rowcount > 0

    def add_token(
        self, token_hash: str, user: str, kind: str, created_at: str, expires_at: str | None
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO tokens (token_hash, user, kind, created_at, expires_at) "
                "VALUES (?,?,?,?,?)",
                (token_hash, user, kind, created_at, expires_at),
            )

    def token_user(self, token_hash: str, kinds: tuple[str, ...], now: str) -> UserRow | None:
        """The enabled user behind a live (unexpired, unused) token of one of ``kinds``."""
        marks = ",".join("?" * len(kinds))
        row = self._db.execute(
            "SELECT u.name, u.role, u.password, u.disabled FROM tokens t "
            "JOIN users u ON u.name = t.user WHERE t.token_hash=? AND t.used_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > ?) AND u.disabled=0 "
            f"AND t.kind IN ({marks})",
            (token_hash, now, *kinds),
        ).fetchone()
        return UserRow(row[0], row[1], row[2], bool(row[3])) if row else None

    def use_token(self, token_hash: str, now: str) -> bool:
        """Spend a one-time token; False when it was already spent (a replayed link)."""
        with self._tx():
            cur = self._db.execute(
                "UPDATE tokens SET used_at=? WHERE token_hash=? AND used_at IS NULL",
                (now, token_hash),
            )
        return cur.rowcount == 1

    def replace_api_tokens(self, user: str, token_hash: str, created_at: str) -> None:
        """Leave ``token_hash`` as the only API token of ``user`` (a rotated config token)."""
        with self._tx():
            self._db.execute(
                "DELETE FROM tokens WHERE user=? AND kind='api' AND token_hash<>?",
                (user, token_hash),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO tokens (token_hash, user, kind, created_at) "
                "VALUES (?,?,'api',?)",
                (token_hash, user, created_at),
            )

    def list_tokens(self, user: str) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id: the first 12 hex digits of the hash, kind, created, expires, used) of a user."""
        cur = self._db.execute(
            "SELECT substr(token_hash, 1, 12), kind, created_at, expires_at, used_at "
            "FROM tokens WHERE user=? ORDER BY created_at",
            (user,),
        )
        return [tuple(r) for r in cur.fetchall()]

    def delete_tokens_by_prefix(self, prefix: str) -> int:
        """Delete the token whose hash starts with ``prefix``, if exactly one does."""
        if not all(c in "0123456789abcdef" for c in prefix):
            return 0
        with self._tx():
            rows = self._db.execute(
                "SELECT token_hash FROM tokens WHERE token_hash LIKE ?", (prefix + "%",)
            ).fetchall()
            if len(rows) == 1:
                self._db.execute("DELETE FROM tokens WHERE token_hash=?", rows[0])
        return len(rows)

    def purge_tokens(self, now: str) -> int:
        """Delete expired and spent tokens (they open nothing; the table stays small)."""
        with self._tx():
            cur = self._db.execute(
                "DELETE FROM tokens WHERE used_at IS NOT NULL "
                "OR (expires_at IS NOT NULL AND expires_at <= ?)",
                (now,),
            )
        return cur.rowcount

    def delete_token(self, token_hash: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM tokens WHERE token_hash=?", (token_hash,))

    def set_call_agent(self, call_id: str, agent: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO call_agents (call_id, agent) VALUES (?,?)", (call_id, agent)
            )

    def call_agent(self, call_id: str) -> str | None:
        row = self._db.execute(
            "SELECT agent FROM call_agents WHERE call_id=?", (call_id,)
        ).fetchone()
        return str(row[0]) if row else None

    def find_calls(self, f: CallFilter) -> list[tuple[CallRow, str | None]]:
        """Calls matching a review-page search, newest first, with their agent."""
        where, args = ["1=1"], []
        if f.agent is not None:
            where.append("a.agent = ?")
            args.append(f.agent)
        if f.since:
            where.append("c.started_at >= ?")
            args.append(f.since)
        if f.until:
            where.append("c.started_at < ?")
            args.append(f.until)
        if f.ended_only:
            where.append("c.ended_at IS NOT NULL")
        if f.counted_only:
            where.append("NOT EXISTS (SELECT 1 FROM self_reported s WHERE s.call_id = c.call_id)")
        for type_, key, value in (
            ("signal", "signal", f.signal),
            ("warning", "rule_id", f.warning),
        ):
            if value:
                where.append(
                    "EXISTS (SELECT 1 FROM events e WHERE e.call_id = c.call_id AND e.type = ? "
                    f"AND json_extract(e.body, '$.data.{key}') LIKE ?)"
                )
                args += [type_, value + "%"]
        if f.text:
            where.append(
                "(c.title LIKE ? OR c.call_id LIKE ? OR EXISTS (SELECT 1 FROM utterances u "
                "WHERE u.call_id = c.call_id AND u.text LIKE ?))"
            )
            args += [f"%{f.text}%"] * 3
        sql = (
            "SELECT c.*, a.agent FROM calls c LEFT JOIN call_agents a ON a.call_id = c.call_id "
            f"WHERE {' AND '.join(where)} ORDER BY c.started_at DESC, c.rowid DESC LIMIT ?"
        )
        cur = self._db.execute(sql, (*args, f.limit))
        return [(_call_row(r[:11]), r[11]) for r in cur.fetchall()]

    def call_events(self, call_id: str) -> list[dict[str, Any]]:
        return event_bodies_as_dicts(self.events_after(call_id, 0))

    def save_override(
        self, call_id: str, item_id: str, score: float, reason: str, by: str, at: str
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO score_overrides VALUES (?,?,?,?,?,?)",
                (call_id, item_id, score, reason, by, at),
            )
            self._db.execute("DELETE FROM scores WHERE call_id=?", (call_id,))

    def clear_override(self, call_id: str, item_id: str) -> None:
        with self._tx():
            self._db.execute(
                "DELETE FROM score_overrides WHERE call_id=? AND item_id=?", (call_id, item_id)
            )
            self._db.execute("DELETE FROM scores WHERE call_id=?", (call_id,))

    def overrides(self, call_id: str) -> list[tuple[str, float, str, str, str]]:
        cur = self._db.execute(
            "SELECT item_id, score, reason, by_user, at FROM score_overrides WHERE call_id=?",
            (call_id,),
        )
        return [tuple(r) for r in cur.fetchall()]

    def cached_score(self, call_id: str, card: str) -> str | None:
        row = self._db.execute(
            "SELECT body FROM scores WHERE call_id=? AND card=?", (call_id, card)
        ).fetchone()
        return str(row[0]) if row else None

    def cache_score(
        self,
        call_id: str,
        card: str,
        total: float | None,
        auto_total: float | None,
        failed: bool,
        body: str,
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?)",
                (call_id, card, total, auto_total, int(failed), body),
            )

    def mark_self_reported(self, call_id: str) -> None:
        with self._tx():
            self._db.execute("INSERT OR IGNORE INTO self_reported VALUES (?)", (call_id,))

    def set_recording(self, call_id: str, path: str, sample_rate: int) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO recordings VALUES (?,?,?)", (call_id, path, sample_rate)
            )

    def recording_info(self, call_id: str) -> tuple[str, int] | None:
        row = self._db.execute(
            "SELECT path, sample_rate FROM recordings WHERE call_id=?", (call_id,)
        ).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def recording(self, call_id: str) -> str | None:
        row = self._db.execute("SELECT path FROM recordings WHERE call_id=?", (call_id,)).fetchone()
        return str(row[0]) if row else None

    def analyzed_call(self, sha256: str) -> str | None:
        row = self._db.execute(
            "SELECT a.call_id FROM analyzed a JOIN calls c ON c.call_id = a.call_id "
            "WHERE a.sha256=? AND c.end_reason = 'hangup'",
            (sha256,),
        ).fetchone()
        return str(row[0]) if row else None

    def mark_analyzed(self, sha256: str, path: str, call_id: str, at: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO analyzed VALUES (?,?,?,?)", (sha256, path, call_id, at)
            )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:  # a refused COMMIT leaves the transaction open
                self._db.execute("ROLLBACK")
            raise


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
