"""Fixtures of the server tests that run ``tests/apps/server_app.py`` in processes of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import AppProcess


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator:
    """Start ``tests/apps/server_app.py`` (or a script) with arguments; every process is
    reaped afterwards."""
    started: list[AppProcess] = []

    def start(*args: str, script: Path | None = None) -> AppProcess:
        process = AppProcess(tmp_path, *args, **({"script": script} if script else {}))
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
