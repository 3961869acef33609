"""Fixtures of the hardening suite (the root conftest's fixtures are inherited)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aeros import WebServer

from .echo_app import make_app


@pytest.fixture(scope="module")
def echo_server() -> Iterator[tuple[WebServer, str]]:
    """One echo app with the small test limits, shared by a module: ``(app, base_url)``."""
    app = make_app()
    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url:
        yield app, url


@pytest.fixture
def echo_url(echo_server: tuple[WebServer, str]) -> str:
    """Base URL of the shared echo server, its record of seen paths cleared."""
    app, url = echo_server
    app.seen.clear()  # type: ignore[attr-defined]
    return url
