"""STUB (owned by the logging helper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    level: str | int = "info"
    color: bool | None = None
    access_log: bool = True
    access_log_format: str = "default"
    access_log_file: str | None = None
    log_file: str | None = None


class _Listener:
    def stop(self) -> None:
        return None


def configure_logging(config: LogConfig) -> _Listener:
    return _Listener()


def log_banner(base_url: str, workers: int, store: Any, codecs: Any) -> None:
    return None


class AccessLogMiddleware:
    def __init__(self, app: Any, config: LogConfig) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
