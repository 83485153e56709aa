"""Decode jobs and their answers as they travel through Redis.

Keys (all under ``[cluster] prefix``):

- ``{p}:jobs:{language}:final``, ``{p}:jobs:{language}:partial``, ``{p}:jobs:detect``:
  streams of jobs, each read by the consumer group ``workers``. One stream per language
  and kind, so a worker serves only the languages whose model it loaded and takes finals
  before partials.
- ``{p}:result:{job id}``: the one answer of a job, written with ``SET NX``: whichever
  worker answers first wins, so a job decoded twice (a worker presumed dead that was
  only slow) still yields one final.
- ``{p}:reply:{job id}``: a list the gateway blocks on: ``s:{worker}`` is pushed when a
  worker starts decoding the job (so the gateway knows exactly how long it waited for a
  worker), ``1`` when the answer lands.
- ``{p}:node:{name}``: each node's load report, expiring when the node stops beating.
- ``{p}:events``: the pub/sub channel of every gateway's events; ``{p}:calls``: the
  live calls and the gateway holding each; ``{p}:sources``: each live call's source
  user and start (for a take-over); ``{p}:sweep``: the lock a gateway holds while it
  ends or takes over the calls of a gateway that died.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agent_assist.asr.whisper import Recognized
from agent_assist.core.events import Word

Kind = Literal["final", "partial", "detect"]
GROUP = "workers"
RESULT_TTL_S = 900
STARTED = b"s"
"""Pushed on a job's reply list when a worker starts decoding it (``s:`` and the
worker's name: the gateway counts the job as waiting again if that worker dies)."""
ANSWERED = b"1"
"""Pushed on a job's reply list when its answer is written."""


@dataclass(frozen=True)
class Keys:
    prefix: str

    def jobs(self, kind: Kind, language: str = "") -> str:
        return (
            f"{self.prefix}:jobs:detect"
            if kind == "detect"
            else (f"{self.prefix}:jobs:{language}:{kind}")
        )

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    def reply(self, job_id: str) -> str:
        return f"{self.prefix}:reply:{job_id}"

    def node(self, name: str) -> str:
        return f"{self.prefix}:node:{name}"

    def nodes_pattern(self) -> str:
        return f"{self.prefix}:node:*"

    def sources(self) -> str:
        return f"{self.prefix}:sources"

    def sweep_lock(self) -> str:
        return f"{self.prefix}:sweep"

    def events(self) -> str:
        return f"{self.prefix}:events"

    def calls(self) -> str:
        """Hash of live calls: call id -> the gateway holding it."""
        return f"{self.prefix}:calls"


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: Kind
    language: str
    offset_ms: int
    samples: np.ndarray[Any, np.dtype[np.float32]]
    candidates: tuple[str, ...] = ()
    deadline_ms: int = 0
    """Partials only: wall-clock ms after which nobody waits for the answer."""
    greedy: bool = False
    """A final with beam size 1 (the engine's degradation ladder under load)."""
    fallback: bool = False
    """A final on the language's fallback model (the ladder's last step)."""

    def fields(self) -> dict[str, str | bytes | int]:
        return {
            "id": self.job_id,
            "kind": self.kind,
            "lang": self.language,
            "offset_ms": self.offset_ms,
            "audio": np.ascontiguousarray(self.samples, dtype=np.float32).tobytes(),
            "candidates": ",".join(self.candidates),
            "deadline_ms": self.deadline_ms,
            "greedy": int(self.greedy),
            "fallback": int(self.fallback),
        }

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> Job:
        kind = raw[b"kind"].decode()
        if kind not in ("final", "partial", "detect"):
            raise ValueError(f"unknown job kind {kind!r}")
        candidates = raw.get(b"candidates", b"").decode()
        return cls(
            job_id=raw[b"id"].decode(),
            kind=kind,  # type: ignore[arg-type]
            language=raw[b"lang"].decode(),
            offset_ms=int(raw[b"offset_ms"]),
            samples=np.frombuffer(raw[b"audio"], dtype=np.float32),
            candidates=tuple(c for c in candidates.split(",") if c),
            deadline_ms=int(raw.get(b"deadline_ms", b"0")),
            greedy=raw.get(b"greedy", b"0") == b"1",
            fallback=raw.get(b"fallback", b"0") == b"1",
        )


def encode_recognized(r: Recognized) -> str:
    return json.dumps(
        {
            "text": r.text,
            "language": r.language,
            "words": [[w.text, w.start_ms, w.end_ms, w.p] for w in r.words],
            "no_speech_prob": r.no_speech_prob,
            "avg_logprob": r.avg_logprob,
        },
        ensure_ascii=False,
    )


def decode_recognized(doc: dict[str, Any]) -> Recognized:
    return Recognized(
        text=doc["text"],
        language=doc["language"],
        words=tuple(Word(str(t), int(s), int(e), float(p)) for t, s, e, p in doc["words"]),
        no_speech_prob=float(doc["no_speech_prob"]),
        avg_logprob=float(doc["avg_logprob"]),
    )
