"""Quart's request dispatch, minus the work of features the app does not use.

:meth:`quart.Quart.handle_request` sends four signals, walks the before/after-request hook
tables and the session interface on every request, whether or not anything is registered. This
does exactly what Quart does, in Quart's order, but skips a step when it has nothing to run:
a signal without receivers, hook tables with no functions, a null session. It is used only
when the app's class keeps Quart's own dispatch methods; an app that overrides one of them
gets Quart's :meth:`~quart.Quart.handle_request` unchanged.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from quart import Quart
from quart.signals import request_finished, request_started

if TYPE_CHECKING:
    from quart.ctx import RequestContext
    from quart.typing import ResponseTypes
    from quart.wrappers import Request

__all__ = ["handle_request", "uses_quart_dispatch"]

_DISPATCH_METHODS = (
    "handle_request",
    "full_dispatch_request",
    "preprocess_request",
    "finalize_request",
    "process_response",
)
_CHECKED: dict[type, bool] = {}


def uses_quart_dispatch(app: Quart) -> bool:
    """True when ``app``'s class keeps every dispatch method :func:`handle_request` inlines."""
    cls = type(app)
    known = _CHECKED.get(cls)
    if known is None:
        known = _CHECKED[cls] = all(
            getattr(cls, name) is getattr(Quart, name) for name in _DISPATCH_METHODS
        )
    return known


def _has_functions(table: Any) -> bool:
    return any(table.values())


async def handle_request(app: Quart, request: Request) -> ResponseTypes:
    """:meth:`quart.Quart.handle_request`, skipping steps with nothing to run."""
    async with app.request_context(request) as request_context:
        try:
            return await _full_dispatch(app, request_context)
        except asyncio.CancelledError:
            raise  # the serving code handles cancellation, as in Quart
        except Exception as error:
            return await app.handle_exception(error)
        finally:
            if request.scope.get("_quart._preserve_context", False):
                app._preserved_context = request_context.copy()


async def _full_dispatch(app: Quart, ctx: RequestContext) -> ResponseTypes:
    try:
        if request_started.receivers:
            await request_started.send_async(app, _sync_wrapper=app.ensure_async)  # type: ignore[arg-type]
        result: Any = None
        if _has_functions(app.url_value_preprocessors) or _has_functions(app.before_request_funcs):
            result = await app.preprocess_request(ctx)
        if result is None:
            result = await app.dispatch_request(ctx)
    except Exception as error:
        result = await app.handle_user_exception(error)
    # finalize_request(result, ctx, from_error_handler=False): errors propagate
    response = await app.make_response(result)
    if (
        ctx._after_request_functions
        or _has_functions(app.after_request_funcs)
        or not app.session_interface.is_null_session(ctx.session)
    ):
        response = await app.process_response(response, ctx)
    if request_finished.receivers:
        await request_finished.send_async(
            app,
            _sync_wrapper=app.ensure_async,  # type: ignore[arg-type]
            response=response,
        )
    return response
