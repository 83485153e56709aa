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
from http import HTTPStatus
from weakref import WeakKeyDictionary

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent_assist import __version__
from agent_assist.core.vocabulary import SIGNAL_NAMES
from agent_assist.errors import AgentAssistError, CallError, ProtocolError
from agent_assist.protocol import (
    ENCODINGS,
    CallEnd,
    CallStart,
    CustomerLink,
    Feedback,
    Hello,
    TurnIn,
    encode_error,
    encode_ready,
    parse_audio_frame,
    parse_client_message,
)
from agent_assist.runtime.desk import CallDesk, build_archive
from agent_assist.runtime.hub import Subscriber
from agent_assist.runtime.live_call import LiveCall
from agent_assist.runtime.services import Services, now_iso
from agent_assist.server.web import WebGate, text_response
from agent_assist.supervision.accounts import (
    ANONYMOUS,
    Authenticator,
    AuthError,
    User,
    configured_source_token,
)
from agent_assist.supervision.pricing import load_price_table
from agent_assist.supervision.review import Supervision
from agent_assist.telephony.gateway import TelephonyGateway

log = logging.getLogger(__name__)
WS_PATH = "/ws"


class AgentAssistServer:
    """Owns the live calls of one process; ``start()`` binds, ``close()`` ends calls cleanly."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._server: Server | None = None
        config = services.config
        store = services.store
        self.auth = Authenticator(store, config.auth.session_hours, config.auth.link_minutes)
        self.supervision = Supervision(store, config)
        self.archive = build_archive(services)
        self.desk = CallDesk(services, self.archive)
        self.calls = self.desk.calls
        self.web = WebGate(
            self.auth,
            config.auth,
            self.supervision,
            self.archive,
            load_price_table(config),
            now_iso,
            vocabulary={
                "signals": sorted(SIGNAL_NAMES),
                "warnings": sorted(rule.rule_id for rule in services.policy.compliance),
            },
        )
        self._users: WeakKeyDictionary[ServerConnection, User] = WeakKeyDictionary()
        self._agents: dict[str, str | None] = {}  # call id -> agent, for the hot path
        self.telephony = TelephonyGateway(self)
        source_token = configured_source_token(config.auth)
        if config.auth.enabled and source_token:
            if self.auth.user("source") is None:
                self.auth.add_user("source", "source")
            self.auth.register_api_token("source", source_token)

    def source_token_for(self, name: str = "replay") -> str:
        """An API token for a program this process runs against its own server (replay,
        demo, benchmarks): the user ``name`` with the source role, made when missing."""
        if self.auth.user(name) is None:
            self.auth.add_user(name, "source")
        return self.auth.api_token(name)

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        cfg = self.services.config.server
        self._server = await serve(
            self._handle,
            host or cfg.host,
            cfg.port if port is None else port,
            process_request=self._http,
            max_size=max(4 * cfg.max_frame_bytes, 1 << 20),
            max_queue=64,
            select_subprotocol=self.telephony.select_subprotocol,
        )
        await self.telephony.start()
        sock = next(iter(self._server.sockets))
        bound_host, bound_port = sock.getsockname()[:2]
        return bound_host, bound_port

    async def close(self) -> None:
        await self.telephony.close()
        await self.desk.end_all("server_shutdown")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- HTTP: the console page and a small read-only API -------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if self.telephony.owns(path):
            return self.telephony.check_request(connection, request)
        if path != WS_PATH:
            return self.web.handle(connection, request)
        user, how = self.web.identify(request, allow_query=True)
        if user is None:
            return text_response(
                HTTPStatus.UNAUTHORIZED, "sign in, or send a token (Authorization: Bearer)\n"
            )
        if not self.web.origin_ok(request) or (
            how == "cookie" and request.headers.get("Origin") is None
        ):
            return text_response(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        self._users[connection] = user
        return None

    def _user(self, ws: ServerConnection) -> User:
        return self._users.get(ws, ANONYMOUS)

    def agent_of(self, call_id: str) -> str | None:
        """The agent of a call, cached: subscribers ask on every event."""
        if call_id not in self._agents:
            self._agents[call_id] = self.services.store.call_agent(call_id)
        return self._agents[call_id]

    def may_view(self, user: User, call_id: str) -> bool:
        return user.is_supervisor or self.agent_of(call_id) == user.name

    # -- websocket ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and self.telephony.owns(ws.request.path.split("?", 1)[0]):
            await self.telephony.handle(ws)
            return
        hello = await self._handshake(ws)
        if hello is None:
            return
        user = self._user(ws)
        sub = self.services.hub.add(hello.subscribe)
        if not user.is_supervisor:
            sub.visible = lambda call_id: self.may_view(user, call_id)
        sender = asyncio.create_task(self._send_loop(ws, sub))
        call: LiveCall | None = None
        try:
            await self._send(
                ws,
                encode_ready(
                    f"agent-assist {__version__}",
                    [
                        {
                            "call_id": c.call_id,
                            "language": c.language,
                            "title": c.start.title,
                            "started_at": c.started_at,
                            "last_seq": c.last_seq,
                            "agent": self.agent_of(c.call_id),
                        }
                        for c in self.calls.values()
                        if self.may_view(user, c.call_id)
                    ],
                ),
            )
            self._queue_backlog(sub, hello)
            async for message in ws:
                try:
                    call = await self._dispatch(message, hello, sub, call, user)
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
                raise CallError(f"unknown call {msg.resume_call_id!r}", code="call.unknown")
            user = self._user(ws)
            for wanted in (msg.subscribe, msg.resume_call_id):
                if wanted not in (None, "*") and not self.may_view(user, str(wanted)):
                    raise AuthError(f"call {wanted} belongs to another agent")
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
        self,
        message: str | bytes,
        hello: Hello,
        sub: Subscriber,
        call: LiveCall | None,
        user: User = ANONYMOUS,
    ) -> LiveCall | None:
        max_frame = self.services.config.server.max_frame_bytes
        if isinstance(message, bytes):
            if call is None or call.ended:
                raise CallError("audio before 'call.start'", code="call.not_started")
            channel, pcm = parse_audio_frame(
                message, len(call.start.channels), max_frame, ENCODINGS[call.start.encoding]
            )
            call.push_audio(channel, pcm)
            return call
        msg = parse_client_message(message)
        if isinstance(msg, Hello):
            raise ProtocolError("'hello' was already received", code="protocol.bad_envelope")
        if isinstance(msg, Feedback):
            self.desk.feedback(msg)
            return call
        if isinstance(msg, CustomerLink):
            self.desk.link_customer(msg)
            return call
        if hello.role != "source":
            raise ProtocolError(
                f"a console cannot send {type(msg).__name__}; connect as 'source'",
                code="protocol.unknown_type",
            )
        if isinstance(msg, CallStart):
            if call is not None:
                raise CallError(
                    "this connection already carries a call", code="call.already_started"
                )
            agent = user.name if user.role == "agent" else msg.agent

            def before_start(new: LiveCall) -> None:
                self._agents[new.call_id] = agent  # known before call.started goes out
                sub.own_call = new.call_id

            return await self.desk.open(msg, agent, before_start)
        if call is None or call.ended:
            raise CallError("no call started on this connection", code="call.not_started")
        if isinstance(msg, TurnIn):
            call.push_turn(msg)
        elif isinstance(msg, CallEnd):
            await self.desk.end(call, msg.reason)
        return call

    async def open_call(self, start: CallStart, agent: str | None, source: str) -> LiveCall:
        """Start a call for a telephony adapter acting as the user ``source``: the desk,
        with its agent known first."""

        def before_start(new: LiveCall) -> None:
            self._agents[new.call_id] = agent

        return await self.desk.open(start, agent, before_start)

    async def end_call(self, call: LiveCall, reason: str) -> None:
        await self.desk.end(call, reason)

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


def _ref_seq(message: str | bytes) -> int | None:
    if isinstance(message, bytes):
        return None
    try:
        seq = json.loads(message).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None
