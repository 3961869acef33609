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


class TakesRoute:
    """The remembered-route half of a lean request context (see the module docstring)."""

    _aeros_route: Taken | None = None
    _REQUEST: ClassVar[str]
    """The context's attribute holding its request (``request_websocket`` or ``_request``)."""

    def __getattr__(self, name: str) -> Any:
        taken = self._aeros_route
        if name == "url_adapter" and taken is not None:  # bound on first read
            ctx: Any = self
            adapter = ctx.url_adapter = late_adapter(ctx.app, taken, getattr(self, self._REQUEST))
            return adapter
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self
        )

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
