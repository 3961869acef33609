"""STUB (owned by the compression/CORS helper)."""

from __future__ import annotations

from typing import Any


class CORS:
    pass


class CORSMiddleware:
    def __init__(self, app: Any, cors: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
