"""Stored calls as supervisors see them: scorecards with overrides, review data, search.

Scores are computed from the stored events by the pure scorer and cached per call with
a key that names the scorecard and the detectable signals, so a change of weights or
rules recomputes them; an override drops the cache of its call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agent_assist.config import Config
from agent_assist.core.call_facts import call_facts, offer_outcomes, talk_timeline
from agent_assist.core.events import Event, Numbered
from agent_assist.core.scoring import (
    SCORECARD_VERSION,
    CallScore,
    Override,
    score_call,
    score_to_json,
)
from agent_assist.core.vocabulary import SIGNAL_NAMES
from agent_assist.errors import AgentAssistError
from agent_assist.protocol import decode_events
from agent_assist.store.base import CallFilter, CallRow, Store
from agent_assist.supervision.overrides import set_override, stored_overrides


class NotFound(AgentAssistError):
    code = "call.unknown"
    fault = "client"


@dataclass(frozen=True)
class CallSummary:
    row: CallRow
    agent: str | None
    total: float | None
    failed: bool

    def to_json(self) -> dict[str, Any]:
        r = self.row
        return {
            "call_id": r.call_id,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "end_reason": r.end_reason,
            "duration_ms": r.duration_ms,
            "language": r.language,
            "title": r.title,
            "customer_id": r.customer_id,
            "mode": r.mode,
            "agent": self.agent,
            "score": self.total,
            "failed": self.failed,
        }


class Supervision:
    def __init__(
        self, store: Store, config: Config, known: frozenset[str] | None = None
    ) -> None:
        self.store = store
        self.card = config.scorecard
        self.known = known if known is not None else SIGNAL_NAMES
        key = repr((sorted(self.card.items.items()), self.card, sorted(self.known)))
        self.card_key = f"{SCORECARD_VERSION}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def call(self, call_id: str) -> CallRow:
        row = self.store.get_call(call_id)
        if row is None:
            raise NotFound(f"no call {call_id!r}")
        return row

    def events(self, call_id: str) -> list[Numbered[Event]]:
        """A stored call's events, typed (a field the reader expects and misses fails here)."""
        return decode_events(self.store.call_events(call_id))

    def overrides(self, call_id: str) -> dict[str, Override]:
        return stored_overrides(self.store, call_id)

    def score(self, call_id: str) -> CallScore:
        self.call(call_id)
        return score_call(self.events(call_id), self.card, self.known, self.overrides(call_id))

    def summary_score(self, row: CallRow) -> tuple[float | None, bool]:
        """Total and auto-fail of an ended call, from the cache when it is current."""
        if row.ended_at is None:
            return None, False
        cached = self.store.cached_score(row.call_id, self.card_key)
        if cached is not None:
            body = json.loads(cached)
            return body["total"], bool(body["failed"])
        score = self.score(row.call_id)
        body = {"total": score.total, "failed": score.failed}
        self.store.cache_score(
            row.call_id,
            self.card_key,
            score.total,
            score.auto_total,
            score.failed,
            json.dumps(body),
        )
        return score.total, score.failed

    def search(
        self, f: CallFilter, min_score: float | None = None, max_score: float | None = None
    ) -> list[CallSummary]:
        out = []
        for row, agent in self.store.find_calls(f):
            total, failed = self.summary_score(row)
            if min_score is not None and (total is None or total < min_score):
                continue
            if max_score is not None and (total is None or total > max_score):
                continue
            out.append(CallSummary(row, agent, total, failed))
        return out

    def override(
        self, call_id: str, item_id: str, score: float | None, reason: str, by: str, at: str
    ) -> CallScore:
        """Save (or with ``score`` None, clear) a supervisor's score for one item."""
        self.call(call_id)
        set_override(self.store, self.card, call_id, item_id, score, reason, by, at)
        return self.score(call_id)

    def review(self, call_id: str) -> dict[str, Any]:
        """Everything the review page shows for one call."""
        row = self.call(call_id)
        stored = self.store.call_events(call_id)
        events = decode_events(stored)
        facts = call_facts(events)
        timeline = talk_timeline(facts, self.card.silence_ms, self.card.overlap_ms)
        score = score_call(events, self.card, self.known, self.overrides(call_id))
        total, failed = (score.total, score.failed) if row.ended_at else (None, False)
        summary = CallSummary(row, self.store.call_agent(call_id), total, failed)
        return {
            "call": summary.to_json(),
            "events": stored,
            "score": score_to_json(score),
            "timeline": {
                "duration_ms": timeline.duration_ms,
                "talk_ms": dict(timeline.talk_ms),
                "customer_share": timeline.customer_share,
                "silences": [[s.start_ms, s.end_ms] for s in timeline.silences],
                "overlaps": [[s.start_ms, s.end_ms, s.speaker] for s in timeline.overlaps],
            },
            "offers": [
                {
                    "suggestion_id": o.suggestion_id,
                    "kind": o.kind,
                    "offer_id": o.offer_id,
                    "used": o.used,
                    "outcome": o.outcome,
                    "known_from": o.known_from,
                }
                for o in offer_outcomes(facts)
            ],
            "has_audio": self.store.recording(call_id) is not None,
        }
