"""Calls whose gateway died: found in the shared store, ended once by one survivor.

A gateway killed mid-call (SIGKILL, a lost machine) cannot end its calls; in a cluster no
gateway closes "interrupted" calls at start either, since they may be live elsewhere.
Instead every gateway, each heartbeat, looks for calls open in the store that no live
gateway holds (neither itself nor one whose load report is still fresh). A call seen
that way for ``[cluster] lost_call_grace_s`` in a row is ended with reason
``gateway_lost`` by whichever gateway holds the sweep lock in Redis at that moment; the
store row is read again under the lock, so each call gets exactly one ``call.ended``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from agent_assist.store.base import CallRow, Store

LOST_REASON = "gateway_lost"

CloseCall = Callable[[Store, CallRow, str, str], tuple[int, str]]
"""Stores a call's ``call.ended``: (store, row, ended_at, reason) -> (seq, body)."""


class LostCalls:
    """Which open calls have had no live gateway for the grace window, and ending them."""

    def __init__(
        self,
        store: Store,
        local: Callable[[], Collection[str]],
        grace_s: float,
        close: CloseCall,
        now_iso: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._local = local
        self._grace_s = grace_s
        self._close = close
        self._now_iso = now_iso
        self._clock = clock
        self._unheld_since: dict[str, float] = {}
        self.ended: list[str] = []
        """Calls this gateway ended as lost (newest last), for the health of the sweep."""

    def due(self, held_by_live: Collection[str]) -> list[str]:
        """Open calls no live gateway has held for the whole grace window.

        ``held_by_live``: calls registered in Redis by a gateway still beating. A call
        held again (its gateway was only cut off from Redis for a moment) starts over."""
        now = self._clock()
        local = set(self._local())
        unheld = {
            row.call_id
            for row in self._store.open_calls()
            if row.call_id not in local and row.call_id not in held_by_live
        }
        self._unheld_since = {c: self._unheld_since.get(c, now) for c in unheld}
        return sorted(c for c, t in self._unheld_since.items() if now - t >= self._grace_s)

    def is_open(self, call_id: str) -> bool:
        row = self._store.get_call(call_id)
        return row is not None and row.ended_at is None

    def end(self, call_id: str) -> tuple[int, str] | None:
        """Store the lost call's end; None when it ended meanwhile (another gateway's
        sweep, or its own gateway's)."""
        self._unheld_since.pop(call_id, None)
        row = self._store.get_call(call_id)
        if row is None or row.ended_at is not None:
            return None
        ended = self._close(self._store, row, self._now_iso(), LOST_REASON)
        self.ended = [*self.ended[-99:], call_id]
        return ended
