"""Helpers the original Aeros exported from ``Aeros.misc``, kept under the same names.

- :func:`sync_to_async` (asgiref): call blocking code from a view without blocking the event
  loop; it runs in a worker thread::

      @sync_to_async
      def slow() -> str:
          time.sleep(2)
          return "ok"

      @app.route("/")
      async def home():
          return jsonify({"response": await slow()})

- :func:`async_to_sync` (asgiref): call a coroutine function from synchronous code (a sync
  view, a script); it runs on an event loop and blocks until done.
- :func:`jsonify`: Quart's, the app found without ``current_app``'s proxy (whose attribute
  lookup raises and catches an AttributeError: 0.8 us of a 3.5 us call).
- :func:`render_template`: Quart's, re-exported so ``from aeros.misc import render_template``
  works as it did.

Sync views need none of this: Quart runs a ``def`` view in a thread pool by itself, and aeros
logs that once per function (:func:`note_sync_function`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
from typing import Any

import quart
from asgiref.sync import async_to_sync, sync_to_async
from quart import Response, render_template
from quart.globals import _cv_app

__all__ = ["async_to_sync", "jsonify", "note_sync_function", "render_template", "sync_to_async"]

logger = logging.getLogger(__name__)
# bound once: a method call on a from-imported name is never specialized
_get_app_ctx = _cv_app.get


def jsonify(*args: Any, **kwargs: Any) -> Response:
    """A JSON response of ``args`` or ``kwargs``, exactly as ``quart.jsonify`` makes it
    (``current_app.json.response(...)``), with the app taken from its context directly."""
    try:
        app = _get_app_ctx().app
    except LookupError:  # outside an app context: Quart's own error
        return quart.jsonify(*args, **kwargs)
    # Flask's provider says a sansio Response; Quart's provider makes the app's response_class
    response: Response = app.json.response(*args, **kwargs)  # type: ignore[assignment]
    return response


# The test Quart's ensure_async uses: inspect's misses some coroutine functions before 3.12,
# asyncio's is deprecated from 3.14.
_iscoroutinefunction = (
    inspect.iscoroutinefunction if sys.version_info >= (3, 12) else asyncio.iscoroutinefunction
)

# Underlying functions already checked. Bound methods and partials are unwrapped so the set is
# bounded by the code, not by the number of calls (Quart calls ensure_async on every request).
_seen: set[Any] = set()


def note_sync_function(func: Any) -> None:
    """Log once per function that ``func``, being synchronous, runs in a thread pool.

    Called by ``WebServer.ensure_async`` for every view, hook and handler Quart is about to
    call; the second and later calls for one function cost one set lookup.
    """
    try:
        if func in _seen:
            return
    except TypeError:  # unhashable callable: nothing to remember it by
        return
    key = getattr(func, "__func__", None) or getattr(func, "func", None) or func
    if key is not func:  # a bound method or a partial: remember the function behind it
        if key in _seen:
            return
        _seen.add(key)
    if not isinstance(func, functools.partial):  # partials are new objects on every call
        _seen.add(func)
    if _iscoroutinefunction(func):
        return
    name = getattr(key, "__qualname__", None) or repr(key)
    module = getattr(key, "__module__", None)
    logger.info(
        "%s is synchronous: Quart runs it in a thread pool (define it with 'async def' to "
        "save the thread hop)",
        f"{module}.{name}" if module else name,
    )
