"""The composition root: everything a live call needs, built once from config (no globals).

The server, ``analyze`` and ``replay`` of a file in-process all build their services here.

Building fails early and clearly: a bad config, rule or policy file, or a missing or
corrupt model stops start-up with the problem and its fix.
"""

from __future__ import annotations

import fcntl
import logging
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.prompt_words import with_product_words
from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.cluster.gateway import remote_engine
from agent_assist.config import Config
from agent_assist.core.catalog import Catalog, parse_catalog
from agent_assist.core.events import CallEnded
from agent_assist.core.policy import PolicyBook, parse_policy
from agent_assist.core.signals import SignalDetector
from agent_assist.crm import CustomerDirectory, FileCustomerDirectory
from agent_assist.errors import ConfigError
from agent_assist.nlp.detector import build_detector
from agent_assist.protocol import encode_event, event_data
from agent_assist.runtime.hub import Hub
from agent_assist.store.audio_archive import encode_spool, spooled_ms
from agent_assist.store.base import CallRow, Store
from agent_assist.store.choice import open_store

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    store: Store
    hub: Hub
    detector: SignalDetector
    policy: PolicyBook
    engine: RecognitionEngine | None
    vad: SileroVad | None
    customers: CustomerDirectory | None = None
    data_dir: Path | None = None
    """Where the store keeps its files; the audio archive defaults to ``audio/`` in it."""
    store_lock: IO[bytes] | None = None
    """Held while this process is the one that owns the store's live calls."""
    reports_store: Store | None = None
    """A second connection to the store for searches and statistics on a worker thread."""

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.vad is not None:
            self.vad.close()
        self.store.close()
        if self.reports_store is not None:
            self.reports_store.close()
        if self.store_lock is not None:
            self.store_lock.close()


def load_policy(config: Config) -> PolicyBook:
    """The policy and the catalogue it offers from; every problem of both, by key path."""
    catalog = parse_catalog(*_read_data(config, config.policy.catalog, "catalog/nova_mobile.toml"))
    return parse_policy(*_read_data(config, config.policy.file, "policy/nova_mobile.toml"), catalog)


def load_customers(config: Config, catalog: Catalog) -> CustomerDirectory:
    path = config.resolve(config.policy.customers) if config.policy.customers else None
    return FileCustomerDirectory.load(path, catalog)


def _read_data(config: Config, configured: str, bundled: str) -> tuple[dict[str, object], str]:
    """A TOML data file: the configured one, else the bundled one under ``data/``."""
    if configured:
        path = config.resolve(configured)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigError("config.toml", [f"policy: cannot read {path}: {exc}"]) from exc
    else:
        ref = resources.files("agent_assist") / "data" / bundled
        text, source = ref.read_text(encoding="utf-8"), bundled
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc


def build_services(
    config: Config, *, with_asr: bool = True, store_path: Path | None = None
) -> Services:
    """Load rules, policy, models and storage; ``with_asr=False`` serves text-mode calls only."""
    policy = load_policy(config)  # data files first: their problems show before model loads
    customers = load_customers(config, policy.catalog)
    detector = build_detector(config)
    engine = vad = None
    if with_asr and config.cluster.redis_url:  # decodes run on `agent-assist worker`s
        engine, vad = remote_engine(config), SileroVad()
    elif with_asr:
        recognizer = WhisperRecognizer(
            with_product_words(config.asr, policy.catalog),
            config.resolve(config.models.dir),
            config.vad,
        )
        recognizer.warm_up()
        engine = RecognitionEngine(recognizer, config.asr, config.partials, config.degrade)
        vad = SileroVad()
    db_path = store_path or config.resolve(config.store.path)  # PostgreSQL: files beside it
    store = open_store(config, db_path)
    # in a cluster, calls open in the store may be live on another gateway: left alone
    lock = None if config.cluster.redis_url else take_store_lock(db_path)
    if lock is not None:  # no other process serves this store: its open calls are a crash's
        close_interrupted_calls(store, now_iso())
    hub = Hub(store, config.server.queue_size)
    return Services(
        config,
        store,
        hub,
        detector,
        policy,
        engine,
        vad,
        customers,
        db_path.parent,
        lock,
        open_store(config, db_path),
    )


def take_store_lock(db: Path) -> IO[bytes] | None:
    """An exclusive lock beside the database, or None while another process holds it (a
    running server beside ``analyze`` or an embedded replay): then calls still open in
    the store are that server's live calls, not a crash's, and are left alone. The
    kernel drops the lock when its process dies, even by ``kill -9``."""
    handle = (db.parent / f"{db.name}.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def close_interrupted_calls(store: Store, now: str) -> list[str]:
    """Close the calls a killed server left open: finish their recording from its spool,
    store a ``call.ended`` (reason ``server_restart``, the duration that was recorded or
    spoken), so a resuming console sees the call end like any other."""
    closed = []
    for row in store.open_calls():
        close_open_call(store, row, now, "server_restart")
        closed.append(row.call_id)
    return closed


def close_open_call(store: Store, row: CallRow, now: str, reason: str) -> tuple[int, str]:
    """Close one call whose process is gone (killed server, lost gateway): finish its
    recording from the spool when it can be reached, store its ``call.ended`` with the
    duration recorded or spoken. Returns the event's sequence number and body."""
    duration, emitted = store.call_extent(row.call_id)
    recording = store.recording_info(row.call_id)
    if recording is not None:
        path, rate = Path(recording[0]), recording[1]
        duration = max(duration, spooled_ms(path, rate))
        try:
            encode_spool(path, rate)
        except Exception:  # a damaged spool must not keep the server down
            log.exception("call %s: cannot encode its recording", row.call_id)
    event = CallEnded(call_id=row.call_id, t_ms=duration, reason=reason, duration_ms=duration)
    seq, emitted = row.last_seq + 1, max(emitted, duration)
    body = encode_event(event, seq, emitted)
    store.append_event(row.call_id, seq, event.TYPE, duration, emitted, body, event_data(event))
    store.end_call(row.call_id, now, reason, duration)
    return seq, body


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
