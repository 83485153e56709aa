"""Access control on the real server: tokens, sessions, sign-in links, origins, and agents
refused other agents' calls over HTTP and the websocket."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent_assist.clients.replay import load_script, replay
from tests.conftest import CALLS, RunningServer
from tests.server.test_server import msg, recv_json, recv_until


def http(
    server: RunningServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(server.http + path, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def agent_call(server: RunningServer, agent: str) -> str:
    result = await replay(server.url, load_script(CALLS / "en_demo.toml"), fast=True, agent=agent)
    return result.call_id


async def test_nothing_is_open_without_credentials(text_server: RunningServer) -> None:
    for path in ["/api/calls", "/api/me", "/api/stats"]:
        status, _, _ = await asyncio.to_thread(http, text_server, path)
        assert status == 401, path
    status, headers, _ = await asyncio.to_thread(http, text_server, "/wall.html")
    assert status == 302 and headers["Location"].startswith("/login.html")
    assert (await asyncio.to_thread(http, text_server, "/login.html"))[0] == 200
    with pytest.raises(InvalidStatus) as info:
        async with connect(text_server.ws):
            pass
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with connect(text_server.ws + "?token=not-a-token"):
            pass


async def test_websocket_origin_must_be_the_pages_own(text_server: RunningServer) -> None:
    host = text_server.http.removeprefix("http://")
    async with connect(text_server.url, origin=f"http://{host}") as ws:  # type: ignore[arg-type]
        await ws.send(msg("hello", {"role": "console", "subscribe": "*"}))
        assert (await recv_json(ws))["type"] == "ready"
    with pytest.raises(InvalidStatus) as info:
        async with connect(text_server.url, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403


async def test_signin_link_works_once_and_sets_a_strict_httponly_cookie(
    text_server: RunningServer,
) -> None:
    link = text_server.signin_url("sam", "agent").removeprefix(text_server.http)
    status, headers, body = await asyncio.to_thread(http, text_server, link)
    assert status == 200 and b"Signed in as sam" in body
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";")[0]
    status, _, body = await asyncio.to_thread(
        http, text_server, "/api/me", "GET", {"Cookie": session}
    )
    assert status == 200 and json.loads(body) == {"name": "sam", "role": "agent"}
    again = await asyncio.to_thread(http, text_server, link)
    assert again[0] == 302 and again[1]["Location"] == "/login.html?error=link"
    # tokens are stored hashed: the database never holds the cookie's value
    rows = text_server.server.supervision.store._db.execute("SELECT token_hash FROM tokens")
    assert session.split("=", 1)[1] not in {r[0] for r in rows}


async def test_password_sign_in(text_server: RunningServer) -> None:
    text_server.server.auth.add_user("kim", "supervisor", password="correct horse")
    host = text_server.http.removeprefix("http://")
    origin = {"Origin": f"http://{host}"}

    def basic(pw: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"kim:{pw}".encode()).decode(),
            **origin,
        }

    bad = await asyncio.to_thread(http, text_server, "/api/login", "POST", basic("wrong"))
    assert bad[0] == 401
    ok = await asyncio.to_thread(http, text_server, "/api/login", "POST", basic("correct horse"))
    assert ok[0] == 200 and json.loads(ok[2])["next"] == "/wall.html"
    assert "HttpOnly" in ok[1]["Set-Cookie"]


async def test_agent_is_refused_another_agents_call_over_http_and_websocket(
    text_server: RunningServer,
) -> None:
    ann_call = await agent_call(text_server, "ann")
    ben_call = await agent_call(text_server, "ben")
    ben = bearer(text_server.token_for("ben", "agent"))
    assert (await asyncio.to_thread(http, text_server, f"/api/calls/{ann_call}", "GET", ben))[
        0
    ] == 404  # read exactly like a call that does not exist
    assert (await asyncio.to_thread(http, text_server, f"/api/calls/{ben_call}", "GET", ben))[
        0
    ] == 200
    for sub in ("/score", "/audio"):
        path = f"/api/calls/{ann_call}{sub}"
        assert (await asyncio.to_thread(http, text_server, path, "GET", ben))[0] == 404
    _, _, body = await asyncio.to_thread(http, text_server, "/api/calls", "GET", ben)
    assert [c["call_id"] for c in json.loads(body)] == [ben_call]
    wall = await asyncio.to_thread(http, text_server, "/wall.html", "GET", ben)
    assert wall[0] == 403
    token = text_server.token_for("ben", "agent")
    for hello in (
        {"role": "console", "subscribe": ann_call},
        {"role": "console", "subscribe": "*", "resume": {"call_id": ann_call, "after_seq": 0}},
    ):
        async with connect(f"{text_server.ws}?token={token}") as ws:
            await ws.send(msg("hello", hello))
            err = await recv_json(ws)
            assert err["data"]["code"] == "call.unknown" and err["data"]["fatal"] is True
            await ws.wait_closed()


async def test_an_agent_watching_every_call_sees_only_their_own(text_server: RunningServer) -> None:
    token = text_server.token_for("ann", "agent")
    async with connect(f"{text_server.ws}?token={token}") as console:
        await console.send(msg("hello", {"role": "console", "subscribe": "*"}))
        await recv_json(console)
        await agent_call(text_server, "ben")
        mine = await agent_call(text_server, "ann")
        seen = await recv_until(console, "call.ended")
    assert {m["call_id"] for m in seen} == {mine}


async def test_an_agents_own_source_is_attributed_to_them(text_server: RunningServer) -> None:
    token = text_server.token_for("ann", "agent")
    result = await replay(
        f"{text_server.ws}?token={token}",
        load_script(CALLS / "en_demo.toml"),
        fast=True,
        agent="ben",
    )
    assert text_server.server.supervision.store.call_agent(result.call_id) == "ann"


async def test_override_needs_a_supervisor_a_reason_and_the_pages_origin(
    text_server: RunningServer,
) -> None:
    call_id = await agent_call(text_server, "ann")
    host = text_server.http.removeprefix("http://")
    path = f"/api/calls/{call_id}/override?item=closing&score=0.5&reason=summarised%20well"
    ann = bearer(text_server.token_for("ann", "agent"))
    assert (await asyncio.to_thread(http, text_server, path, "POST", ann))[0] == 403
    sup = bearer(text_server.token)
    evil = {**sup, "Origin": "http://evil.example"}
    assert (await asyncio.to_thread(http, text_server, path, "POST", evil))[0] == 403
    no_reason = path.split("&reason")[0]
    status, _, body = await asyncio.to_thread(http, text_server, no_reason, "POST", sup)
    assert status == 400 and json.loads(body)["error"]["code"] == "score.reason_required"
    ok = {**sup, "Origin": f"http://{host}"}
    status, _, body = await asyncio.to_thread(http, text_server, path, "POST", ok)
    item = next(i for i in json.loads(body)["items"] if i["item_id"] == "closing")
    assert status == 200 and item["auto"] == 0.0 and item["final"] == 0.5
    assert item["override"]["by"] == "test-supervisor"
