"""Shared fixtures: apps, a live server on an ephemeral loopback port, a real redis-server."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from aeros import WebServer
from tests.support.net import RedisServer, require
from tests.support.redis_topologies import (  # noqa: F401 - fixtures, registered here
    redis_cluster,
    redis_cluster_nodes,
    redis_sentinel,
    redis_sentinel_group,
)


@pytest.fixture
def app() -> WebServer:
    """A fresh WebServer with access logging off (tests that check logs turn it on)."""
    return WebServer(__name__, access_log=False)


@pytest.fixture
def live_server() -> Callable[[WebServer], AbstractContextManager[str]]:
    """Serve an app in a thread on a free loopback port: ``with live_server(app) as url:``."""

    def start(app: WebServer) -> AbstractContextManager[str]:
        return app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0)

    return start


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A session-wide redis-server on a free loopback port (flushed by ``redis`` below)."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed (make test installs it)")
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The session redis-server, running and empty."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server
