"""Deadlines: a head that trickles in, an idle body, an idle keep-alive connection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aeros import Limits

from .echo_app import TEST_LIMITS, make_app
from .wire import connect, read_responses, wait_closed

HEAD_DEADLINE = TEST_LIMITS.header_timeout
BODY_DEADLINE = TEST_LIMITS.body_timeout
SLACK = 3.0  # generous upper bound for a loaded machine; the lower bounds are the real checks


def trickle_until_closed(sock: object, interval: float, limit: float) -> tuple[bytes, float]:
    """Send one header byte every ``interval`` s until the server closes; (answer, seconds)."""
    import socket

    assert isinstance(sock, socket.socket)
    start = time.monotonic()
    sock.settimeout(interval)
    answer = b""
    while time.monotonic() - start < limit:
        try:
            sock.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - start


def test_trickling_first_request_is_closed_at_the_head_deadline(echo_url: str) -> None:
    """A first request whose head trickles in gets 408 and is closed at header_timeout."""
    with connect(echo_url) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        answer, _ = trickle_until_closed(sock, 0.05, HEAD_DEADLINE + SLACK)
        rest, closed_at = wait_closed(sock, SLACK)
    elapsed = closed_at - start
    assert (answer + rest).startswith(b"HTTP/1.1 408 ")
    assert HEAD_DEADLINE * 0.9 <= elapsed < HEAD_DEADLINE + SLACK


def test_trickling_keep_alive_follow_up_is_closed_at_the_head_deadline(echo_url: str) -> None:
    """A follow-up head on a kept-alive connection has the same deadline, from its first byte."""
    with connect(echo_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        (first,) = read_responses(sock, 1)
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer, _ = trickle_until_closed(sock, 0.05, HEAD_DEADLINE + SLACK)
        rest, closed_at = wait_closed(sock, SLACK)
    assert first.status == 200
    assert (answer + rest).startswith(b"HTTP/1.1 408 ")
    assert HEAD_DEADLINE * 0.9 <= closed_at - start < HEAD_DEADLINE + SLACK


def test_silent_connection_is_closed_without_an_answer(echo_url: str) -> None:
    """A connection that never sends a byte is closed at header_timeout with nothing written."""
    with connect(echo_url) as sock:
        start = time.monotonic()
        answer, closed_at = wait_closed(sock, HEAD_DEADLINE + SLACK)
    assert answer == b""
    assert HEAD_DEADLINE * 0.9 <= closed_at - start < HEAD_DEADLINE + SLACK


def test_idle_body_gets_408(echo_url: str) -> None:
    """A body that stops arriving for body_timeout gets 408 and the connection is closed."""
    with connect(echo_url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf.")
        start = time.monotonic()
        answer, closed_at = wait_closed(sock, BODY_DEADLINE + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer
    assert BODY_DEADLINE * 0.9 <= closed_at - start < BODY_DEADLINE + SLACK


def test_slow_but_steady_body_is_served(echo_url: str) -> None:
    """The body deadline is per idle gap, so a body slower in total than it is still served."""
    body = b"0123456789"
    gap = BODY_DEADLINE / 4
    with connect(echo_url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            time.sleep(gap)
            sock.sendall(bytes([byte]))
        (response,) = read_responses(sock, 1)
    assert (response.status, response.body) == (200, body)
    assert len(body) * gap > BODY_DEADLINE


@pytest.fixture(scope="module")
def short_keep_alive_url() -> Iterator[str]:
    """A server whose keep-alive idle timeout (0.3 s) is far below its head deadline (10 s)."""
    app = make_app(limits=Limits(header_timeout=10.0), keep_alive_timeout=0.3)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        yield url


def test_idle_keep_alive_connection_is_closed(short_keep_alive_url: str) -> None:
    """An idle kept-alive connection is closed after keep_alive_timeout, silently."""
    with connect(short_keep_alive_url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        (response,) = read_responses(sock, 1)
        start = time.monotonic()
        answer, closed_at = wait_closed(sock, SLACK)
    assert response.status == 200
    assert answer == b""
    assert 0.25 <= closed_at - start < 0.3 + SLACK


def test_keep_alive_serves_many_requests_on_one_connection(echo_url: str) -> None:
    """Requests spaced less than the deadlines apart all reuse one connection."""
    with connect(echo_url) as sock:
        for n in range(5):
            sock.sendall(b"GET /seq/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
            (response,) = read_responses(sock, 1)
            assert response.body == str(n).encode()
            time.sleep(HEAD_DEADLINE / 3)


def test_head_deadline_waits_while_an_earlier_request_is_answered(echo_url: str) -> None:
    """A pipelined head's deadline starts when the server is free to read it, not before."""
    slow = HEAD_DEADLINE * 2
    with connect(echo_url) as sock:
        sock.sendall(b"GET /sleep/%.1f HTTP/1.1\r\nHost: a\r\n\r\nGET /seq/2 HTTP/1.1\r\n" % slow)
        (first,) = read_responses(sock, 1, timeout=slow + SLACK)
        time.sleep(HEAD_DEADLINE / 3)  # the rest of the head comes soon after the first answer
        sock.sendall(b"Host: a\r\n\r\n")
        (second,) = read_responses(sock, 1)
    assert (first.status, first.body) == (200, b"slept")
    assert (second.status, second.body) == (200, b"2")


def test_slow_view_is_not_cut_by_any_deadline(echo_url: str) -> None:
    """Deadlines bound what the client sends; a view slower than all of them still answers."""
    slow = max(HEAD_DEADLINE, BODY_DEADLINE) * 2
    with connect(echo_url) as sock:
        sock.sendall(b"GET /sleep/%.1f HTTP/1.1\r\nHost: a\r\n\r\n" % slow)
        (response,) = read_responses(sock, 1, timeout=slow + SLACK)
    assert (response.status, response.body) == (200, b"slept")
