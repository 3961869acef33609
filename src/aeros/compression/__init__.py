"""STUB (owned by the compression helper)."""

from __future__ import annotations

from typing import Any

Codec = Any


def resolve_codecs(app: Any, compression: Any) -> tuple[Any, ...]:
    return ()
