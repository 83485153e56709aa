"""What a live call learns besides its audio: the customer's record and the agent's marks.

Both become events of the call (``customer.linked``, ``offer.feedback``), stored and
broadcast like every other, and both go through the call's ``CallSession`` so the engine
reasons on them (a dismissed offer is never suggested again in that call).
"""

from __future__ import annotations

import datetime as dt

from agent_assist.core.events import Event
from agent_assist.errors import CallError
from agent_assist.protocol import CustomerLink, Feedback
from agent_assist.runtime.live_call import LiveCall
from agent_assist.runtime.services import Services


def link_at_start(services: Services, call: LiveCall) -> None:
    """Give the session the call's date and, when telephony named one, the customer."""
    call.session.set_today(dt.datetime.now(dt.UTC).date())
    customer_id = call.start.customer_id
    if not customer_id:
        return
    record = services.customers.lookup(customer_id) if services.customers else None
    _emit_all(call, call.session.link_customer(call.call_id, customer_id, record))


def link_customer(services: Services, call: LiveCall, msg: CustomerLink) -> None:
    """The console links the call to a customer; an unknown id is refused, nothing changes."""
    record = services.customers.lookup(msg.customer_id) if services.customers else None
    if record is None:
        raise CallError(f"no customer {msg.customer_id!r} in the CRM", code="customer.unknown")
    _emit_all(call, call.session.link_customer(call.call_id, msg.customer_id, record))


def apply_feedback(call: LiveCall, msg: Feedback) -> None:
    """Store the agent's mark as an event of the call, then let the engine react to it."""
    event = call.session.feedback_event(call.call_id, msg.suggestion_id, msg.action)
    if event is None:
        raise CallError(
            f"call {call.call_id} has no suggestion {msg.suggestion_id!r}",
            code="feedback.unknown_suggestion",
        )
    _emit_all(call, [event, *call.session.feed(event)])


def _emit_all(call: LiveCall, events: list[Event]) -> None:
    for event in events:
        call.emit(event)
