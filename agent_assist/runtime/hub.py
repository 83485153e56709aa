"""Event routing: number, store, then fan out to subscribers through bounded queues.

Each client has its own queue, so one slow browser never holds back the others or the
call; a client whose queue overflows is disconnected (it can reconnect and resume from
its last sequence number, losing nothing, because every event is stored first).

History (a late join, a resume) never goes through that queue: the client's sender reads
it from the store a page at a time and waits for the socket to drain, so a 30-minute
call or a wall over busy calls is joined at the client's pace. While a call is being
caught up its live events are not queued either; the last page read from the store
holds them, since every event is stored before it is published.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_assist.store.base import Store

log = logging.getLogger(__name__)
BACKLOG_PAGE = 200
"""Stored events read and sent per step of a catch-up."""


@dataclass(eq=False)
class Subscriber:
    """One connected reader: which calls it wants and its outgoing queue."""

    subscribe: str | None  # "*", a call id, or None
    queue: asyncio.Queue[tuple[str, int, str]]
    own_call: str | None = None
    sent: dict[str, int] = field(default_factory=dict)  # call_id -> last seq queued
    overflowed: bool = False
    catching_up: dict[str, int] = field(default_factory=dict)
    """Calls whose history is still being read from the store: call id -> last seq read."""
    visible: Callable[[str], bool] | None = None
    """Which calls this reader may see (an agent: their own); None: every call."""

    def wants(self, call_id: str) -> bool:
        if self.own_call == call_id:
            return True
        if self.visible is not None and not self.visible(call_id):
            return False
        return self.subscribe == "*" or self.subscribe == call_id

    def offer(self, call_id: str, seq: int, body: str) -> None:
        """Queue an event unless already queued; mark overflow instead of blocking."""
        if seq <= self.sent.get(call_id, 0) or self.overflowed or call_id in self.catching_up:
            return
        try:
            self.queue.put_nowait((call_id, seq, body))
            self.sent[call_id] = seq
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    def __init__(self, store: Store, queue_size: int) -> None:
        self.store = store
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self.relay: Callable[[str, int, str, bool], None] | None = None
        """Where this process's events also go (the other gateways of a cluster)."""

    def add(self, subscribe: str | None, *, bounded: bool = True) -> Subscriber:
        """A reader; ``bounded=False`` only for a reader in this process that keeps up."""
        size = self.queue_size if bounded else 0
        sub = Subscriber(subscribe=subscribe, queue=asyncio.Queue(maxsize=size))
        self._subscribers.add(sub)
        return sub

    def remove(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def has_subscribers(self) -> bool:
        return any(sub.subscribe == "*" for sub in self._subscribers)

    def publish(self, call_id: str, seq: int, body: str, last: bool = False) -> None:
        """Offer an event to every subscriber that wants it; ``last`` (the call ended)
        lets each forget the call, so a wall open for a whole shift stays small."""
        self._fan_out(call_id, seq, body, last)
        if self.relay is not None:
            self.relay(call_id, seq, body, last)

    def deliver(self, call_id: str, seq: int, body: str, last: bool = False) -> None:
        """An event another gateway stored. A gap before it (a message lost while Redis
        restarted, a call that began just before this reader joined) is read from the
        store first: every event is stored before it is published."""
        for sub in list(self._subscribers):
            done = sub.sent.get(call_id, 0)
            if call_id in sub.catching_up or seq <= done + 1 or not sub.wants(call_id):
                continue
            for missing in self.store.events_after(call_id, done, seq - done - 1):
                sub.offer(call_id, int(json.loads(missing)["seq"]), missing)
        self._fan_out(call_id, seq, body, last)

    def _fan_out(self, call_id: str, seq: int, body: str, last: bool) -> None:
        for sub in list(self._subscribers):
            if sub.wants(call_id):
                sub.offer(call_id, seq, body)
                if sub.overflowed:
                    log.warning("subscriber too slow; disconnecting it (it may resume)")
                if last and call_id not in sub.catching_up:
                    sub.sent.pop(call_id, None)

    def catch_up(self, sub: Subscriber, call_id: str, after_seq: int) -> None:
        """Send ``sub`` the stored events of a call after ``after_seq`` (resume, late join),
        page by page from its sender (``next_page``), then its live events."""
        sub.catching_up[call_id] = max(sub.sent.get(call_id, 0), after_seq)

    def next_page(self, sub: Subscriber, page_size: int = BACKLOG_PAGE) -> list[str]:
        """The next page of history for ``sub``; the call whose history ends here turns live.

        Reading the last page and turning live happen without a pause in between, so no
        event falls between the store and the queue.
        """
        call_id, after = next(iter(sub.catching_up.items()))
        bodies = self.store.events_after(call_id, after, page_size)
        last = int(json.loads(bodies[-1])["seq"]) if bodies else after
        if len(bodies) < page_size:
            del sub.catching_up[call_id]
            sub.sent[call_id] = max(sub.sent.get(call_id, 0), last)
        else:
            sub.catching_up[call_id] = last
        return bodies
