"""``replay FILE --events`` and ``analyze FILE`` with no server named run in-process: no socket,
even while a server answers on the configured port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import CALLS

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from agent_assist.cli import main
code = main(sys.argv[1:])
print(json.dumps({
    "code": code,
    "websockets": sorted(m for m in sys.modules if m.startswith("websockets")),
    "server": sorted(m for m in sys.modules if m.startswith("agent_assist.server")),
}))
"""


def _listener() -> socket.socket:
    """Something answering on the configured port, to catch any connection attempt."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    return s


def _connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[store]\npath = "calls.sqlite3"\n[models]\ndir = "{REPO / "models"}"\n',
        encoding="utf-8",
    )
    return path


def _run(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_replay_with_no_server_writes_events_without_a_websocket(tmp_path: Path) -> None:
    with _listener() as listener:
        config = _config(tmp_path, listener.getsockname()[1])
        events = tmp_path / "events.jsonl"
        result = _run(
            "--config", str(config), "replay", str(CALLS / "en_demo.toml"), "--fast",
            "--events", str(events),
        )  # fmt: skip
        assert _connections(listener) == 0
    assert result == {"code": 0, "websockets": [], "server": []}
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    types = [m["type"] for m in lines]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    assert "transcript.final" in types and "suggestion" in types
    assert [m["seq"] for m in lines] == sorted(m["seq"] for m in lines)


def test_analyze_runs_in_process_and_stores_the_call(tmp_path: Path) -> None:
    with _listener() as listener:
        config = _config(tmp_path, listener.getsockname()[1])
        result = _run("--config", str(config), "analyze", str(CALLS / "en_demo.toml"))
        assert _connections(listener) == 0
    assert result == {"code": 0, "websockets": [], "server": []}
    assert (tmp_path / "calls.sqlite3").exists()
    again = _run("--config", str(config), "report", "--format", "json")
    assert again["code"] == 0
