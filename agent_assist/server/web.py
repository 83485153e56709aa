"""HTTP side of the server: sign-in, the pages, and a small JSON API for them.

Every page and API answer needs a signed-in user (a session cookie, HttpOnly and
SameSite=Strict, or ``Authorization: Bearer``); only the sign-in page, its scripts and
styles, and ``/healthz`` are open. Writes (sign-in, sign-out, score overrides) are POST
requests whose data rides in the query string (the server reads no request bodies); a
cookie-authenticated write must come from the page's own origin. Agents see only their
own calls: anything else is 403, over HTTP as over the websocket.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import mimetypes
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agent_assist.config import AuthConfig
from agent_assist.errors import AgentAssistError, RequestError
from agent_assist.store.audio_archive import AudioArchive
from agent_assist.store.base import CallFilter
from agent_assist.supervision.accounts import (
    ANONYMOUS,
    SESSION_COOKIE,
    Authenticator,
    LoginThrottle,
    User,
    verify_password,
)
from agent_assist.supervision.review import NotFound, Supervision
from agent_assist.supervision.statistics import agent_stats, stats_csv, stats_json

PAGES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/review.html": "review.html",
    "/mic.html": "mic.html",
}
SUPERVISOR_PAGES = {"/wall.html": "wall.html"}
OPEN_FILES = {"login.html"}
OPEN_SUFFIXES = (".css", ".js")
_CALL_API = re.compile(r"^/api/calls/([A-Za-z0-9_.-]{1,80})(/audio|/score|/override)?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_CALLS_LISTED = 1000
REPORTS = ("/api/calls", "/api/stats")
MAX_RANGE_BYTES = 4 << 20
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    # pages carry their full policy in a <meta>; framing can only be refused in a header
    ("Content-Security-Policy", "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
)

Now = Callable[[], str]


class WebGate:
    """Answers every HTTP request; returns None to let a websocket upgrade through."""

    def __init__(
        self,
        auth: Authenticator,
        config: AuthConfig,
        supervision: Supervision,
        archive: AudioArchive | None,
        prices: Any,
        now: Now,
        vocabulary: dict[str, list[str]],
    ) -> None:
        self.auth = auth
        self.config = config
        self.supervision = supervision
        self.archive = archive
        self.prices = prices
        self.now = now
        self.vocabulary = vocabulary  # signal names and warning rule ids, for the filters
        self.cluster_view: Callable[[], dict[str, Any]] | None = None
        """The cluster's nodes and capacity (a gateway with ``[cluster] redis_url``)."""
        self.tls = False  # set by the server when it serves TLS itself
        self.reader: Supervision | None = None
        """Its own store connection for searches and statistics, used on one worker thread
        so a report over thousands of calls never stalls live calls (set by the server)."""
        self._reports = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reports")
        self.throttle = LoginThrottle(
            config.max_login_failures, config.login_lockout_minutes * 60.0
        )
        self.check_password: Callable[[str, str | None], bool] = verify_password
        """Runs on a worker thread, never the event loop (a test injects a recording one)."""

    # -- who is asking ------------------------------------------------------------------

    def identify(self, request: Request, allow_query: bool = False) -> tuple[User | None, str]:
        """The user behind a request and how they proved it: cookie, bearer or query."""
        how, token = self.credential(request, allow_query)
        return self.user_for(how, token), how

    def credential(self, request: Request, allow_query: bool = False) -> tuple[str, str]:
        """How a request proves who it is and with which token ("open" with auth off)."""
        if not self.config.enabled:
            return "open", ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return "bearer", header[7:].strip()
        session = _cookie(request)
        if session:
            return "cookie", session
        if allow_query:
            token = _query(request).get("token", "")
            if token:
                return "query", token
        return "", ""

    def user_for(self, how: str, token: str) -> User | None:
        """The user a credential stands for now (None once revoked, expired or disabled)."""
        if how == "open":
            return ANONYMOUS
        if how == "cookie":
            return self.auth.session_user(token)
        if how in ("bearer", "query"):
            return self.auth.bearer_user(token)
        return None

    def host_ok(self, request: Request) -> bool:
        """With sign-in off, only IP literals, localhost and configured origins' hosts are
        served: a rebinding DNS name pointing at this server gets nothing."""
        if self.config.enabled:
            return True
        host = request.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        if name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            pass
        return any(
            origin.split("://", 1)[-1].split(":", 1)[0].lower() == name
            for origin in self.config.allowed_origins
        )

    def secure(self, request: Request) -> bool:
        """Whether the browser reached us over TLS: ours, or a trusted proxy's."""
        if self.tls or self.config.secure_cookies:
            return True
        forwarded = request.headers.get("X-Forwarded-Proto", "")
        return self.config.trust_proxy and forwarded.lower() == "https"

    def origin_ok(self, request: Request) -> bool:
        """A browser's Origin must be this server's own (or configured); no Origin: not a page."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        host = request.headers.get("Host", "")
        return origin in (f"http://{host}", f"https://{host}", *self.config.allowed_origins)

    # -- routing --------------------------------------------------------------------------

    async def handle_async(self, connection: ServerConnection, request: Request) -> Response:
        """Every HTTP request; password sign-in hashes on a worker thread."""
        if not self.host_ok(request):
            return _json(
                HTTPStatus.FORBIDDEN,
                {"error": {"code": "auth.bad_host", "message": "unknown Host name"}},
            )
        path = request.path.split("?", 1)[0]
        if path == "/api/login" and request.method == "POST" and self.origin_ok(request):
            return await self._password_login(connection, request)
        if path in REPORTS and request.method == "GET" and self.reader is not None:
            user, _ = self.identify(request)
            if user is not None:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._reports, self._report, user, path, _query(request)
                )
        return self.handle(connection, request)

    def _report(self, user: User, path: str, q: dict[str, str]) -> Response:
        """A search or statistics answer, on the reports thread with the reader's store."""
        assert self.reader is not None
        try:
            if path == "/api/stats":
                return self._stats(user, q, self.reader)
            return self._calls(user, q, self.reader)
        except AgentAssistError as err:
            return _error(HTTPStatus.BAD_REQUEST, err)

    def close(self) -> None:
        """Finish the report in progress (the reader's store is closed with the services)."""
        self._reports.shutdown(wait=True)

    def handle(self, connection: ServerConnection, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                return text_response(HTTPStatus.OK, "ok\n")
            if path == "/login":
                return self._signin_link(request)
            if path.startswith("/api/"):
                return self._api(request, path)
            if path in PAGES or path in SUPERVISOR_PAGES:
                return self._page(request, path)
            return self._static(path)
        except NotFound as err:
            return _error(HTTPStatus.NOT_FOUND, err)
        except AgentAssistError as err:
            return _error(HTTPStatus.BAD_REQUEST, err)

    def _page(self, request: Request, path: str) -> Response:
        user, _ = self.identify(request)
        if user is None:
            return _redirect(f"/login.html?next={quote(request.path, safe='')}")
        if path in SUPERVISOR_PAGES and not user.is_supervisor:
            return text_response(HTTPStatus.FORBIDDEN, "supervisors only\n")
        name = PAGES.get(path) or SUPERVISOR_PAGES[path]
        return self._file(name)

    def _static(self, path: str) -> Response:
        name = path.lstrip("/")
        if (
            "/" in name
            or name.startswith(".")
            or not (name in OPEN_FILES or name.endswith(OPEN_SUFFIXES))
        ):
            return text_response(HTTPStatus.NOT_FOUND, "not found\n")
        return self._file(name)

    def _file(self, name: str) -> Response:
        resource = resources.files("agent_assist") / "web" / name
        if not resource.is_file():
            return text_response(HTTPStatus.NOT_FOUND, "not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return _response(HTTPStatus.OK, resource.read_bytes(), ctype)

    # -- sign-in ------------------------------------------------------------------------

    def _cookie(self, token: str, max_age: int, request: Request) -> str:
        secure = "; Secure" if self.secure(request) else ""
        return (
            f"{SESSION_COOKIE}={token}; Max-Age={max_age}; Path=/; HttpOnly; "
            f"SameSite=Strict{secure}"
        )

    def _signin_link(self, request: Request) -> Response:
        q = _query(request)
        token = q.get("token", "")
        redeemed = self.auth.redeem_signin(token) if token else None
        if redeemed is None:
            return _redirect("/login.html?error=link")
        user, session = redeemed
        target = "/wall.html" if user.is_supervisor else "/"
        wanted = q.get("next", "")
        if re.fullmatch(r"/[A-Za-z0-9_.\-/?=&%]*", wanted) and not wanted.startswith("//"):
            target = wanted
        # A page that moves on by itself: a Strict cookie set during a cross-site
        # navigation is only sent on the next same-site navigation.
        body = (
            '<!doctype html><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0;url={target}"><title>Signed in</title>'
            f'<p>Signed in as {user.name}. <a href="{target}">Continue</a></p>'
        )
        response = _response(HTTPStatus.OK, body.encode(), "text/html; charset=utf-8")
        response.headers["Set-Cookie"] = self._cookie(session, self.auth.session_seconds, request)
        return response

    async def _password_login(self, connection: ServerConnection, request: Request) -> Response:
        """Throttled per user and per address; scrypt runs off the event loop and costs
        the same for a name that does not exist."""
        header = request.headers.get("Authorization", "")
        try:
            raw = base64.b64decode(header[6:].encode("ascii"), validate=True)
            name, _, password = raw.decode("utf-8").partition(":")
        except (ValueError, UnicodeError):  # not Base64, not ASCII, not UTF-8
            name = password = ""
        wrong = _json(
            HTTPStatus.UNAUTHORIZED,
            {"error": {"code": "auth.required", "message": "wrong name or password"}},
        )
        if not header.startswith("Basic ") or not name:
            return wrong
        address = str((connection.remote_address or ("?",))[0])
        wait = self.throttle.wait_s(name, address)
        if wait > 0:
            response = _json(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"error": {"code": "auth.throttled", "message": "too many wrong passwords"}},
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        stored = self.auth.password_hash(name)
        if not await asyncio.to_thread(self.check_password, password, stored):
            self.throttle.failed(name, address)
            return wrong
        self.throttle.succeeded(name)
        user = self.auth.user(name)
        if user is None:  # disabled while the hash was checked
            return wrong
        session = self.auth.start_session(name)
        response = _json(
            HTTPStatus.OK,
            {
                "name": user.name,
                "role": user.role,
                "next": "/wall.html" if user.is_supervisor else "/",
            },
        )
        response.headers["Set-Cookie"] = self._cookie(session, self.auth.session_seconds, request)
        return response

    # -- the JSON API -------------------------------------------------------------------

    def _api(self, request: Request, path: str) -> Response:
        write = request.method == "POST"
        if request.method not in ("GET", "POST"):
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED, "GET or POST\n")
        if write and not self.origin_ok(request):
            return _forbidden("cross-origin request refused")
        if path == "/api/login" and write:
            return _forbidden("sign in from the page's own origin")
        user, how = self.identify(request)
        if user is None:
            return _json(
                HTTPStatus.UNAUTHORIZED,
                {"error": {"code": "auth.required", "message": "sign in first"}},
            )
        if write and how == "cookie" and request.headers.get("Origin") is None:
            return _forbidden("a page's write must carry its Origin")
        q = _query(request)
        if path == "/api/logout" and write:
            session = _cookie(request)
            if session:
                self.auth.logout(session)
            response = _json(HTTPStatus.OK, {"ok": True})
            response.headers["Set-Cookie"] = self._cookie("", 0, request)
            return response
        if path == "/api/vocabulary":
            return _json(HTTPStatus.OK, self.vocabulary)
        if path == "/api/me":
            return _json(HTTPStatus.OK, {"name": user.name, "role": user.role})
        if path == "/api/calls" and not write:
            return self._calls(user, q)
        if path == "/api/stats" and not write:
            return self._stats(user, q)
        if path == "/api/cluster" and not write:
            if not user.is_supervisor:
                return _forbidden("only supervisors see the cluster")
            view = self.cluster_view() if self.cluster_view else None
            return _json(HTTPStatus.OK, {"enabled": view is not None, **(view or {})})
        m = _CALL_API.match(path)
        if m is None:
            return _json(
                HTTPStatus.NOT_FOUND, {"error": {"code": "not_found", "message": "no such API"}}
            )
        call_id, sub = m.group(1), m.group(2) or ""
        if not self.may_view(user, call_id):  # the same answer as for a call that never was
            raise NotFound(f"no call {call_id!r}")
        self.supervision.call(call_id)
        if sub == "/override":
            if not write:
                return text_response(HTTPStatus.METHOD_NOT_ALLOWED, "POST\n")
            if not user.is_supervisor:
                return _forbidden("only supervisors override scores")
            return self._override(user, call_id, q)
        if write:
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED, "GET\n")
        if sub == "/audio":
            return self._audio(request, call_id)
        if sub == "/score":
            from agent_assist.core.scoring import score_to_json

            return _json(HTTPStatus.OK, score_to_json(self.supervision.score(call_id)))
        return _json(HTTPStatus.OK, self.supervision.review(call_id))

    def may_view(self, user: User, call_id: str) -> bool:
        return user.is_supervisor or self.supervision.store.call_agent(call_id) == user.name

    def _calls(self, user: User, q: dict[str, str], sup: Supervision | None = None) -> Response:
        agent = q.get("agent") or None
        if not user.is_supervisor:
            agent = user.name
        f = CallFilter(
            agent=agent,
            since=q.get("since", ""),
            until=q.get("until", ""),
            signal=q.get("signal", ""),
            warning=q.get("warning", ""),
            text=q.get("q", "")[:100],
            limit=_limit(q.get("limit")),
        )
        sup = sup or self.supervision
        rows = sup.search(f, _float(q.get("min_score")), _float(q.get("max_score")))
        out = []
        for s in rows:
            body = s.to_json()
            body["last_seq"] = s.row.last_seq
            out.append(body)
        return _json(HTTPStatus.OK, out)

    def _stats(self, user: User, q: dict[str, str], sup: Supervision | None = None) -> Response:
        agent = q.get("agent") or None
        if not user.is_supervisor:
            agent = user.name
        stats = agent_stats(
            sup or self.supervision, self.prices, agent, q.get("since", ""), q.get("until", "")
        )
        if q.get("format") == "csv":
            table = q.get("table", "agents")
            response = _response(
                HTTPStatus.OK,
                stats_csv(stats, table).encode("utf-8"),
                "text/csv; charset=utf-8",
            )
            response.headers["Content-Disposition"] = (
                f'attachment; filename="agent-assist-{table}.csv"'
            )
            return response
        return _json(HTTPStatus.OK, stats_json(stats))

    def _override(self, user: User, call_id: str, q: dict[str, str]) -> Response:
        raw = q.get("score", "")
        score = None if raw == "" else _float(raw)
        if raw != "" and score is None:
            raise RequestError("score must be a number from 0 to 1", code="score.bad_value")
        result = self.supervision.override(
            call_id, q.get("item", ""), score, q.get("reason", ""), user.name, self.now()
        )
        from agent_assist.core.scoring import score_to_json

        return _json(HTTPStatus.OK, score_to_json(result))

    def _audio(self, request: Request, call_id: str) -> Response:
        path = self.archive.path_for(call_id) if self.archive is not None else None
        if path is None:
            return _json(
                HTTPStatus.NOT_FOUND,
                {"error": {"code": "audio.none", "message": "no recording for this call"}},
            )
        size = path.stat().st_size
        m = _RANGE.match(request.headers.get("Range", ""))
        if m is None or not (m.group(1) or m.group(2)):
            response = _response(HTTPStatus.OK, path.read_bytes(), "audio/flac")
        else:
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start, end = max(0, size - int(m.group(2))), size - 1
            if start >= size or start > end:
                response = _response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "audio/flac")
                response.headers["Content-Range"] = f"bytes */{size}"
                return response
            end = min(end, start + MAX_RANGE_BYTES - 1)  # a player asks again for the rest
            with path.open("rb") as f:
                f.seek(start)
                part = f.read(end + 1 - start)
            response = _response(HTTPStatus.PARTIAL_CONTENT, part, "audio/flac")
            response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        response.headers["Accept-Ranges"] = "bytes"
        return response


# -- helpers ----------------------------------------------------------------------------


def _query(request: Request) -> dict[str, str]:
    if "?" not in request.path:
        return {}
    raw = parse_qs(request.path.split("?", 1)[1], keep_blank_values=True)
    return {k: v[-1] for k, v in raw.items()}


def _cookie(request: Request) -> str:
    header = request.headers.get("Cookie")
    if not header:
        return ""
    try:
        jar: SimpleCookie = SimpleCookie(header)
    except CookieError:
        return ""
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""


def _limit(raw: str | None, default: int = 200) -> int:
    """``?limit=``: a whole number from 1 to ``MAX_CALLS_LISTED``, else a coded 400."""
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CALLS_LISTED:
        raise RequestError(
            f"limit must be a whole number from 1 to {MAX_CALLS_LISTED}",
            code="request.bad_limit",
        )
    return int(raw)


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *SECURITY_HEADERS,
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def text_response(status: HTTPStatus, text: str) -> Response:
    return _response(status, text.encode(), "text/plain; charset=utf-8")


def _json(status: HTTPStatus, body: object) -> Response:
    return _response(
        status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8"
    )


def _error(status: HTTPStatus, err: AgentAssistError) -> Response:
    return _json(status, {"error": {"code": err.code, "message": err.message}})


def _forbidden(message: str) -> Response:
    return _json(HTTPStatus.FORBIDDEN, {"error": {"code": "auth.forbidden", "message": message}})


def _redirect(location: str) -> Response:
    response = text_response(HTTPStatus.FOUND, "")
    response.headers["Location"] = location
    return response


def json_response(status: HTTPStatus, body: object) -> Response:
    """A JSON answer for routes served outside the gate (the health report)."""
    return _json(status, body)
