"""The tolerant lifespan layer for foreign apps: an app that refuses the protocol is served
without it; one whose startup fails stops the server, with its traceback in the log."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aeros.middleware.lifespan import OptionalLifespanMiddleware
from tests.support.cli import start_cli, stop_cli

Message = dict[str, Any]


async def run_lifespan(app: Any) -> list[str]:
    """Run the layer's lifespan as a server does (startup, then shutdown); what it sent."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    inbox.put_nowait({"type": "lifespan.shutdown"})
    sent: list[str] = []

    async def send(message: Message) -> None:
        sent.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await asyncio.wait_for(OptionalLifespanMiddleware(app)(scope, inbox.get, send), 5)
    return sent


async def test_lifespan_startup_that_raises_after_receiving_fails_the_startup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that takes lifespan.startup and raises failed its startup: logged as an error
    with the traceback, and lifespan.startup.failed sent (it was served, logged at INFO)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ConnectionRefusedError("database at 10.0.0.5:5432 refused the connection")

    with caplog.at_level(logging.INFO, logger="aeros.server"):
        sent = await run_lifespan(app)
    assert sent == ["lifespan.startup.failed"]
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionRefusedError)


async def test_lifespan_app_raising_before_receiving_is_served_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that raises on the lifespan scope before receiving anything does not speak the
    protocol: the layer answers both events itself, with one INFO line and no traceback."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "only HTTP"  # what such apps do

    with caplog.at_level(logging.INFO, logger="aeros.server"):
        sent = await run_lifespan(app)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert "does not support the ASGI lifespan protocol (AssertionError)" in record.getMessage()
    assert record.exc_info is None


async def test_lifespan_app_that_speaks_it_is_passed_through() -> None:
    """An app that answers its events reaches the server unchanged; one that raises after
    answering raises, for the server to report as it would without the layer."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    assert await run_lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    async def failing_shutdown(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise RuntimeError("shutdown hook failed")

    with pytest.raises(RuntimeError, match="shutdown hook failed"):
        await run_lifespan(failing_shutdown)


FAILING_STARTUP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            raise ConnectionRefusedError("database at 10.0.0.5:5432 refused the connection")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served anyway"})
    """
)


def test_lifespan_failed_startup_of_a_foreign_app_stops_aeros_run(tmp_path: Path) -> None:
    """``aeros run`` of a bare app whose startup raises exits with the traceback logged as an
    error and never serves (it used to log one INFO line and serve)."""
    (tmp_path / "failing_startup.py").write_text(FAILING_STARTUP)
    proc, _ = start_cli(tmp_path, "failing_startup:app", "--workers", "1", port=0)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        _, err = stop_cli(proc)
        pytest.fail(f"the server started instead of failing: {err}")
    assert proc.returncode != 0
    assert "ERROR    aeros.server: the app's lifespan startup failed" in err
    assert "ConnectionRefusedError: database at 10.0.0.5:5432 refused the connection" in err
    assert "Application startup failed" in err
    assert "serving on" not in err
    assert "does not support the ASGI lifespan protocol" not in err
