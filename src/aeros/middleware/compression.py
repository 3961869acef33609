"""STUB (owned by the compression helper)."""

from __future__ import annotations

from typing import Any


class CompressionMiddleware:
    def __init__(self, app: Any, codecs: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
