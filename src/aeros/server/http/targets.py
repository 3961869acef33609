"""Request targets as uvicorn parses them, remembered: a repeated target costs one lookup.

uvicorn parses every request's target with ``httptools.parse_url`` and unquotes its path. Most
targets repeat (the same routes, the same query strings), so the protocol keeps a table per
``root_path`` (the values hold it) of targets to their path, raw path and query string.
"""

from __future__ import annotations

import urllib.parse

import httptools

__all__ = ["Target", "parse_target", "targets_for"]

Target = tuple[str, bytes, bytes]
"""A request's path, raw path and query string, as the scope holds them."""

_TARGET_LIMIT = 256  # a longer request target is parsed every time, never remembered
_TARGETS_LIMIT = 1024  # a table of remembered targets is emptied when it holds this many
_TARGETS: dict[str, dict[bytes, Target]] = {}
"""Per ``root_path``: request targets -> their :data:`Target` (:func:`parse_target`). A
connection takes its server's table once."""


def targets_for(root_path: str) -> dict[bytes, Target]:
    """The table of remembered targets for servers with this ``root_path``."""
    table = _TARGETS.get(root_path)
    if table is None:
        table = _TARGETS.setdefault(root_path, {})  # one table, whichever thread adds it
    return table


def parse_target(targets: dict[bytes, Target], root_path: str, url: bytes) -> Target:
    """uvicorn's path, raw path and query string of the request target ``url``; remembered in
    ``targets`` (the table of this ``root_path``, :func:`targets_for`) when short (a repeated
    target then costs one lookup)."""
    parsed_url = httptools.parse_url(url)
    raw_path = parsed_url.path
    path = raw_path.decode("ascii")
    if "%" in path:
        path = urllib.parse.unquote(path)
    target = (root_path + path, root_path.encode("ascii") + raw_path, parsed_url.query or b"")
    if len(url) <= _TARGET_LIMIT:
        if len(targets) >= _TARGETS_LIMIT:
            targets.clear()
        targets[url] = target
    return target
