"""Accept-Encoding negotiation (RFC 9110 section 12.5.3) with q-values, never substrings.

``gzip;q=0`` refuses gzip, ``*`` covers every coding not listed, ``identity;q=0`` is honoured
as far as possible (a coding is chosen whenever one is acceptable), and ties between codings
the client weighs equally go to the server's order of preference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from aeros.compression.codecs import Codec

__all__ = ["Negotiator", "negotiate", "parse_accept_encoding"]

C = TypeVar("C", bound=Codec)

_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 section 8.4.1.3: x-gzip is gzip
_MEMO_LIMIT = 512  # distinct Accept-Encoding values remembered; browsers send a handful
_MEMO_VALUE_LIMIT = 256  # longer values are negotiated every time, never remembered


def _parse_q(params: str) -> float:
    q = 1.0
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a malformed weight is not an acceptance
            if not 0.0 <= q <= 1.0:  # also rejects nan
                return 0.0
    return q


def parse_accept_encoding(value: bytes | str) -> dict[str, float]:
    """Parse an ``Accept-Encoding`` value into ``{coding: q}`` (codings lower-cased).

    A coding listed twice keeps its first weight; an unparseable weight counts as ``q=0``.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    weights: dict[str, float] = {}
    for item in text.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        coding = _ALIASES.get(coding, coding)
        if coding not in weights:
            weights[coding] = _parse_q(params) if params else 1.0
    return weights


def negotiate(accept_encoding: bytes | str | None, codecs: Sequence[C]) -> C | None:
    """Choose the codec to encode a response with, or None for the identity body.

    Args:
        accept_encoding: the request's ``Accept-Encoding`` value; None when absent (then no
            coding is used: RFC 9110 allows any, but clients that decode send the header).
        codecs: the server's codecs in order of preference (ties go to the earlier one).

    Returns:
        The acceptable codec with the highest q-value, or None when none is acceptable or
        identity is weighted higher than every acceptable codec.
    """
    if not accept_encoding or not codecs:
        return None
    weights = parse_accept_encoding(accept_encoding)
    star = weights.get("*", 0.0)
    best: C | None = None
    best_q = 0.0
    for codec in codecs:
        q = weights.get(codec.name, star)
        if q > best_q:
            best, best_q = codec, q
    if best is None:
        return None
    # identity is the fallback when not listed; it wins only when the client weighs it higher
    identity_q = weights.get("identity", star)
    if identity_q > best_q:
        return None
    return best


class Negotiator(Generic[C]):
    """:func:`negotiate` for a fixed tuple of codecs, memoised per ``Accept-Encoding`` value.

    Built once per layer; a request then costs one dict lookup. The memo is bounded, so
    clients sending random headers cannot grow memory.
    """

    __slots__ = ("_memo", "codecs")

    def __init__(self, codecs: Sequence[C]) -> None:
        self.codecs: tuple[C, ...] = tuple(codecs)
        self._memo: dict[bytes, C | None] = {}

    def __call__(self, accept_encoding: bytes | None) -> C | None:
        """Return the codec for this ``Accept-Encoding`` value (None: identity)."""
        if not accept_encoding:
            return None
        memo = self._memo
        try:
            return memo[accept_encoding]
        except KeyError:
            pass
        codec = negotiate(accept_encoding, self.codecs)
        if len(accept_encoding) > _MEMO_VALUE_LIMIT:
            return codec  # real clients send short values; keep memory bounded by bytes too
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[accept_encoding] = codec
        return codec
