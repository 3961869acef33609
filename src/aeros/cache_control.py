"""STUB (owned by the compression/cache-control helper)."""

from __future__ import annotations

import enum
from typing import Any


class CacheTypes(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    NO_CACHE = "no-cache"
    NO_STORE = "no-store"


class CacheControl:
    def __init__(self, cache_type: CacheTypes, max_age: int | None = None, **kw: Any) -> None:
        pass

    def __call__(self, func: Any) -> Any:
        return func

    def init_app(self, app: Any) -> None:
        pass
