"""The Lua scripts RedisCache runs, and the names of its Redis keys.

Every script touches only keys of one cluster slot: an entry and its group's index share a
hash tag (``{...}``), so one script writes both; a tag index lives in its own slot and is
written by a call of its own. On a single server or a Sentinel-guarded primary the same
scripts run, the slot split simply yields one group.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable

from aeros.stores.base import key_group

__all__ = ["INDEX", "TAKE_INDEX", "UNLOCK", "KeyNames", "by_slot"]

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})

# SET an entry (when ARGV[3] is '1', KEYS[1]) and add member ARGV[4] to every other key's
# index, in one round trip. An index is a sorted set scored by each member's expiry (ms), so
# members of expired entries are trimmed on every write (an index never outgrows its live
# entries) and the index itself expires with the latest of them (an entry without TTL keeps it).
INDEX = """
local ttl = tonumber(ARGV[2])
local clock = redis.call('TIME')  -- the server's clock: instances' clocks may disagree
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local score = '+inf'
if ttl > 0 then score = now + ttl end
local first = 1
if ARGV[3] == '1' then
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  first = 2
end
for i = first, #KEYS do
  redis.call('ZADD', KEYS[i], score, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. now)
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2]
  if last == 'inf' then
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('PEXPIREAT', KEYS[i], math.ceil(tonumber(last)))
  end
end
return 1
"""

# Read an index and drop it in one step: a member added concurrently lands either in the
# members returned (and is deleted) or in a fresh index (and survives with it).
TAKE_INDEX = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('UNLINK', KEYS[1])
return members
"""

# Release a lock only while our token holds it: after it expired and someone else took it,
# their lock is left alone.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _encode(text: str) -> bytes:
    # surrogatepass: any str is a valid key, even one decoded with surrogateescape
    return text.encode("utf-8", "surrogatepass")


def _slot_tag(text: str) -> str:
    """A short hash tag for ``text``: braces in keys never confuse Redis' slot rules."""
    return f"{{{zlib.crc32(_encode(text)):08x}}}"


class KeyNames:
    """The Redis names of one cache's keys, all under its ``prefix``.

    ``<prefix>k:{h}<key>`` an entry, ``<prefix>i:{h}<group>`` its group's index (``h`` the
    hash of the group, so both share a cluster slot), ``<prefix>t:{t}<tag>`` a tag's index,
    ``<prefix>l:{n}<name>`` a lock (``n`` the hash of the name: a nested cache's prefix such as
    ``<prefix>l:`` is never taken for one), ``<prefix>b:<channel>`` a broadcast channel.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # a name of one of the shapes above: what a SCAN under the prefix may delete
        self._ours = re.compile(re.escape(_encode(prefix)) + rb"[kitl]:\{[0-9a-f]{8}\}")

    def owns(self, name: bytes) -> bool:
        """Whether ``name`` is one of this cache's keys, not another program's key (or
        another cache's, under a longer prefix) that merely starts with ``prefix``."""
        return self._ours.match(name) is not None

    def entry(self, key: str) -> bytes:
        """The entry of ``key``."""
        return _encode(f"{self.prefix}k:{_slot_tag(key_group(key))}{key}")

    def group_index(self, group: str) -> bytes:
        """The index of every entry whose group is ``group``."""
        return _encode(f"{self.prefix}i:{_slot_tag(group)}{group}")

    def tag_index(self, tag: str) -> bytes:
        """The index of every entry tagged ``tag``."""
        return _encode(f"{self.prefix}t:{_slot_tag(tag)}{tag}")

    def lock(self, name: str) -> bytes:
        """Lock ``name``."""
        return _encode(f"{self.prefix}l:{_slot_tag(name)}{name}")

    def channel(self, channel: str) -> bytes:
        """Broadcast channel ``channel``."""
        return _encode(f"{self.prefix}b:{channel}")

    def entry_pattern(self, key_prefix: str) -> bytes:
        """A SCAN pattern for the entries whose key starts with ``key_prefix``."""
        head = f"{self.prefix}k:{{".translate(_GLOB_SPECIAL)
        return _encode(head + "????????}" + key_prefix.translate(_GLOB_SPECIAL) + "*")

    def group_pattern(self, group_prefix: str) -> bytes:
        """A SCAN pattern for the group indexes whose group starts with ``group_prefix``."""
        head = f"{self.prefix}i:{{".translate(_GLOB_SPECIAL)
        return _encode(head + "????????}" + group_prefix.translate(_GLOB_SPECIAL) + "*")

    def everything(self) -> bytes:
        """A SCAN pattern for every key of this cache (and any other key under the prefix:
        keep only the names :meth:`owns` accepts)."""
        return _encode(self.prefix.translate(_GLOB_SPECIAL) + "*")


def by_slot(names: Iterable[bytes], slot: Callable[[bytes], int]) -> list[list[bytes]]:
    """``names`` split into lists of one cluster slot each (``slot``: a name's slot)."""
    groups: defaultdict[int, list[bytes]] = defaultdict(list)
    for name in names:
        groups[slot(name)].append(name)
    return list(groups.values())
