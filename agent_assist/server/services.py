"""Everything a server needs, built once at start-up and passed down (no globals).

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
from agent_assist.core.policy import PolicyBook, parse_policy
from agent_assist.core.signals import Analyzer, NegationScope, SignalDetector, SignalRule
from agent_assist.errors import ConfigError
from agent_assist.nlp.spacy_analyzer import SpacyAnalyzer, load_rule_set
from agent_assist.server.hub import Hub
from agent_assist.store.sqlite import SqliteStore, Store

LANGUAGES = ("ja", "en")


@dataclass
class Services:
    config: Config
    store: Store
    hub: Hub
    detector: SignalDetector
    policy: PolicyBook
    engine: RecognitionEngine | None
    vad: SileroVad | None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.store.close()


def build_detector() -> SignalDetector:
    analyzers: dict[str, Analyzer] = {}
    rules: dict[str, SignalRule] = {}
    negation: dict[str, NegationScope] = {}
    for lang in LANGUAGES:
        rule_set = load_rule_set(lang)
        analyzers[lang] = SpacyAnalyzer(rule_set)
        rules.update(rule_set.rules)
        negation[lang] = rule_set.negation
    return SignalDetector(analyzers, rules, negation)


def load_policy(config: Config) -> PolicyBook:
    if config.policy.file:
        path = config.resolve(config.policy.file)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigError("config.toml", [f"policy.file: cannot read {path}: {exc}"]) from exc
    else:
        ref = resources.files("agent_assist") / "data" / "policy" / "nova_mobile.toml"
        text, source = ref.read_text(encoding="utf-8"), "policy/nova_mobile.toml"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    return parse_policy(doc, source)


def build_services(
    config: Config, *, with_asr: bool = True, store_path: Path | None = None
) -> Services:
    """Load rules, policy, models and storage; ``with_asr=False`` serves text-mode calls only."""
    detector = build_detector()
    policy = load_policy(config)
    engine = vad = None
    if with_asr:
        recognizer = WhisperRecognizer(config.asr, config.resolve(config.models.dir))
        engine = RecognitionEngine(recognizer, config.asr, config.partials)
        vad = SileroVad()
    store = SqliteStore(store_path or config.resolve(config.store.path))
    store.close_interrupted(now_iso())
    hub = Hub(store, config.server.queue_size)
    return Services(config, store, hub, detector, policy, engine, vad)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
