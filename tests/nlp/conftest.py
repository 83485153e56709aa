"""The combined detector (rules + the model's second opinion), as the server builds it."""

from __future__ import annotations

import pytest

from agent_assist.config import Config
from agent_assist.core.signals import SignalDetector
from agent_assist.nlp.detector import build_detector


@pytest.fixture(scope="session")
def combined_detector(config: Config) -> SignalDetector:
    return build_detector(config)
