"""What the lean request contexts of both Quart shapes do with a remembered route.

A context given a route (:meth:`~aeros.fastpath.routing.LeanMap.remembered_route`) binds no
URL adapter when it is made: :class:`TakesRoute` binds it when something first reads
``url_adapter`` (:func:`~aeros.fastpath.routing.late_adapter`), and its ``match_request``
sets the remembered rule unless an adapter was bound or set since (a hook that matches again
with an adapter of its own gets Quart's match). Mixed in before Quart's context class.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aeros.fastpath.routing import Taken, late_adapter

__all__ = ["TakesRoute"]


class _LateAdapter:
    """``url_adapter`` of a context that took a remembered route: bound at its first read and
    kept in the context (a non-data descriptor: the context's own value, once it has one,
    is read instead; Quart's ``__init__`` gives a context without a route one at once).

    A descriptor rather than ``__getattr__``: a class with ``__getattr__`` has every
    attribute read of its instances unspecialized on Python 3.12+ (two type lookups for the
    hook each time), and a request reads its context's attributes a few dozen times.
    """

    def __get__(self, ctx: Any, owner: type | None = None) -> Any:
        if ctx is None:
            return self
        taken = ctx._aeros_route
        if taken is None:  # no route taken and no adapter: as a missing attribute
            raise AttributeError(
                f"{type(ctx).__name__!r} object has no attribute 'url_adapter'",
                name="url_adapter",
                obj=ctx,
            )
        adapter = late_adapter(ctx.app, taken, getattr(ctx, ctx._REQUEST))
        ctx.__dict__["url_adapter"] = adapter
        return adapter


class TakesRoute:
    """The remembered-route half of a lean request context (see the module docstring).

    Its ``__init__`` sets ``_aeros_route`` on every context (None: no route taken), never a
    class attribute: on Python 3.12+ a shadowed instance attribute is never specialized.
    """

    _aeros_route: Taken | None
    _REQUEST: ClassVar[str]
    """The context's attribute holding its request (``request_websocket`` or ``_request``)."""

    url_adapter = _LateAdapter()

    def match_request(self) -> None:
        """Quart's, or the remembered rule set (the push that opens a session)."""
        taken = self._aeros_route
        if taken is None or "url_adapter" in self.__dict__:  # an adapter bound or set: Quart's
            super().match_request()  # type: ignore[misc]
            return
        route = taken[0]
        request = getattr(self, self._REQUEST)
        request.url_rule = route[0]
        request.view_args = dict(route[1])
