"""STUB (owned by the cache helper): route-level response cache wiring (Quart-aware)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aeros.middleware.types import ASGIApp


class ResponseCache:
    def __init__(self, app: Any, store: Any) -> None:
        self.app = app
        self.store = store

    def decorator(self, timeout: float | None = None, **options: Any) -> Callable[[Any], Any]:
        return lambda f: f

    def wrap(self, inner: ASGIApp, codecs: Sequence[Any]) -> ASGIApp:
        return inner

    def clear_sync(self) -> None:
        return None
