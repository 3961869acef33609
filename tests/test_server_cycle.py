"""LeanCycle writes the response head byte for byte as uvicorn's RequestResponseCycle does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from aeros.server import cycle as cycle_module
from aeros.server.cycle import LeanCycle

DATE = [(b"date", b"Thu, 03 Dec 2026 09:28:06 GMT")]


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class Flow:
    write_paused = False


def make(cls: type[RequestResponseCycle], *, method: str = "GET", keep_alive: bool = True) -> Any:
    return cls(
        scope={"type": "http", "method": method},  # type: ignore[arg-type]
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


def state(cycle: Any) -> tuple[Any, ...]:
    return (
        b"".join(cycle.transport.written),
        cycle.chunked_encoding,
        cycle.expected_content_length,
        cycle.keep_alive,
        cycle.response_started,
    )


HEADS = {
    "json": (200, [(b"content-type", b"application/json"), (b"content-length", b"27")]),
    "hit": (
        200,
        [
            (b"content-type", b"application/json"),
            (b"etag", b'W/"9c97"'),
            (b"vary", b"accept-encoding"),
            (b"content-length", b"27"),
            (b"server", b"aeros"),
            (b"age", b"3"),
        ],
    ),
    "no-length": (200, [(b"content-type", b"text/plain")]),
    "chunked": (200, [(b"Transfer-Encoding", b"Chunked")]),
    "te-other": (200, [(b"transfer-encoding", b"gzip"), (b"content-length", b"5")]),
    "length-then-chunked": (200, [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]),
    "close": (200, [(b"Connection", b"keep-alive, Close"), (b"content-length", b"0")]),
    "mixed-case": (201, [(b"X-Custom", b"Value"), (b"CONTENT-LENGTH", b"2")]),
    "list-pairs": (200, [[b"x-list", b"1"], [b"content-length", b"1"]]),
    "no-content": (204, [(b"x-a", b"")]),
    "not-modified": (304, [(b"etag", b'"a"')]),
    "none": (200, None),
    "long": (200, [(b"x-long", b"v" * 600), (b"content-length", b"0")]),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("name", list(HEADS))
async def test_head_bytes_and_state_match_uvicorn(name: str, method: str, keep_alive: bool) -> None:
    """Same bytes and framing state, on a first sight of each header and on a remembered one."""
    status, headers = HEADS[name]
    message: dict[str, Any] = {"type": "http.response.start", "status": status}
    if headers is not None:
        message["headers"] = headers
    for _ in range(2):  # the second round reads the remembered lines
        ours = make(LeanCycle, method=method, keep_alive=keep_alive)
        theirs = make(RequestResponseCycle, method=method, keep_alive=keep_alive)
        await ours.send(dict(message))
        await theirs.send(dict(message))
        assert state(ours) == state(theirs)


@pytest.mark.parametrize(
    "pair",
    [
        (b"x bad", b"v"),
        (b"x-bad:", b"v"),
        (b"x-ok", b"v\r\nset-cookie: a=1"),
        (b"x-ok", b"v\x00"),
    ],
)
async def test_invalid_headers_are_refused_every_time(pair: tuple[bytes, bytes]) -> None:
    """An invalid header raises as in uvicorn, and is never remembered as checked."""
    message = {"type": "http.response.start", "status": 200, "headers": [pair]}
    with pytest.raises(RuntimeError, match="Invalid HTTP header") as theirs:
        await make(RequestResponseCycle).send(dict(message))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Invalid HTTP header") as ours:
            await make(LeanCycle).send(dict(message))
        assert str(ours.value) == str(theirs.value)
    assert pair not in cycle_module._LINES


async def test_remembered_lines_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of checked lines empties itself at its limit; framing headers never enter."""
    monkeypatch.setattr(cycle_module, "_LINES", {})
    monkeypatch.setattr(cycle_module, "_LINES_LIMIT", 8)
    for i in range(20):
        headers = [(b"x-n", str(i).encode()), (b"content-length", b"0")]
        await make(LeanCycle).send(
            {"type": "http.response.start", "status": 200, "headers": headers}
        )
        assert len(cycle_module._LINES) <= 8
    assert all(name != b"content-length" for name, _ in cycle_module._LINES)
    assert (b"x-n", b"19") in cycle_module._LINES


async def test_body_and_later_messages_are_uvicorns() -> None:
    """After the head, bodies go through uvicorn's own code (chunked framing included)."""
    ours, theirs = make(LeanCycle), make(RequestResponseCycle)
    for cycle in (ours, theirs):
        await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
        await cycle.send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await cycle.send({"type": "http.response.body", "body": b"", "more_body": False})
    assert state(ours) == state(theirs)
    assert ours.response_complete
    assert theirs.response_complete
