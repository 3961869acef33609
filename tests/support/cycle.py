"""One server request/response cycle made alone, for tests: a transport that records what is
written, a stand-in for uvicorn's flow control, and :func:`make` to build the cycle with them
(the tests of LeanCycle against uvicorn's, and of the metrics' count in the cycle)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

DATE = [(b"date", b"Thu, 03 Dec 2026 09:28:06 GMT")]


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.writes = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))
        self.writes += 1

    def writelines(self, chunks: tuple[bytes, ...]) -> None:
        self.written.extend(chunks)
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class Flow:
    write_paused = False
    read_paused = False


def make(
    cls: type[RequestResponseCycle],
    *,
    method: str = "GET",
    keep_alive: bool = True,
    scope: dict[str, Any] | None = None,
) -> Any:
    """A cycle of ``cls`` for a request of ``method`` (or with ``scope``), writing to a
    :class:`Transport`."""
    return cls(
        scope=scope if scope is not None else {"type": "http", "method": method},  # type: ignore[arg-type]
        transport=Transport(),  # type: ignore[arg-type]
        flow=Flow(),  # type: ignore[arg-type]
        logger=None,  # type: ignore[arg-type]
        access_logger=None,  # type: ignore[arg-type]
        access_log=False,
        default_headers=list(DATE),
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
