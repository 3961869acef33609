"""A request's null session, made when something first reads it.

With Quart's cookie sessions and no secret key, opening a request's session can only give a
fresh ``NullSession`` (the lean dispatch checks that case: :mod:`aeros.fastpath.dispatch`).
Most views never read the session, and making one (a dict subclass whose ``__init__`` builds
a callback) cost about 7 k of a JSON request's 171 k instructions in process. The lean
dispatch gives the context :data:`NULL_SESSION_LATER` instead, and both request-context
classes make the null session on first access of their session, so ``session``, hooks,
templates, ``process_response`` and context copies see what Quart gives them.

One difference remains, for an app that replaces ``app.session_interface`` while a request
runs (in a ``before_request`` hook): that request's null session comes from the new interface
when first read, where Quart opened it from the old one when the context was pushed.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["NULL_SESSION_LATER", "NullSessionLater", "session_of"]


class NullSessionLater:
    """The type of :data:`NULL_SESSION_LATER`: a null session not made yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_SESSION_LATER"


NULL_SESSION_LATER: Final = NullSessionLater()
"""Given as a request context's session: the app's null session, made on first access."""


def session_of(ctx: Any) -> Any:
    """The session of ``ctx`` (stored in ``ctx._aeros_session``), the null session made now if
    it is still :data:`NULL_SESSION_LATER`."""
    value = ctx._aeros_session
    if value is NULL_SESSION_LATER:
        value = ctx._aeros_session = ctx.app.session_interface.null_session_class()
    return value
