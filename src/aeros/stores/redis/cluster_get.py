"""The GETs of RedisCache hits on a Redis Cluster: pipelined to the primary of each key's slot.

Each primary gets one :class:`PipelinedGet` connection per event loop; the slot map is
redis-py's (``RedisCluster``). A GET that meets a slot move (a ``MOVED``/``ASK`` reply) or a
broken connection is retried once through redis-py, which follows the redirection, refreshes
its slot map and fails over like any other command: the next GETs go to the new owner.
"""

from __future__ import annotations

from typing import Any

import hiredis

from aeros.stores.redis.pipelined import PipelinedGet

__all__ = ["ClusterGet"]


class ClusterGet:
    """Pipelined GETs on a cluster, by slot owner.

    Args:
        cluster: this event loop's ``redis.asyncio.cluster.RedisCluster``.
        credentials: the nodes' ``password`` and ``username`` (None or absent: none).
        timeout: seconds for connecting and for each reply.
    """

    def __init__(self, cluster: Any, credentials: dict[str, Any], timeout: float) -> None:
        self.cluster = cluster
        self.credentials = credentials
        self.timeout = timeout
        self._nodes: dict[tuple[str, int], PipelinedGet] = {}
        self._ready = False

    async def get(self, name: bytes) -> bytes | None:
        """The value under Redis key ``name`` (None when absent).

        Raises:
            Whatever redis-py raises for a GET that also failed through it.
        """
        if not self._ready:
            await self.cluster.initialize()  # the slot map
            self._ready = True
        node = self.cluster.get_node_from_key(name)
        address = (node.host, node.port)
        connection = self._nodes.get(address)
        if connection is None:
            connection = self._nodes[address] = PipelinedGet(
                {"host": node.host, "port": node.port, **self.credentials}, self.timeout
            )
        try:
            return await connection.get(name)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith(("MOVED ", "ASK ")):
                raise
        except ConnectionError:
            connection.close()
            del self._nodes[address]
        value: bytes | None = await self.cluster.get(name)
        return value

    def close(self) -> None:
        """Close every node's connection (a later GET reconnects)."""
        for connection in self._nodes.values():
            connection.close()
        self._nodes.clear()
