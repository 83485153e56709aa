"""Shared fixtures: real rules, real models, real servers on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from agent_assist.asr.vad import SileroVad
from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import Config, load_config
from agent_assist.core.policy import PolicyBook
from agent_assist.core.signals import SignalDetector
from agent_assist.nlp.detector import build_detector
from agent_assist.runtime.services import build_services, load_policy
from agent_assist.server.app import AgentAssistServer

REPO = Path(__file__).resolve().parent.parent
SHARED_AUDIO = REPO.parent / "shared" / "audio"
SAMPLES = REPO / "agent_assist" / "data" / "samples"
CALLS = Path(__file__).resolve().parent / "calls"


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(REPO / "config.toml")


@pytest.fixture(scope="session")
def detector() -> SignalDetector:
    return build_detector()


@pytest.fixture(scope="session")
def policy_book(config: Config) -> PolicyBook:
    return load_policy(config)


@pytest.fixture(scope="session")
def recognizer(config: Config) -> WhisperRecognizer:
    return WhisperRecognizer(config.asr, config.resolve(config.models.dir))


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    return SileroVad()


def shared_audio(relative: str) -> Path:
    path = SHARED_AUDIO / relative
    if not path.exists():  # a missing test input is a broken set-up, never a pass
        pytest.fail(f"shared test audio {path} is missing: the checkout needs ../shared beside it")
    return path


class RunningServer:
    """A real server on 127.0.0.1:0 with its own SQLite file.

    ``url`` carries a supervisor's API token (``?token=``), so protocol clients connect as
    before; ``signin_url`` makes a browser session for any user.
    """

    def __init__(self, server: AgentAssistServer, host: str, port: int, db: Path) -> None:
        self.server = server
        self.ws = f"ws://{host}:{port}/ws"
        self.http = f"http://{host}:{port}"
        self.db = db
        self.token = self.token_for("test-supervisor", "supervisor")
        self.url = f"{self.ws}?token={self.token}"

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /api/health``: its status (200 accepting, 503 full) and report."""
        try:
            with urllib.request.urlopen(f"{self.http}/api/health", timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:  # 503 still carries the report
            return refused.code, json.loads(refused.read())

    def token_for(self, name: str, role: str) -> str:
        """An API token for ``name`` (created with ``role`` if new)."""
        if self.server.auth.user(name) is None:
            self.server.auth.add_user(name, role)
        return self.server.auth.api_token(name)

    def signin_url(self, name: str, role: str, next_path: str = "") -> str:
        """A one-time sign-in link for ``name`` (created with ``role`` if new)."""
        if self.server.auth.user(name) is None:
            self.server.auth.add_user(name, role)
        link = f"{self.http}/login?token={self.server.auth.signin_token(name)}"
        return f"{link}&next={quote(next_path, safe='')}" if next_path else link


@pytest.fixture
async def text_server(config: Config, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server without speech recognition: text-mode calls only (fast)."""
    async with _serve(config, tmp_path / "calls.sqlite3", with_asr=False) as running:
        yield running


@pytest.fixture
async def asr_server(config: Config, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with _serve(config, tmp_path / "calls.sqlite3", with_asr=True) as running:
        yield running


class _serve:
    def __init__(self, config: Config, db: Path, with_asr: bool) -> None:
        self.config, self.db, self.with_asr = config, db, with_asr

    async def __aenter__(self) -> RunningServer:
        services = await asyncio.to_thread(
            build_services, self.config, with_asr=self.with_asr, store_path=self.db
        )
        self.server = AgentAssistServer(services)
        host, port = await self.server.start("127.0.0.1", 0)
        return RunningServer(self.server, host, port, self.db)

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()
        self.server.services.close()
