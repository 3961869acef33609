"""Where asyncio tasks wait: one line each, for a log message about something that hangs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["where_task_waits", "where_tasks_wait"]


def where_task_waits(task: asyncio.Task[Any], depth: int = 4) -> str:
    """The innermost ``depth`` calls of ``task``'s chain of awaited coroutines, innermost last:
    ``"name (file:line) -> ..."``."""
    places = []
    awaited: Any = task.get_coro()
    while (frame := getattr(awaited, "cr_frame", None)) is not None:
        places.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaited = awaited.cr_await
    return " -> ".join(places[-depth:]) or "no coroutine"


def where_tasks_wait(loop: asyncio.AbstractEventLoop, limit: int = 8) -> str:
    """Where the unfinished tasks of ``loop`` wait, ``"; "``-separated (at most ``limit``).
    Safe to call from another thread while the loop runs: a task set that changes meanwhile
    gives what could be read."""
    with contextlib.suppress(RuntimeError):  # the set changed size too often while read
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        shown = "; ".join(where_task_waits(task) for task in tasks[:limit])
        more = f"; and {len(tasks) - limit} more" if len(tasks) > limit else ""
        return (shown + more) or "no task"
    return "its tasks could not be read"
