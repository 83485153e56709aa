"""The signal detector built from the bundled rules (and the model, when configured).

Offline tools (evaluation, training, benchmarks) build it here without the runtime.
"""

from __future__ import annotations

from agent_assist.config import Config
from agent_assist.core.events import LANGUAGES
from agent_assist.core.signals import (
    Analyzer,
    NegationScope,
    SecondOpinion,
    SignalDetector,
    SignalRule,
)
from agent_assist.errors import ConfigError
from agent_assist.model_files import read_manifest, verify_model
from agent_assist.nlp.signal_model import OnnxSignalClassifier, SentenceEncoder
from agent_assist.nlp.spacy_analyzer import SpacyAnalyzer, load_rule_set


def build_detector(
    config: Config | None = None, *, second_opinion: SecondOpinion | None = None
) -> SignalDetector:
    """Rules for both languages, plus the model's second opinion when ``config`` enables it.

    Without a config (unit tests of the rules) the detector is rules only, unless a
    ``second_opinion`` is injected (training replays out-of-fold scores through it).
    """
    analyzers: dict[str, Analyzer] = {}
    rules: dict[str, SignalRule] = {}
    negation: dict[str, NegationScope] = {}
    for lang in LANGUAGES:
        rule_set = load_rule_set(lang)
        analyzers[lang] = SpacyAnalyzer(rule_set)
        rules.update(rule_set.rules)
        negation[lang] = rule_set.negation
    if config is not None and config.nlp.second_opinion:
        second_opinion = load_signal_classifier(config)
    return SignalDetector(analyzers, rules, negation, second_opinion)


def load_signal_classifier(config: Config) -> OnnxSignalClassifier:
    """The encoder (verified by sha256, or ``ModelError`` naming the fix) and the head."""
    models_dir = config.resolve(config.models.dir)
    manifest = read_manifest(models_dir / "manifest.toml")
    spec = manifest.get(config.nlp.encoder)
    if spec is None:
        raise ConfigError(
            "config.toml",
            [f"nlp.encoder: {config.nlp.encoder!r} is not in the manifest ({sorted(manifest)})"],
        )
    folder = verify_model(models_dir, spec)
    encoder = SentenceEncoder(folder / spec.files[0].name, threads=config.nlp.threads)
    return OnnxSignalClassifier(encoder, models_dir / config.nlp.head)
