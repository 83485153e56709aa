"""Every client mistake on the websocket comes back coded and with ``fault: client``.

One case per client code of the registry (``errors.CODES``), each provoked on a real
server; a new client code without a case here fails ``test_every_client_code_is_provoked``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.errors import CODES
from agent_assist.protocol import audio_frame
from tests.conftest import RunningServer
from tests.server.test_server import msg, recv_json, start_text_call

Case = Callable[[RunningServer], Awaitable[dict[str, Any]]]


async def _first_error(ws: ClientConnection) -> dict[str, Any]:
    while True:
        m = await recv_json(ws)
        if m["type"] == "error":
            return m


async def _after_hello(s: RunningServer, *messages: str | bytes) -> dict[str, Any]:
    async with connect(s.url) as ws:
        await ws.send(msg("hello", {"role": "source"}))
        for m in messages:
            await ws.send(m)
        return await _first_error(ws)


async def _in_text_call(s: RunningServer, make: Callable[[str], str | bytes]) -> dict[str, Any]:
    async with connect(s.url) as ws:
        call_id = await start_text_call(ws)
        await ws.send(make(call_id))
        return await _first_error(ws)


async def _first_message(s: RunningServer, text: str) -> dict[str, Any]:
    async with connect(s.url) as ws:
        await ws.send(text)
        return await _first_error(ws)


CASES: dict[str, Case] = {
    "protocol.bad_json": lambda s: _after_hello(s, "{nope"),
    "protocol.bad_envelope": lambda s: _after_hello(s, json.dumps({"v": 1, "type": "turn"})),
    "protocol.unsupported_version": lambda s: _after_hello(
        s, json.dumps({"v": 2, "type": "turn", "data": {}})
    ),
    "protocol.hello_required": lambda s: _first_message(s, msg("call.start", {})),
    "protocol.unknown_type": lambda s: _after_hello(s, msg("dance", {})),
    "protocol.bad_payload": lambda s: _after_hello(s, msg("call.start", {"language": "fr"})),
    "call.not_started": lambda s: _after_hello(
        s, msg("turn", {"speaker": "agent", "text": "hi", "end_ms": 10})
    ),
    "call.already_started": lambda s: _in_text_call(
        s, lambda _c: msg("call.start", {"mode": "text"})
    ),
    "call.unknown": lambda s: _after_hello(
        s, msg("feedback", {"suggestion_id": "s-1", "action": "used"}, "c-none")
    ),
    "feedback.unknown_suggestion": lambda s: _in_text_call(
        s, lambda c: msg("feedback", {"suggestion_id": "s-99", "action": "used"}, c)
    ),
    "customer.unknown": lambda s: _in_text_call(
        s, lambda c: msg("customer.link", {"customer_id": "nobody-at-all"}, c)
    ),
    "audio.bad_frame": lambda s: _in_text_call(s, lambda _c: b"\x09\x00\x00\x00"),
    "audio.frame_too_large": lambda s: _in_text_call(
        s, lambda _c: audio_frame(0, b"\x00" * 70_000 * 2)
    ),
    "audio.wrong_mode": lambda s: _in_text_call(s, lambda _c: audio_frame(0, b"\x00\x00" * 10)),
}


def test_every_client_code_is_provoked() -> None:
    wire_client = {c.code for c in CODES.values() if c.wire and c.fault == "client"}
    assert wire_client == set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
async def test_a_client_mistake_is_the_clients_fault(text_server: RunningServer, code: str) -> None:
    err = await CASES[code](text_server)
    assert err["data"]["code"] == code
    assert err["data"]["fault"] == "client"
    assert err["data"]["message"]
