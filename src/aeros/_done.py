"""``DONE``: an awaitable that is already finished.

Hot-path code written as plain functions that return what their caller awaits (instead of
``async def``, which costs a coroutine per call) returns this when there is nothing to wait
for. One instance serves any number of awaits.
"""

from __future__ import annotations

from collections.abc import Generator

__all__ = ["DONE"]


class _Done:
    """Awaiting it returns None at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator function that returns at once

    def __repr__(self) -> str:
        return "aeros.DONE"


DONE = _Done()
