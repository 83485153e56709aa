"""``agent-assist users tokens | revoke | purge`` on a real store: tokens are listable by
id (never shown themselves), revocable one by one, and spent or expired ones purged."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_assist.cli.main import main
from agent_assist.store.sqlite import SqliteStore
from agent_assist.supervision.accounts import Authenticator, hash_token


def test_tokens_are_listed_revoked_and_purged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "calls.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{db}"\n', encoding="utf-8")
    store = SqliteStore(db)
    auth = Authenticator(store)
    auth.add_user("ann", "agent")
    kept, revoked = auth.api_token("ann"), auth.api_token("ann")
    link = auth.signin_token("ann", minutes=0)  # expires at once
    assert main(["--config", str(config), "users", "tokens", "ann"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 3 and not any(t in "\n".join(listing) for t in (kept, revoked, link))
    assert sorted(line.split()[1] for line in listing) == ["api", "api", "signin"]
    assert sum(line.endswith("expired") for line in listing) == 1

    assert main(["--config", str(config), "users", "revoke", hash_token(revoked)[:12]]) == 0
    assert auth.bearer_user(revoked) is None and auth.bearer_user(kept) is not None
    assert main(["--config", str(config), "users", "revoke", "abc"]) == 2  # too short
    assert main(["--config", str(config), "users", "purge"]) == 0
    assert "1 expired or spent" in capsys.readouterr().out
    assert [row[1] for row in store.list_tokens("ann")] == ["api"]
    store.close()
