"""The head rules alone (no server): Host syntax, request-target forms, transfer codings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aeros.server.http.rules import (
    MESSAGES,
    answer_header_block,
    error_response,
    is_valid_host,
    other_target_status,
    transfer_coding_status,
)

from .wire import parse_responses

FORBIDDEN_IN_HOST = b" \t\r\n\x00/@?#\\%,;\"'<>{}|^`"


@given(
    st.binary(max_size=40).filter(lambda value: any(byte in FORBIDDEN_IN_HOST for byte in value))
)
def test_is_valid_host_refuses_any_delimiter_or_control(value: bytes) -> None:
    """No Host value with whitespace, a control, a path, userinfo or a query passes."""
    assert not is_valid_host(value)


@given(
    st.from_regex(
        rb"\A[a-z0-9][a-z0-9-]{0,9}(\.[a-z0-9-]{1,10}){0,3}(:[0-9]{1,4})?\Z", fullmatch=True
    ),
)
def test_is_valid_host_accepts_names_with_ports(value: bytes) -> None:
    """DNS-style names and IPv4 addresses, with or without a port, pass."""
    assert is_valid_host(value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param(b"example.com", True, id="name"),
        pytest.param(b"EXAMPLE.com:8080", True, id="name-port"),
        pytest.param(b"127.0.0.1:80", True, id="ipv4-port"),
        pytest.param(b"[::1]", True, id="ipv6"),
        pytest.param(b"[2001:db8::1]:443", True, id="ipv6-port"),
        pytest.param(b"my_host", True, id="underscore"),
        pytest.param(b"", False, id="empty"),
        pytest.param(b"a:", False, id="empty-port"),
        pytest.param(b"a:123456", False, id="port-6-digits"),
        pytest.param(b"[::1", False, id="ipv6-unclosed"),
        pytest.param(b"::1", False, id="ipv6-unbracketed"),
        pytest.param(b"a\xc3\xa9", False, id="non-ascii"),
        pytest.param(b"example.com.", True, id="trailing-dot"),
        pytest.param(b"a" * 63 + b".com:65535", True, id="longest-label-highest-port"),
        pytest.param(b"a" * 64 + b".com", False, id="label-too-long"),
        pytest.param(b"a..b", False, id="empty-label"),
        pytest.param(b".a", False, id="leading-dot"),
        pytest.param(b"1.2.3.4:99999", False, id="port-out-of-range"),
        pytest.param(b".".join([b"a" * 63] * 4) + b".b", False, id="name-too-long"),
    ],
)
def test_is_valid_host_examples(value: bytes, valid: bool) -> None:
    """Hosts are name[:port] or [ipv6][:port]; nothing else."""
    assert is_valid_host(value) is valid
    assert is_valid_host(value) is valid  # the second call answers from the known-host cache


@pytest.mark.parametrize(
    ("method", "target", "host", "status"),
    [
        pytest.param(b"OPTIONS", b"*", b"a", 0, id="options-star"),
        pytest.param(b"GET", b"*", b"a", 400, id="get-star"),
        pytest.param(b"GET", b"http://a/x", b"a", 0, id="absolute-same-host"),
        pytest.param(b"GET", b"HTTPS://A:443/x", b"a:443", 0, id="absolute-case-insensitive"),
        pytest.param(b"GET", b"http://a:80/x", b"a", 400, id="absolute-port-differs"),
        pytest.param(b"GET", b"http://a/x", None, 400, id="absolute-without-host"),
        pytest.param(b"GET", b"http://a", b"a", 400, id="absolute-no-path"),
        pytest.param(b"GET", b"http://b@a/x", b"a", 400, id="absolute-userinfo"),
        pytest.param(b"GET", b"ws://a/x", b"a", 400, id="other-scheme"),
        pytest.param(b"GET", b"a/x", b"a", 400, id="relative"),
        pytest.param(b"GET", b"/a#b", b"a", 400, id="fragment"),
        pytest.param(b"CONNECT", b"a:443", b"a:443", 400, id="authority-form"),
    ],
)
def test_other_target_status(method: bytes, target: bytes, host: bytes | None, status: int) -> None:
    """Besides /path, only OPTIONS * and absolute-form naming the Host are accepted."""
    assert other_target_status(method, target, host) == status


@pytest.mark.parametrize(
    ("value", "version", "status"),
    [
        pytest.param(b"chunked", "1.1", 0, id="chunked"),
        pytest.param(b" Chunked ", "1.1", 0, id="chunked-case-space"),
        pytest.param(b"chunked", "1.0", 400, id="http10"),
        pytest.param(b"gzip", "1.1", 400, id="not-chunked-last"),
        pytest.param(b"gzip, chunked", "1.1", 501, id="unknown-coding"),
        pytest.param(b"gzip,chunked", "1.1", 501, id="two-lines-joined"),
        pytest.param(b",chunked", "1.1", 400, id="empty-element"),
        pytest.param(b"chunked,", "1.1", 400, id="trailing-comma"),
    ],
)
def test_transfer_coding_status(value: bytes, version: str, status: int) -> None:
    """Only plain chunked on HTTP/1.1 frames a body; other codings are refused."""
    assert transfer_coding_status(value, version) == status


@pytest.mark.parametrize("status", sorted(MESSAGES))
def test_error_response_is_complete_and_closes(status: int) -> None:
    """Every error answer is one complete response with Connection: close and the Date."""
    raw = error_response(status, [(b"date", b"Tue, 24 Nov 2026 07:00:00 GMT")])
    (response,), rest = parse_responses(raw)
    assert rest == b""
    assert response.status == status
    assert response.header("connection") == "close"
    assert response.header("date") == "Tue, 24 Nov 2026 07:00:00 GMT"
    assert response.body == MESSAGES[status]


def test_error_response_keeps_its_own_framing_over_global_headers() -> None:
    """Global headers join an error answer, lower-cased, except those it sets itself."""
    extra = answer_header_block(
        [
            (b"X-Frame-Options", b"DENY"),
            (b"Content-Type", b"text/html"),
            (b"Connection", b"keep-alive"),
            (b"content-length", b"0"),
            (b"server", b"aeros"),
        ]
    )
    raw = error_response(431, [], extra)
    assert raw.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    (response,), rest = parse_responses(raw)
    assert rest == b""
    assert response.headers == [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-length", str(len(MESSAGES[431]))),
        ("connection", "close"),
        ("x-frame-options", "DENY"),
        ("server", "aeros"),
    ]
