"""The project's own example phrases per signal (``data/intents/<lang>.toml``).

They train the classifier head and nothing else: the evaluation sets are written
separately (``eval/``), and a test checks that no evaluation text is a training phrase.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources

from agent_assist.core.events import LANGUAGES as SUPPORTED
from agent_assist.errors import ConfigError

LANGUAGES = tuple(sorted(SUPPORTED))  # sorted: the digest of the examples is stable
NONE = "none"


@dataclass(frozen=True, slots=True)
class Example:
    language: str
    text: str
    labels: frozenset[str]


def _read(language: str) -> str:
    ref = resources.files("agent_assist") / "data" / "intents" / f"{language}.toml"
    return ref.read_text(encoding="utf-8")


def load_examples(languages: tuple[str, ...] = LANGUAGES) -> list[Example]:
    """Every phrase with its signals (none: an empty set); ``ConfigError`` on a bad file."""
    examples: list[Example] = []
    for language in languages:
        source = f"intents/{language}.toml"
        try:
            doc = tomllib.loads(_read(language))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
        problems: list[str] = []
        for i, raw in enumerate(doc.get("intent", [])):
            signal = raw.get("signal")
            phrases = raw.get("phrases")
            also = raw.get("also", [])
            if not isinstance(signal, str) or not isinstance(phrases, list) or not phrases:
                problems.append(f"intent[{i}]: needs a signal and a non-empty phrases list")
                continue
            labels = frozenset(() if signal == NONE else (signal, *also))
            examples += [Example(language, str(p), labels) for p in phrases]
        if problems:
            raise ConfigError(source, problems)
    return examples


def digest(languages: tuple[str, ...] = LANGUAGES) -> str:
    """sha256 of the phrase files: a head records it, so a stale head is detectable."""
    h = hashlib.sha256()
    for language in languages:
        h.update(_read(language).encode("utf-8"))
    return h.hexdigest()
