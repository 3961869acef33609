"""X-Forwarded-* is honoured only from peers in forwarded_allow_ips, and never moves the Host."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from aeros import WebServer

from .echo_app import make_app
from .wire import connect, read_responses

FORWARDED = (
    b"GET /info HTTP/1.1\r\nHost: real.example\r\nX-Forwarded-For: 203.0.113.9\r\n"
    b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n"
)


def info(url: str) -> dict[str, Any]:
    with connect(url) as sock:
        sock.sendall(FORWARDED)
        (response,) = read_responses(sock, 1)
    assert response.status == 200
    result: dict[str, Any] = json.loads(response.body)
    return result


@pytest.mark.parametrize(
    ("options", "trusted"),
    [
        pytest.param({}, False, id="proxy-headers-off-by-default"),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.1"]}, False, id="peer-untrusted"
        ),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": "192.0.2.0/24"},
            False,
            id="net-untrusted",
        ),
        pytest.param({"proxy_headers": True}, True, id="loopback-trusted-by-default"),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": ["127.0.0.0/8"]}, True, id="net-trusted"
        ),
    ],
)
def test_forwarded_headers_only_from_trusted_peers(
    live_server: Callable[[WebServer], AbstractContextManager[str]],
    options: dict[str, Any],
    trusted: bool,
) -> None:
    """Client address and scheme come from X-Forwarded-* only when the peer is trusted."""
    with live_server(make_app(**options)) as url:
        seen = info(url)
    if trusted:
        assert (seen["remote_addr"], seen["scheme"]) == ("203.0.113.9", "https")
    else:
        assert (seen["remote_addr"], seen["scheme"]) == ("127.0.0.1", "http")
    assert seen["host"] == "real.example"  # X-Forwarded-Host is never honoured
