"""Every Quart internal the lean path relies on, checked in one place.

The lean path (:mod:`aeros.fastpath`) re-implements parts of Quart's request handling, so it
depends on Quart's private structure. That structure changed between the two supported shapes:

- Quart 0.22 (Python 3.11, 3.12): a ``RequestContext`` pushed on top of an ``AppContext``, two
  context variables, and dispatch methods that take the request context as an optional last
  argument (``process_response(response, ctx)``, ``handle_exception(error)``).
- Quart 0.23 (Python 3.13+): one ``AppContext`` that carries the request, one context variable,
  and dispatch methods that take the context first (``process_response(ctx, response)``,
  ``handle_exception(ctx, error)``).

This module finds out which shape is installed, checks that every internal the lean path
touches exists with the expected shape, and gives the call adapters. Anything missing turns
the lean dispatch off (Quart's own runs instead) with the reason in :data:`MISSING`; nothing
here raises at import, so a new Quart release can make aeros slower, never wrong.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import quart.app
import quart.asgi
import quart.ctx
import quart.globals
import quart.helpers
import quart.utils
import quart.wrappers.response
from quart import Quart

__all__ = [
    "DISPATCH_METHODS",
    "INSTANCE_METHODS",
    "MISSING",
    "QUARTS_SECRET_KEY",
    "QUART_VERSION",
    "UNIFIED_CONTEXT",
    "default_options_response",
    "handle_exception",
    "handle_user_exception",
    "is_quarts_own",
    "patched_dispatch",
    "preprocess_request",
    "process_response",
]

QUART_VERSION = version("quart")
"""The installed Quart's version string."""

UNIFIED_CONTEXT = not hasattr(quart.ctx, "RequestContext")
"""True on Quart 0.23+, where the request lives in the ``AppContext`` (no ``RequestContext``)."""

DISPATCH_METHODS = (
    "request_context",
    "app_context",
    "do_teardown_request",
    "do_teardown_appcontext",
    "dispatch_request",
    "ensure_async",
    "handle_request",
    "full_dispatch_request",
    "preprocess_request",
    "finalize_request",
    "process_response",
    "make_default_options_response",
)
"""The ``Quart`` methods whose work the lean dispatch inlines; patching any one turns it off."""

INSTANCE_METHODS = (*DISPATCH_METHODS, "make_response")
"""Methods that turn the lean dispatch off when set on the app instance. ``make_response`` is
asked of the app's class per response (a subclass's override is called); one set on the
instance is seen only here."""

_QUART_FILE = quart.app.__file__

QUARTS_SECRET_KEY = inspect.getattr_static(Quart, "secret_key", None)
"""Quart's ``secret_key`` descriptor (Flask's ``ConfigAttribute("SECRET_KEY")``, no
converter): while an app's class has it, the lean dispatch reads ``app.config["SECRET_KEY"]``
in place, with no call of the descriptor's ``__get__`` per request."""


def _first_parameter(name: str) -> str | None:
    """The name of the first parameter after ``self`` of ``Quart.<name>``, if it has one."""
    params = list(inspect.signature(getattr(Quart, name)).parameters)
    return params[1] if len(params) > 1 else None


def _missing_internals() -> str | None:
    """Why the installed Quart does not have the shape the lean path needs, or None."""
    needed = {
        quart.asgi: (
            "ASGIHTTPConnection",
            "ASGIWebsocketConnection",
            "_handle_exception",
            "_normalise_path",
            *(("_convert_os_error",) if UNIFIED_CONTEXT else ()),
        ),
        quart.utils: ("cancel_tasks", "encode_headers", "raise_task_exceptions"),
        quart.wrappers.response: ("DataBody", "Response"),
    }
    for module, names in needed.items():
        for name in names:
            if not hasattr(module, name):
                return f"{module.__name__}.{name} is missing"
    connection = quart.asgi.ASGIHTTPConnection
    for name in ("_create_request_from_scope", "_send_response", "_send_push_promise"):
        if not hasattr(connection, name):
            return f"quart.asgi.ASGIHTTPConnection.{name} is missing"
    needed_ctx = ("AppContext",) if UNIFIED_CONTEXT else ("AppContext", "RequestContext")
    for name in needed_ctx:
        if not hasattr(quart.ctx, name):
            return f"quart.ctx.{name} is missing"
    cvs = ("_cv_app",) if UNIFIED_CONTEXT else ("_cv_app", "_cv_request")
    for name in cvs:
        if not hasattr(quart.globals, name):
            return f"quart.globals.{name} is missing"
    if UNIFIED_CONTEXT:
        ctx_members = ("_open_session", "match_request", "copy", "_request_websocket")
        for name in ctx_members:
            if not hasattr(quart.ctx.AppContext, name):
                return f"quart.ctx.AppContext.{name} is missing"
        if not hasattr(quart.helpers, "_CollectErrors"):
            return "quart.helpers._CollectErrors is missing"
    for name in DISPATCH_METHODS:
        if not hasattr(Quart, name):
            return f"Quart.{name} is missing"
    # Quart's session key: the lean dispatch reads the config as this descriptor does
    key = QUARTS_SECRET_KEY
    if (
        getattr(key, "__name__", None) != "SECRET_KEY"
        or not hasattr(key, "__get__")
        or getattr(key, "get_converter", None) is not None
    ):
        return f"Quart.secret_key is not config['SECRET_KEY'] read as it is ({key!r})"
    # The calling convention the adapters below were written for.
    expected_first = "ctx" if UNIFIED_CONTEXT else "error"
    if _first_parameter("handle_exception") != expected_first:
        return (
            f"Quart.handle_exception{inspect.signature(Quart.handle_exception)} has changed "
            f"(expected its first argument to be {expected_first!r})"
        )
    return None


MISSING: str | None = _missing_internals()
"""Why the lean dispatch cannot run on this Quart (None: it can)."""


def is_quarts_own(func: Any) -> bool:
    """True for a plain function defined in ``quart/app.py`` (not a wrapper or a patch)."""
    return type(func) is types.FunctionType and func.__code__.co_filename == _QUART_FILE


def patched_dispatch(app: Quart, allowed: Callable[[str, Any], bool]) -> str | None:
    """Which dispatch method of ``app`` is not Quart's own, as a reason string, or None.

    Looks at the instance first (``app.handle_request = ...``), then at the class as it is now
    (a subclass override, or ``Quart.full_dispatch_request`` patched by a monitoring tool).
    ``allowed(name, func)`` accepts aeros' own harmless overrides.
    """
    instance_attrs = vars(app)
    for name in INSTANCE_METHODS:
        if name in instance_attrs:
            return f"{name} is overridden on the app instance"
    cls = type(app)
    for name in DISPATCH_METHODS:
        func = getattr(cls, name)
        if not is_quarts_own(func) and not allowed(name, func):
            owner = next((k.__qualname__ for k in cls.__mro__ if name in vars(k)), cls.__qualname__)
            return f"{owner}.{name} is not Quart's own ({func!r})"
    return None


# ---- call adapters: the argument order of the installed Quart -----------------------------

if UNIFIED_CONTEXT:

    def handle_exception(app: Any, ctx: Any, error: Exception) -> Awaitable[Any]:
        """``app.handle_exception`` for an error that escaped the dispatch."""
        return app.handle_exception(ctx, error)  # type: ignore[no-any-return]

    def handle_user_exception(app: Any, ctx: Any, error: Exception) -> Awaitable[Any]:
        """``app.handle_user_exception`` for an error raised by a hook or the view."""
        return app.handle_user_exception(ctx, error)  # type: ignore[no-any-return]

    def preprocess_request(app: Any, ctx: Any) -> Awaitable[Any]:
        """``app.preprocess_request``: URL value preprocessors and before-request hooks."""
        return app.preprocess_request(ctx)  # type: ignore[no-any-return]

    def process_response(app: Any, ctx: Any, response: Any) -> Awaitable[Any]:
        """``app.process_response``: after-request hooks and saving the session."""
        return app.process_response(ctx, response)  # type: ignore[no-any-return]

    def default_options_response(app: Any, ctx: Any) -> Awaitable[Any]:
        """``app.make_default_options_response`` for an automatic OPTIONS answer."""
        return app.make_default_options_response(ctx)  # type: ignore[no-any-return]

else:

    def handle_exception(app: Any, ctx: Any, error: Exception) -> Awaitable[Any]:
        """``app.handle_exception`` for an error that escaped the dispatch."""
        return app.handle_exception(error)  # type: ignore[no-any-return]

    def handle_user_exception(app: Any, ctx: Any, error: Exception) -> Awaitable[Any]:
        """``app.handle_user_exception`` for an error raised by a hook or the view."""
        return app.handle_user_exception(error)  # type: ignore[no-any-return]

    def preprocess_request(app: Any, ctx: Any) -> Awaitable[Any]:
        """``app.preprocess_request``: URL value preprocessors and before-request hooks."""
        return app.preprocess_request(ctx)  # type: ignore[no-any-return]

    def process_response(app: Any, ctx: Any, response: Any) -> Awaitable[Any]:
        """``app.process_response``: after-request hooks and saving the session."""
        return app.process_response(response, ctx)  # type: ignore[no-any-return]

    def default_options_response(app: Any, ctx: Any) -> Awaitable[Any]:
        """``app.make_default_options_response`` for an automatic OPTIONS answer."""
        return app.make_default_options_response()  # type: ignore[no-any-return]
