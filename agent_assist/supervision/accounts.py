"""Who is asking: users with roles, sign-in links, sessions and API tokens.

Roles: ``agent`` (sees only their own calls), ``supervisor`` (sees every call, scores
them) and ``source`` (a telephony gateway or the replay command: pushes calls). Every
token is 32 random bytes and stored only as its SHA-256, so a copy of the database
opens no door; passwords (optional) are stored as scrypt hashes. A sign-in link carries
a one-time token that becomes an HttpOnly session cookie when opened.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, cast

from agent_assist.config import AuthConfig
from agent_assist.errors import AgentAssistError
from agent_assist.store.base import UserRow

Role = Literal["agent", "supervisor", "source"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "source")
SESSION_COOKIE = "aa_session"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AuthError(AgentAssistError):
    """Not signed in (``auth.required``) or not allowed (``auth.forbidden``)."""

    code = "auth.forbidden"
    fault = "client"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


ANONYMOUS = User("anonymous", "supervisor")
"""Everyone, when ``[auth] enabled = false`` (a laptop demo with nobody else around)."""


class UserStore(Protocol):
    def add_user(self, name: str, role: str, password: str | None, created_at: str) -> None: ...
    def get_user(self, name: str) -> UserRow | None: ...
    def add_token(
        self, token_hash: str, user: str, kind: str, created_at: str, expires_at: str | None
    ) -> None: ...
    def token_user(self, token_hash: str, kinds: tuple[str, ...], now: str) -> UserRow | None: ...
    def use_token(self, token_hash: str, now: str) -> bool: ...
    def delete_token(self, token_hash: str) -> None: ...
    def disable_user(self, name: str) -> bool: ...
    def replace_api_tokens(self, user: str, token_hash: str, created_at: str) -> None: ...


def configured_source_token(auth: AuthConfig) -> str | None:
    """The API token sources use when none is given: ``$AGENT_ASSIST_TOKEN``, else config."""
    return os.environ.get("AGENT_ASSIST_TOKEN") or auth.source_token or None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$", 2)
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(got.hex(), digest)


_UNKNOWN_USER_HASH = hash_password(secrets.token_urlsafe(16))
"""Checked against when a name is unknown, so a wrong name costs what a wrong password does."""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _user(row: UserRow) -> User:
    return User(row.name, cast(Role, row.role))


def valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "-_.@" for c in name)


class Authenticator:
    """Issues and checks credentials against the store; the clock is injectable for tests."""

    def __init__(
        self,
        store: UserStore,
        session_hours: int = 12,
        link_minutes: int = 60,
        now: type[datetime] = datetime,
    ) -> None:
        self._store = store
        self._session = timedelta(hours=session_hours)
        self._link = timedelta(minutes=link_minutes)
        self._now = now

    def _clock(self) -> datetime:
        return self._now.now(UTC)

    def now_iso(self) -> str:
        return _iso(self._clock())

    def add_user(self, name: str, role: str, password: str | None = None) -> User:
        if not valid_name(name):
            raise AuthError(
                f"user name {name!r}: use 1-64 letters, digits or - _ . @", code="auth.bad_user"
            )
        if role not in ROLES:
            raise AuthError(f"role {role!r}: must be one of {list(ROLES)}", code="auth.bad_user")
        hashed = hash_password(password) if password else None
        self._store.add_user(name, role, hashed, _iso(self._clock()))
        return User(name, role)

    def user(self, name: str) -> User | None:
        row = self._store.get_user(name)
        return None if row is None or row.disabled else _user(row)

    def _issue(self, name: str, kind: str, ttl: timedelta | None) -> str:
        if self.user(name) is None:
            raise AuthError(f"no such user {name!r}", code="auth.bad_user")
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires = _iso(now + ttl) if ttl is not None else None
        self._store.add_token(hash_token(token), name, kind, _iso(now), expires)
        return token

    def signin_token(self, name: str, minutes: int | None = None) -> str:
        """A one-time token for a sign-in link (``/login?token=...``)."""
        ttl = timedelta(minutes=minutes) if minutes is not None else self._link
        return self._issue(name, "signin", ttl)

    def api_token(self, name: str) -> str:
        """A long-lived token for programs (``Authorization: Bearer``); revoked with the user."""
        return self._issue(name, "api", None)

    def register_api_token(self, name: str, token: str) -> None:
        """Accept a token chosen in config (``[auth] source_token``) for ``name``."""
        if self._store.token_user(hash_token(token), ("api",), _iso(self._clock())) is None:
            self._store.add_token(hash_token(token), name, "api", _iso(self._clock()), None)

    def redeem_signin(self, token: str) -> tuple[User, str] | None:
        """Spend a sign-in token; return the user and a new session token, or None."""
        hashed = hash_token(token)
        now = _iso(self._clock())
        row = self._store.token_user(hashed, ("signin",), now)
        if row is None or not self._store.use_token(hashed, now):
            return None
        return _user(row), self._issue(row.name, "session", self._session)

    def login(self, name: str, password: str) -> str | None:
        """A session token for a correct name and password, else None."""
        if not verify_password(password, self.password_hash(name)):
            return None
        return self.start_session(name)

    def password_hash(self, name: str) -> str:
        """What to check a password against: the user's hash, or (unknown, disabled or no
        password) a hash nothing matches, which takes as long to check."""
        row = self._store.get_user(name)
        if row is None or row.disabled or not row.password:
            return _UNKNOWN_USER_HASH
        return row.password

    def start_session(self, name: str) -> str:
        return self._issue(name, "session", self._session)

    def disable_user(self, name: str) -> bool:
        """Disable a user and delete their tokens (open websockets close at the next check)."""
        return self._store.disable_user(name)

    def set_source_token(self, name: str, token: str) -> None:
        """Make ``token`` the one API token of ``name`` (a rotated config token replaces
        the old one); a disabled user stays disabled and gets none."""
        row = self._store.get_user(name)
        if row is None:
            self.add_user(name, "source")
        elif row.disabled:
            return
        self._store.replace_api_tokens(name, hash_token(token), _iso(self._clock()))

    def session_user(self, token: str) -> User | None:
        row = self._store.token_user(hash_token(token), ("session",), _iso(self._clock()))
        return None if row is None else _user(row)

    def bearer_user(self, token: str) -> User | None:
        row = self._store.token_user(hash_token(token), ("api", "session"), _iso(self._clock()))
        return None if row is None else _user(row)

    def logout(self, token: str) -> None:
        self._store.delete_token(hash_token(token))

    @property
    def session_seconds(self) -> int:
        return int(self._session.total_seconds())


class LoginThrottle:
    """Wrong passwords per user and per address within a window; past the limit sign-in
    waits (HTTP 429) until the oldest failure leaves the window. Memory is bounded."""

    def __init__(self, max_failures: int, window_s: float, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _limit(self, key: str) -> int:
        return self.max_failures * (4 if key.startswith("addr:") else 1)

    def wait_s(self, name: str, address: str) -> float:
        """Seconds until ``name`` may try again from ``address`` (0: now)."""
        now = time.monotonic()
        wait = 0.0
        for key in (f"user:{name}", f"addr:{address}"):
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self._limit(key):
                wait = max(wait, self.window_s - (now - times[0]))
        return wait

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) > self.max_keys:
            self._failures.clear()  # a flood of names: forget rather than grow
        for key in (f"user:{name}", f"addr:{address}"):
            times = self._failures.setdefault(key, deque(maxlen=self._limit(key)))
            times.append(now)

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"user:{name}", None)
