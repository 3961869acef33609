"""The lean request path WebServer uses: Quart's extension points, less work per request.

- :class:`~aeros.fastpath.http.LeanHTTPConnection`: ``WebServer.asgi_http_class``.
- :class:`~aeros.fastpath.json.OrjsonProvider`: ``WebServer.json_provider_class``.
- :class:`~aeros.fastpath.request.LeanRequest`: ``WebServer.request_class``.
- :class:`~aeros.fastpath.routing.LeanMap`: ``WebServer.url_map_class``.
"""

from __future__ import annotations

from aeros.fastpath.http import LeanHTTPConnection
from aeros.fastpath.json import OrjsonProvider
from aeros.fastpath.request import LeanRequest
from aeros.fastpath.routing import LeanMap

__all__ = ["LeanHTTPConnection", "LeanMap", "LeanRequest", "OrjsonProvider"]
