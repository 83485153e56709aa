"""The composition root: everything a live call needs, built once from config (no globals).

The server, ``analyze`` and ``replay`` of a file in-process all build their services here.

Building fails early and clearly: a bad config, rule or policy file, or a missing or
corrupt model stops start-up with the problem and its fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import Config
from agent_assist.core.catalog import Catalog, parse_catalog
from agent_assist.core.policy import PolicyBook, parse_policy
from agent_assist.core.signals import SignalDetector
from agent_assist.crm import CustomerDirectory, FileCustomerDirectory
from agent_assist.errors import ConfigError
from agent_assist.nlp.detector import build_detector
from agent_assist.runtime.hub import Hub
from agent_assist.store.base import Store
from agent_assist.store.sqlite import SqliteStore


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

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.store.close()


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
    if with_asr:
        recognizer = WhisperRecognizer(
            config.asr, config.resolve(config.models.dir), config.vad
        )
        engine = RecognitionEngine(recognizer, config.asr, config.partials)
        vad = SileroVad()
    db_path = store_path or config.resolve(config.store.path)
    store = SqliteStore(db_path)
    store.close_interrupted(now_iso())
    hub = Hub(store, config.server.queue_size)
    return Services(
        config, store, hub, detector, policy, engine, vad, customers, db_path.parent
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
