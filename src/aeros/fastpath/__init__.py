"""The lean request path WebServer uses: Quart's extension points, less work per request.

- :class:`~aeros.fastpath.http.LeanHTTPConnection`: ``WebServer.asgi_http_class``
  (:data:`HTTPConnection`); :mod:`~aeros.fastpath.awaiting` holds its awaiting helpers.
- :class:`~aeros.fastpath.websocket.ClosingWebsocketConnection`: ``asgi_websocket_class``
  (:data:`WebsocketConnection`).
- :class:`~aeros.fastpath.json.OrjsonProvider`: ``WebServer.json_provider_class``.
- :class:`~aeros.fastpath.request.LeanRequest`: ``WebServer.request_class``.
- :class:`~aeros.fastpath.response.LeanResponse`: ``WebServer.response_class``.
- :class:`~aeros.fastpath.routing.LeanMap`: ``WebServer.url_map_class``.
"""

from __future__ import annotations

import importlib
from typing import Any

from aeros.fastpath._compat import MISSING
from aeros.fastpath.json import OrjsonProvider
from aeros.fastpath.request import LeanRequest
from aeros.fastpath.response import LeanResponse
from aeros.fastpath.routing import LeanMap

__all__ = [
    "HTTPConnection",
    "LeanMap",
    "LeanRequest",
    "LeanResponse",
    "OrjsonProvider",
    "WebsocketConnection",
]

HTTPConnection: Any = (
    importlib.import_module("aeros.fastpath.http").LeanHTTPConnection
    if MISSING is None
    else importlib.import_module("quart.asgi").ASGIHTTPConnection
)
"""``WebServer.asgi_http_class``: the lean connection, or Quart's own when the installed Quart
lacks an internal it needs (:data:`aeros.fastpath._compat.MISSING`; the reason is logged when the
app serves its first request)."""

WebsocketConnection: Any = (
    importlib.import_module("aeros.fastpath.websocket").ClosingWebsocketConnection
    if MISSING is None
    else importlib.import_module("quart.asgi").ASGIWebsocketConnection
)
"""``WebServer.asgi_websocket_class``: Quart's own, refusing cleanly (a 403, never a 500 or a
hang) when a view returns before accepting (:mod:`aeros.fastpath.websocket`)."""
