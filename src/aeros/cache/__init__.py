"""STUB (owned by the cache helper): stores behind the response cache."""

from __future__ import annotations

from typing import Any


class SimpleCache:
    def __init__(self, timeout: float = 300, threshold: int = 500, **kwargs: Any) -> None:
        self.timeout = timeout


class FilesystemCache:
    def __init__(self, directory: str, timeout: float = 300, **kwargs: Any) -> None:
        self.timeout = timeout


FileSystemCache = FilesystemCache


class RedisCache:
    def __init__(self, host: str = "127.0.0.1", port: int = 6379, **kwargs: Any) -> None:
        self.timeout = 300
