"""Admission control: refuse a call the box cannot serve, rather than make every call late.

One rule for "too many calls", checked at ``call.start``:

- ``server.max_calls`` live calls at most (the measured capacity, see BENCHMARKS.md);
- none while the engine's oldest queued final has waited ``server.refuse_lag_ms``;
- none while the degradation ladder is at ``server.refuse_level`` or deeper.

A refusal is ``CapacityError`` (code ``call.limit``); the health report says the same
thing to a load balancer without any call data in it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from agent_assist.asr.engine import RecognitionEngine
from agent_assist.config import ServerConfig
from agent_assist.errors import CapacityError


@dataclass(frozen=True)
class LoadReport:
    """What a dispatcher needs to route the next call; no ids, names or text."""

    accepting: bool
    reason: str
    """Why calls are refused now ('' while accepting)."""
    calls: int
    max_calls: int
    lag_ms: int
    """How long the oldest queued final has waited."""
    level: int
    """Degradation level (0: full quality)."""
    level_name: str
    engine_busy: float
    """Share of the last seconds the decoder was busy (0..1)."""
    load_avg: float
    """The machine's 1-minute load average divided by its cores."""
    steps_down: int
    """Times the ladder stepped down since the server started."""
    partials_shed: int
    early_finals_shed: int
    decode_busy_s: float
    """Decoder time since start, and the part spent on partials."""
    partial_busy_s: float
    wasted_busy_s: float
    final_wait_p50_ms: int = 0
    """Recent finals: their wait in the queue before decoding, then their decode."""
    final_wait_p95_ms: int = 0
    final_decode_p50_ms: int = 0
    final_decode_p95_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Admission:
    def __init__(
        self, limits: Callable[[], ServerConfig], engine: RecognitionEngine | None
    ) -> None:
        """``limits`` is read at every check, so a reloaded config takes effect at once."""
        self._limits = limits
        self._engine = engine

    def report(self, calls: int, *, audio: bool = True) -> LoadReport:
        lag = level = shed = early = down = 0
        name, busy, decode_s, partial_s, wasted_s = "full", 0.0, 0.0, 0.0, 0.0
        finals = (0, 0, 0, 0)
        if self._engine is not None:
            stats = self._engine.stats()
            finals = (
                stats.wait_p50_ms,
                stats.wait_p95_ms,
                stats.final_decode_p50_ms,
                stats.final_decode_p95_ms,
            )
            lag, level, name = stats.oldest_wait_ms, stats.level, stats.level_name
            busy, shed, early = stats.busy_share, stats.partials_dropped, stats.early_finals_shed
            down = stats.steps_down
            decode_s, partial_s, wasted_s = stats.busy_s, stats.partial_busy_s, stats.wasted_busy_s
        reason = self._refusal(calls, lag if audio else 0, level if audio else 0)
        return LoadReport(
            accepting=not reason,
            reason=reason,
            calls=calls,
            max_calls=self._limits().max_calls,
            lag_ms=lag,
            level=level,
            level_name=name,
            engine_busy=busy,
            load_avg=round(os.getloadavg()[0] / (os.cpu_count() or 1), 2),
            steps_down=down,
            partials_shed=shed,
            early_finals_shed=early,
            decode_busy_s=decode_s,
            partial_busy_s=partial_s,
            wasted_busy_s=wasted_s,
            final_wait_p50_ms=finals[0],
            final_wait_p95_ms=finals[1],
            final_decode_p50_ms=finals[2],
            final_decode_p95_ms=finals[3],
        )

    def check(self, calls: int, *, audio: bool = True) -> None:
        """Raise ``CapacityError`` when one more call would be refused now (a text-mode
        call needs no recognition: only the call count limits it)."""
        report = self.report(calls, audio=audio)
        if not report.accepting:
            raise CapacityError(f"this server takes no more calls now: {report.reason}")

    def _refusal(self, calls: int, lag_ms: int, level: int) -> str:
        cfg = self._limits()
        if calls >= cfg.max_calls:
            return f"{calls} live calls, server.max_calls is {cfg.max_calls}"
        if cfg.refuse_lag_ms and lag_ms >= cfg.refuse_lag_ms:
            return f"recognition is {lag_ms} ms behind (server.refuse_lag_ms {cfg.refuse_lag_ms})"
        if cfg.refuse_level and level >= cfg.refuse_level:
            return f"degradation level {level} (server.refuse_level {cfg.refuse_level})"
        return ""
