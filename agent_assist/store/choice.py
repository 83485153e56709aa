"""Which store a process opens: PostgreSQL when ``[store] url`` is set, else the SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from agent_assist.config import Config
from agent_assist.store.base import Store
from agent_assist.store.postgres import PostgresStore
from agent_assist.store.sqlite import SqliteStore

STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
"""What either store raises when it refuses a write (the server answers ``store.failed``)."""


def open_store(config: Config, path: Path | None = None) -> Store:
    """``path`` overrides the configured SQLite file (tests, tools); a URL wins over both."""
    if config.store.url:
        return PostgresStore(config.store.url)
    return SqliteStore(path or config.resolve(config.store.path))
