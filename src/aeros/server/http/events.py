"""The event each request's cycle sets when its body has come (uvicorn's ``message_event``)."""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Literal

__all__ = ["MESSAGE_EVENT", "PLAIN_EVENT", "BodyEvent"]


class BodyEvent(asyncio.Event):
    """The cycle's ``message_event``: an :class:`asyncio.Event` that makes its queue of
    waiters at its first wait, not when it is made. Nearly every request's event is set and
    never awaited (the body has come by the time the app reads it: ``LeanCycle.receive``), and
    asyncio's makes a ``deque`` (a 64-slot block) for each."""

    _waiters: Any = ()  # nothing to wake until a wait makes the queue

    def __init__(self) -> None:  # asyncio's sets these two only (checked at import)
        self._value = False

    async def wait(self) -> Literal[True]:
        if not self._value and type(self._waiters) is tuple:
            self._waiters = collections.deque()
        return await super().wait()


def _plain_event_state() -> bool:
    """Whether asyncio's Event sets just the state :class:`BodyEvent` knows."""
    try:
        return set(vars(asyncio.Event())) == {"_waiters", "_value"}
    except TypeError:  # an Event with slots: not the one BodyEvent knows
        return False


PLAIN_EVENT = _plain_event_state()
"""Whether asyncio's Event keeps just ``_value`` and ``_waiters`` (checked at import). Then its
``is_set`` and ``clear`` read and write ``_value``, and its ``set`` with no waiter writes it
alone; aeros' protocol and cycle make those steps in place, with no call."""
MESSAGE_EVENT: type[asyncio.Event] = BodyEvent if PLAIN_EVENT else asyncio.Event
"""The event class each request's cycle gets (``BodyEvent`` where asyncio's Event is the one
it was written against)."""
