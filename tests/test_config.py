"""Configuration: defaults when absent, every problem listed with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_assist.config import load_config
from agent_assist.errors import ConfigError
from tests.conftest import REPO


def test_repo_config_loads_and_matches_defaults() -> None:
    cfg = load_config(REPO / "config.toml")
    assert cfg.server.host == "127.0.0.1"
    assert cfg.asr.languages["en"].model == "tiny.en"
    assert cfg.asr.languages["ja"].model == "base"
    assert cfg.resolve("models") == REPO / "models"


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml")
    assert cfg.server.port == 8765 and cfg.root == tmp_path.resolve()


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[server]\nport = "eighty"\ncolour = "blue"\n'
        "[vad]\nthreshold = 2.0\n"
        '[asr]\ndefault_language = "fr"\n[asr.languages.de]\nmodel = "base"\n'
        '[demo]\ncalls = ["xx"]\n[bogus]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    for expected in [
        "server.port: expected int, got str",
        "server.colour: unknown key",
        "vad.threshold",
        "asr.default_language",
        "asr.languages.de",
        "demo.calls: unknown sample call 'xx'",
        "bogus: unknown section",
    ]:
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_cluster_and_store_url_problems_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[store]\nurl = "mysql://db"\n'
        '[cluster]\nredis_url = "http://redis"\ninflight = 0\nworker_batch = 99\n'
        'claim_timeout_s = 10.0\nresubmit_s = 5.0\nworker_languages = ["fr"]\n'
        "worker_calls = 0\nlost_call_grace_s = -1\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    for expected in [
        "cluster.redis_url: must start with redis://, rediss:// or unix://",
        "store.url: must be empty (SQLite) or start with postgresql://",
        "cluster.inflight: must be 1..64",
        "cluster.worker_batch: must be 1..32",
        "cluster.claim_timeout_s: at least 1 s, and resubmit_s at least that",
        "cluster.worker_languages: 'fr' is not in asr.languages",
        "cluster.worker_calls: must be 1..10000",
        "cluster.lost_call_grace_s: must be >= 0",
    ]:
        assert expected in problems, problems
    cfg = load_config(REPO / "config.toml")
    assert cfg.cluster.redis_url == "" and cfg.store.url == ""  # one process by default
