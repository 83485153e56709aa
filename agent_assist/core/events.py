"""The one event vocabulary every stage speaks.

Events are frozen, slotted dataclasses. Each carries the call id and ``t_ms``, a time
offset into the call's audio (never wall-clock time), so that replaying a recorded call
gives the same events as serving it live. ``TYPE`` is the dotted wire type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

Language = Literal["ja", "en"]
LANGUAGES: tuple[Language, ...] = ("ja", "en")
"""Every language a call can be held in; the first is what detection falls back to."""
LanguageChoice = Literal["ja", "en", "auto"]
"""What a call asks for: a language, or ``auto`` until its first utterance decides."""
_CHOICES: dict[object, LanguageChoice] = {"ja": "ja", "en": "en", "auto": "auto"}


def language_choice(value: object) -> LanguageChoice | None:
    """``value`` as a call's language choice, or None when it names none (input checks)."""
    return _CHOICES.get(value) if isinstance(value, str) else None


def language_of(value: object) -> Language | None:
    """``value`` as a language a call can be held in, or None."""
    choice = language_choice(value)
    return None if choice == "auto" else choice

Speaker = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
OfferKind = Literal["upsell", "cross_sell", "downsell", "retention"]
Severity = Literal["low", "medium", "high"]
FeedbackAction = Literal["used", "dismissed", "accepted", "declined"]
FEEDBACK_ACTIONS: tuple[FeedbackAction, ...] = ("used", "dismissed", "accepted", "declined")


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its audio time span and probability."""

    text: str
    start_ms: int
    end_ms: int
    p: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """The words behind a signal, suggestion or warning: utterance and character span."""

    utterance_id: str
    speaker: Speaker
    text: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events: which call, and where in its audio."""

    TYPE: ClassVar[str] = "event"
    call_id: str
    t_ms: int


@dataclass(frozen=True, slots=True)
class CallStarted(Event):
    TYPE: ClassVar[str] = "call.started"
    language: LanguageChoice
    channels: tuple[Speaker, ...]
    title: str
    customer_id: str | None
    mode: Literal["audio", "text"]
    started_at: str


@dataclass(frozen=True, slots=True)
class AudioChunk(Event):
    """Raw PCM16 mono audio of one speaker; stays inside the server."""

    TYPE: ClassVar[str] = "audio.chunk"
    speaker: Speaker
    sample_rate: int
    pcm16: bytes


@dataclass(frozen=True, slots=True)
class TranscriptPartial(Event):
    TYPE: ClassVar[str] = "transcript.partial"
    utterance_id: str
    speaker: Speaker
    text: str


@dataclass(frozen=True, slots=True)
class TranscriptFinal(Event):
    """One finished utterance; ``t_ms`` is its start."""

    TYPE: ClassVar[str] = "transcript.final"
    utterance_id: str
    speaker: Speaker
    end_ms: int
    language: str
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class SignalDetected(Event):
    TYPE: ClassVar[str] = "signal"
    signal: str
    speaker: Speaker
    rule_id: str
    evidence: Evidence
    detail: str = ""
    """What the signal is about, when the rule knows: e.g. an offer's kind or product id."""


@dataclass(frozen=True, slots=True)
class PhaseChanged(Event):
    TYPE: ClassVar[str] = "phase"
    from_phase: str
    to_phase: str
    rule_id: str
    evidence: Evidence | None


@dataclass(frozen=True, slots=True)
class Suggestion(Event):
    TYPE: ClassVar[str] = "suggestion"
    suggestion_id: str
    kind: OfferKind
    offer_id: str
    offer: str
    line: str
    reason: str
    rule_id: str
    evidence: Evidence
    expires_ms: int = 0
    """Call time after which the suggestion is stale (0: never)."""
    priority: int = 0
    """Rank among candidates; a higher one replaces the current suggestion."""


@dataclass(frozen=True, slots=True)
class ComplianceWarning(Event):
    TYPE: ClassVar[str] = "warning"
    warning_id: str
    rule_id: str
    severity: Severity
    title: str
    message: str
    instead: str
    reference: str
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Decision(Event):
    """Why a suggestion or warning was shown or held back: the rule that decided.

    ``rule_id`` is the candidate (an offer or compliance rule); ``decided_by`` is the
    rule that settled it (the candidate itself when shown, a ``suppress.*`` or
    ``allow.*`` rule when held back), so a reviewer can ask "why not?".
    """

    TYPE: ClassVar[str] = "decision"
    decision_id: str
    outcome: Literal["shown", "suppressed"]
    subject: Literal["suggestion", "warning"]
    rule_id: str
    kind: str
    offer_id: str
    decided_by: str
    reason: str
    ref_id: str
    evidence: Evidence | None


@dataclass(frozen=True, slots=True)
class OfferFeedback(Event):
    """The agent's mark on a suggestion: used, dismissed, accepted or declined."""

    TYPE: ClassVar[str] = "offer.feedback"
    suggestion_id: str
    offer_id: str
    kind: str
    action: FeedbackAction


@dataclass(frozen=True, slots=True)
class CustomerLinked(Event):
    """The CRM record the call's suggestions are computed from (``known`` false: none)."""

    TYPE: ClassVar[str] = "customer.linked"
    customer_id: str
    known: bool
    name: str
    plan_id: str
    plan: str
    monthly_price: int
    usage_gb: float | None
    cap_gb: float | None
    renewal_date: str
    tenure_months: int
    churn_risk: str
    tier: str
    summary: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    TYPE: ClassVar[str] = "call.ended"
    reason: str
    duration_ms: int


WIRE_EVENTS: tuple[type[Event], ...] = (
    CallStarted,
    TranscriptPartial,
    TranscriptFinal,
    SignalDetected,
    PhaseChanged,
    Suggestion,
    ComplianceWarning,
    Decision,
    OfferFeedback,
    CustomerLinked,
    CallEnded,
)
"""Events sent to clients and stored; ``AudioChunk`` never leaves the server."""


E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class Numbered(Generic[E]):
    """An event with the number its call gave it: the order it was stored and sent."""

    seq: int
    event: E
    emitted_ms: int = 0
