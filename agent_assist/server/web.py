"""HTTP side of the server: sign-in, the pages, and a small JSON API for them.

Every page and API answer needs a signed-in user (a session cookie, HttpOnly and
SameSite=Strict, or ``Authorization: Bearer``); only the sign-in page, its scripts and
styles, and ``/healthz`` are open. Writes (sign-in, sign-out, score overrides) are POST
requests whose data rides in the query string (the server reads no request bodies); a
cookie-authenticated write must come from the page's own origin. Agents see only their
own calls: anything else is 403, over HTTP as over the websocket.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from collections.abc import Callable
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
from agent_assist.supervision.accounts import ANONYMOUS, SESSION_COOKIE, Authenticator, User
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

    # -- who is asking ------------------------------------------------------------------

    def identify(self, request: Request, allow_query: bool = False) -> tuple[User | None, str]:
        """The user behind a request and how they proved it: cookie, bearer or query."""
        if not self.config.enabled:
            return ANONYMOUS, "open"
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = self.auth.bearer_user(header[7:].strip())
            return user, "bearer"
        session = _cookie(request)
        if session:
            return self.auth.session_user(session), "cookie"
        if allow_query:
            token = _query(request).get("token", "")
            if token:
                return self.auth.bearer_user(token), "query"
        return None, ""

    def origin_ok(self, request: Request) -> bool:
        """A browser's Origin must be this server's own (or configured); no Origin: not a page."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        host = request.headers.get("Host", "")
        return origin in (f"http://{host}", f"https://{host}", *self.config.allowed_origins)

    # -- routing --------------------------------------------------------------------------

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

    def _cookie(self, token: str, max_age: int) -> str:
        secure = "; Secure" if self.config.secure_cookies else ""
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
        response.headers["Set-Cookie"] = self._cookie(session, self.auth.session_seconds)
        return response

    def _password_login(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name = password = ""
        session = self.auth.login(name, password) if header.startswith("Basic ") else None
        if session is None:
            return _json(
                HTTPStatus.UNAUTHORIZED,
                {"error": {"code": "auth.required", "message": "wrong name or password"}},
            )
        user = self.auth.user(name)
        assert user is not None
        response = _json(
            HTTPStatus.OK,
            {
                "name": user.name,
                "role": user.role,
                "next": "/wall.html" if user.is_supervisor else "/",
            },
        )
        response.headers["Set-Cookie"] = self._cookie(session, self.auth.session_seconds)
        return response

    # -- the JSON API -------------------------------------------------------------------

    def _api(self, request: Request, path: str) -> Response:
        write = request.method == "POST"
        if request.method not in ("GET", "POST"):
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED, "GET or POST\n")
        if write and not self.origin_ok(request):
            return _forbidden("cross-origin request refused")
        if path == "/api/login" and write:
            return self._password_login(request)
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
            response.headers["Set-Cookie"] = self._cookie("", 0)
            return response
        if path == "/api/vocabulary":
            return _json(HTTPStatus.OK, self.vocabulary)
        if path == "/api/me":
            return _json(HTTPStatus.OK, {"name": user.name, "role": user.role})
        if path == "/api/calls" and not write:
            return self._calls(user, q)
        if path == "/api/stats" and not write:
            return self._stats(user, q)
        m = _CALL_API.match(path)
        if m is None:
            return _json(
                HTTPStatus.NOT_FOUND, {"error": {"code": "not_found", "message": "no such API"}}
            )
        call_id, sub = m.group(1), m.group(2) or ""
        self.supervision.call(call_id)
        if not self.may_view(user, call_id):
            return _forbidden(f"call {call_id} belongs to another agent")
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

    def _calls(self, user: User, q: dict[str, str]) -> Response:
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
            limit=min(_int(q.get("limit"), 200), 1000),
        )
        rows = self.supervision.search(f, _float(q.get("min_score")), _float(q.get("max_score")))
        out = []
        for s in rows:
            body = s.to_json()
            body["last_seq"] = s.row.last_seq
            out.append(body)
        return _json(HTTPStatus.OK, out)

    def _stats(self, user: User, q: dict[str, str]) -> Response:
        agent = q.get("agent") or None
        if not user.is_supervisor:
            agent = user.name
        stats = agent_stats(
            self.supervision, self.prices, agent, q.get("since", ""), q.get("until", "")
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
        data = path.read_bytes()
        size = len(data)
        m = _RANGE.match(request.headers.get("Range", ""))
        if m is None or not (m.group(1) or m.group(2)):
            response = _response(HTTPStatus.OK, data, "audio/flac")
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
            response = _response(HTTPStatus.PARTIAL_CONTENT, data[start : end + 1], "audio/flac")
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


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


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
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
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
