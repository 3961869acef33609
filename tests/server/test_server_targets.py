"""The request target (path, raw path, query string) of a repeated request comes from the
protocol's table of remembered targets, and is what parsing it again gives.

Over real HTTP on aeros' server, and the table's bounds on the class
:func:`~aeros.server.http.protocol.build_protocol_class` makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from quart import request

from aeros import WebServer, jsonify
from aeros.server.config import ServerConfig
from aeros.server.http import targets as targets_module
from aeros.server.http.protocol import build_protocol_class
from aeros.server.http.targets import parse_target

from .hardening.wire import connect, read_responses


def make_app() -> WebServer:
    """A catch-all route answering with the scope's path, raw path and query string."""
    app = WebServer(__name__, access_log=False, compression=None)

    @app.route("/<path:rest>")
    async def echo(rest: str) -> Any:
        scope = request.scope
        raw = scope["raw_path"].decode("latin-1")
        return jsonify([scope["path"], raw, scope["query_string"].decode()])

    return app


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with make_app().serve_in_thread(host="127.0.0.1") as url:
        yield url


TARGETS = {
    "/plain": ["/plain", "/plain", ""],
    "/q?a=1&b=%20": ["/q", "/q", "a=1&b=%20"],
    "/caf%C3%A9/a%2Fb": ["/café/a/b", "/caf%C3%A9/a%2Fb", ""],
    "/long/" + "x" * 300 + "?" + "y" * 20: ["/long/" + "x" * 300, "/long/" + "x" * 300, "y" * 20],
}


def test_repeated_targets_give_what_parsing_gives(echo_url: str) -> None:
    """Each target three times on one connection (parsed, then remembered unless longer than
    the limit), interleaved with the others: every answer is the target's own."""
    order = [target for _ in range(3) for target in TARGETS]
    sock = connect(echo_url)
    with sock:
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % t.encode() for t in order))
        responses = read_responses(sock, len(order))
    assert [json.loads(response.body) for response in responses] == [
        TARGETS[target] for target in order
    ]


def test_remembered_targets_are_bounded_and_per_root_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A table empties itself at its limit and keeps no target over the length limit; servers
    with another ``root_path`` (another uvicorn config, even on the same protocol class) have
    a table of their own, so a target never comes back with another's prefix."""
    monkeypatch.setattr(targets_module, "_TARGETS_LIMIT", 4)
    monkeypatch.setattr(targets_module, "_TARGETS", {})
    cls = build_protocol_class(ServerConfig())

    def connection(root_path: str) -> Any:
        protocol = cls.__new__(cls)
        protocol.root_path = root_path  # uvicorn's __init__ sets it from its config
        protocol.targets = targets_module.targets_for(root_path)  # as ours then does
        return protocol

    plain, prefixed = connection(""), connection("/api")

    def target(protocol: Any, url: bytes) -> Any:
        return parse_target(protocol.targets, protocol.root_path, url)  # as _start_cycle does

    assert plain.targets is connection("").targets
    assert plain.targets is not prefixed.targets
    for i in range(10):
        assert target(plain, b"/n/%d?i=%d" % (i, i)) == (f"/n/{i}", b"/n/%d" % i, b"i=%d" % i)
        assert 1 <= len(plain.targets) <= 4
    assert plain.targets[b"/n/9?i=9"] == ("/n/9", b"/n/9", b"i=9")
    long = b"/" + b"z" * 300
    assert target(plain, long)[0] == "/" + "z" * 300
    assert long not in plain.targets
    assert target(prefixed, b"/n/9?i=9") == ("/api/n/9", b"/api/n/9", b"i=9")
    assert plain.targets[b"/n/9?i=9"] == ("/n/9", b"/n/9", b"i=9")
