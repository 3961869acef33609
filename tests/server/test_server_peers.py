"""The supervisor relays a worker's message to every other worker and waits for them all."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aeros.server import peers


class Fleet:
    """A relay and ``count`` worker channels on one event loop (the relay reads via add_reader)."""

    def __init__(self, count: int, timeout: float = 2.0) -> None:
        self.relay = peers.PeerRelay()
        self.workers: list[peers.WorkerPeers] = []
        self.received: list[list[peers.Message]] = []
        self._ends = []
        for slot in range(count):
            mine, theirs = peers.socket_pair()
            self.relay.add(slot, mine)
            self._ends.append(mine)
            worker = peers.WorkerPeers(theirs, timeout=timeout)
            inbox: list[peers.Message] = []

            async def handler(message: peers.Message, inbox: list[peers.Message] = inbox) -> None:
                inbox.append(message)

            worker.subscribe(handler)
            self.workers.append(worker)
            self.received.append(inbox)

    def start(self, *, running: set[int] | None = None) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        for slot, end in enumerate(self._ends):
            loop.add_reader(end.fileno(), self.relay.on_readable, slot)
        return [
            asyncio.ensure_future(worker.run())
            for slot, worker in enumerate(self.workers)
            if running is None or slot in running
        ]

    async def stop(self, tasks: list[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        for end in self._ends:
            if end.fileno() >= 0:
                loop.remove_reader(end.fileno())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.relay.close()
        for worker in self.workers:
            worker.close()


async def test_peers_publish_reaches_every_other_worker_before_it_returns() -> None:
    """publish() returns True once each other worker applied the message; not sent back."""
    fleet = Fleet(3)
    tasks = fleet.start()
    try:
        assert await fleet.workers[0].publish({"op": "clear"}) is True
        assert fleet.received == [[], [{"op": "clear"}], [{"op": "clear"}]]
    finally:
        await fleet.stop(tasks)


async def test_peers_parent_broadcast_reaches_every_worker() -> None:
    """A message from the supervisor's process reaches all workers, then done() is called."""
    fleet = Fleet(2)
    tasks = fleet.start()
    done = asyncio.Event()
    try:
        fleet.relay.broadcast({"op": "purge", "path": "/a"}, done.set)
        await asyncio.wait_for(done.wait(), 2)
        assert fleet.received == [[{"op": "purge", "path": "/a"}]] * 2
    finally:
        await fleet.stop(tasks)


async def test_peers_publish_gives_up_on_a_worker_that_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker that never reads (a blocked loop) costs the publisher the timeout, and a warning."""
    fleet = Fleet(2, timeout=0.2)
    tasks = fleet.start(running={0})
    try:
        with caplog.at_level(logging.WARNING, logger="aeros.server"):
            assert await fleet.workers[0].publish({"op": "clear"}) is False
        assert "clear reached not every worker within 0.2s" in caplog.text
    finally:
        await fleet.stop(tasks)


async def test_peers_worker_gone_counts_as_done() -> None:
    """When a worker exits, messages waiting for its acknowledgement complete without it."""
    fleet = Fleet(2, timeout=5)
    tasks = fleet.start(running={0})
    try:
        publish = asyncio.ensure_future(fleet.workers[0].publish({"op": "clear"}))
        await asyncio.sleep(0.05)
        assert not publish.done()
        asyncio.get_running_loop().remove_reader(fleet._ends[1].fileno())
        fleet.relay.remove(1)  # the supervisor learnt that worker 1 exited
        assert await asyncio.wait_for(publish, 2) is True
    finally:
        await fleet.stop(tasks)
