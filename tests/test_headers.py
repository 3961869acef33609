"""The shared header grammar (aeros.headers): tokens, Host values, lookup, Vary."""

from __future__ import annotations

import pytest

from aeros import ConfigurationError
from aeros.headers import check_header, get_header, is_token, is_valid_host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("X-Request-Id", True, id="header-name"),
        pytest.param("GET", True, id="method"),
        pytest.param("!#$%&'*+-.^_`|~", True, id="all-symbols"),
        pytest.param("", False, id="empty"),
        pytest.param("a b", False, id="space"),
        pytest.param("a:b", False, id="colon"),
        pytest.param("a,b", False, id="comma"),
        pytest.param("caf\u00e9", False, id="non-ascii"),
        pytest.param("a\r\nb", False, id="crlf"),
    ],
)
def test_is_token_rfc9110(value: str, expected: bool) -> None:
    """A token is one or more tchars (RFC 9110 5.6.2), as text or as bytes."""
    assert is_token(value) is expected
    assert is_token(value.encode("utf-8")) is expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param(b"example.com:8080", True, id="name-port"),
        pytest.param(b"EXAMPLE.com", True, id="upper-case"),
        pytest.param(b"[2001:db8::1]:443", True, id="ipv6-port"),
        pytest.param(b"a.example:99999", False, id="port-out-of-range"),
        pytest.param(b".".join([b"a" * 63] * 4), False, id="name-too-long"),
        pytest.param(b"evil/x", False, id="path"),
        pytest.param(b"a..b", False, id="empty-label"),
    ],
)
def test_is_valid_host_one_grammar(value: bytes, valid: bool) -> None:
    """The server and the cache key share one Host grammar: name[:port] or [v6][:port]."""
    assert is_valid_host(value) is valid


def test_get_header_first_value() -> None:
    """get_header returns the first value of a lower-case name, None when absent."""
    headers = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
    assert (get_header(headers, b"a"), get_header(headers, b"c")) == (b"1", None)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        pytest.param("X Bad", "v", "not a valid token", id="name"),
        pytest.param("X-Ok", "a\r\nSet-Cookie: x", "CR, LF or NUL", id="split"),
        pytest.param("X-Ok", "\u2603", "latin-1", id="not-latin-1"),
        pytest.param("X-Ok", 3, "must be str", id="type"),
    ],
)
def test_check_header_refuses(name: str, value: str, message: str) -> None:
    """A configured header that could not go on the wire as given is refused, named."""
    with pytest.raises(ConfigurationError, match=message):
        check_header(name, value, where="WebServer(global_headers=...)")
    assert check_header("X-Ok", "fine", where="x") == (b"x-ok", b"fine")
