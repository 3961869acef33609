"""STUB (owned by the compression helper)."""

from __future__ import annotations

from typing import Any

Codec = Any


class Gzip:
    pass


class Br:
    pass


class Zstd:
    pass


class Compress:
    def __init__(self, app: Any = None) -> None:
        pass


def resolve_codecs(app: Any, compression: Any) -> tuple[Any, ...]:
    return ()
