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
import ssl
from http import HTTPStatus
from weakref import WeakKeyDictionary

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent_assist import __version__
from agent_assist.cluster.gateway import ClusterLink
from agent_assist.cluster.lost_calls import LostCalls
from agent_assist.core.vocabulary import SIGNAL_NAMES
from agent_assist.errors import (
    AgentAssistError,
    CallError,
    CapacityError,
    ConfigError,
    ProtocolError,
)
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
from agent_assist.runtime.services import Services, close_open_call, now_iso
from agent_assist.server.admission import Admission
from agent_assist.server.web import WebGate, json_response, text_response
from agent_assist.store.choice import STORE_ERRORS
from agent_assist.supervision.accounts import (
    ANONYMOUS,
    Authenticator,
    User,
    configured_source_token,
)
from agent_assist.supervision.pricing import load_price_table
from agent_assist.supervision.review import Supervision
from agent_assist.telephony.gateway import TelephonyGateway

log = logging.getLogger(__name__)
WS_PATH = "/ws"
ANSWERED_ERRORS: tuple[type[Exception], ...] = (AgentAssistError, *STORE_ERRORS)
"""Failures answered with a coded error while the connection goes on."""
HEALTH_PATH = "/api/health"
AGENT_CACHE = 10_000


class AgentAssistServer:
    """Owns the live calls of one process; ``start()`` binds, ``close()`` ends calls cleanly."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._server: Server | None = None
        self.cluster: ClusterLink | None = None
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
        self.admission = Admission(lambda: self.services.config.server, services.engine)
        if services.reports_store is not None:
            self.web.reader = Supervision(services.reports_store, config)
        self._users: WeakKeyDictionary[ServerConnection, User] = WeakKeyDictionary()
        self._credentials: WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            WeakKeyDictionary()
        )
        self._open = 0  # websockets past their upgrade
        self._recheck: asyncio.Task[None] | None = None
        self._agents: dict[str, str | None] = {}  # call id -> agent, for the hot path
        self._sources: dict[str, str] = {}  # live call id -> the user whose source carries it
        self._detached: dict[str, asyncio.Task[None]] = {}  # calls whose source dropped
        store.purge_tokens(self.auth.now_iso())  # expired and spent tokens open nothing
        self.telephony = TelephonyGateway(self)
        source_token = configured_source_token(config.auth)
        if config.auth.enabled and source_token:
            self.auth.set_source_token("source", source_token)

    def source_token_for(self, name: str = "replay") -> str:
        """An API token for a program this process runs against its own server (replay,
        demo, benchmarks): the user ``name`` with the source role, made when missing."""
        if self.auth.user(name) is None:
            self.auth.add_user(name, "source")
        return self.auth.api_token(name)

    async def start(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        cfg = self.services.config.server
        tls = self._tls_context()
        self.web.tls = tls is not None
        self._server = await serve(
            self._handle,
            host or cfg.host,
            cfg.port if port is None else port,
            process_request=self._http,
            max_size=max(4 * cfg.max_frame_bytes, 1 << 20),
            max_queue=64,
            ssl=tls,
            select_subprotocol=self.telephony.select_subprotocol,
        )
        await self.telephony.start()
        if self.services.config.auth.enabled:
            self._recheck = asyncio.create_task(self._recheck_loop(), name="recheck credentials")
        sock = next(iter(self._server.sockets))
        bound_host, bound_port = sock.getsockname()[:2]
        if self.services.config.cluster.redis_url:  # events to and from other gateways
            config = self.services.config
            grace = config.cluster.lost_call_grace_s
            lost = LostCalls(self.services.store, self.desk_calls, grace, close_open_call, now_iso)
            self.cluster = ClusterLink(
                config, self._deliver_remote, self.load, held=self.desk_calls, lost=lost
            )
            self.services.hub.relay = self.cluster.publish
            await self.cluster.start()
            self.web.cluster_view = self.cluster.view
        return bound_host, bound_port

    def desk_calls(self) -> list[str]:
        """The calls this process holds live."""
        return list(self.calls)

    def _deliver_remote(self, call_id: str, seq: int, body: str, last: bool) -> None:
        """An event of a call another gateway holds. Its agent is stored just after the
        call starts there, so a cached "no agent" is asked again until one appears."""
        if call_id in self._agents and self._agents[call_id] is None:
            del self._agents[call_id]
        self.services.hub.deliver(call_id, seq, body, last)

    def load(self) -> dict[str, object]:
        """This gateway's load, reported to the cluster."""
        engine = self.services.engine
        audio = sum(1 for call in self.calls.values() if call.mode == "audio")
        return {"calls": len(self.calls), "audio_calls": audio,
                "lag_ms": engine.lag_ms() if engine else 0}  # fmt: skip

    def _tls_context(self) -> ssl.SSLContext | None:
        """Built-in TLS from ``[server] tls_cert`` / ``tls_key`` (PEM), else None."""
        config = self.services.config
        if not config.server.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(
                config.resolve(config.server.tls_cert), config.resolve(config.server.tls_key)
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "config.toml", [f"server.tls_cert / tls_key: cannot load: {exc}"]
            ) from exc
        return context

    async def _recheck_loop(self) -> None:
        """Close websockets whose credential was revoked (sign-out, disabled user, rotated
        token) or whose user changed role; ``users`` may run in another process."""
        while True:
            await asyncio.sleep(self.services.config.auth.recheck_s)
            for ws, (how, token) in list(self._credentials.items()):
                before = self._users.get(ws)
                now = self.web.user_for(how, token)
                if now is None or before is None or now.role != before.role:
                    with contextlib.suppress(Exception):
                        await ws.close(1008, "credentials revoked or changed")

    async def close(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
        for timer in self._detached.values():
            timer.cancel()
        self._detached.clear()
        await self.telephony.close()
        await self.desk.end_all("server_shutdown")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.to_thread(self.web.close)
        if self.cluster is not None:
            self.services.hub.relay = None
            await self.cluster.close()

    # -- HTTP: the console page and a small read-only API -------------------------------

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == HEALTH_PATH:  # no sign-in, no call data: for load balancers
            return self.health()
        if self.telephony.owns(path):
            if self._open >= self.services.config.server.max_connections:
                return text_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
            return self.telephony.check_request(connection, request)
        if path != WS_PATH or not self.web.host_ok(request):
            return await self.web.handle_async(connection, request)
        if self._open >= self.services.config.server.max_connections:
            return text_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
        how, token = self.web.credential(request, allow_query=True)
        user = self.web.user_for(how, token)
        if user is None:
            return text_response(
                HTTPStatus.UNAUTHORIZED, "sign in, or send a token (Authorization: Bearer)\n"
            )
        if not self.web.origin_ok(request) or (
            how == "cookie" and request.headers.get("Origin") is None
        ):
            return text_response(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        self._users[connection] = user
        self._credentials[connection] = (how, token)
        return None

    def health(self) -> Response:
        """Load for a load balancer (no sign-in, no call data): 200 accepting, 503 full."""
        report = self.admission.report(len(self.calls))
        body, accepting = report.as_json(), report.accepting
        if self.cluster is not None:  # the cluster's capacity: no live worker, no audio call
            body["cluster"] = self.cluster.capacity()
            if accepting and not body["cluster"]["workers"]:
                accepting = body["accepting"] = False
                body["reason"] = "no recognition worker is alive"
            elif accepting and (full := self.cluster.full()):
                accepting = body["accepting"] = False
                body["reason"] = full
        status = HTTPStatus.OK if accepting else HTTPStatus.SERVICE_UNAVAILABLE
        return json_response(status, body)

    def _user(self, ws: ServerConnection) -> User:
        return self._users.get(ws, ANONYMOUS)

    def agent_of(self, call_id: str) -> str | None:
        """The agent of a call, cached: subscribers ask on every event."""
        if call_id not in self._agents:
            if len(self._agents) > AGENT_CACHE:  # bounded: ids asked about need not exist
                self._agents = {c: self._agents.get(c) for c in self.calls}
            self._agents[call_id] = self.services.store.call_agent(call_id)
        return self._agents[call_id]

    def may_view(self, user: User, call_id: str) -> bool:
        return user.is_supervisor or self.agent_of(call_id) == user.name

    # -- websocket ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self._open += 1
        try:
            if ws.request is not None and self.telephony.owns(ws.request.path.split("?", 1)[0]):
                await self.telephony.handle(ws)
            else:
                await self._serve_connection(ws)
        finally:
            self._open -= 1

    async def _serve_connection(self, ws: ServerConnection) -> None:
        hello = await self._handshake(ws)
        if hello is None:
            return
        user = self._user(ws)
        sub = self.services.hub.add(hello.subscribe)
        if not user.is_supervisor:
            sub.visible = lambda call_id: self.may_view(user, call_id)
        sender: asyncio.Task[None] | None = None
        call: LiveCall | None = None
        if hello.role == "source" and hello.resume_call_id:
            call = self._reattach(hello.resume_call_id)
            sub.own_call = call.call_id if call is not None else None
        try:
            ready = encode_ready(
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
            )
            self._catch_up(sub, hello)  # before any pause: no live event can slip between
            await self._send(ws, ready)
            sender = asyncio.create_task(self._send_loop(ws, sub))
            async for message in ws:
                try:
                    call = await self._dispatch(message, hello, sub, call, user)
                except ANSWERED_ERRORS as exc:
                    err = exc if isinstance(exc, AgentAssistError) else _store_failed(exc)
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
            self.services.hub.remove(sub)
            if call is not None:
                grace = self.services.config.server.source_grace_s
                if grace > 0 and not call.ended and self.calls.get(call.call_id) is call:
                    self._detach(call, grace)
                else:
                    await self._end_call(call, "disconnected")
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
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
            user = self._user(ws)
            resume = msg.resume_call_id
            if (
                msg.role == "source"
                and resume
                and not self._resumable(user, resume)
                and not await self._take_over(user, resume)
            ):
                raise ProtocolError(f"unknown call {msg.resume_call_id!r}", code="call.unknown")
            for wanted in (None if msg.role == "source" else msg.resume_call_id, msg.subscribe):
                if wanted in (None, "*"):
                    continue
                # "not yours" and "no such call" read the same: ids stay secret
                if not self.may_view(user, str(wanted)) or (
                    wanted == msg.resume_call_id
                    and self.services.store.get_call(str(wanted)) is None
                ):
                    raise ProtocolError(f"unknown call {wanted!r}", code="call.unknown")
        except AgentAssistError as err:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode_error(err, None, fatal=True))
                await ws.close(1008, err.code)
            return None
        return msg

    def _resumable(self, user: User, call_id: str) -> bool:
        """A call whose source dropped, within the grace window, asked for by that source."""
        return call_id in self._detached and self._sources.get(call_id) == user.name

    async def _take_over(self, user: User, call_id: str) -> bool:
        """A call of a gateway that died, asked for by its own source within the grace
        window: live here from its stored state, detached until this connection takes
        it up again (as after a dropped connection)."""
        if self.cluster is None:
            return False
        start = await self.cluster.take_over(call_id, user.name)
        if start is None:
            return False
        call: LiveCall | None = None
        try:
            call = await self.desk.continue_call(start, call_id)
        finally:
            self.cluster.taken_over(call_id)
        if call is None:
            return False
        self._sources[call_id] = user.name
        self._agents.pop(call_id, None)
        await self.cluster.register_source(call_id, user.name, start)
        self._detach(call, max(1.0, self.services.config.server.source_grace_s))
        log.warning("call %s taken over from a gateway that stopped", call_id)
        return True

    def _detach(self, call: LiveCall, grace: float) -> None:
        """The call's source dropped: keep the call live for ``grace`` seconds, so a
        network blip does not split one phone call in two; then end it."""

        async def expire() -> None:
            await asyncio.sleep(grace)
            if self._detached.pop(call.call_id, None) is not None:
                await self._end_call(call, "disconnected")

        self._detached[call.call_id] = asyncio.create_task(expire(), name=f"grace {call.call_id}")

    def _reattach(self, call_id: str) -> LiveCall | None:
        timer = self._detached.pop(call_id, None)
        if timer is None:
            return None
        timer.cancel()
        return self.calls.get(call_id)

    def _catch_up(self, sub: Subscriber, hello: Hello) -> None:
        """Late joiners see active calls from the start; resumers from their last seq."""
        hub = self.services.hub
        if hello.resume_call_id:
            hub.catch_up(sub, hello.resume_call_id, hello.resume_after_seq)
        held_elsewhere = list(self.cluster.remote_calls) if self.cluster else []
        for call_id in [*self.calls, *held_elsewhere]:
            if sub.wants(call_id) and call_id != hello.resume_call_id:
                hub.catch_up(sub, call_id, 0)

    def may_write(self, user: User, call_id: str) -> bool:
        """Who may mark or re-link a live call: a supervisor, its agent, its own source."""
        if user.is_supervisor:
            return True
        if user.role == "agent":
            return self.agent_of(call_id) == user.name
        return self._sources.get(call_id) == user.name

    async def _end_call(self, call: LiveCall, reason: str) -> None:
        """End a call and take it off the live list, even when storing its end fails."""
        try:
            await self.desk.end(call, reason)
        finally:
            self._sources.pop(call.call_id, None)

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
            speed = self.services.config.server.max_ingest_speed
            ahead = call.ingest_ahead_s(speed) if speed > 0 else 0.0
            if ahead > 0:  # not reading is the back-pressure: the source's socket fills
                await asyncio.sleep(min(ahead, 5.0))
            return call
        msg = parse_client_message(message)
        if isinstance(msg, Hello):
            raise ProtocolError("'hello' was already received", code="protocol.bad_envelope")
        if isinstance(msg, Feedback | CustomerLink):
            target = self.calls.get(msg.call_id)
            if target is None or target.ended or not self.may_write(user, msg.call_id):
                # one answer for "not yours" and "no such call": ids of live calls stay secret
                raise CallError(f"no live call {msg.call_id!r} of yours", code="call.unknown")
            if isinstance(msg, Feedback):
                self.desk.feedback(msg)
            else:
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
            await self._admit(msg)
            agent = user.name if user.role == "agent" else msg.agent

            def before_start(new: LiveCall) -> None:
                self._agents[new.call_id] = agent  # known before call.started goes out
                sub.own_call = new.call_id

            try:
                call = await self.desk.open(msg, agent, before_start)  # stored, then live
            except BaseException:
                sub.own_call = None
                raise
            if user.role == "agent" and call.mode == "text":
                self.services.store.mark_self_reported(call.call_id)  # typed: not counted
            self._sources[call.call_id] = user.name
            if self.cluster is not None:  # so another gateway can take it over
                await self.cluster.register_source(call.call_id, user.name, msg)
            return call
        if call is None or call.ended:
            raise CallError("no call started on this connection", code="call.not_started")
        if isinstance(msg, TurnIn):
            call.push_turn(msg)
        elif isinstance(msg, CallEnd):
            await self._end_call(call, msg.reason)
        return call

    async def _admit(self, start: CallStart) -> None:
        """The one rule for "too many calls": this gateway's count, recognition lag and
        degradation level; in a cluster also a live worker for the language and room in
        the cluster (every gateway's live audio calls against the live workers' calls)."""
        self.admission.check(len(self.calls), audio=start.mode == "audio")
        if self.cluster is None or start.mode != "audio":
            return
        await self.cluster.refresh()
        language = start.language or self.services.config.asr.default_language
        if reason := self.cluster.refusal(language):
            raise CallError(f"the cluster takes no such call now: {reason}",
                            code="cluster.no_worker")  # fmt: skip
        if reason := self.cluster.full():
            raise CapacityError(f"the cluster takes no more calls now: {reason}")

    async def open_call(self, start: CallStart, agent: str | None, source: str) -> LiveCall:
        """Start a call for a telephony adapter acting as the user ``source``: the desk,
        with its agent known first."""
        await self._admit(start)  # as for /ws

        def before_start(new: LiveCall) -> None:
            self._agents[new.call_id] = agent

        call = await self.desk.open(start, agent, before_start)
        self._sources[call.call_id] = source  # only that source may write to it
        if self.cluster is not None:
            await self.cluster.register_source(call.call_id, source, start)
        return call

    async def end_call(self, call: LiveCall, reason: str) -> None:
        await self._end_call(call, reason)

    async def _send_loop(self, ws: ServerConnection, sub: Subscriber) -> None:
        """History a page at a time (waiting for the socket to drain), live events between."""
        hub = self.services.hub
        while True:
            if sub.catching_up:
                for body in hub.next_page(sub):
                    await ws.send(body)
                while not sub.queue.empty() and not sub.overflowed:
                    await ws.send(sub.queue.get_nowait()[2])
            else:
                _call_id, _seq, body = await sub.queue.get()
                if not sub.overflowed:
                    await ws.send(body)
            if sub.overflowed:
                await ws.close(1013, "client too slow; reconnect and resume")
                return

    async def _send(self, ws: ServerConnection, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(text)


def _store_failed(exc: Exception) -> AgentAssistError:
    log.error("the store refused a write: %s", exc)
    return AgentAssistError(
        "the server could not store that (nothing was changed); try again",
        code="store.failed",
    )


def _ref_seq(message: str | bytes) -> int | None:
    if isinstance(message, bytes):
        return None
    try:
        seq = json.loads(message).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None
