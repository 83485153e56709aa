"""PostgreSQL storage: the ``Store`` protocol on a server every gateway of a cluster shares.

Chosen by ``[store] url = "postgresql://..."``. The schema is created and upgraded by
numbered migrations recorded in ``schema_migrations``; gateways starting together take
an advisory lock, so exactly one applies each step. Each event is written in one
transaction with its transcript row and the call's ``last_seq`` (as in SQLite). Event
bodies are kept as text, byte for byte what clients were sent, so a resume replays
exactly the same messages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from agent_assist.errors import AgentAssistError
from agent_assist.store.base import CallFilter, CallRow, UserRow
from agent_assist.store.sqlite import event_bodies_as_dicts

MIGRATION_LOCK = 7_146_221  # pg_advisory_xact_lock key: one migrator at a time

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE calls (
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
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created     BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE TABLE events (
    call_id    TEXT NOT NULL REFERENCES calls(call_id),
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    t_ms       INTEGER NOT NULL,
    emitted_ms BIGINT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX events_by_type ON events(type);
CREATE TABLE utterances (
    call_id      TEXT NOT NULL REFERENCES calls(call_id),
    utterance_id TEXT NOT NULL,
    speaker      TEXT NOT NULL,
    start_ms     INTEGER NOT NULL,
    end_ms       INTEGER NOT NULL,
    text         TEXT NOT NULL,
    PRIMARY KEY (call_id, utterance_id)
);
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'source')),
    password   TEXT,
    created_at TEXT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('signin', 'session', 'api')),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    used_at    TEXT
);
CREATE TABLE call_agents (
    call_id TEXT PRIMARY KEY REFERENCES calls(call_id),
    agent   TEXT NOT NULL
);
CREATE INDEX call_agents_by_agent ON call_agents(agent);
CREATE TABLE score_overrides (
    call_id TEXT NOT NULL REFERENCES calls(call_id),
    item_id TEXT NOT NULL,
    score   DOUBLE PRECISION NOT NULL,
    reason  TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (call_id, item_id)
);
CREATE TABLE scores (
    call_id    TEXT PRIMARY KEY REFERENCES calls(call_id),
    card       TEXT NOT NULL,
    total      DOUBLE PRECISION,
    auto_total DOUBLE PRECISION,
    failed     BOOLEAN NOT NULL,
    body       TEXT NOT NULL
);
CREATE TABLE recordings (
    call_id     TEXT PRIMARY KEY REFERENCES calls(call_id),
    path        TEXT NOT NULL,
    sample_rate INTEGER NOT NULL
);
CREATE TABLE analyzed (
    sha256      TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    call_id     TEXT NOT NULL REFERENCES calls(call_id),
    analyzed_at TEXT NOT NULL
);
""",
    ),
    (
        2,
        """
CREATE TABLE self_reported (
    call_id TEXT PRIMARY KEY REFERENCES calls(call_id)
);
""",
    ),
)
"""Append only: a new step gets the next number; a released step never changes."""

CALL_COLUMNS = (
    "call_id, started_at, language, title, customer_id, mode, channels, ended_at, "
    "end_reason, duration_ms, last_seq"
)


class StoreUnavailable(AgentAssistError):
    code = "store.unavailable"
    fault = "setup"


class PostgresStore:
    """``Store`` on PostgreSQL through one psycopg 3 connection (serialised by a lock)."""

    def __init__(self, url: str) -> None:
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at the [store] url: {exc}") from exc
        self._lock = threading.RLock()
        self.url = url
        self._closed = False
        try:
            self.schema_version = self._migrate()
        except Exception:
            self._db.close()
            raise

    # -- schema -------------------------------------------------------------------------

    def _migrate(self) -> int:
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            newest = max(v for v, _ in MIGRATIONS)
            if current > newest:
                raise StoreUnavailable(
                    f"the database schema is version {current}, newer than this release "
                    f"knows ({newest}): upgrade agent-assist",
                    code="store.schema_too_new",
                )
            for version, sql in MIGRATIONS:
                if version > current:
                    cur.execute(sql.encode())
                    cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        return newest

    def _conn(self) -> psycopg.Connection[Any]:
        """The connection, opened again after PostgreSQL dropped it (a restart, a failover):
        the request that found it broken failed; the next one goes through."""
        if self._closed:
            raise StoreUnavailable("the store was closed")
        if self._db.broken or self._db.closed:
            try:
                self._db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"PostgreSQL is unreachable: {exc}") from exc
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            db = self._conn()
            with db.transaction(), db.cursor() as cur:
                yield cur

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._conn().cursor() as cur:
            cur.execute(sql.encode(), args)
            return list(cur.fetchall())

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._tx() as cur:
            cur.execute(sql.encode(), args)
            return cur.rowcount

    # -- calls and events ---------------------------------------------------------------

    def create_call(self, row: CallRow) -> None:
        self._run(
            "INSERT INTO calls (call_id, started_at, language, title, customer_id, mode, "
            "channels, last_seq) VALUES (%s,%s,%s,%s,%s,%s,%s,0)",
            (row.call_id, row.started_at, row.language, row.title, row.customer_id, row.mode,
             ",".join(row.channels)),
        )  # fmt: skip

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
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO events (call_id, seq, type, t_ms, emitted_ms, body) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                (call_id, seq, type_, t_ms, emitted_ms, body),
            )
            if type_ == "transcript.final":
                cur.execute(
                    "INSERT INTO utterances VALUES (%s,%s,%s,%s,%s,%s) "
                    "ON CONFLICT (call_id, utterance_id) DO UPDATE SET speaker=EXCLUDED.speaker, "
                    "start_ms=EXCLUDED.start_ms, end_ms=EXCLUDED.end_ms, text=EXCLUDED.text",
                    (call_id, data["utterance_id"], data["speaker"], t_ms, data["end_ms"],
                     data["text"]),
                )  # fmt: skip
            cur.execute("UPDATE calls SET last_seq=%s WHERE call_id=%s", (seq, call_id))

    def end_call(self, call_id: str, ended_at: str, reason: str, duration_ms: int) -> None:
        self._run(
            "UPDATE calls SET ended_at=%s, end_reason=%s, duration_ms=%s WHERE call_id=%s",
            (ended_at, reason, duration_ms, call_id),
        )

    def set_language(self, call_id: str, language: str) -> None:
        self._run("UPDATE calls SET language=%s WHERE call_id=%s", (language, call_id))

    def get_call(self, call_id: str) -> CallRow | None:
        row = self._one(f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id=%s", (call_id,))
        return _call_row(row) if row else None

    def list_calls(self, limit: int = 100) -> list[CallRow]:
        rows = self._all(
            f"SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, created DESC LIMIT %s",
            (limit,),
        )
        return [_call_row(r) for r in rows]

    def events_after(self, call_id: str, after_seq: int, limit: int | None = None) -> list[str]:
        rows = self._all(
            "SELECT body FROM events WHERE call_id=%s AND seq>%s ORDER BY seq LIMIT %s",
            (call_id, after_seq, limit),
        )
        return [str(r[0]) for r in rows]

    def transcript(self, call_id: str) -> list[tuple[str, int, int, str]]:
        rows = self._all(
            "SELECT speaker, start_ms, end_ms, text FROM utterances WHERE call_id=%s "
            "ORDER BY start_ms, utterance_id",
            (call_id,),
        )
        return [(str(a), int(b), int(c), str(d)) for a, b, c, d in rows]

    def close_interrupted(self, ended_at: str) -> int:
        """Mark calls left open by a crash as ended; their events stay."""
        return self._run(
            "UPDATE calls SET ended_at=%s, end_reason='server_restart' WHERE ended_at IS NULL",
            (ended_at,),
        )

    def open_calls(self) -> list[CallRow]:
        """Calls without an end (live in a running server, or left open by a crash)."""
        rows = self._all(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE ended_at IS NULL ORDER BY created"
        )
        return [_call_row(r) for r in rows]

    def call_extent(self, call_id: str) -> tuple[int, int]:
        """(latest call time in ms any stored event or utterance reaches, latest emitted_ms)."""
        row = self._one(
            "SELECT COALESCE(MAX(t_ms), 0), COALESCE(MAX(emitted_ms), 0) FROM events "
            "WHERE call_id=%s",
            (call_id,),
        )
        end = self._one(
            "SELECT COALESCE(MAX(end_ms), 0) FROM utterances WHERE call_id=%s", (call_id,)
        )
        t_ms, emitted = (int(row[0]), int(row[1])) if row else (0, 0)
        return max(t_ms, int(end[0]) if end else 0), emitted

    def replace_api_tokens(self, user: str, token_hash: str, created_at: str) -> None:
        """Leave ``token_hash`` as the only API token of ``user`` (a rotated config token)."""
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM tokens WHERE user_name=%s AND kind='api' AND token_hash<>%s",
                (user, token_hash),
            )
            cur.execute(
                "INSERT INTO tokens (token_hash, user_name, kind, created_at) "
                "VALUES (%s,%s,'api',%s) ON CONFLICT (token_hash) DO NOTHING",
                (token_hash, user, created_at),
            )

    def list_tokens(self, user: str) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id: the first 12 hex digits of the hash, kind, created, expires, used) of a user."""
        rows = self._all(
            "SELECT substr(token_hash, 1, 12), kind, created_at, expires_at, used_at "
            "FROM tokens WHERE user_name=%s ORDER BY created_at",
            (user,),
        )
        return [(str(a), str(b), str(c), d, e) for a, b, c, d, e in rows]

    def delete_tokens_by_prefix(self, prefix: str) -> int:
        """Delete the token whose hash starts with ``prefix``, if exactly one does."""
        if not all(c in "0123456789abcdef" for c in prefix):
            return 0
        with self._tx() as cur:
            cur.execute("SELECT token_hash FROM tokens WHERE token_hash LIKE %s", (prefix + "%",))
            rows = cur.fetchall()
            if len(rows) == 1:
                cur.execute("DELETE FROM tokens WHERE token_hash=%s", (rows[0][0],))
        return len(rows)

    def purge_tokens(self, now: str) -> int:
        """Delete expired and spent tokens (they open nothing; the table stays small)."""
        return self._run(
            "DELETE FROM tokens WHERE used_at IS NOT NULL "
            "OR (expires_at IS NOT NULL AND expires_at <= %s)",
            (now,),
        )

    def mark_self_reported(self, call_id: str) -> None:
        self._run(
            "INSERT INTO self_reported VALUES (%s) ON CONFLICT (call_id) DO NOTHING", (call_id,)
        )

    def recording_info(self, call_id: str) -> tuple[str, int] | None:
        row = self._one("SELECT path, sample_rate FROM recordings WHERE call_id=%s", (call_id,))
        return (str(row[0]), int(row[1])) if row else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    # -- supervision: users and tokens, call agents, scores, recordings ------------------

    def add_user(self, name: str, role: str, password: str | None, created_at: str) -> None:
        self._run(
            "INSERT INTO users (name, role, password, created_at) VALUES (%s,%s,%s,%s) "
            "ON CONFLICT (name) DO UPDATE SET role=EXCLUDED.role, "
            "password=COALESCE(EXCLUDED.password, users.password), disabled=FALSE",
            (name, role, password, created_at),
        )

    def get_user(self, name: str) -> UserRow | None:
        row = self._one("SELECT name, role, password, disabled FROM users WHERE name=%s", (name,))
        return UserRow(row[0], row[1], row[2], bool(row[3])) if row else None

    def list_users(self) -> list[UserRow]:
        rows = self._all("SELECT name, role, password, disabled FROM users ORDER BY name")
        return [UserRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def disable_user(self, name: str) -> bool:
        with self._tx() as cur:
            cur.execute("UPDATE users SET disabled=TRUE WHERE name=%s", (name,))
            changed = cur.rowcount
            cur.execute("DELETE FROM tokens WHERE user_name=%s", (name,))
        return changed > 0

    def add_token(
        self, token_hash: str, user: str, kind: str, created_at: str, expires_at: str | None
    ) -> None:
        self._run(
            "INSERT INTO tokens (token_hash, user_name, kind, created_at, expires_at) "
            "VALUES (%s,%s,%s,%s,%s)",
            (token_hash, user, kind, created_at, expires_at),
        )

    def token_user(self, token_hash: str, kinds: tuple[str, ...], now: str) -> UserRow | None:
        """The enabled user behind a live (unexpired, unused) token of one of ``kinds``."""
        row = self._one(
            "SELECT u.name, u.role, u.password, u.disabled FROM tokens t "
            "JOIN users u ON u.name = t.user_name WHERE t.token_hash=%s AND t.used_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > %s) AND NOT u.disabled "
            "AND t.kind = ANY(%s)",
            (token_hash, now, list(kinds)),
        )
        return UserRow(row[0], row[1], row[2], bool(row[3])) if row else None

    def use_token(self, token_hash: str, now: str) -> bool:
        """Spend a one-time token; False when it was already spent (a replayed link)."""
        return (
            self._run(
                "UPDATE tokens SET used_at=%s WHERE token_hash=%s AND used_at IS NULL",
                (now, token_hash),
            )
            == 1
        )

    def delete_token(self, token_hash: str) -> None:
        self._run("DELETE FROM tokens WHERE token_hash=%s", (token_hash,))

    def set_call_agent(self, call_id: str, agent: str) -> None:
        self._run(
            "INSERT INTO call_agents (call_id, agent) VALUES (%s,%s) "
            "ON CONFLICT (call_id) DO UPDATE SET agent=EXCLUDED.agent",
            (call_id, agent),
        )

    def call_agent(self, call_id: str) -> str | None:
        row = self._one("SELECT agent FROM call_agents WHERE call_id=%s", (call_id,))
        return str(row[0]) if row else None

    def find_calls(self, f: CallFilter) -> list[tuple[CallRow, str | None]]:
        """Calls matching a review-page search, newest first, with their agent."""
        where, args = ["TRUE"], []
        if f.agent is not None:
            where.append("a.agent = %s")
            args.append(f.agent)
        if f.since:
            where.append("c.started_at >= %s")
            args.append(f.since)
        if f.until:
            where.append("c.started_at < %s")
            args.append(f.until)
        if f.ended_only:
            where.append("c.ended_at IS NOT NULL")
        if getattr(f, "counted_only", False):  # calls an agent typed in themselves: left out
            where.append("NOT EXISTS (SELECT 1 FROM self_reported s WHERE s.call_id = c.call_id)")
        for type_, key, value in (
            ("signal", "signal", f.signal),
            ("warning", "rule_id", f.warning),
        ):
            if value:
                where.append(
                    "EXISTS (SELECT 1 FROM events e WHERE e.call_id = c.call_id AND e.type = %s "
                    f"AND (e.body::jsonb -> 'data' ->> '{key}') ILIKE %s)"
                )
                args += [type_, _like_prefix(value)]
        if f.text:
            where.append(
                "(c.title ILIKE %s OR c.call_id ILIKE %s OR EXISTS (SELECT 1 FROM utterances u "
                "WHERE u.call_id = c.call_id AND u.text ILIKE %s))"
            )
            args += [f"%{_escape_like(f.text)}%"] * 3
        columns = ", ".join(f"c.{c.strip()}" for c in CALL_COLUMNS.split(","))
        sql = (
            f"SELECT {columns}, a.agent FROM calls c LEFT JOIN call_agents a "
            f"ON a.call_id = c.call_id WHERE {' AND '.join(where)} "
            "ORDER BY c.started_at DESC, c.created DESC LIMIT %s"
        )
        rows = self._all(sql, (*args, f.limit))
        return [(_call_row(r[:11]), r[11]) for r in rows]

    def call_events(self, call_id: str) -> list[dict[str, Any]]:
        return event_bodies_as_dicts(self.events_after(call_id, 0))

    def save_override(
        self, call_id: str, item_id: str, score: float, reason: str, by: str, at: str
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO score_overrides VALUES (%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (call_id, item_id) DO UPDATE SET score=EXCLUDED.score, "
                "reason=EXCLUDED.reason, by_user=EXCLUDED.by_user, at=EXCLUDED.at",
                (call_id, item_id, score, reason, by, at),
            )
            cur.execute("DELETE FROM scores WHERE call_id=%s", (call_id,))

    def clear_override(self, call_id: str, item_id: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM score_overrides WHERE call_id=%s AND item_id=%s", (call_id, item_id)
            )
            cur.execute("DELETE FROM scores WHERE call_id=%s", (call_id,))

    def overrides(self, call_id: str) -> list[tuple[str, float, str, str, str]]:
        rows = self._all(
            "SELECT item_id, score, reason, by_user, at FROM score_overrides WHERE call_id=%s "
            "ORDER BY item_id",
            (call_id,),
        )
        return [(str(a), float(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]

    def cached_score(self, call_id: str, card: str) -> str | None:
        row = self._one("SELECT body FROM scores WHERE call_id=%s AND card=%s", (call_id, card))
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
        self._run(
            "INSERT INTO scores VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (call_id) DO UPDATE SET "
            "card=EXCLUDED.card, total=EXCLUDED.total, auto_total=EXCLUDED.auto_total, "
            "failed=EXCLUDED.failed, body=EXCLUDED.body",
            (call_id, card, total, auto_total, failed, body),
        )

    def set_recording(self, call_id: str, path: str, sample_rate: int) -> None:
        self._run(
            "INSERT INTO recordings VALUES (%s,%s,%s) ON CONFLICT (call_id) DO UPDATE SET "
            "path=EXCLUDED.path, sample_rate=EXCLUDED.sample_rate",
            (call_id, path, sample_rate),
        )

    def recording(self, call_id: str) -> str | None:
        row = self._one("SELECT path FROM recordings WHERE call_id=%s", (call_id,))
        return str(row[0]) if row else None

    def analyzed_call(self, sha256: str) -> str | None:
        row = self._one(
            "SELECT a.call_id FROM analyzed a JOIN calls c ON c.call_id = a.call_id "
            "WHERE a.sha256=%s AND c.end_reason = 'hangup'",
            (sha256,),
        )
        return str(row[0]) if row else None

    def mark_analyzed(self, sha256: str, path: str, call_id: str, at: str) -> None:
        self._run(
            "INSERT INTO analyzed VALUES (%s,%s,%s,%s) ON CONFLICT (sha256) DO UPDATE SET "
            "path=EXCLUDED.path, call_id=EXCLUDED.call_id, analyzed_at=EXCLUDED.analyzed_at",
            (sha256, path, call_id, at),
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _escape_like(text) + "%"


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
