"""Running a cache coroutine from synchronous code (``app.clear_cache()`` in a sync view)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T], close: Callable[[], Awaitable[None]] | None) -> T:
    """Run ``coro`` to completion and return its result (or raise its exception).

    Without an event loop in this thread it runs one; when this thread is running a loop (a
    sync view, a test) it runs ``coro`` on a helper thread with its own loop and waits,
    blocking this thread meanwhile. ``close`` (the store's ``aclose``) runs at the end on the
    same loop: that loop ends there, and the store's connections for it must go with it.
    """

    async def run_and_close() -> T:
        try:
            return await coro
        finally:
            if close is not None:
                await close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_and_close())
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(run_and_close()))
        except BaseException as exc:  # handed back to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="aeros-cache-sync")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
