"""aeros: a batteries-included, high-performance ASGI web framework built on Quart."""

from __future__ import annotations

from aeros.app import WebServer
from aeros.errors import AerosError, ConfigurationError, StoreError
from aeros.server.config import Limits

__all__ = [
    "AerosError",
    "ConfigurationError",
    "Limits",
    "StoreError",
    "WebServer",
]
