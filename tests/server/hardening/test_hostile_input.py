"""Hostile request heads and bodies: each refused with a 4xx/5xx, the connection closed, nothing
smuggled through to the app; and the valid edge cases next to them still served."""

from __future__ import annotations

import json

import pytest

from aeros import WebServer

from .wire import connect, exchange, read_responses, read_until_close

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def post(headers: bytes, body: bytes = b"", *, version: bytes = b"1.1") -> bytes:
    """A POST /echo with ``headers`` (each ending in CRLF), then ``body``, then a smuggled GET."""
    return b"POST /echo HTTP/" + version + b"\r\nHost: a\r\n" + headers + b"\r\n" + body + SMUGGLED


def get(target: bytes = b"/", headers: bytes = b"Host: a\r\n", version: bytes = b"1.1") -> bytes:
    """A GET of ``target`` with ``headers`` (each ending in CRLF), then a smuggled GET."""
    return b"GET " + target + b" HTTP/" + version + b"\r\n" + headers + b"\r\n" + SMUGGLED


CHUNKED = b"Transfer-Encoding: chunked\r\n"

HOSTILE = [
    # Content-Length / Transfer-Encoding: the request-smuggling family
    pytest.param(post(b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n"), 400, id="cl-with-te"),
    pytest.param(post(CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n"), 400, id="te-with-cl"),
    pytest.param(post(b"Content-Length: 5, 6\r\n", b"hello!"), 400, id="cl-list-differing"),
    pytest.param(post(b"Content-Length: 5, 5\r\n", b"hello"), 400, id="cl-list-same"),
    pytest.param(
        post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400, id="cl-twice-differing"
    ),
    pytest.param(
        post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400, id="cl-twice-same"
    ),
    pytest.param(post(b"Content-Length: +1\r\n", b"h"), 400, id="cl-plus"),
    pytest.param(post(b"Content-Length: -0\r\n"), 400, id="cl-minus-zero"),
    pytest.param(post(b"Content-Length: -1\r\n"), 400, id="cl-negative"),
    pytest.param(post(b"Content-Length: 1_0\r\n", b"0123456789"), 400, id="cl-underscore"),
    pytest.param(post(b"Content-Length: " + b"1" * 21 + b"\r\n"), 400, id="cl-21-digits"),
    pytest.param(post(b"Content-Length: 0x5\r\n", b"hello"), 400, id="cl-hex"),
    pytest.param(post(b"Content-Length: 1 0\r\n", b"0123456789"), 400, id="cl-inner-space"),
    pytest.param(post(b"Content-Length: 5.0\r\n", b"hello"), 400, id="cl-decimal"),
    pytest.param(post(b"Content-Length: \r\n"), 400, id="cl-empty"),
    pytest.param(post(b"Transfer-Encoding: gzip\r\n", b"hello"), 400, id="te-final-not-chunked"),
    pytest.param(
        post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501, id="te-unknown-coding"
    ),
    pytest.param(
        post(b"Transfer-Encoding: gzip\r\n" + CHUNKED, b"0\r\n\r\n"), 501, id="te-unknown-line"
    ),
    pytest.param(
        post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400, id="te-chunked-twice"
    ),
    pytest.param(post(CHUNKED + CHUNKED, b"0\r\n\r\n"), 400, id="te-line-twice"),
    pytest.param(
        post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"), 400, id="te-identity-last"
    ),
    pytest.param(post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 400, id="te-xchunked"),
    pytest.param(post(b"Transfer-Encoding: ,chunked\r\n", b"0\r\n\r\n"), 400, id="te-empty-item"),
    pytest.param(post(b"Transfer-Encoding: \r\n", b"0\r\n\r\n"), 400, id="te-empty"),
    pytest.param(post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400, id="te-space-colon"),
    pytest.param(post(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n", version=b"1.0"), 400, id="te-on-http10"),
    # chunk framing
    pytest.param(post(CHUNKED, b"zz\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-not-hex"),
    pytest.param(post(CHUNKED, b"f" * 17 + b"1\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-overflow"),
    pytest.param(post(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-negative"),
    pytest.param(post(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-0x"),
    pytest.param(post(CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n"), 400, id="chunk-size-space"),
    pytest.param(post(CHUNKED, b"3\r\nhelloXX\r\n0\r\n\r\n"), 400, id="chunk-data-too-long"),
    pytest.param(post(CHUNKED, b"5\nhello\n0\n\n"), 400, id="chunk-bare-lf"),
    pytest.param(post(CHUNKED, b"5;a\nb\r\nhello\r\n0\r\n\r\n"), 400, id="chunk-ext-bare-lf"),
    pytest.param(post(CHUNKED, b"0\r\n"), 400, id="chunk-trailer-smuggle"),
    # header syntax
    pytest.param(get(headers=b"Host: a\r\nX-A: one\r\n two\r\n"), 400, id="obs-fold-space"),
    pytest.param(get(headers=b"Host: a\r\nX-A: one\r\n\ttwo\r\n"), 400, id="obs-fold-tab"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\x00ne\r\n"), 400, id="nul-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\x01ne\r\n"), 400, id="ctl-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\x1b[31mne\r\n"), 400, id="esc-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\x7fne\r\n"), 400, id="del-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\rne\r\n"), 400, id="bare-cr-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX-A: o\nne\r\n"), 400, id="bare-lf-in-value"),
    pytest.param(get(headers=b"Host: a\r\nX\x00A: b\r\n"), 400, id="nul-in-name"),
    pytest.param(get(headers=b"Host: a\r\nX A: b\r\n"), 400, id="space-in-name"),
    pytest.param(get(headers=b"Host: a\r\nX-A : b\r\n"), 400, id="space-before-colon"),
    pytest.param(get(headers=b"Host: a\r\n: b\r\n"), 400, id="empty-name"),
    pytest.param(get(headers=b"Host: a\r\nNoColon\r\n"), 400, id="no-colon"),
    pytest.param(b"GET / HTTP/1.1\nHost: a\n\n" + SMUGGLED, 400, id="bare-lf-lines"),
    # Host
    pytest.param(get(headers=b"Host: a\r\nHost: b\r\n"), 400, id="two-hosts"),
    pytest.param(get(headers=b"Host: a\r\nhost: a\r\n"), 400, id="two-hosts-same"),
    pytest.param(get(headers=b"X-A: b\r\n"), 400, id="no-host-http11"),
    pytest.param(get(headers=b"Host: a/b\r\n"), 400, id="host-with-slash"),
    pytest.param(get(headers=b"Host: u@a\r\n"), 400, id="host-with-userinfo"),
    pytest.param(get(headers=b"Host: a b\r\n"), 400, id="host-with-space"),
    pytest.param(get(headers=b"Host: a:80:81\r\n"), 400, id="host-two-ports"),
    pytest.param(get(headers=b"Host: a:http\r\n"), 400, id="host-port-not-digits"),
    pytest.param(get(headers=b"Host: \r\n"), 400, id="host-empty"),
    pytest.param(get(headers=b"Host: " + b"a" * 300 + b"\r\n"), 400, id="host-label-too-long"),
    pytest.param(get(headers=b"Host: a..b\r\n"), 400, id="host-empty-label"),
    pytest.param(get(headers=b"Host: a:99999\r\n"), 400, id="host-port-out-of-range"),
    # request-target
    pytest.param(get(b"foo"), 400, id="target-no-slash"),
    pytest.param(get(b"*"), 400, id="target-star-not-options"),
    pytest.param(get(b"http://evil/x"), 400, id="target-absolute-other-host"),
    pytest.param(get(b"http://u@a/x"), 400, id="target-absolute-userinfo"),
    pytest.param(get(b"http://a"), 400, id="target-absolute-no-path"),
    pytest.param(get(b"ftp://a/x"), 400, id="target-other-scheme"),
    pytest.param(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" + SMUGGLED, 400, id="connect"),
    pytest.param(get(b"/a#frag"), 400, id="target-fragment"),
    pytest.param(get(b"/a\x01b"), 400, id="target-ctl"),
    pytest.param(get(b"/a\x00b"), 400, id="target-nul"),
    pytest.param(get(b"/a\x7fb"), 400, id="target-del"),
    pytest.param(get(b"/caf\xc3\xa9"), 400, id="target-raw-utf8"),
    pytest.param(get(b"/a\tb"), 400, id="target-tab"),
    # request line
    pytest.param(get(version=b"1.2"), 400, id="version-1.2"),
    pytest.param(get(version=b"2.0"), 505, id="version-2.0"),
    pytest.param(b"GET /\r\n\r\n" + SMUGGLED, 505, id="http-0.9"),
    pytest.param(b"get / HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, 400, id="method-lowercase"),
    pytest.param(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED, 400, id="method-unknown"),
    pytest.param(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, id="tls-hello"
    ),
]


@pytest.mark.parametrize(("data", "status"), HOSTILE)
def test_hostile_request_is_refused_and_closed(
    echo_server: tuple[WebServer, str], echo_url: str, data: bytes, status: int
) -> None:
    """A malformed or ambiguous request gets one error answer with Connection: close, then EOF."""
    result = exchange(echo_url, data)
    assert [r.status for r in result.responses] == [status], result.raw
    assert result.responses[0].header("connection") == "close"
    assert result.closed
    assert "/smuggled" not in echo_server[0].seen  # type: ignore[attr-defined]


ACCEPTED = [
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        b"hello",
        id="te-chunked-any-case",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
        b"hello",
        id="chunk-extension-and-trailer",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello",
        b"hello",
        id="cl-leading-zeros",
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: o\tne\r\n\r\n", b"ok", id="tab-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n", b"ok", id="obs-text"),
    # reaches the app (Quart has no route for "*", hence its 404), not refused by the server
    pytest.param(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", b"404", id="options-star"),
    pytest.param(b"GET http://a/seq/7 HTTP/1.1\r\nHost: a\r\n\r\n", b"7", id="absolute-same-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", b"ok", id="host-ipv6-port"),
    pytest.param(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", b"ok", id="leading-empty-line"),
    pytest.param(b"GET / HTTP/1.0\r\n\r\n", b"ok", id="http10-without-host"),
    pytest.param(b"GET /?a=%00&b=%ff HTTP/1.1\r\nHost: a\r\n\r\n", b"ok", id="escaped-bytes"),
]


@pytest.mark.parametrize(("data", "body"), ACCEPTED)
def test_valid_edge_case_is_served(
    echo_server: tuple[WebServer, str], echo_url: str, data: bytes, body: bytes
) -> None:
    """Unusual but valid requests next to the hostile ones reach the app and are answered."""
    with connect(echo_url) as sock:
        sock.sendall(data)
        (response,) = read_responses(sock, 1)
    if body == b"404":
        assert response.status == 404
    else:
        assert (response.status, response.body) == (200, body)
    assert len(echo_server[0].seen) == 1  # type: ignore[attr-defined]


def test_pipelined_requests_are_answered_in_order(echo_url: str) -> None:
    """100 requests sent in one write come back as 100 answers in the order they were sent."""
    data = b"".join(b"GET /seq/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in range(100))
    with connect(echo_url) as sock:
        sock.sendall(data)
        responses = read_responses(sock, 100, timeout=15)
    assert [r.body for r in responses] == [str(n).encode() for n in range(100)]
    assert {r.status for r in responses} == {200}


def test_bad_request_after_pipelined_ones_is_answered_last(echo_url: str) -> None:
    """A bad head behind good pipelined requests is refused only after their answers."""
    good = b"GET /seq/%d HTTP/1.1\r\nHost: a\r\n\r\n"
    data = good % 1 + good % 2 + b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + good % 3
    result = exchange(echo_url, data)
    assert [(r.status, r.body) for r in result.responses] == [
        (200, b"1"),
        (200, b"2"),
        (400, b"Bad Request"),
    ]
    assert result.closed


def test_bad_body_of_a_queued_request_is_answered_after_the_one_before(echo_url: str) -> None:
    """A pipelined request whose chunked body is malformed never runs; its 400 comes in turn."""
    data = (
        b"GET /seq/1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    result = exchange(echo_url, data)
    assert [(r.status, r.body) for r in result.responses] == [(200, b"1"), (400, b"Bad Request")]
    assert result.closed


def test_unread_post_body_is_not_parsed_as_a_request(
    echo_server: tuple[WebServer, str], echo_url: str
) -> None:
    """A body the view never reads is skipped by its length, never parsed as the next request."""
    body = SMUGGLED
    data = b"POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with connect(echo_url) as sock:
        sock.sendall(data)
        (first,) = read_responses(sock, 1)
        sock.sendall(b"GET /seq/2 HTTP/1.1\r\nHost: a\r\n\r\n")
        (second,) = read_responses(sock, 1)
    assert (first.status, first.body) == (200, b"did not read")
    assert (second.status, second.body) == (200, b"2")
    # only this test's paths: the shared server may still be finishing an earlier test's
    # request (a malformed chunked body's view starts before the body fails; seen on a loaded
    # machine)
    ours = {"/noread", "/seq/2", "/smuggled"}
    seen = [path for path in echo_server[0].seen if path in ours]  # type: ignore[attr-defined]
    assert seen == ["/noread", "/seq/2"]


def test_absolute_form_uses_the_validated_host(echo_url: str) -> None:
    """An absolute-form target is served only when its authority is the Host header."""
    data = b"GET http://Example.com:8080/info HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
    with connect(echo_url) as sock:
        sock.sendall(data)
        (response,) = read_responses(sock, 1)
    assert response.status == 200
    assert json.loads(response.body)["host"] == "example.com:8080"


def test_closed_after_error_even_with_keep_alive_data_pending(echo_url: str) -> None:
    """After an error answer nothing more is read from the connection: it ends with EOF."""
    with connect(echo_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        sock.sendall(b"GET /seq/1 HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
        result = read_until_close(sock)
    assert [r.status for r in result.responses] == [400]
    assert result.closed


def test_websocket_upgrade_still_works(echo_url: str) -> None:
    """The head checks leave a valid WebSocket handshake alone (101 Switching Protocols)."""
    url = echo_url
    data = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with connect(url) as sock:
        sock.sendall(data)
        sock.settimeout(5)
        head = sock.recv(4096)
        sock.sendall(b"\x81\x82abcd" + bytes(b ^ k for b, k in zip(b"hi", b"ab", strict=True)))
        frame = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frame == b"\x81\x02hi"


def test_websocket_upgrade_with_two_hosts_is_refused(echo_url: str) -> None:
    """An upgrade request goes through the same head rules as any other."""
    data = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    result = exchange(echo_url, data)
    assert [r.status for r in result.responses] == [400]
    assert result.closed
