"""Value types of the ``aeros`` command line's options: each converts one argument or raises
``argparse.ArgumentTypeError`` naming what is allowed (argparse adds the option's name)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from aeros.server.config import not_an_address

__all__ = ["addresses", "boolean", "existing_file", "integer", "seconds"]


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer from ``minimum`` (to ``maximum``)."""
    allowed = f"an integer >= {minimum}" if maximum is None else f"{minimum} to {maximum}"

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}")
        return value

    return convert


def seconds(minimum: float) -> Callable[[str], float]:
    """Finite seconds from ``minimum``."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= minimum or value == float("inf"):  # NaN fails the comparison
            raise argparse.ArgumentTypeError(f"must be seconds >= {minimum:g}; got {text!r}")
        return value

    return convert


def existing_file(text: str) -> str:
    """The path of a file that exists."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def addresses(text: str) -> str:
    """Comma-separated IP addresses, networks or ``*`` (``--forwarded-allow-ips``)."""
    bad = not_an_address(part.strip() for part in text.split(","))
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"{bad!r} is not an IP address, a network or '*' (comma-separated)"
        )
    return text


def boolean(text: str) -> bool:
    """1/0, true/false, yes/no, on/off (an ``AEROS_*`` switch)."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"must be true or false (1/0, yes/no, on/off); got {text!r}")
