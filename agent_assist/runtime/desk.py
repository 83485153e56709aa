"""Where calls start and end, without sockets: the server and in-process sources share it.

Starting a call stores its row, names its agent, opens its audio recorder and links its
customer; ending one drains recognition and closes the row. The websocket server and a
recording analysed in-process (``analyze``, ``replay`` with no server) both go through
here, so both store exactly the same call.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from agent_assist.core.events import (
    CustomerLinked,
    OfferFeedback,
    TranscriptFinal,
    language_of,
)
from agent_assist.errors import CallError
from agent_assist.protocol import CallStart, CustomerLink, Feedback, decode_events
from agent_assist.runtime.call_context import apply_feedback, link_at_start, link_customer
from agent_assist.runtime.live_call import Continued, LiveCall
from agent_assist.runtime.services import Services
from agent_assist.store.audio_archive import AudioArchive, encode_spool

log = logging.getLogger(__name__)


def build_archive(services: Services) -> AudioArchive | None:
    """The audio archive ``[archive]`` asks for (beside the database by default), or None."""
    config = services.config
    if not config.archive.enabled:
        return None
    if config.archive.dir:
        return AudioArchive(config.resolve(config.archive.dir))
    home = services.data_dir or config.resolve(config.store.path).parent
    return AudioArchive(home / "audio")


class CallDesk:
    """The live calls of one process."""

    def __init__(self, services: Services, archive: AudioArchive | None) -> None:
        self.services = services
        self.archive = archive
        self.calls: dict[str, LiveCall] = {}

    async def open(
        self,
        start: CallStart,
        agent: str | None,
        before_start: Callable[[LiveCall], None] | None = None,
    ) -> LiveCall:
        """Start a call; ``before_start`` sees it before ``call.started`` is published.

        The call is stored first and listed as live only once everything about it is
        stored: a start the store refuses leaves nothing behind (no ghost call)."""
        call = LiveCall(self.services, start)
        if before_start is not None:
            before_start(call)
        await call.begin()
        try:
            store = self.services.store
            if agent:
                store.set_call_agent(call.call_id, agent)
            if self.archive is not None and call.mode == "audio":
                call.recorder = self.archive.recorder(
                    call.call_id, start.sample_rate, start.channels
                )
                store.set_recording(call.call_id, str(call.recorder.path), start.sample_rate)
        except BaseException:
            await call.end("store_failed")
            raise
        self.calls[call.call_id] = call
        link_at_start(self.services, call)
        return call

    async def continue_call(self, start: CallStart, call_id: str) -> LiveCall | None:
        """Make a stored, still open call live in this process (its gateway died and its
        source came back): numbering, times and the session go on from the store. The
        recording kept so far is finished; the audio from here on is not archived (the
        dead gateway's spool cannot be appended to safely). None: the call has ended."""
        store = self.services.store
        row = store.get_call(call_id)
        if row is None or row.ended_at is not None:
            return None
        extent_ms, emitted_ms = store.call_extent(call_id)
        history = [n.event for n in decode_events(store.events_after(call_id, 0))]
        finals = [e for e in history if isinstance(e, TranscriptFinal)]
        kept = (TranscriptFinal, OfferFeedback, CustomerLinked)
        continued = Continued(
            call_id=call_id,
            started_at=row.started_at,
            last_seq=row.last_seq,
            offset_ms=extent_ms,
            emitted_ms=emitted_ms,
            utterances=dict(Counter(e.speaker for e in finals)),
            history=tuple(e for e in history if isinstance(e, kept)),
        )
        recording = store.recording_info(call_id)
        if recording is not None:
            try:
                encode_spool(Path(recording[0]), recording[1])
            except Exception:  # the audio is kept as it is; the call goes on
                log.exception("call %s: cannot finish its recording", call_id)
        decided = language_of(row.language)
        if start.language == "auto" and decided is not None:  # its first utterance decided
            start = replace(start, language=decided)
        call = LiveCall(self.services, start, continued)
        call.session.set_today(dt.datetime.now(dt.UTC).date())
        await call.begin()
        self.calls[call.call_id] = call
        return call

    async def end(self, call: LiveCall, reason: str) -> None:
        """End a call; it leaves the live list even when storing its end fails."""
        try:
            await call.end(reason)
        finally:
            self.calls.pop(call.call_id, None)

    async def end_all(self, reason: str) -> None:
        for call in list(self.calls.values()):
            await self.end(call, reason)

    def live(self, call_id: str) -> LiveCall:
        """A call in progress, or ``call.unknown``."""
        call = self.calls.get(call_id)
        if call is None or call.ended:
            raise CallError(f"no live call {call_id!r}", code="call.unknown")
        return call

    def feedback(self, msg: Feedback) -> None:
        apply_feedback(self.live(msg.call_id), msg)

    def link_customer(self, msg: CustomerLink) -> None:
        link_customer(self.services, self.live(msg.call_id), msg)
