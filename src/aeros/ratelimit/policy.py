"""What to limit: :class:`RateLimit` (app-wide) and ``@rate_limit(...)`` (per route).

The decorator only marks the view function, like ``@cached``; whichever
:class:`aeros.WebServer` serves the view reads the mark when a request arrives, so blueprints
and app factories can use it without the app object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

import limits
from limits import RateLimitItem

from aeros import _validate
from aeros.errors import ConfigurationError
from aeros.ratelimit.keys import KeyFunc, compile_key

__all__ = [
    "EXEMPT_ATTRIBUTE",
    "LIMITS_ATTRIBUTE",
    "STRATEGIES",
    "RateLimit",
    "Rule",
    "exempt_of",
    "rate_limit",
    "rules_of",
]

F = TypeVar("F", bound=Callable[..., Any])

LIMITS_ATTRIBUTE = "__aeros_rate_limits__"
"""Attribute of a view function holding its tuple of :class:`Rule` (``@rate_limit``)."""
EXEMPT_ATTRIBUTE = "__aeros_rate_limit_exempt__"
"""Attribute of a view function exempt from the app-wide limit (``@rate_limit.exempt``)."""
STRATEGIES = ("fixed-window", "moving-window")
_STORAGE_SCHEMES = (
    "memory://",
    "redis://",
    "rediss://",
    "unix://",
    "redis+cluster://",
    "redis+sentinel://",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """Limits counted under one key: what a ``RateLimit`` or one ``@rate_limit`` states."""

    items: tuple[RateLimitItem, ...]
    key: KeyFunc


def parse_limits(api: str, limit: Any) -> tuple[RateLimitItem, ...]:
    """``"10/second"``, ``"10/second;1000/hour"`` or a sequence of such strings, parsed.

    Raises:
        ConfigurationError: not a str / sequence of str, or not in ``limits``' notation.
    """
    texts = [limit] if isinstance(limit, str) else limit
    if not isinstance(texts, Sequence) or not all(isinstance(text, str) for text in texts):
        raise ConfigurationError(
            f"{api}({limit!r}) must be a limit such as '100/minute' (or '10/second;1000/hour', "
            "or a list of them)"
        )
    items: list[RateLimitItem] = []
    for text in texts:
        try:
            items += limits.parse_many(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"{api}({text!r}) is not a rate limit: write '<count>/<period>' such as "
                "'100/minute', '10 per second' or '5/2 hours', several joined with ';'"
            ) from exc
    windows = [item.get_expiry() for item in items]
    if len(set(windows)) != len(windows):
        raise ConfigurationError(
            f"{api}({limit!r}) has two limits with the same window; keep the lower one"
        )
    return tuple(items)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """App-wide rate limiting: ``WebServer(rate_limit=RateLimit("100/minute"))``.

    Counted in front of the response cache, so cache hits count like misses. ``@rate_limit``
    adds limits per route; ``@rate_limit.exempt`` takes a route out of the app-wide limit.

    Attributes:
        limit: ``"100/minute"``, several joined with ``;`` (``"10/second;1000/hour"``) or a
            list of them; every request must pass each. Empty (the default): no app-wide
            limit, only the routes' own (with this storage and strategy).
        key: whom to count (:func:`aeros.ratelimit.keys.compile_key`): None (default) the
            client address (as forwarded by a trusted proxy), a header name such as
            ``"X-API-Key"``, or a function of the ASGI scope returning a str, or None to leave
            the request out.
        storage: where counters live. ``"memory://"`` (default): in each worker process (a
            server with 4 workers lets each allow the limit). ``redis://host:port/db``,
            ``rediss://``, ``unix:///path``, ``redis+cluster://h1:p1,h2:p2``,
            ``redis+sentinel://h1:p1,h2:p2/service``: shared by every worker and instance
            (the Redis the cache uses is fine; keys are prefixed).
        strategy: ``"fixed-window"`` (default: one counter per window, Redis' own clock, so
            instances' clocks do not matter; up to twice the limit can pass around a window
            boundary) or ``"moving-window"`` (exact: a timestamp per allowed request, taken
            from each instance's clock).
        fail_open: when the storage fails (Redis down), allow the request (True, default) or
            refuse it with 429 and ``Retry-After`` (False). Never a 5xx either way; a warning
            is logged at most once a minute.
        headers: send the ``RateLimit-Policy`` / ``RateLimit`` fields on every limited
            response, not only on 429s. Default True.
        prefix: prefix of the storage keys. Default ``aeros-rl``.
        socket_timeout: seconds to wait for Redis before counting it as failed. Default 0.1.
        retry_after: seconds to skip a failed storage before trying it again. Default 1.

    Raises:
        ConfigurationError: a bad value, naming the argument.
    """

    limit: str | Sequence[str] = ()
    _: KW_ONLY
    key: Any = None
    storage: str = "memory://"
    strategy: str = "fixed-window"
    fail_open: bool = True
    headers: bool = True
    prefix: str = "aeros-rl"
    socket_timeout: float = 0.1
    retry_after: float = 1.0
    rule: Rule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        api = "RateLimit"
        items = parse_limits(api, self.limit) if self.limit else ()
        object.__setattr__(self, "rule", Rule(items, compile_key(api, self.key)))
        if not isinstance(self.storage, str) or not self.storage.startswith(_STORAGE_SCHEMES):
            raise ConfigurationError(
                f"RateLimit(storage={self.storage!r}) must start with one of "
                f"{', '.join(_STORAGE_SCHEMES)}"
            )
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(
                f"RateLimit(strategy={self.strategy!r}) must be one of {', '.join(STRATEGIES)}"
            )
        _validate.boolean(api, "fail_open", self.fail_open)
        _validate.boolean(api, "headers", self.headers)
        if not isinstance(self.prefix, str) or not self.prefix:
            raise ConfigurationError(f"RateLimit(prefix={self.prefix!r}) must be a non-empty str")
        _validate.seconds(api, "socket_timeout", self.socket_timeout, minimum=0.001)
        _validate.seconds(api, "retry_after", self.retry_after)


class RateLimitDecorator:
    """``@rate_limit("10/second", key=...)``: a route's own limit, on top of the app-wide one.

    Stack it for several keys (``@rate_limit("5/minute")`` and
    ``@rate_limit("1000/day", key="X-API-Key")``); one call with ``"10/second;100/minute"``
    gives several windows under one key. Above or below ``@app.route``, on blueprint views
    too. The route's counters are shared by all its URLs (``/items/1`` and ``/items/2``).
    ``@rate_limit.exempt`` takes a view out of the app-wide limit (its own still apply).
    Storage, strategy and failure handling are the app's (``WebServer(rate_limit=...)``,
    memory by default).
    """

    def __call__(self, limit: str | Sequence[str], *, key: Any = None) -> Callable[[F], F]:
        """Mark the view with ``limit`` counted per ``key`` (see :class:`RateLimit`).

        Raises:
            ConfigurationError: a bad limit or key.
        """
        rule = Rule(parse_limits("rate_limit", limit), compile_key("rate_limit", key))

        def mark(func: F) -> F:
            setattr(func, LIMITS_ATTRIBUTE, (*getattr(func, LIMITS_ATTRIBUTE, ()), rule))
            return func

        return mark

    @staticmethod
    def exempt(func: F) -> F:
        """Take the view out of the app-wide limit; its own ``@rate_limit`` still counts."""
        setattr(func, EXEMPT_ATTRIBUTE, True)
        return func


rate_limit = RateLimitDecorator()
"""The per-route decorator (:class:`RateLimitDecorator`)."""


def _marked(view: Any, attribute: str) -> Any:
    for _ in range(16):  # through functools.wraps chains
        if view is None:
            return None
        found = getattr(view, attribute, None)
        if found is not None:
            return found
        view = getattr(view, "__wrapped__", None)
    return None


def rules_of(view: Any) -> tuple[Rule, ...]:
    """The ``@rate_limit`` rules marked on a view (or a function it wraps)."""
    found = _marked(view, LIMITS_ATTRIBUTE)
    return found if isinstance(found, tuple) else ()


def exempt_of(view: Any) -> bool:
    """Whether the view is marked ``@rate_limit.exempt``."""
    return _marked(view, EXEMPT_ATTRIBUTE) is True
