"""The websockets server: the console page over HTTP and the protocol on ``/ws``.

Connections only move messages between the protocol (sans-I/O), live calls and the hub's
bounded queues. Bad input gets a coded ``error`` and the connection stays open; a source
that disconnects mid-call ends its call with reason ``disconnected`` (nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
from http import HTTPStatus
from importlib import resources

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent_assist import __version__
from agent_assist.errors import AgentAssistError, ProtocolError
from agent_assist.protocol import (
    ENCODINGS,
    CallEnd,
    CallStart,
    Hello,
    TurnIn,
    encode_error,
    envelope,
    parse_audio_frame,
    parse_client_message,
)
from agent_assist.server.hub import Subscriber
from agent_assist.server.live_call import LiveCall
from agent_assist.server.services import Services

log = logging.getLogger(__name__)
WS_PATH = "/ws"


class AgentAssistServer:
    """Owns the live calls of one process; ``start()`` binds, ``close()`` ends calls cleanly."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.calls: dict[str, LiveCall] = {}
        self._server: Server | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        cfg = self.services.config.server
        self._server = await serve(
            self._handle,
            host or cfg.host,
            cfg.port if port is None else port,
            process_request=self._http,
            max_size=max(4 * cfg.max_frame_bytes, 1 << 20),
            max_queue=64,
        )
        sock = next(iter(self._server.sockets))
        bound_host, bound_port = sock.getsockname()[:2]
        return bound_host, bound_port

    async def close(self) -> None:
        for call in list(self.calls.values()):
            await call.end("server_shutdown")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- HTTP: the console page and a small read-only API -------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return None
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/api/calls":
            rows = [
                {
                    "call_id": r.call_id,
                    "started_at": r.started_at,
                    "language": r.language,
                    "title": r.title,
                    "ended_at": r.ended_at,
                    "end_reason": r.end_reason,
                    "last_seq": r.last_seq,
                }
                for r in self.services.store.list_calls()
            ]
            return _response(
                HTTPStatus.OK,
                json.dumps(rows, ensure_ascii=False).encode(),
                "application/json; charset=utf-8",
            )
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        if "/" in name or name.startswith("."):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        resource = resources.files("agent_assist") / "web" / name
        if not resource.is_file():
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return _response(HTTPStatus.OK, resource.read_bytes(), ctype)

    # -- websocket ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        hello = await self._handshake(ws)
        if hello is None:
            return
        sub = self.services.hub.add(hello.subscribe)
        sender = asyncio.create_task(self._send_loop(ws, sub))
        call: LiveCall | None = None
        try:
            await self._send(
                ws,
                envelope(
                    "ready",
                    None,
                    0,
                    0,
                    0,
                    {
                        "server": f"agent-assist {__version__}",
                        "protocol": 1,
                        "active_calls": [
                            {"call_id": c.call_id, "language": c.language, "last_seq": c.last_seq}
                            for c in self.calls.values()
                        ],
                    },
                ),
            )
            self._queue_backlog(sub, hello)
            async for message in ws:
                try:
                    call = await self._dispatch(message, hello, sub, call)
                except AgentAssistError as err:
                    await self._send(
                        ws,
                        encode_error(
                            err, _ref_seq(message), call_id=call.call_id if call else None
                        ),
                    )
                except Exception:
                    log.exception("unexpected failure handling a message")
                    internal = AgentAssistError(
                        "the server failed to process that message; the call continues"
                    )
                    await self._send(ws, encode_error(internal, _ref_seq(message)))
        except ConnectionClosed:
            pass
        finally:
            if call is not None and not call.ended:
                await call.end("disconnected")
            if call is not None:
                self.calls.pop(call.call_id, None)
            self.services.hub.remove(sub)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _handshake(self, ws: ServerConnection) -> Hello | None:
        try:
            first = await ws.recv()
        except ConnectionClosed:
            return None
        try:
            if isinstance(first, bytes):
                raise ProtocolError("send 'hello' before audio", code="protocol.hello_required")
            msg = parse_client_message(first)
            if not isinstance(msg, Hello):
                raise ProtocolError(
                    "the first message must be 'hello'", code="protocol.hello_required"
                )
            if msg.resume_call_id and self.services.store.get_call(msg.resume_call_id) is None:
                raise ProtocolError(f"unknown call {msg.resume_call_id!r}", code="call.unknown")
        except AgentAssistError as err:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode_error(err, None, fatal=True))
                await ws.close(1008, err.code)
            return None
        return msg

    def _queue_backlog(self, sub: Subscriber, hello: Hello) -> None:
        """Late joiners see active calls from the start; resumers from their last seq."""
        hub = self.services.hub
        if hello.resume_call_id:
            hub.backlog(sub, hello.resume_call_id, hello.resume_after_seq)
        for call_id in list(self.calls):
            if sub.wants(call_id) and call_id != hello.resume_call_id:
                hub.backlog(sub, call_id, 0)

    async def _dispatch(
        self, message: str | bytes, hello: Hello, sub: Subscriber, call: LiveCall | None
    ) -> LiveCall | None:
        max_frame = self.services.config.server.max_frame_bytes
        if isinstance(message, bytes):
            if call is None or call.ended:
                raise AgentAssistError("audio before 'call.start'", code="call.not_started")
            channel, pcm = parse_audio_frame(
                message, len(call.start.channels), max_frame, ENCODINGS[call.start.encoding]
            )
            call.push_audio(channel, pcm)
            return call
        msg = parse_client_message(message)
        if isinstance(msg, Hello):
            raise ProtocolError("'hello' was already received", code="protocol.bad_envelope")
        if hello.role != "source":
            raise ProtocolError(
                f"a console cannot send {type(msg).__name__}; connect as 'source'",
                code="protocol.unknown_type",
            )
        if isinstance(msg, CallStart):
            if call is not None:
                raise AgentAssistError(
                    "this connection already carries a call", code="call.already_started"
                )
            call = LiveCall(self.services, msg)
            sub.own_call = call.call_id
            self.calls[call.call_id] = call
            await call.begin()
            return call
        if call is None or call.ended:
            raise AgentAssistError("no call started on this connection", code="call.not_started")
        if isinstance(msg, TurnIn):
            call.push_turn(msg)
        elif isinstance(msg, CallEnd):
            await call.end(msg.reason)
            self.calls.pop(call.call_id, None)
        return call

    async def _send_loop(self, ws: ServerConnection, sub: Subscriber) -> None:
        while True:
            _call_id, _seq, body = await sub.queue.get()
            if sub.overflowed:
                await ws.close(1013, "client too slow; reconnect and resume")
                return
            await ws.send(body)

    async def _send(self, ws: ServerConnection, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(text)


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _ref_seq(message: str | bytes) -> int | None:
    if isinstance(message, bytes):
        return None
    try:
        seq = json.loads(message).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None
