"""Measure what aeros' protocol checks cost per request, in-process (not a test).

    .venv/bin/python tests/server/hardening/measure_overhead.py [requests] [rounds]

Drives uvicorn's stock ``HttpToolsProtocol`` and aeros' hardened subclass with the same
keep-alive requests through a fake transport (no sockets, no kernel), on uvloop, with a trivial
ASGI app; prints the best-of-rounds time per request of each and the difference.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from aeros.server.config import ServerConfig
from aeros.server.http.protocol import build_protocol_class

REQUEST = (
    b"GET /items/42?full=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n"
    b"Accept: application/json\r\nAccept-Encoding: gzip, br\r\nAccept-Language: en\r\n"
    b"Connection: keep-alive\r\nCookie: session=abc123\r\n\r\n"
)
POST = (
    b"POST /items HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n"
    b'Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{"name":"x"}\n'
)


class FakeTransport(asyncio.Transport):
    """Swallows writes; enough of a transport for uvicorn's protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += len(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["method"] == "POST":
        await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def run(protocol_class: type[asyncio.Protocol], request: bytes, count: int) -> float:
    config = uvicorn.Config(app, http=protocol_class, lifespan="off", log_config=None)
    config.load()
    state = ServerState()
    protocol: Any = protocol_class(  # type: ignore[call-arg]
        config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    start = time.perf_counter()
    for _ in range(count):
        protocol.data_received(request)
        while state.tasks:  # let the ASGI task answer
            await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    assert not transport.closing
    assert state.total_requests == count
    protocol.connection_lost(None)
    return elapsed / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    hardened = build_protocol_class(ServerConfig())
    for name, request in (("GET, 8 headers", REQUEST), ("POST, 13-byte body", POST)):
        best = {"stock": float("inf"), "aeros": float("inf")}
        for _ in range(rounds):
            for label, cls in (("stock", HttpToolsProtocol), ("aeros", hardened)):
                per = uvloop.run(run(cls, request, count))
                best[label] = min(best[label], per)
        print(
            f"{name}: stock {best['stock'] * 1e6:.2f} us/request, aeros "
            f"{best['aeros'] * 1e6:.2f} us/request, overhead "
            f"{(best['aeros'] - best['stock']) * 1e6:+.2f} us"
        )


if __name__ == "__main__":
    main()
