"""What the runtime and supervision need from storage: rows and one complete protocol.

``SqliteStore`` implements it; a second implementation (PostgreSQL, say) is written
against ``Store`` alone: nothing outside ``store/`` names the SQLite class except the
composition root and the commands that open the database file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    password: str | None
    disabled: bool


@dataclass(frozen=True)
class CallFilter:
    """A review-page search; ``agent`` None means every agent (supervisors only)."""

    agent: str | None = None
    since: str = ""
    until: str = ""
    signal: str = ""
    warning: str = ""
    text: str = ""
    ended_only: bool = False
    limit: int = 200


class Store(Protocol):
    """Calls and their events; users and tokens; review data (agents, overrides, score
    cache, recordings, analysed files)."""

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
    def add_user(self, name: str, role: str, password: str | None, created_at: str) -> None: ...
    def get_user(self, name: str) -> UserRow | None: ...
    def list_users(self) -> list[UserRow]: ...
    def disable_user(self, name: str) -> bool: ...
    def add_token(
        self, token_hash: str, user: str, kind: str, created_at: str, expires_at: str | None
    ) -> None: ...
    def token_user(self, token_hash: str, kinds: tuple[str, ...], now: str) -> UserRow | None: ...
    def use_token(self, token_hash: str, now: str) -> bool: ...
    def delete_token(self, token_hash: str) -> None: ...
    def set_call_agent(self, call_id: str, agent: str) -> None: ...
    def call_agent(self, call_id: str) -> str | None: ...
    def find_calls(self, f: CallFilter) -> list[tuple[CallRow, str | None]]: ...
    def call_events(self, call_id: str) -> list[dict[str, Any]]: ...
    def save_override(
        self, call_id: str, item_id: str, score: float, reason: str, by: str, at: str
    ) -> None: ...
    def clear_override(self, call_id: str, item_id: str) -> None: ...
    def overrides(self, call_id: str) -> list[tuple[str, float, str, str, str]]: ...
    def cached_score(self, call_id: str, card: str) -> str | None: ...
    def cache_score(
        self,
        call_id: str,
        card: str,
        total: float | None,
        auto_total: float | None,
        failed: bool,
        body: str,
    ) -> None: ...
    def set_recording(self, call_id: str, path: str, sample_rate: int) -> None: ...
    def recording(self, call_id: str) -> str | None: ...
    def analyzed_call(self, sha256: str) -> str | None: ...
    def mark_analyzed(self, sha256: str, path: str, call_id: str, at: str) -> None: ...
