"""WebServer's keyword options: their names and types, and which config each one goes to.

Each server or log option is written once, as a field of its config dataclass
(:class:`~aeros.server.config.ServerConfig`, :class:`~aeros.logging.config.LogConfig`), which
holds its default, its check and its docstring; the typed dicts here give ``WebServer(...)``'s
``**options`` their types, and :func:`split_options` routes each option to its config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

__all__ = ["LogOptions", "ServerOptions", "WebServerOptions", "split_options"]


class ServerOptions(TypedDict, total=False):
    """WebServer's server options: each is the :class:`~aeros.server.config.ServerConfig` field
    of the same name, documented there with its default (``server`` is its ``backend``)."""

    max_concurrent_requests: int | None
    backlog: int
    keep_alive_timeout: float
    graceful_timeout: float
    ssl_certfile: str | None
    ssl_keyfile: str | None
    proxy_headers: bool
    forwarded_allow_ips: str | Sequence[str] | None
    server: str
    worker_healthcheck_timeout: float
    freeze_gc: bool
    max_requests: int
    max_requests_jitter: int


class LogOptions(TypedDict, total=False):
    """WebServer's log options: each is the :class:`~aeros.logging.config.LogConfig` field of
    the same name, documented there with its default (``log_level`` is its ``level``)."""

    log_level: str | int
    color: bool | None
    access_log: bool
    access_log_format: str
    access_log_file: str | os.PathLike[str] | None
    log_file: str | os.PathLike[str] | None


class _QuartOptions(TypedDict, total=False):
    static_url_path: str | None
    static_folder: str | None
    static_host: str | None
    host_matching: bool
    subdomain_matching: bool
    template_folder: str | os.PathLike[str] | None
    instance_path: str | None
    instance_relative_config: bool
    root_path: str | None


class WebServerOptions(ServerOptions, LogOptions, _QuartOptions, total=False):
    """Every keyword option of :class:`WebServer` besides its named parameters."""


# the options whose config field has another name; every other option keeps its name
_RENAMED = {"server": "backend", "log_level": "level"}


def split_options(
    options: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``options`` as ServerConfig fields, LogConfig fields, and the rest (Quart's)."""
    server: dict[str, Any] = {}
    log: dict[str, Any] = {}
    quart: dict[str, Any] = {}
    for name, value in options.items():
        if name in ServerOptions.__optional_keys__:
            server[_RENAMED.get(name, name)] = value
        elif name in LogOptions.__optional_keys__:
            log[_RENAMED.get(name, name)] = value
        else:
            quart[name] = value
    return server, log, quart
