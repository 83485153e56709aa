"""Every error agent-assist raises, with a stable code and whose fault it was.

Hierarchy::

    AgentAssistError                 code, message, fault ("client" | "server" | "setup")
    ├── ConfigError                  config.toml or a data file is invalid (lists every problem)
    ├── ModelError                   a model file is missing or corrupt (names the fix)
    ├── AudioInputError              a file or stream that is not usable audio
    ├── ProtocolError                a malformed or out-of-order wire message
    │   ├── AudioFrameError          a binary audio frame that cannot be used
    │   └── TelephonyError           a phone platform's message, layout or credential we refuse
    ├── CallError                    a call-level request that does not fit the call's state
    ├── CapacityError                the server takes no more calls now (admission control)
    └── RequestError                 any other request a client must fix (HTTP, CLI input)

Every code is registered once in ``CODES`` with whose fault it is and when it is sent;
an error's ``fault`` comes from there, so a client mistake cannot go out as the server's.
The websocket codes are part of the wire protocol: ``docs/protocol.md`` lists them, a test
checks that table against ``CODES``; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fault = Literal["client", "server", "setup"]


@dataclass(frozen=True)
class ErrorCode:
    code: str
    fault: Fault
    when: str
    wire: bool = False
    """Sent on the websocket (listed in the protocol document's error table)."""


_ALL = (
    ErrorCode("protocol.bad_json", "client", "a text message that is not a JSON object", True),
    ErrorCode("protocol.bad_envelope", "client", "missing or mistyped envelope field", True),
    ErrorCode("protocol.unsupported_version", "client", "`v` other than 1", True),
    ErrorCode("protocol.hello_required", "client", "a message before `hello`", True),
    ErrorCode("protocol.unknown_type", "client", "a `type` this server does not know", True),
    ErrorCode(
        "protocol.bad_payload",
        "client",
        "the `data` of a known type is invalid (the message names the field)",
        True,
    ),
    ErrorCode(
        "call.not_started", "client", "audio, a turn or `call.end` without a started call", True
    ),
    ErrorCode(
        "call.already_started", "client", "a second `call.start` on a source connection", True
    ),
    ErrorCode(
        "call.unknown",
        "client",
        "resume or subscribe to a call id that does not exist or that this user may not see "
        "(fatal); `feedback` or `customer.link` for a call that is not live or not this "
        "user's to write on",
        True,
    ),
    ErrorCode(
        "store.failed",
        "server",
        "the store refused the write (disk full, database locked); nothing changed, try again",
        True,
    ),
    ErrorCode(
        "feedback.unknown_suggestion",
        "client",
        "`feedback` names a suggestion the call never showed",
        True,
    ),
    ErrorCode(
        "customer.unknown",
        "client",
        "`customer.link` names a customer the CRM does not know",
        True,
    ),
    ErrorCode(
        "audio.bad_frame",
        "client",
        "binary frame too short, not whole samples, wrong version or channel",
        True,
    ),
    ErrorCode("audio.frame_too_large", "client", "binary frame over the limit", True),
    ErrorCode(
        "audio.wrong_mode",
        "client",
        "audio frames on a text-mode call, or turns on an audio call",
        True,
    ),
    ErrorCode(
        "call.limit",
        "server",
        "`call.start` refused by admission control: `server.max_calls` live calls, "
        "recognition behind by `server.refuse_lag_ms`, the degradation ladder at "
        "`server.refuse_level`, or (cluster, audio calls) the live audio calls of every "
        "gateway at the capacity the live workers report (try another server or later)",
        True,
    ),
    ErrorCode(
        "server.internal",
        "server",
        "an unexpected failure while processing; the call continues",
        True,
    ),
    ErrorCode(
        "cluster.no_worker",
        "server",
        "an audio `call.start` in a language no live recognition worker serves (cluster)",
        True,
    ),
    # HTTP answers and the command line
    ErrorCode("auth.required", "client", "not signed in, or a wrong name or password"),
    ErrorCode("auth.forbidden", "client", "a supervisor-only action or a foreign origin"),
    ErrorCode("auth.throttled", "client", "too many wrong passwords for a name or an address"),
    ErrorCode("auth.bad_host", "client", "with sign-in off, a Host name not known to be ours"),
    ErrorCode("request.bad_limit", "client", "`limit` not a whole number from 1 to 1000"),
    ErrorCode("auth.bad_user", "client", "a user name or role that cannot be used"),
    ErrorCode("audio.none", "client", "a call without a recording"),
    ErrorCode("audio.bad_input", "client", "a file or stream that is not usable audio"),
    ErrorCode("audio.empty", "client", "audio without samples"),
    ErrorCode("audio.unreadable", "client", "a file that cannot be decoded"),
    ErrorCode("audio.mono_not_stereo", "client", "a mono file where two channels are needed"),
    ErrorCode("audio.channels", "client", "more channels than a call has speakers"),
    ErrorCode("audio.device", "setup", "the microphone cannot be opened"),
    ErrorCode("score.bad_item", "client", "an override names no item of the scorecard"),
    ErrorCode("score.bad_value", "client", "an override score outside 0..1"),
    ErrorCode("score.reason_required", "client", "an override without a reason"),
    ErrorCode("user.unknown", "client", "a command names a user that does not exist"),
    ErrorCode("token.unknown", "client", "a token id that names no single token"),
    ErrorCode("user.weak_password", "client", "a password shorter than 8 characters"),
    # phone platforms (telephony adapters): HTTP 401 bodies, close reasons, AudioHook
    ErrorCode(
        "auth.bad_signature", "client", "a platform's request signature is wrong or replayed"
    ),
    ErrorCode("auth.signature_expired", "client", "a platform's request signature is too old"),
    ErrorCode("auth.bad_api_key", "client", "AudioHook X-API-KEY missing or wrong"),
    ErrorCode("auth.not_configured", "setup", "a platform is enabled without its credentials"),
    ErrorCode("telephony.bad_message", "client", "a message the platform's format does not allow"),
    ErrorCode("telephony.bad_sequence", "client", "an AudioHook message out of sequence"),
    ErrorCode("telephony.unknown_track", "client", "a track or leg the adapter cannot name"),
    ErrorCode(
        "telephony.unsupported_layout", "client", "both parties in one channel, or no party named"
    ),
    ErrorCode("telephony.unsupported_media", "client", "a media format or rate not taken"),
    ErrorCode("telephony.metadata_required", "client", "fork audio before its metadata frame"),
    ErrorCode("telephony.bad_agent", "client", "the named agent is not a valid user name"),
    # set-up
    ErrorCode("config.invalid", "setup", "config.toml or a data file is invalid"),
    ErrorCode("model.unavailable", "setup", "a model is not installed or not in the manifest"),
    ErrorCode("model.missing", "setup", "a model file is missing"),
    ErrorCode("model.corrupt", "setup", "a model file fails its checksum"),
    # the cluster: workers, Redis, PostgreSQL
    ErrorCode("asr.worker_failed", "server", "a recognition worker failed to decode a job"),
    ErrorCode("asr.closed", "server", "recognition closed while a decode was awaited"),
    ErrorCode("cluster.not_installed", "setup", "redis-server or PostgreSQL is not installed"),
    ErrorCode("cluster.private_server", "setup", "a private Redis or PostgreSQL did not start"),
    ErrorCode("store.unavailable", "setup", "the PostgreSQL of `[store] url` cannot be reached"),
    ErrorCode("store.schema_too_new", "setup", "the database schema is newer than this release"),
)
CODES: dict[str, ErrorCode] = {c.code: c for c in _ALL}
"""Every error code, once."""


class AgentAssistError(Exception):
    """Base class: a coded, human-readable failure."""

    code: str = "server.internal"
    fault: Fault = "server"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        known = CODES.get(self.code)
        if known is None:
            raise ValueError(f"error code {self.code!r} is not registered in errors.CODES")
        self.fault = known.fault

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(AgentAssistError):
    """Invalid configuration or data file; ``problems`` holds one line per key path."""

    code = "config.invalid"
    fault = "setup"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{listing}")


class ModelError(AgentAssistError):
    """A model is not installed or fails its checksum."""

    code = "model.unavailable"
    fault = "setup"


class AudioInputError(AgentAssistError):
    """Input that is not usable audio (not audio, empty, wrong layout)."""

    code = "audio.bad_input"
    fault = "client"


class ProtocolError(AgentAssistError):
    """A wire message the server cannot accept."""

    code = "protocol.bad_envelope"
    fault = "client"


class AudioFrameError(ProtocolError):
    """A binary audio frame the server cannot accept."""

    code = "audio.bad_frame"


class CallError(AgentAssistError):
    """A request that does not fit the state of the call."""

    code = "call.not_started"
    fault = "client"


class CapacityError(AgentAssistError):
    """A call refused at ``call.start``: the box is at capacity (retry elsewhere or later)."""

    code = "call.limit"
    fault = "server"


class RequestError(AgentAssistError):
    """A request a client must fix that is not about the wire protocol or a call."""

    code = "protocol.bad_payload"
    fault = "client"


class TelephonyError(ProtocolError):
    """A phone platform's stream we cannot accept (bad message, unknown track layout...)."""

    code = "telephony.bad_message"
