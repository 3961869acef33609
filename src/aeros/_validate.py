"""The argument checks every part of aeros shares: one message shape, one exception.

Every bad argument raises :class:`aeros.errors.ConfigurationError` (a ``ValueError``), whether
the value has the wrong type or is out of range, with a message that names the API, the bad
value (``!r``) and what is allowed: ``"Gzip(level=12) must be an integer from 1 to 9"``.
"""

from __future__ import annotations

import math
from typing import Any

from aeros.errors import ConfigurationError

__all__ = ["boolean", "integer", "seconds"]


def integer(api: str, name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an ``int`` from ``minimum`` to ``maximum`` (no maximum: None); bools refused.

    Raises:
        ConfigurationError: ``value`` is not an int, or out of range.
    """
    allowed = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ConfigurationError(f"{api}({name}={value!r}) must be an integer {allowed}")
    return value


def seconds(
    api: str, name: str, value: Any, *, minimum: float = 0.0, none: str | None = None
) -> float | None:
    """``value`` as a finite number of seconds >= ``minimum``, or None where ``none`` says why.

    Args:
        api: the callable the argument belongs to, as the user wrote it (``"WebServer"``).
        name: the argument's name.
        value: what was given.
        minimum: the smallest number of seconds allowed.
        none: what None means for this argument (``"no expiry"``); None refuses None.

    Raises:
        ConfigurationError: ``value`` is not a number, not finite, or below ``minimum``.
    """
    if value is None and none is not None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
    ):
        also = f" (None: {none})" if none is not None else ""
        raise ConfigurationError(
            f"{api}({name}={value!r}) must be a number of seconds >= {minimum:g}{also}"
        )
    return float(value)


def boolean(api: str, name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not merely truthy).

    Raises:
        ConfigurationError: ``value`` is not a bool.
    """
    if not isinstance(value, bool):
        raise ConfigurationError(f"{api}({name}={value!r}) must be True or False")
    return value
