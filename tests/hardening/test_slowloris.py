"""Slowloris: hundreds of connections trickling header bytes are cut at the head deadline while a
normal client keeps being served. The server runs in its own process, as in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .wire import address, connect, read_responses

SERVER = Path(__file__).with_name("slowloris_server.py")
HEAD_DEADLINE = 1.0
ATTACKERS = 500
TICK = 0.25  # one header byte per attacker per tick, well inside the deadline
SAMPLES = 150


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The echo app with header_timeout=1 s in a subprocess."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(HEAD_DEADLINE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # the server prints its URL once it accepts
        assert line.startswith("http://"), f"server did not start (exit {proc.poll()})"
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def latencies(
    url: str, count: int, until: threading.Thread | None = None
) -> tuple[list[float], list[int]]:
    """``count`` GETs (or more, while ``until`` runs), each on a new connection.

    Returns the seconds each took and the statuses.
    """
    times: list[float] = []
    statuses: list[int] = []
    while len(times) < count or (until is not None and until.is_alive() and len(times) < 20_000):
        if until is not None:
            time.sleep(0.002)  # a steady, modest request rate over the whole attack
        start = time.perf_counter()
        with connect(url) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            (response,) = read_responses(sock, 1)
        times.append(time.perf_counter() - start)
        statuses.append(response.status)
    return times, statuses


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Trickler(threading.Thread):
    """Opens ``count`` connections and sends each one header byte per tick until it is closed."""

    def __init__(self, url: str, count: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.count = count
        self.opened: dict[socket.socket, float] = {}
        self.closed_after: list[float] = []
        self.answers: list[bytes] = []
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        for _ in range(self.count):
            sock = socket.create_connection(address(self.url), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
            sock.setblocking(False)
            self.opened[sock] = time.monotonic()
        self.ready.set()
        live = dict(self.opened)
        deadline = time.monotonic() + HEAD_DEADLINE + 10
        while live and not self.stop.is_set() and time.monotonic() < deadline:
            for sock in list(live):
                ended = False
                try:
                    answer = sock.recv(4096)
                    ended = True
                    if answer:
                        self.answers.append(answer)
                except BlockingIOError:
                    try:
                        sock.send(b"X")
                    except OSError:
                        ended = True
                except OSError:
                    ended = True
                if ended:
                    self.closed_after.append(time.monotonic() - live.pop(sock))
                    sock.close()
            self.stop.wait(TICK)
        for sock in live:
            sock.close()


@pytest.mark.slow
def test_slowloris_connections_are_cut_while_others_are_served(
    server_url: str, record_property: pytest.RecordProperty
) -> None:
    """500 trickling heads are closed near header_timeout; a normal client gets only 200s."""
    latencies(server_url, 20)  # warm up
    baseline, _ = latencies(server_url, SAMPLES)
    attack = Trickler(server_url, ATTACKERS)
    attack.start()
    assert attack.ready.wait(30)
    during, statuses = latencies(server_url, SAMPLES, until=attack)
    attack.join(HEAD_DEADLINE + 15)
    assert not attack.is_alive()
    figures = {
        "attackers": ATTACKERS,
        "closed": len(attack.closed_after),
        "closed_after_max_s": round(max(attack.closed_after), 3),
        "closed_after_min_s": round(min(attack.closed_after), 3),
        "answered_408": sum(a.startswith(b"HTTP/1.1 408 ") for a in attack.answers),
        "p99_baseline_ms": round(p99(baseline) * 1000, 2),
        "p99_during_ms": round(p99(during) * 1000, 2),
        "requests_during": len(during),
    }
    for name, value in figures.items():
        record_property(name, value)
    print("slowloris figures:", figures)
    assert set(statuses) == {200}
    assert len(attack.closed_after) == ATTACKERS
    assert figures["answered_408"] == ATTACKERS
    # Every trickler was cut at the deadline (+ scheduling slack on a loaded machine), no later.
    assert min(attack.closed_after) >= HEAD_DEADLINE * 0.9
    assert max(attack.closed_after) < HEAD_DEADLINE + 8
