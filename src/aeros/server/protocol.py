"""STUB (owned by the hardening helper): the HTTP protocol class with aeros' limits."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aeros.server.config import ServerConfig

__all__ = ["build_protocol_class"]


def build_protocol_class(config: ServerConfig) -> type[asyncio.Protocol]:
    """The protocol class uvicorn should use for ``config`` (its limits baked in)."""
    return HttpToolsProtocol
