"""Exceptions raised by aeros."""

from __future__ import annotations

__all__ = ["AerosError", "ConfigurationError", "StoreError"]


class AerosError(Exception):
    """Base class of every exception aeros raises on purpose."""


class ConfigurationError(AerosError, ValueError):
    """An argument or setting is invalid; the message says what is allowed."""


class StoreError(AerosError):
    """A cache store failed (backend down, disk full, corrupt entry).

    Stores raise it and never swallow errors; the response cache layer is the one place that
    catches it, logs a rate-limited warning and serves the request uncached.
    """
