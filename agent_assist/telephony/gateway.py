"""The asyncio side of the telephony adapters: websocket paths and the AudioSocket port.

The server hands over a websocket whose path belongs to an enabled platform, after
``check_request`` accepted the platform's credentials at the HTTP upgrade. Each
connection runs its platform's sans-I/O parser and performs the actions it returns;
calls start, continue and end through ``CallBridge`` and the server's own
``open_call`` / ``end_call``. A platform acts as its configured source user only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs
from weakref import WeakKeyDictionary

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from agent_assist.errors import AgentAssistError, TelephonyError
from agent_assist.telephony import audiohook, twilio
from agent_assist.telephony.audiosocket import AudioSocketLeg, TlvReader
from agent_assist.telephony.bridge import CallBridge, CallHost, PlatformCall
from agent_assist.telephony.config import secret
from agent_assist.telephony.freeswitch import SUBPROTOCOLS, AudioForkStream
from agent_assist.telephony.stream import Action, Audio, Begin, Close, Finish, Reply

if TYPE_CHECKING:
    from agent_assist.supervision.accounts import Authenticator

log = logging.getLogger(__name__)


class _Parser(Protocol):
    def receive_text(self, text: str) -> list[Action]: ...
    def receive_bytes(self, data: bytes) -> list[Action]: ...
    def connection_lost(self, code: int | None = None) -> list[Action]: ...


class _Host(CallHost, Protocol):
    auth: Authenticator


class TelephonyGateway:
    def __init__(self, host: _Host) -> None:
        self.host = host
        self.config = host.services.config.telephony
        self.auth_enabled = host.services.config.auth.enabled
        cfg = self.config
        self.bridge = CallBridge(host, cfg.grace_s, cfg.max_gap_s)
        self.paths: dict[str, str] = {}
        for name, section in (
            ("twilio", cfg.twilio),
            ("audiohook", cfg.audiohook),
            ("freeswitch", cfg.freeswitch),
        ):
            if section.enabled:
                self.paths[section.path] = name
        self.sources = {
            "twilio": cfg.twilio.source,
            "audiohook": cfg.audiohook.source,
            "freeswitch": cfg.freeswitch.source,
            "audiosocket": cfg.audiosocket.source,
        }
        self._org_header: WeakKeyDictionary[ServerConnection, str | None] = WeakKeyDictionary()
        self._nonces: dict[str, float] = {}
        self._tcp: asyncio.Server | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self.audiosocket_port: int | None = None
        if self.auth_enabled:
            for name, source in self.sources.items():
                enabled = name in self.paths.values() or (
                    name == "audiosocket" and cfg.audiosocket.enabled
                )
                if enabled and host.auth.user(source) is None:
                    host.auth.add_user(source, "source")

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config.audiosocket
        if cfg.enabled and self._tcp is None:
            self._tcp = await asyncio.start_server(self._audiosocket, cfg.host, cfg.port)
            self.audiosocket_port = next(iter(self._tcp.sockets)).getsockname()[1]

    async def close(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._tcp_tasks):
                task.cancel()
            await asyncio.gather(*self._tcp_tasks, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None
        await self.bridge.close()

    def owns(self, path: str) -> bool:
        return path in self.paths

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """Accept the audio-fork subprotocols when offered; others connect without one."""
        return next((p for p in offered if p in SUBPROTOCOLS), None)

    # -- the HTTP upgrade: each platform's credentials ----------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        platform = self.paths[path]
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        try:
            if platform == "twilio":
                self._check_twilio(request, headers)
            elif platform == "audiohook":
                self._org_header[connection] = self._check_audiohook(request, headers)
            else:
                self._check_freeswitch(headers, query)
        except TelephonyError as err:
            log.warning("%s connection refused: %s", platform, err)
            return _refused(err)
        return None

    def _check_twilio(self, request: Request, headers: dict[str, str]) -> None:
        cfg = self.config.twilio
        token = secret(cfg.auth_token, "TWILIO_AUTH_TOKEN")
        if not token:
            if self.auth_enabled:
                raise TelephonyError(
                    "set telephony.twilio.auth_token to accept Twilio", code="auth.not_configured"
                )
            return
        base = cfg.public_url.rstrip("/") or f"wss://{headers.get('host', '')}"
        if not twilio.signature_ok(token, base + request.path, headers.get("x-twilio-signature")):
            raise TelephonyError("X-Twilio-Signature does not match", code="auth.bad_signature")

    def _check_audiohook(self, request: Request, headers: dict[str, str]) -> str | None:
        cfg = self.config.audiohook
        api_key = secret(cfg.api_key, "AUDIOHOOK_API_KEY")
        client_secret = secret(cfg.client_secret, "AUDIOHOOK_CLIENT_SECRET")
        org = headers.get("audiohook-organization-id")
        if not api_key:
            if self.auth_enabled:
                raise TelephonyError(
                    "set telephony.audiohook.api_key to accept Genesys", code="auth.not_configured"
                )
            return org
        now = time.time()
        nonce = audiohook.verify_request(
            headers, request.path, api_key, client_secret, cfg.max_signature_age_s, now
        )
        if nonce is not None:
            self._nonces = {n: t for n, t in self._nonces.items() if t > now}
            if nonce in self._nonces:
                raise TelephonyError("signature nonce replayed", code="auth.bad_signature")
            self._nonces[nonce] = now + cfg.max_signature_age_s + 2 * audiohook.MAX_CLOCK_SKEW_S
        if not org:
            raise TelephonyError(
                "Audiohook-Organization-Id header missing", code="auth.bad_signature"
            )
        if cfg.organization_id and org != cfg.organization_id:
            raise TelephonyError("organisation not allowed", code="auth.forbidden")
        return org

    def _check_freeswitch(self, headers: dict[str, str], query: str) -> None:
        cfg = self.config.freeswitch
        token = secret(cfg.token, "FREESWITCH_TOKEN")
        password = secret(cfg.password, "FREESWITCH_PASSWORD")
        if not token and not (cfg.username and password):
            if self.auth_enabled:
                raise TelephonyError(
                    "set telephony.freeswitch.token or username/password",
                    code="auth.not_configured",
                )
            return
        given = parse_qs(query).get("token", [""])[0]
        header = headers.get("authorization", "")
        if header.startswith("Bearer "):
            given = header[7:].strip()
        if token and given and hmac.compare_digest(given, token):
            return
        if header.startswith("Basic ") and cfg.username and password:
            try:
                user, _, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, pw = "", ""
            if hmac.compare_digest(user, cfg.username) and hmac.compare_digest(pw, password):
                return
        raise TelephonyError("token or basic credentials missing or wrong", code="auth.required")

    # -- websocket platforms ------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        platform = self.paths[ws.request.path.split("?", 1)[0]]
        parser: _Parser
        if platform == "twilio":
            parser = twilio.TwilioStream(self.config.twilio.swap_channels)
        elif platform == "audiohook":
            parser = audiohook.AudioHookSession(
                self._org_header.get(ws), self.config.audiohook.swap_channels
            )
        else:
            parser = AudioForkStream(self.config.freeswitch.swap_channels)
        run = _Run(self, platform, ws)
        echo: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if isinstance(message, str):
                    actions = parser.receive_text(message)
                else:
                    actions = parser.receive_bytes(message)
                if not await run.perform(actions):
                    break
                if (
                    echo is None
                    and run.call is not None
                    and isinstance(parser, audiohook.AudioHookSession)
                    and self.config.audiohook.transcript_events
                ):
                    echo = asyncio.create_task(self._transcripts_to_genesys(ws, parser, run))
        except ConnectionClosed:
            pass
        except AgentAssistError as err:
            log.warning("%s stream refused: %s", platform, err)
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, err.code)
        finally:
            if echo is not None:
                echo.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await echo
            rcvd = ws.protocol.close_rcvd
            code = rcvd.code if rcvd is not None else None
            await run.perform(parser.connection_lost(code))

    async def _transcripts_to_genesys(
        self, ws: ServerConnection, session: audiohook.AudioHookSession, run: _Run
    ) -> None:
        """Our finals of this call back to Genesys, offsets in this session's audio."""
        call = run.call
        assert call is not None
        hub = self.host.services.hub
        sub = hub.add(call.live.call_id)
        base_ms: int | None = None  # where this session's audio starts on the call clock
        try:
            while True:
                _call_id, _seq, body = await sub.queue.get()
                msg = json.loads(body)
                if msg["type"] != "transcript.final":
                    continue
                if base_ms is None:
                    base_ms = call.bases.get(run.stream_id, 0) * 1000 // call.rate
                data = msg["data"]
                reply = session.transcript_event(
                    data["utterance_id"],
                    data["speaker"],
                    data["text"],
                    (msg["t_ms"] - base_ms) / 1000,
                    (data["end_ms"] - msg["t_ms"]) / 1000,
                )
                if reply is not None:
                    await ws.send(reply.text)
        except ConnectionClosed:
            pass
        finally:
            hub.remove(sub)

    # -- Asterisk AudioSocket over TCP --------------------------------------------------

    async def _audiosocket(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tcp_tasks.add(task)
        cfg = self.config.audiosocket
        leg = AudioSocketLeg(cfg.agent or None, cfg.language)
        tlv = TlvReader()
        run = _Run(self, "audiosocket", None)
        try:
            while data := await reader.read(65536):
                for kind, payload in tlv.feed(data):
                    if not await run.perform(leg.receive(kind, payload)):
                        return
        except AgentAssistError as err:
            log.warning("AudioSocket stream refused: %s", err)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            await run.perform(leg.connection_lost())
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tcp_tasks.discard(task)


def _refused(err: TelephonyError) -> Response:
    """HTTP 401 with the coded reason: the platform's logs show why it was turned away."""
    body = f"{err.code}: {err.message}\n".encode()
    status = HTTPStatus.UNAUTHORIZED
    headers = Headers(
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


class _Run:
    """One connection's performer: the call it feeds, and the stream it is."""

    def __init__(self, gateway: TelephonyGateway, platform: str, ws: ServerConnection | None):
        self.gateway = gateway
        self.platform = platform
        self.ws = ws
        self.call: PlatformCall | None = None
        self.stream_id = ""
        self.token = object()

    async def perform(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; False when the connection is to close."""
        bridge = self.gateway.bridge
        for action in actions:
            if isinstance(action, Reply):
                if self.ws is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await self.ws.send(action.text)
            elif isinstance(action, Begin):
                source = self.gateway.sources[self.platform]
                self.call = await bridge.attach(action, source, self.token)
                self.stream_id = action.stream_id
            elif isinstance(action, Audio):
                if self.call is not None:
                    bridge.push(self.call, self.stream_id, action)
            elif isinstance(action, Finish):
                if self.call is not None:
                    call, self.call = self.call, None
                    await bridge.detach(call, self.token, action)
            elif isinstance(action, Close):
                if self.ws is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await self.ws.close(action.code, action.reason)
                return False
        return True
