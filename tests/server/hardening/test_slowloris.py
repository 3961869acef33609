"""Slowloris: hundreds of connections trickling header bytes are cut at the head deadline while a
normal client keeps being served. Server and attacker each run in their own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .subprocess_server import serve_script
from .wire import connect, read_responses

SERVER = Path(__file__).with_name("slowloris_server.py")
ATTACKER = Path(__file__).with_name("slowloris_attack.py")
HEAD_DEADLINE = 1.0
ATTACKERS = 500
TICK = 0.25  # one header byte per attacker per tick, well inside the deadline
SAMPLES = 150


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The echo app with header_timeout=1 s in a subprocess."""
    with serve_script(SERVER, str(HEAD_DEADLINE)) as (url, _):
        yield url


def latencies(
    url: str, count: int, until: subprocess.Popen[str] | None = None
) -> tuple[list[float], list[int]]:
    """``count`` GETs (or more, while ``until`` runs), each on a new connection.

    Returns the seconds each took and the statuses.
    """
    times: list[float] = []
    statuses: list[int] = []
    while len(times) < count or (
        until is not None and until.poll() is None and len(times) < 20_000
    ):
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


@pytest.mark.slow
def test_slowloris_connections_are_cut_while_others_are_served(
    server_url: str, record_property: pytest.RecordProperty
) -> None:
    """500 trickling heads are closed near header_timeout; a normal client gets only 200s."""
    latencies(server_url, 20)  # warm up
    baseline, _ = latencies(server_url, SAMPLES)
    attack = subprocess.Popen(
        [
            *(sys.executable, str(ATTACKER), server_url),
            *(str(ATTACKERS), str(TICK), str(HEAD_DEADLINE + 10)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert attack.stdout is not None
        assert attack.stdout.readline().strip() == "ready"
        during, statuses = latencies(server_url, SAMPLES, until=attack)
        out, _ = attack.communicate(timeout=HEAD_DEADLINE + 30)
    finally:
        if attack.poll() is None:
            attack.kill()
            attack.communicate()
    result = json.loads(out)
    closed_after: list[float] = result["closed_after"]
    figures = {
        "attackers": ATTACKERS,
        "closed": len(closed_after),
        "closed_after_max_s": round(max(closed_after), 3),
        "closed_after_min_s": round(min(closed_after), 3),
        "answered_408": sum(a.startswith("HTTP/1.1 408 ") for a in result["answers"]),
        "p99_baseline_ms": round(p99(baseline) * 1000, 2),
        "p99_during_ms": round(p99(during) * 1000, 2),
        "requests_during": len(during),
    }
    for name, value in figures.items():
        record_property(name, value)
    print("slowloris figures:", figures)
    assert set(statuses) == {200}
    assert len(closed_after) == ATTACKERS
    assert figures["answered_408"] == ATTACKERS
    # Every trickler was cut at the deadline (+ scheduling slack on a loaded machine), no later.
    assert min(closed_after) >= HEAD_DEADLINE * 0.9
    assert max(closed_after) < HEAD_DEADLINE + 8
