"""Quart's request dispatch, minus the work of features the app does not use.

:meth:`quart.Quart.handle_request` sends four signals, walks the before/after-request hook
tables, opens a session and wraps the view with ``ensure_async`` on every request, whether or
not anything is registered. This does exactly what Quart does, in Quart's order, but skips a
step when it has nothing to run: a signal without receivers, hook tables with no functions, a
session interface that can only give a null session (Quart's cookie sessions without a secret
key), and ``ensure_async`` of a view already wrapped once.

It never diverges silently from Quart. :func:`lean_dispatch_reason` decides once per app, when
the app serves its first request, and logs one line whenever the answer is no:

- the installed Quart lacks an internal this relies on (:data:`aeros.fastpath._compat.MISSING`);
- a dispatch method is overridden on the app instance (``app.handle_request = ...``);
- a dispatch method of the app's class is not Quart's own: a subclass override, or a patch of
  ``Quart.full_dispatch_request`` by a monitoring tool;
- the app's class has a ``secret_key`` of its own (the lean dispatch reads the key from the
  config, as Quart's ``secret_key`` does).

Such an app runs Quart's :meth:`~quart.Quart.handle_request` unchanged. Patches applied after
an app served its first request are not seen: instrument before serving, as APM tools do.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Any

from quart import Quart
from quart.sessions import SecureCookieSessionInterface
from quart.signals import request_finished, request_started

from aeros.fastpath import _compat
from aeros.fastpath.later_session import NULL_SESSION_LATER
from aeros.fastpath.response import LeanResponse
from aeros.fastpath.routing import LeanMap
from aeros.types import ROUTE

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from quart.typing import ResponseTypes
    from quart.wrappers import Request

__all__ = [
    "LEAN_STATE",
    "handle_request",
    "lean_dispatch_reason",
    "note_route",
    "uses_lean_dispatch",
]

logger = logging.getLogger("aeros.fastpath")

LEAN_STATE = "_aeros_lean_dispatch"
"""``app.__dict__`` key holding :func:`uses_lean_dispatch`'s decision: None (lean) or the
reason Quart's path is used."""

_CONTEXTS: Any = (
    None
    if _compat.MISSING is not None
    else importlib.import_module(
        "aeros.fastpath.ctx_unified" if _compat.UNIFIED_CONTEXT else "aeros.fastpath.ctx_split"
    )
)
LeanRequestContext: Any = None if _CONTEXTS is None else _CONTEXTS.LeanRequestContext
"""The request context class of the lean path for the installed Quart (None if it cannot run)."""

_ROUTES_KEY = "_aeros_remembered_routes"
"""``app.__dict__`` key holding the app's :class:`LeanMap` when the lean context may take a
request's rule from it (:func:`remembering_map`), else None."""
_VIEWS_KEY = "_aeros_async_views"
"""``app.__dict__`` key holding view function -> ``app.ensure_async(view function)``."""


def _aeros_override(name: str, func: Any) -> bool:
    """WebServer's ``ensure_async`` only notes sync functions before calling Quart's."""
    return name == "ensure_async" and getattr(func, "__aeros_keeps_quart__", False) is True


def lean_dispatch_reason(app: Quart) -> str | None:
    """Why ``app`` cannot take the lean dispatch, or None when it can (see module docstring)."""
    if _compat.MISSING is not None:
        return f"Quart {_compat.QUART_VERSION}: {_compat.MISSING}"
    if inspect.getattr_static(type(app), "secret_key", None) is not _compat.QUARTS_SECRET_KEY:
        return f"{type(app).__qualname__}.secret_key is not Quart's own"
    return _compat.patched_dispatch(app, _aeros_override)


def remembering_map(app: Quart) -> LeanMap | None:
    """The app's URL map, when a request's rule may be taken from the matches it remembers
    (:meth:`LeanMap.remembered_route`) instead of binding and matching: the map is a
    :class:`LeanMap` that binds as aeros' does, the app binds with Quart's own
    ``create_url_adapter`` and the lean context sets Quart's attributes. Else None."""
    url_map = app.url_map
    if not (
        isinstance(url_map, LeanMap)
        and type(url_map).bind_to_request is LeanMap.bind_to_request
        and "create_url_adapter" not in vars(app)
        and _compat.is_quarts_own(type(app).create_url_adapter)
    ):
        return None
    try:
        same = _CONTEXTS.same_attributes(app)
    except Exception as error:  # a request class that cannot be built for the probe
        logger.info("app %r binds every request's URL adapter: %r", app.name, error)
        return None
    if not same:
        logger.info("app %r binds every request's URL adapter: Quart's context differs", app.name)
        return None
    return url_map


def uses_lean_dispatch(app: Quart) -> bool:
    """True when ``app`` takes :func:`handle_request`; decided (and logged) once per app."""
    state = app.__dict__.get(LEAN_STATE, LEAN_STATE)
    if state is LEAN_STATE:
        state = app.__dict__[LEAN_STATE] = lean_dispatch_reason(app)
        app.__dict__[_ROUTES_KEY] = remembering_map(app) if state is None else None
        if state is not None:
            # An unexpected Quart is worth a warning; a patch or override is the user's choice.
            level = logging.WARNING if _compat.MISSING is not None else logging.INFO
            logger.log(level, "app %r runs Quart's own request dispatch: %s", app.name, state)
    return state is None


def _view(app: Quart, handler: Any) -> Any:
    """``app.ensure_async(handler)``, made once per view function instead of per request and
    kept in the app's table (:data:`_VIEWS_KEY`), which :func:`_dispatch` reads first."""
    views: dict[Any, Any] | None = app.__dict__.get(_VIEWS_KEY)
    if views is None:
        views = app.__dict__[_VIEWS_KEY] = {}
    wrapped = views.get(handler)
    if wrapped is None:
        wrapped = views[handler] = app.ensure_async(handler)
    return wrapped


async def handle_request(app: Quart, request: Request) -> ResponseTypes:
    """:meth:`quart.Quart.handle_request`, skipping steps with nothing to run."""
    # opening a session can only give a null one (Quart's cookies, no secret key): made when
    # something reads it
    session = (
        NULL_SESSION_LATER
        if type(app.session_interface) is SecureCookieSessionInterface
        # app.secret_key, read as Quart's descriptor reads it (_compat.QUARTS_SECRET_KEY)
        and not app.config["SECRET_KEY"]
        else None
    )
    # the rule this request matches, when the app's map remembers it: no binding, no matching
    routes: LeanMap | None = app.__dict__.get(_ROUTES_KEY)
    route = (
        routes.remembered_route(app, request)
        if routes is not None and routes is app.url_map
        else None
    )
    # ``async with ctx`` as Quart writes it, without __aenter__'s and __aexit__'s coroutines
    ctx = LeanRequestContext(app, request=request, session=session, route=route)
    try:
        entering = ctx.enter()
        if entering is not None:
            await entering
    except BaseException as error:  # opening the session or matching failed (a converter's bug)
        # Quart runs the request in a task of its own, whose end discards the half-pushed
        # context; here it runs in the caller's task: take the context off before the error
        # goes on to the connection (a 500), so the caller's next request starts clean
        with contextlib.suppress(Exception):
            await ctx.pop(error)
        raise
    scope = request.scope
    try:
        box: Any = scope.get(ROUTE)
        if box is not None:  # the metrics label this request with the rule it matched
            rule = request.url_rule  # note_route's, inline: one call fewer a request
            if rule is not None:
                box[0] = rule.rule
        # Quart's full_dispatch_request, inline (one coroutine fewer per request)
        try:
            try:
                if request_started.receivers:
                    await request_started.send_async(app, _sync_wrapper=app.ensure_async)  # type: ignore[arg-type]
                result: Any = None
                # an empty table (no hook registered: most apps) is not scanned (1.6 k)
                preprocessors = app.url_value_preprocessors
                before = app.before_request_funcs
                if (preprocessors and any(preprocessors.values())) or (
                    before and any(before.values())
                ):
                    result = await _compat.preprocess_request(app, ctx)
                if result is None:
                    result = await _dispatch(app, request, ctx)
            except Exception as error:
                result = await _compat.handle_user_exception(app, ctx, error)
            # finalize_request(result, ctx, from_error_handler=False): errors propagate
            response: ResponseTypes | None
            if (  # _quick_response's commonest case (jsonify's), with no call
                type(result) is LeanResponse
                and app.response_class is LeanResponse
                and type(app).make_response is _QUARTS_MAKE_RESPONSE
            ):
                response = result
            else:
                response = _quick_response(app, result)
            if response is None:
                response = await app.make_response(result)
            if (
                ctx._after_request_functions
                or (app.after_request_funcs and any(app.after_request_funcs.values()))
                or (
                    ctx._aeros_session is not NULL_SESSION_LATER
                    and not app.session_interface.is_null_session(ctx.session)
                )
            ):
                response = await _compat.process_response(app, ctx, response)
            if request_finished.receivers:
                await request_finished.send_async(
                    app,
                    _sync_wrapper=app.ensure_async,  # type: ignore[arg-type]
                    response=response,
                )
        except asyncio.CancelledError:
            raise  # the serving code handles cancellation, as in Quart
        except Exception as error:
            response = await _compat.handle_exception(app, ctx, error)
        finally:
            if scope.get("_quart._preserve_context", False):
                app._preserved_context = ctx.copy()
    except BaseException as error:  # cancellation included: the context is torn down with it
        leaving = ctx.leave(error)
        if leaving is not None:
            await leaving
        raise
    leaving = ctx.leave(None)  # None: left in place, nothing to await (Quart 0.23)
    if leaving is not None:
        await leaving
    return response


def note_route(box: Any, request: Any) -> None:
    """Write the rule ``request`` matched into the metrics' :data:`~aeros.types.ROUTE` box
    (left None when it matched none)."""
    rule = request.url_rule
    if rule is not None:
        box[0] = rule.rule


_QUARTS_MAKE_RESPONSE = Quart.make_response


def _quick_response(app: Quart, result: Any) -> LeanResponse | None:
    """What Quart's ``make_response(result)`` returns, for its two commonest inputs, or None.

    A ``LeanResponse`` (``jsonify``) is returned as it is; ``(str | bytes, int, dict)`` is the
    response of the body with that status and the dict's headers set, as Quart builds it.
    None for anything else, or when the app overrides ``make_response`` or ``response_class``:
    Quart's ``make_response`` decides.
    """
    if type(app).make_response is not _QUARTS_MAKE_RESPONSE or app.response_class is not (
        LeanResponse
    ):
        return None
    kind = type(result)
    if kind is LeanResponse:
        return result  # type: ignore[no-any-return]
    if kind is tuple and len(result) == 3:
        value, status, headers = result
        body_kind = type(value)
        if (
            (body_kind is bytes or body_kind is str)
            and type(status) is int
            and type(headers) is dict
        ):
            response = LeanResponse(value, status)
            if len(headers) == 1 and "content-type" in headers:
                # the commonest dict: a content type alone. werkzeug's update puts it in place
                # of the first pair, the Content-Type LeanResponse made, spelled as given
                ctype = headers["content-type"]
                if type(ctype) is str and "\n" not in ctype and "\r" not in ctype:
                    response.headers._list[0] = ("content-type", ctype)
                    return response
            if not _set_plain_headers(response.headers._list, headers):
                response.headers.update(headers)
            return response
    return None


def _set_plain_headers(items: list[tuple[str, str]], headers: dict[Any, Any]) -> bool:
    """werkzeug's ``Headers.update(headers)`` on its list ``items``, for a dict of ``str`` to
    ``str`` without CR or LF (each name replaces the first line of that name, in place and
    spelled as given, and drops the later ones); False, with nothing changed, for any other
    dict (werkzeug then converts, validates or refuses it)."""
    for key, value in headers.items():
        if type(key) is not str or type(value) is not str or "\n" in value or "\r" in value:
            return False
    for key, value in headers.items():
        wanted = key.lower()
        for index, (name, _) in enumerate(items):
            if name.lower() == wanted:
                items[index] = (key, value)
                items[index + 1 :] = [
                    item for item in items[index + 1 :] if item[0].lower() != wanted
                ]
                break
        else:
            items.append((key, value))
    return True


def _dispatch(app: Quart, request_: Any, ctx: Any) -> Awaitable[Any]:
    """:meth:`quart.Quart.dispatch_request` with the view's ``ensure_async`` done once.

    A plain function returning the view's coroutine for the caller to await: one coroutine
    per request fewer than an ``async def`` awaiting it (errors raised here still reach the
    caller's ``try``, which awaits it). ``request_`` is ``ctx``'s request (given, not read
    through Quart 0.23's ``ctx.request`` property).
    """
    if request_.routing_exception is not None:
        app.raise_routing_exception(request_)
    rule: Any = request_.url_rule
    if request_.method == "OPTIONS" and rule.provide_automatic_options:
        return _compat.default_options_response(app, ctx)
    handler = app.view_functions[rule.endpoint]
    views = app.__dict__.get(_VIEWS_KEY)  # _view's table, read here: a call fewer a request
    wrapped = None if views is None else views.get(handler)
    if wrapped is None:
        wrapped = _view(app, handler)
    return wrapped(**request_.view_args)  # type: ignore[no-any-return]
