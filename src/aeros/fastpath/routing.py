"""A URL map that binds each request without redoing per-host work.

Quart's :meth:`quart.routing.QuartMap.bind_to_request` lower-cases and normalises the host,
splits it to find the subdomain and IDNA-encodes it on every request; for one host the answer
is always the same. :class:`LeanMap` remembers it per (scheme, host, server name, subdomain),
for a bounded number of hosts, and builds the ``MapAdapter`` directly.
"""

from __future__ import annotations

from typing import Any

from quart.routing import QuartMap
from werkzeug.routing import MapAdapter

__all__ = ["LeanMap"]

_MAX_HOSTS = 256  # the Host header is the client's: bound what it can make us remember


class LeanMap(QuartMap):
    """Quart's URL map; binding a request reuses the host work done for earlier requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bound_hosts: dict[
            tuple[str, str, str | None, str | None], tuple[str, str | None]
        ] = {}

    def bind_to_request(self, request: Any, subdomain: str | None, server_name: str | None) -> Any:
        """As Quart's: a ``MapAdapter`` for ``request`` (host work cached per host)."""
        key = (request.scheme, request.host, server_name, subdomain)
        known = self._bound_hosts.get(key)
        if known is None:
            adapter = super().bind_to_request(request, subdomain, server_name)
            # A mismatched server name warns on every request in Quart: never cache that case.
            if adapter.subdomain != "<invalid>" and len(self._bound_hosts) < _MAX_HOSTS:
                self._bound_hosts[key] = (adapter.server_name, adapter.subdomain)
            return adapter
        return MapAdapter(
            self,
            known[0],
            request.root_path,
            known[1],
            request.scheme,
            request.path,
            request.method,
            request.query_string.decode(),
        )
