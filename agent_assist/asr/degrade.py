"""The degradation ladder: which quality the engine gives up, and when, as finals wait.

Finals must stay on time. When the wait of finals in the engine's queue grows past
``degrade.step_down_ms``, the ladder moves one step down; each step turns one cost off,
in the configured order (``degrade.steps``):

``partials``        no interim text (the cheapest to lose: finals still come)
``early_finals``    no speculative decode at the first pause (a final may start later,
                    but no decode is wasted on a guess that speech goes on)
``greedy_finals``   finals decoded with beam size 1 instead of the language's beam size
``fallback_model``  a language with ``asr.languages.XX.fallback_model`` decodes on it

It moves down at most once every ``hold_s`` (a step needs time to take effect), and one
step back up after ``recover_s`` in which no final waited ``step_up_ms`` or more: two
thresholds and two delays, so the level does not flap at the boundary.

Pure logic: the caller passes the clock, so tests script time exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from agent_assist.config import DegradeConfig

STEPS = ("partials", "early_finals", "greedy_finals", "fallback_model")
"""Every step the engine knows, in the default order."""


@dataclass(frozen=True)
class LevelChange:
    at: float
    """Clock time of the change (the engine's ``time.monotonic()``)."""
    level: int
    """The level after the change (0: full quality)."""
    wait_ms: int
    """The wait that caused it (for a step up: the largest wait of the quiet period)."""


class DegradationLadder:
    """Current level and its history; ``observe`` every final's wait, ``settle`` often."""

    def __init__(self, cfg: DegradeConfig, now: float = 0.0) -> None:
        self._cfg = cfg
        self._steps = cfg.steps if cfg.enabled else ()
        self.level = 0
        self._changed_at = now
        self._loud_at = now  # last time a wait reached step_up_ms
        self._quiet_max = 0
        self.steps_down = 0
        self.steps_up = 0
        self.history: deque[LevelChange] = deque(maxlen=50)

    @property
    def steps(self) -> tuple[str, ...]:
        return self._steps

    @property
    def level_name(self) -> str:
        """``full``, or the last step taken (its predecessors are in force too)."""
        return self._steps[self.level - 1] if self.level else "full"

    def shed(self, step: str) -> bool:
        """Whether ``step``'s cost is turned off at the current level."""
        return step in self._steps[: self.level]

    def observe(self, wait_ms: int, now: float) -> None:
        """A final (or the oldest queued one) has waited ``wait_ms``."""
        if wait_ms >= self._cfg.step_up_ms:
            self._loud_at = now
            self._quiet_max = 0
        else:
            self._quiet_max = max(self._quiet_max, wait_ms)
        if (
            wait_ms >= self._cfg.step_down_ms
            and self.level < len(self._steps)
            and now - self._changed_at >= self._cfg.hold_s
        ):
            self._move(+1, wait_ms, now)
        self.settle(now)

    def settle(self, now: float) -> None:
        """Step back up once the queue has been quiet for ``recover_s``."""
        if (
            self.level > 0
            and now - self._loud_at >= self._cfg.recover_s
            and now - self._changed_at >= self._cfg.recover_s
        ):
            self._move(-1, self._quiet_max, now)

    def _move(self, delta: int, wait_ms: int, now: float) -> None:
        self.level += delta
        self._changed_at = now
        if delta > 0:
            self.steps_down += 1
        else:
            self.steps_up += 1
        self.history.append(LevelChange(now, self.level, wait_ms))
