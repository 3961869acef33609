"""Size limits: request line 414, header block 431, body 413, and what the client sees."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from aeros import Limits, WebServer

from .echo_app import TEST_LIMITS, make_app
from .wire import connect, exchange, read_responses, read_until_close

LINE = TEST_LIMITS.max_request_line
HEADERS = TEST_LIMITS.max_header_size
COUNT = TEST_LIMITS.max_header_count
BODY = TEST_LIMITS.max_body_size
HOST = b"Host: a\r\n"  # 9 bytes of the header block: len(name) + len(value) + 4


def request_with_line(length: int) -> bytes:
    """A GET whose request line (without its CRLF) is ``length`` bytes long."""
    target = b"/" + b"a" * (length - len(b"GET / HTTP/1.1"))
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"


def request_with_header_block(size: int) -> bytes:
    value = b"v" * (size - len(HOST) - len(b"X-Big") - 4)
    return b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + value + b"\r\n\r\n"


def request_with_fields(count: int) -> bytes:
    fields = b"".join(b"X-F%d: 1\r\n" % n for n in range(count - 1))
    return b"GET / HTTP/1.1\r\n" + HOST + fields + b"\r\n"


def chunked_post(size: int) -> bytes:
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"x" * 1000
    body = b""
    left = size
    while left:
        chunk = piece[: min(left, len(piece))]
        body += b"%x\r\n%s\r\n" % (len(chunk), chunk)
        left -= len(chunk)
    return head + body + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(request_with_line(LINE), 404, id="line-at-limit"),
        pytest.param(request_with_line(LINE + 1), 414, id="line-over-limit"),
        pytest.param(request_with_header_block(HEADERS), 200, id="headers-at-limit"),
        pytest.param(request_with_header_block(HEADERS + 1), 431, id="headers-over-limit"),
        pytest.param(request_with_fields(COUNT), 200, id="fields-at-limit"),
        pytest.param(request_with_fields(COUNT + 1), 431, id="fields-over-limit"),
        pytest.param(chunked_post(BODY), 200, id="chunked-body-at-limit"),
        pytest.param(chunked_post(BODY + 1), 413, id="chunked-body-over-limit"),
    ],
)
def test_size_limit_boundary(echo_url: str, data: bytes, status: int) -> None:
    """A request exactly at a limit is served; one byte (or field) more gets the limit's status."""
    with connect(echo_url) as sock:
        sock.sendall(data)
        (response,) = read_responses(sock, 1)
        assert response.status == status
        if status in (413, 414, 431):
            assert response.header("connection") == "close"
            assert read_until_close(sock).closed


def test_endless_header_line_gets_431_without_buffering_it(echo_url: str) -> None:
    """A header line that never ends is refused once the head outgrows the limits."""
    sent = 0
    with connect(echo_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Endless: ")
        sock.settimeout(0.05)
        answer = b""
        while not answer and sent < 1_000_000:
            sock.sendall(b"a" * 1000)
            sent += 1000
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert sent < 64 * 1024


def send_until_answered(url: str, start: bytes, filler: bytes) -> tuple[bytes, int]:
    """Send ``start``, then ``filler`` until the server answers; (answer, filler bytes sent)."""
    sent = 0
    answer = b""
    with connect(url) as sock:
        sock.sendall(start)
        sock.settimeout(0.05)
        while not answer and sent < 1_000_000:
            try:
                sock.sendall(filler)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(filler)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
    return answer, sent


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(b"5\r\nhello\r\n0\r\nX-Trailer: ", id="endless-trailer-field"),
        pytest.param(b"5\r\nhello\r\n0\r\n", id="endless-trailer-section"),
        pytest.param(b"5;ext=", id="endless-chunk-extension"),
    ],
)
def test_chunked_framing_without_body_data_is_bounded(echo_url: str, start: bytes) -> None:
    """Chunk extensions and trailers that never end are refused like an oversized header block."""
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    filler = b"a" * 1000 if start.endswith(b" ") or start.endswith(b"=") else b"X-T: 1\r\n" * 100
    answer, sent = send_until_answered(echo_url, head + start, filler)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert sent < 64 * 1024


def test_trailer_fields_never_reach_the_request_headers(echo_url: str) -> None:
    """Trailer fields are dropped: they cannot add or override headers the app reads."""
    data = (
        b"POST /headers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\nHost: evil\r\n\r\n"
    )
    with connect(echo_url) as sock:
        sock.sendall(data)
        (response,) = read_responses(sock, 1)
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["body"] == 5
    assert "x-trailer" not in seen["names"]
    assert seen["names"].count("host") == 1


def test_known_body_over_limit_gets_413_before_it_is_sent(echo_url: str) -> None:
    """Content-Length over the limit is refused from the head alone, without 100 Continue."""
    head = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
        % (BODY + 1)
    )
    with connect(echo_url) as sock:
        sock.sendall(head)
        result = read_until_close(sock)
    assert b"100 Continue" not in result.raw
    assert [r.status for r in result.responses] == [413]
    assert result.responses[0].header("connection") == "close"
    assert result.closed


def test_413_survives_a_client_still_sending_its_body(echo_url: str) -> None:
    """The 413 reaches a client that keeps sending its body: the server drains, not resets."""
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (1024 * 1024)
    with connect(echo_url) as sock:
        sock.sendall(head + b"x" * (64 * 1024))
        time.sleep(0.2)  # the server has answered by now; a closed socket would reset on more
        sock.sendall(b"x" * (64 * 1024))
        result = read_until_close(sock)
    assert [r.status for r in result.responses] == [413]


def test_body_at_limit_with_expect_gets_100_continue(echo_url: str) -> None:
    """A body within the limit is read, after 100 Continue when the client asked for it."""
    body = b"y" * BODY
    head = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
        % len(body)
    )
    with connect(echo_url) as sock:
        sock.sendall(head)
        interim = sock.recv(100)
        sock.sendall(body)
        (response,) = read_responses(sock, 1)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert (response.status, response.body) == (200, body)


@pytest.fixture(scope="module")
def default_limits_url() -> Iterator[str]:
    """A server with the default Limits() (the issue's figures)."""
    app = make_app(limits=None)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        yield url


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(request_with_line(8 * 1024), 404, id="line-8KiB"),
        pytest.param(request_with_line(8 * 1024 + 1), 414, id="line-8KiB+1"),
        pytest.param(request_with_header_block(16 * 1024), 200, id="headers-16KiB"),
        pytest.param(request_with_header_block(16 * 1024 + 1), 431, id="headers-16KiB+1"),
        pytest.param(request_with_fields(100), 200, id="fields-100"),
        pytest.param(request_with_fields(101), 431, id="fields-101"),
        pytest.param(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (16 * 1024**2 + 1),
            413,
            id="body-16MiB+1",
        ),
    ],
)
def test_default_limits(default_limits_url: str, data: bytes, status: int) -> None:
    """Defaults: 8 KiB request line (414), 16 KiB / 100 header fields (431), 16 MiB body (413)."""
    with connect(default_limits_url) as sock:
        sock.sendall(data)
        (response,) = read_responses(sock, 1)
    assert response.status == status


def test_default_limits_values() -> None:
    """Limits() holds the documented defaults."""
    limits = Limits()
    assert (limits.max_request_line, limits.max_header_size, limits.max_header_count) == (
        8 * 1024,
        16 * 1024,
        100,
    )
    assert limits.max_body_size == 16 * 1024 * 1024
    assert (limits.header_timeout, limits.body_timeout) == (30.0, 60.0)
    assert WebServer(__name__).server_config.keep_alive_timeout == 5.0


def test_max_concurrent_requests_gets_503_with_connection_close() -> None:
    """Above max_concurrent_requests in flight, a request gets 503 and the connection closes."""
    app = make_app(max_concurrent_requests=1)
    started: list[float] = []

    @app.route("/slow")
    async def slow() -> str:
        import asyncio

        started.append(time.monotonic())
        await asyncio.sleep(1.0)
        return "slow"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url, connect(url) as busy:
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        deadline = time.monotonic() + 5
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = exchange(url, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        (served,) = read_responses(busy, 1)
    assert [r.status for r in refused.responses] == [503]
    assert refused.responses[0].header("connection") == "close"
    assert refused.closed
    assert (served.status, served.body) == (200, b"slow")
