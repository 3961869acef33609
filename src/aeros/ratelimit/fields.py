"""The rate-limit fields on the wire and the 429 answer.

``RateLimit-Policy`` and ``RateLimit`` follow draft-ietf-httpapi-ratelimit-headers: each is
one field holding a list with one member per policy that applied to the request, named by
where it comes from and its window (``"app-60s"``, ``"login-1s"``)::

    RateLimit-Policy: "app-60s";q=100;w=60, "login-1s";q=5;w=1
    RateLimit: "app-60s";r=42;t=17, "login-1s";r=4;t=1

``q`` is the quota, ``w`` the window in seconds, ``r`` what remains and ``t`` the seconds
until the window frees a request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson
from limits import RateLimitItem

from aeros.headers import header_line
from aeros.types import Headers

__all__ = [
    "ONE_MEMBER_LINE",
    "POLICY_FIELD",
    "RATE_FIELD",
    "policy_member",
    "rate_line",
    "rate_line_start",
    "rate_value",
    "refusal",
    "retry_seconds",
]

POLICY_FIELD = b"ratelimit-policy"
RATE_FIELD = b"ratelimit"


def policy_member(name: str, item: RateLimitItem) -> bytes:
    """One ``RateLimit-Policy`` member: ``"name";q=<quota>;w=<window seconds>``."""
    return f'"{name}";q={item.amount};w={item.get_expiry()}'.encode("ascii")


def rate_value(members: Sequence[tuple[bytes, int, float]]) -> bytes:
    """The ``RateLimit`` value from ``(quoted name, remaining, seconds to reset)`` triples."""
    if len(members) == 1:  # the common case (one app-wide limit), without a generator
        ((name, remaining, reset),) = members
        return b"%s;r=%d;t=%d" % (name, remaining, math.ceil(reset))
    return b", ".join(
        b"%s;r=%d;t=%d" % (name, remaining, math.ceil(reset)) for name, remaining, reset in members
    )


ONE_MEMBER_LINE = b"%b%d;t=%d\r\n"
"""``ONE_MEMBER_LINE % (rate_line_start(name), remaining, math.ceil(reset))``: the
``RateLimit`` line of one policy (the common case, one app-wide limit), in one formatting."""


def rate_line_start(name: bytes) -> bytes:
    """The start of :data:`ONE_MEMBER_LINE` for the policy ``name`` (quoted), up to ``r=``."""
    return b"%b: %b;r=" % (RATE_FIELD, name)


def rate_line(members: Sequence[tuple[bytes, int, float]]) -> bytes:
    """The ``RateLimit`` header line for aeros' server (``HEADER_LINES``)."""
    if len(members) == 1:
        ((name, remaining, reset),) = members
        return ONE_MEMBER_LINE % (rate_line_start(name), remaining, math.ceil(reset))
    return header_line(RATE_FIELD, rate_value(members))


def retry_seconds(reset: float) -> int:
    """``Retry-After`` in whole seconds, at least 1 (0 would invite an immediate retry)."""
    return max(1, math.ceil(reset))


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _wants_json(accept: bytes | None) -> bool:
    """Whether ``Accept`` lists a JSON type (q > 0) before any text type it accepts: an API
    client's ``application/json`` gets JSON, a browser's ``text/html,...,*/*`` gets text."""
    if not accept:
        return False
    for part in accept.split(b","):
        media, _, params = part.partition(b";")
        media = media.strip().lower()
        if _quality(params) <= 0:
            continue
        if media == b"application/json" or media.endswith(b"+json"):
            return True
        if media.startswith(b"text/"):
            return False
    return False


def refusal(
    retry_after: int,
    accept: bytes | None,
    fields: Sequence[tuple[bytes, bytes]],
    detail: str,
) -> tuple[Headers, bytes]:
    """Headers (without the global ones) and body of a 429, JSON when ``Accept`` asks for it."""
    if _wants_json(accept):
        body = orjson.dumps(
            {
                "status": 429,
                "title": "Too Many Requests",
                "detail": detail,
                "retry_after": retry_after,
            }
        )
        kind = b"application/json"
    else:
        body = f"Too Many Requests: {detail}; retry in {retry_after} s\n".encode()
        kind = b"text/plain; charset=utf-8"
    headers: Headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"retry-after", str(retry_after).encode("ascii")),
        (b"cache-control", b"no-store"),
        *fields,
    ]
    return headers, body
