"""Awaiting helpers of the lean connection (:mod:`aeros.fastpath.http`), none of them Quart's.

A ``receive`` that gives back a message already taken, two sends in order, the rest of a
coroutine stepped once by hand, and a wait for the client to leave.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable

__all__ = ["Resume", "replaying", "send_two", "wait_for_disconnect"]


def replaying(first: Any, receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """``receive`` that gives ``first`` (a message already taken) once, then what comes."""
    taken = [first]

    async def replaying() -> Any:
        if taken:
            return taken.pop()
        return await receive()

    return cast("ASGIReceiveCallable", replaying)


async def send_two(send: ASGISendCallable, first: Any, second: Any) -> None:
    """Send two messages in order (a complete response's start and body)."""
    await send(first)
    await send(second)


class Resume:
    """Await the rest of a coroutine that was already stepped once and is waiting on ``first``.

    A coroutine's steps can be driven by hand; this hands each thing it waits on to the task
    running us, and sends back (or throws in) what the task resumes us with, cancellation
    included, until the coroutine returns.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self.coro, self.first
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # cancellation, GeneratorExit: the coroutine decides
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coro.send(value)
                except StopIteration:
                    return


async def wait_for_disconnect(receive: ASGIReceiveCallable) -> None:
    """Return once ``receive`` gives ``http.disconnect`` (the other messages are dropped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
