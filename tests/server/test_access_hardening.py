"""Access hardening on the real server: sign-in throttling, revocation, TLS, HTTP headers,
existence oracles, and limits on what one request may cost."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from http.client import HTTPException
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_assist.config import Config
from agent_assist.store.sqlite import SqliteStore
from agent_assist.supervision.accounts import verify_password
from agent_assist.supervision.statistics import AgentStats, stats_csv
from tests.conftest import RunningServer, _serve
from tests.server.test_auth import agent_call, bearer, http
from tests.server.test_server import msg, recv_json


def with_auth(config: Config, **auth: Any) -> Config:
    return dataclasses.replace(config, auth=dataclasses.replace(config.auth, **auth))


def basic(name: str, password: str, host: str) -> dict[str, str]:
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}", "Origin": f"http://{host}"}


def host_of(server: RunningServer) -> str:
    return server.http.removeprefix("http://")


async def login(server: RunningServer, name: str, password: str) -> tuple[int, dict[str, Any]]:
    status, _, body = await asyncio.to_thread(
        http, server, "/api/login", "POST", basic(name, password, host_of(server))
    )
    return status, json.loads(body)


# -- 5: password sign-in -------------------------------------------------------------------


async def test_password_guessing_is_throttled_per_user_and_per_address(
    text_server: RunningServer,
) -> None:
    text_server.server.auth.add_user("kim", "agent", password="correct horse")
    for _ in range(5):
        assert (await login(text_server, "kim", "guess"))[0] == 401
    status, body = await login(text_server, "kim", "correct horse")  # even the right one waits
    assert status == 429 and body["error"]["code"] == "auth.throttled"
    # other names from the same address: the address runs out too
    codes = [(await login(text_server, f"user{i}", "guess"))[0] for i in range(20)]
    assert codes[0] == 401 and codes[-1] == 429


async def test_unknown_names_take_as_long_as_wrong_passwords(text_server: RunningServer) -> None:
    text_server.server.auth.add_user("kim", "agent", password="correct horse")

    async def timed(name: str) -> float:
        t0 = time.perf_counter()
        assert (await login(text_server, name, "wrong"))[0] == 401
        return time.perf_counter() - t0

    known, unknown = [], []
    for i in range(4):  # interleaved, so a busy moment of the machine hits both
        known.append(await timed("kim"))
        unknown.append(await timed(f"nobody{i}"))
    known, unknown = sorted(known)[1:3], sorted(unknown)[1:3]
    assert sum(unknown) > 0.5 * sum(known), (unknown, known)


async def test_password_hashing_runs_off_the_event_loop(text_server: RunningServer) -> None:
    """scrypt costs tens of ms: on the loop, every live call would stall while it runs."""
    text_server.server.auth.add_user("kim", "agent", password="correct horse")
    loop_thread = threading.get_ident()
    hashed_on: list[int] = []

    def recording(password: str, stored: str | None) -> bool:
        hashed_on.append(threading.get_ident())
        return verify_password(password, stored)

    text_server.server.web.check_password = recording
    assert (await login(text_server, "kim", "correct horse"))[0] == 200
    await asyncio.gather(*(login(text_server, name, "wrong") for name in ("kim", "nobody")))
    assert len(hashed_on) == 3  # an unknown name is hashed too (same cost, no oracle)
    assert loop_thread not in hashed_on


# -- 9: revocation -------------------------------------------------------------------------


async def test_a_rotated_source_token_replaces_the_old_and_a_disabled_source_stays_off(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENT_ASSIST_TOKEN", raising=False)
    db = tmp_path / "calls.sqlite3"
    async with _serve(with_auth(config, source_token="old-token-1"), db, with_asr=False) as s:
        assert await _source_ok(s, "old-token-1")
    async with _serve(with_auth(config, source_token="new-token-2"), db, with_asr=False) as s:
        assert await _source_ok(s, "new-token-2")
        assert not await _source_ok(s, "old-token-1")
        s.server.auth.disable_user("source")
    async with _serve(with_auth(config, source_token="new-token-2"), db, with_asr=False) as s:
        assert not await _source_ok(s, "new-token-2")
        assert s.server.auth.user("source") is None


async def _source_ok(server: RunningServer, token: str) -> bool:
    try:
        async with connect(f"{server.ws}?token={token}") as ws:
            await ws.send(msg("hello", {"role": "source"}))
            return (await recv_json(ws))["type"] == "ready"
    except InvalidStatus:
        return False


@pytest.fixture
async def quick_recheck(config: Config, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with _serve(
        with_auth(config, recheck_s=0.2), tmp_path / "calls.sqlite3", with_asr=False
    ) as running:
        yield running


@pytest.mark.parametrize("change", ["disable", "role", "logout"])
async def test_open_websockets_close_when_access_is_withdrawn(
    quick_recheck: RunningServer, tmp_path: Path, change: str
) -> None:
    server = quick_recheck
    server.server.auth.add_user("ann", "supervisor", password="pw-ann-1")
    status, _, _ = await asyncio.to_thread(
        http, server, "/api/login", "POST", basic("ann", "pw-ann-1", host_of(server))
    )
    token = server.token_for("ann", "supervisor")
    session = server.server.auth.login("ann", "pw-ann-1")
    assert status == 200 and session
    headers = {"Cookie": f"aa_session={session}"}
    origin = f"http://{host_of(server)}"
    ws = await connect(server.ws, additional_headers=headers, origin=origin)  # type: ignore[arg-type]
    api = await connect(f"{server.ws}?token={token}")
    for conn in (ws, api):
        await conn.send(msg("hello", {"role": "console", "subscribe": "*"}))
        assert (await recv_json(conn))["type"] == "ready"
    other = SqliteStore(server.db)  # another process: the `users` command
    if change == "disable":
        other.disable_user("ann")
        closed = [ws, api]
    elif change == "role":
        other.add_user("ann", "agent", None, "2026-01-01T00:00:00Z")
        closed = [ws, api]
    else:
        await asyncio.to_thread(http, server, "/api/logout", "POST", {**headers, "Origin": origin})
        closed = [ws]
    other.close()
    for conn in closed:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(conn.recv(), 5)
        assert conn.close_code == 1008
    if change == "logout":  # the API token is another credential: it stays
        await api.send(msg("hello", {"role": "console"}))
        assert (await recv_json(api))["data"]["code"] == "protocol.bad_envelope"
    await ws.close()
    await api.close()


# -- 10: TLS ---------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_built_in_tls_serves_https_and_wss_with_a_secure_cookie(
    config: Config, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server_cfg = dataclasses.replace(config.server, tls_cert=str(cert), tls_key=str(key))
    tls_config = dataclasses.replace(config, server=server_cfg)
    client = ssl.create_default_context(cafile=str(cert))
    async with _serve(tls_config, tmp_path / "calls.sqlite3", with_asr=False) as s:
        base = s.http.replace("http://", "https://")
        link = s.signin_url("ann", "agent").replace("http://", "https://")

        def fetch(url: str) -> tuple[int, str]:
            with urllib.request.urlopen(url, context=client) as r:
                return r.status, r.headers.get("Set-Cookie", "")

        status, cookie = await asyncio.to_thread(fetch, link)
        assert status == 200 and "; Secure" in cookie and "HttpOnly" in cookie
        assert (await asyncio.to_thread(fetch, base + "/healthz"))[0] == 200
        wss = s.url.replace("ws://", "wss://")
        async with connect(wss, ssl=client) as ws:
            await ws.send(msg("hello", {"role": "console"}))
            assert (await recv_json(ws))["type"] == "ready"
        with pytest.raises((OSError, HTTPException)):  # plain HTTP on TLS: nothing
            await asyncio.to_thread(http, s, "/healthz")


async def test_cookie_is_secure_behind_a_trusted_proxy_only(config: Config, tmp_path: Path) -> None:
    async with _serve(
        with_auth(config, trust_proxy=True), tmp_path / "a.sqlite3", with_asr=False
    ) as s:
        link = s.signin_url("ann", "agent").removeprefix(s.http)
        _, headers, _ = await asyncio.to_thread(
            http, s, link, "GET", {"X-Forwarded-Proto": "https"}
        )
        assert "; Secure" in headers["Set-Cookie"]
    async with _serve(config, tmp_path / "b.sqlite3", with_asr=False) as s:
        link = s.signin_url("ann", "agent").removeprefix(s.http)
        _, headers, _ = await asyncio.to_thread(
            http, s, link, "GET", {"X-Forwarded-Proto": "https"}
        )
        assert "Secure" not in headers["Set-Cookie"]  # anyone can send that header


# -- 6 and the oracles: what a request may ask and learn ------------------------------------


async def test_calls_limit_is_validated_and_capped(text_server: RunningServer) -> None:
    sup = bearer(text_server.token)
    for bad in ("-1", "abc", "0", "100000"):
        status, _, body = await asyncio.to_thread(
            http, text_server, f"/api/calls?limit={bad}", "GET", sup
        )
        assert status == 400 and json.loads(body)["error"]["code"] == "request.bad_limit", bad
    assert (await asyncio.to_thread(http, text_server, "/api/calls?limit=5", "GET", sup))[0] == 200


async def test_another_agents_call_reads_exactly_like_no_call(text_server: RunningServer) -> None:
    ann_call = await agent_call(text_server, "ann")
    ben = bearer(text_server.token_for("ben", "agent"))
    answers = []
    for call_id in (ann_call, "c-20990101-000000-abcdef"):
        for sub in ("", "/score", "/audio"):
            status, _, body = await asyncio.to_thread(
                http, text_server, f"/api/calls/{call_id}{sub}", "GET", ben
            )
            err = json.loads(body)["error"]
            answers.append((status, err["code"], err["message"].replace(call_id, "ID")))
    assert answers[:3] == answers[3:] and answers[0][:2] == (404, "call.unknown")
    token = text_server.token_for("ben", "agent")
    replies = []
    for call_id in (ann_call, "c-20990101-000000-abcdef"):
        for hello in (
            {"role": "console", "subscribe": call_id},
            {"role": "console", "resume": {"call_id": call_id, "after_seq": 0}},
        ):
            async with connect(f"{text_server.ws}?token={token}") as ws:
                await ws.send(msg("hello", hello))
                err = (await recv_json(ws))["data"]
                replies.append((err["code"], err["message"].replace(call_id, "ID")))
    assert replies[:2] == replies[2:] and replies[0][0] == "call.unknown"


async def test_every_answer_forbids_framing(text_server: RunningServer) -> None:
    sup = bearer(text_server.token)
    for path in ("/", "/login.html", "/wall.html", "/review.html", "/api/me", "/nope", "/healthz"):
        _, headers, _ = await asyncio.to_thread(http, text_server, path, "GET", sup)
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Frame-Options"] == "DENY", path


async def test_non_ascii_basic_credentials_get_a_coded_401(text_server: RunningServer) -> None:
    host = host_of(text_server)
    for value in ("Basic \u00e9\u00e9\u00e9", "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        status, body = await asyncio.to_thread(raw_post, host, "/api/login", value)
        assert status == 401 and json.loads(body)["error"]["code"] == "auth.required", value


def raw_post(host: str, path: str, authorization: str) -> tuple[int, bytes]:
    """A request urllib would refuse to send: a Latin-1 header value, as some clients do."""
    name, port = host.rsplit(":", 1)
    with socket.create_connection((name, int(port)), timeout=10) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
            f"Authorization: {authorization}\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


async def test_with_auth_off_only_known_host_names_are_served(
    config: Config, tmp_path: Path
) -> None:
    async with _serve(with_auth(config, enabled=False), tmp_path / "a.sqlite3", False) as s:
        port = s.http.rsplit(":", 1)[1]
        ok = await asyncio.to_thread(http, s, "/api/me", "GET", {"Host": f"localhost:{port}"})
        assert ok[0] == 200
        rebound = await asyncio.to_thread(
            http, s, "/api/me", "GET", {"Host": f"attacker.example:{port}"}
        )
        assert rebound[0] == 403 and json.loads(rebound[2])["error"]["code"] == "auth.bad_host"
        upgrade = await asyncio.to_thread(http, s, "/ws", "GET", {"Host": "attacker.example"})
        assert upgrade[0] == 403


def test_csv_cells_cannot_start_a_formula() -> None:
    stats = [AgentStats(name) for name in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)")]
    rows = stats_csv(stats).splitlines()[1:]
    assert [r.split(",")[0].strip('"')[:2] for r in rows] == ["'=", "'+", "'-", "'@"]


async def test_statistics_over_many_calls_do_not_stall_the_event_loop(
    text_server: RunningServer,
) -> None:
    call_id = await agent_call(text_server, "ann")
    with sqlite3.connect(text_server.db) as conn:  # 300 more calls like it, for the report
        for i in range(300):
            copy = f"{call_id}-{i:03d}"
            conn.execute(
                "INSERT INTO calls SELECT ?, started_at, language, title, customer_id, mode, "
                "channels, ended_at, end_reason, duration_ms, last_seq FROM calls "
                "WHERE call_id=?",
                (copy, call_id),
            )
            conn.execute(
                "INSERT INTO events SELECT ?, seq, type, t_ms, emitted_ms, body FROM events "
                "WHERE call_id=?",
                (copy, call_id),
            )
            conn.execute("INSERT INTO call_agents VALUES (?, 'ann')", (copy,))
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    status, _, body = await asyncio.to_thread(
        http, text_server, "/api/stats", "GET", bearer(text_server.token)
    )
    took = time.perf_counter() - t0
    done = True
    await task
    assert status == 200 and json.loads(body)[0]["calls"] == 301
    # on the loop the scan is one stall as long as the request; off it, only noise
    assert max(gaps) < took / 2, (max(gaps), took)


async def test_audio_ranges_are_read_alone_and_capped(text_server: RunningServer) -> None:
    call_id = await agent_call(text_server, "ann")
    archive = text_server.server.archive
    assert archive is not None
    blob = bytes(range(256)) * (5 * 4096 + 7)  # a 5 MiB "recording"
    path = archive.folder / f"{call_id}.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    sup = bearer(text_server.token)
    status, headers, body = await asyncio.to_thread(
        http, text_server, f"/api/calls/{call_id}/audio", "GET", {**sup, "Range": "bytes=10-19"}
    )
    assert status == 206 and body == blob[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(blob)}"
    status, headers, body = await asyncio.to_thread(
        http, text_server, f"/api/calls/{call_id}/audio", "GET", {**sup, "Range": "bytes=100-"}
    )
    assert status == 206 and body == blob[100 : 100 + (4 << 20)]  # at most 4 MiB an answer
    assert headers["Content-Range"] == f"bytes 100-{100 + (4 << 20) - 1}/{len(blob)}"
