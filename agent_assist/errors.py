"""Every error agent-assist raises, with a stable code and whose fault it was.

Hierarchy::

    AgentAssistError                 code, message, fault ("client" | "server" | "setup")
    ├── ConfigError                  config.toml or a data file is invalid (lists every problem)
    ├── ModelError                   a model file is missing or corrupt (names the fix)
    ├── AudioInputError              a file or stream that is not usable audio
    ├── ProtocolError                a malformed or out-of-order wire message
    │   ├── AudioFrameError          a binary audio frame that cannot be used
    │   └── TelephonyError           a phone platform's message, layout or credential we refuse
    └── CallError                    a call-level request that does not fit the call's state

Codes are part of the wire protocol (``docs/protocol.md``); never rename one.
"""

from __future__ import annotations

from typing import Literal

Fault = Literal["client", "server", "setup"]


class AgentAssistError(Exception):
    """Base class: a coded, human-readable failure."""

    code: str = "server.internal"
    fault: Fault = "server"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

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


class TelephonyError(ProtocolError):
    """A phone platform's stream we cannot accept (bad message, unknown track layout...)."""

    code = "telephony.bad_message"
