"""Real Redis topologies on loopback for the tests: a 3-primary Cluster, and a primary with a
replica guarded by one Sentinel. Each is started once per session by its fixture
(``redis_cluster``, ``redis_sentinel``, registered in ``tests/conftest.py``) and flushed (the
Sentinel one: restored to a healthy primary) before each test that uses it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port, require, wait_for_port

__all__ = ["RedisClusterNodes", "RedisSentinelGroup", "redis_cluster", "redis_sentinel"]


def command(port: int, *args: str, timeout: float = 2.0) -> str:
    """Run one command on the Redis (or Sentinel) at 127.0.0.1:``port``; its reply as text."""
    cli = shutil.which("redis-cli")
    assert cli is not None
    done = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _server(binary: str, workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [binary, *args],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


class RedisClusterNodes:
    """Three redis-server primaries on loopback ports joined into one Redis Cluster
    (``redis-cli --cluster create``), with every slot covered."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.ports = [free_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The URL of the first node (a client discovers the others from it)."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until its state is ok."""
        for port in self.ports:
            self.processes.append(
                _server(
                    self.binary,
                    self.workdir,
                    *("--port", str(port), "--bind", "127.0.0.1"),
                    # the bus port is chosen free, not the default port + 10000 (past 65535
                    # for an ephemeral port)
                    *("--cluster-port", str(free_port()), "--cluster-enabled", "yes"),
                    *("--cluster-config-file", f"nodes-{port}.conf"),
                    *("--cluster-node-timeout", "2000"),
                    *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                )
            )
        for port in self.ports:
            wait_for_port("127.0.0.1", port, time.monotonic() + 10)
        cli = shutil.which("redis-cli")
        assert cli is not None
        created = subprocess.run(
            [
                *(cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        _wait(
            lambda: all("cluster_state:ok" in command(p, "CLUSTER", "INFO") for p in self.ports),
            "cluster_state:ok on every node",
        )

    def stop(self) -> None:
        """Stop every node."""
        for process in self.processes:
            _stop(process)
        self.processes = []

    def flush(self) -> None:
        """Empty every node."""
        for port in self.ports:
            command(port, "FLUSHALL")


class RedisSentinelGroup:
    """A primary, its replica and one Sentinel (quorum 1, down-after 500 ms) on loopback; the
    Sentinel monitors the primary as ``mymaster``."""

    service_name = "mymaster"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.ports = [free_port(), free_port()]  # the first is the primary at start
        self.sentinel_port = free_port()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The Sentinels' addresses, as RedisCache(sentinels=...) takes them."""
        return [("127.0.0.1", self.sentinel_port)]

    def start(self) -> None:
        """Start the primary, the replica and the Sentinel; wait until the Sentinel knows the
        replica and the replica is in sync."""
        primary, replica = self.ports
        self._start_data(primary)
        self._start_data(replica, "--replicaof", "127.0.0.1", str(primary))
        config = self.workdir / "sentinel.conf"  # Sentinel rewrites it: a fresh file each time
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {self.service_name} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {self.service_name} 500\n"
            f"sentinel failover-timeout {self.service_name} 3000\n"
        )
        self.processes[self.sentinel_port] = _server(
            self.binary, self.workdir, str(config), "--sentinel"
        )
        wait_for_port("127.0.0.1", self.sentinel_port, time.monotonic() + 10)
        self.wait_healthy()

    def _start_data(self, port: int, *args: str) -> None:
        self.processes[port] = _server(
            self.binary,
            self.workdir,
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dbfilename", f"dump-{port}.rdb", *args),
        )
        wait_for_port("127.0.0.1", port, time.monotonic() + 10)

    def primary_port(self) -> int:
        """The port of the primary the Sentinel names now."""
        reply = command(
            self.sentinel_port, "SENTINEL", "get-master-addr-by-name", self.service_name
        ).split()
        return int(reply[1])

    def kill_primary(self) -> int:
        """SIGKILL the current primary (no goodbye to anyone); return its port."""
        port = self.primary_port()
        process = self.processes.pop(port)
        process.kill()
        process.wait(10)
        return port

    def wait_failed_over(self, old_primary: int, timeout: float = 20.0) -> None:
        """Wait until the Sentinel names a primary other than ``old_primary`` and it accepts
        writes."""
        _wait(
            lambda: (
                self.primary_port() != old_primary
                and "role:master" in command(self.primary_port(), "INFO", "replication")
            ),
            "the Sentinel to promote the replica",
            timeout,
        )

    def wait_healthy(self) -> None:
        """Both data servers run, the replica is in sync and the Sentinel sees it."""
        primary = self.primary_port()
        replica = next(port for port in self.ports if port != primary)

        def healthy() -> bool:
            link = "master_link_status:up" in command(replica, "INFO", "replication")
            known = "slave" in command(
                self.sentinel_port, "SENTINEL", "replicas", self.service_name
            )
            return link and known

        _wait(healthy, "the replica to sync and the Sentinel to see it")

    def restore(self) -> None:
        """After a failover test: bring the killed server back as a replica of the new
        primary, and empty the data."""
        primary = self.primary_port()
        for port in self.ports:
            if port not in self.processes:
                self._start_data(port, "--replicaof", "127.0.0.1", str(primary))
        command(primary, "FLUSHALL")
        self.wait_healthy()

    def stop(self) -> None:
        """Stop the Sentinel and both servers."""
        for process in self.processes.values():
            _stop(process)
        self.processes = {}


def _binary() -> str:
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed (make test installs it)")
    require(shutil.which("redis-cli") is not None, "redis-cli is not installed")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """A session-wide 3-primary Redis Cluster on loopback ports."""
    nodes = RedisClusterNodes(_binary(), tmp_path_factory.mktemp("redis-cluster"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def redis_cluster(redis_cluster_nodes: RedisClusterNodes) -> RedisClusterNodes:
    """The session Redis Cluster, every node empty."""
    redis_cluster_nodes.flush()
    return redis_cluster_nodes


@pytest.fixture(scope="session")
def redis_sentinel_group(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisSentinelGroup]:
    """A session-wide primary + replica + Sentinel on loopback ports."""
    group = RedisSentinelGroup(_binary(), tmp_path_factory.mktemp("redis-sentinel"))
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def redis_sentinel(redis_sentinel_group: RedisSentinelGroup) -> RedisSentinelGroup:
    """The session Sentinel group with both servers up, in sync, and empty."""
    redis_sentinel_group.restore()
    return redis_sentinel_group
