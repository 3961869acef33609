"""RateLimit and @rate_limit: what they accept, and bad arguments named in the error."""

from __future__ import annotations

from typing import Any

import pytest

from aeros import ConfigurationError, RateLimit, WebServer, rate_limit
from aeros.ratelimit.backend import storage_uri
from aeros.ratelimit.keys import client_address, compile_key


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: RateLimit("100/fortnight"),
            r"RateLimit\('100/fortnight'\) is not a rate limit",
            id="unit",
        ),
        pytest.param(lambda: RateLimit("lots"), r"'lots'\) is not a rate limit", id="text"),
        pytest.param(lambda: RateLimit(100), r"RateLimit\(100\) must be a limit", id="int"),
        pytest.param(lambda: RateLimit("1/minute;5/minute"), "same window", id="same-window-twice"),
        pytest.param(lambda: RateLimit("1/second", key=3), "key=3", id="key-type"),
        pytest.param(lambda: RateLimit("1/second", key="X Api"), "key='X Api'", id="key-header"),
        pytest.param(
            lambda: RateLimit("1/second", storage="http://x"), "storage='http://x'", id="storage"
        ),
        pytest.param(
            lambda: RateLimit("1/second", strategy="token-bucket"), "token-bucket", id="strategy"
        ),
        pytest.param(
            lambda: RateLimit("1/second", fail_open="no"), "fail_open='no'", id="fail-open"
        ),
        pytest.param(lambda: RateLimit("1/second", headers=1), "headers=1", id="headers"),
        pytest.param(lambda: RateLimit("1/second", prefix=""), "prefix=''", id="prefix"),
        pytest.param(
            lambda: RateLimit("1/second", socket_timeout=0), "socket_timeout=0", id="timeout"
        ),
        pytest.param(lambda: RateLimit("1/second", retry_after=-1), "retry_after=-1", id="retry"),
        pytest.param(lambda: rate_limit("ten/second"), "'ten/second'", id="decorator-limit"),
        pytest.param(lambda: rate_limit("1/second", key=["a"]), r"key=\['a'\]", id="decorator-key"),
        pytest.param(
            lambda: WebServer(__name__, rate_limit="100/minute"),
            r"rate_limit=.*RateLimit\(",
            id="webserver-str",
        ),
    ],
)
def test_ratelimit_bad_arguments_raise_naming_them(call, match: str) -> None:
    """Each bad argument fails at configuration with its name and value in the message."""
    with pytest.raises(ConfigurationError, match=match):
        call()


def test_ratelimit_parses_several_limits_and_lists() -> None:
    """';'-joined limits and lists of them are all parsed, in order."""
    limit = RateLimit(["10/second;1000/hour", "5 per minute"])
    assert [(i.amount, i.get_expiry()) for i in limit.rule.items] == [
        (10, 1),
        (1000, 3600),
        (5, 60),
    ]


@pytest.mark.parametrize(
    ("storage", "uri"),
    [
        pytest.param("memory://", "async+memory://", id="memory"),
        pytest.param("redis://127.0.0.1:6379/2", "async+redis://127.0.0.1:6379/2", id="redis"),
        pytest.param("rediss://h:6380", "async+rediss://h:6380", id="tls"),
        pytest.param("unix:///run/redis.sock", "async+redis+unix:///run/redis.sock", id="unix"),
        pytest.param("redis+cluster://a:1,b:2", "async+redis+cluster://a:1,b:2", id="cluster"),
        pytest.param(
            "redis+sentinel://a:1,b:2/main", "async+redis+sentinel://a:1,b:2/main", id="sentinel"
        ),
    ],
)
def test_ratelimit_storage_urls_map_to_limits_async_storages(storage: str, uri: str) -> None:
    """Every storage URL RateLimit accepts is one of limits' async URIs."""
    RateLimit("1/second", storage=storage)
    assert storage_uri(storage) == uri


def test_ratelimit_keys_address_header_function() -> None:
    """Default: the client address; a header: its value, else the address; a function: its
    result, None leaving the request out. Kinds never collide; long identities are hashed."""
    scope = {"client": ("192.0.2.1", 5), "headers": [(b"x-api-key", b"k1")]}
    bare = {"client": ("192.0.2.1", 5), "headers": []}
    assert client_address(scope) == "a:192.0.2.1"
    by_header = compile_key("t", "X-API-Key")
    assert (by_header(scope), by_header(bare)) == ("h:k1", "a:192.0.2.1")
    by_function = compile_key("t", lambda s: None if s["headers"] else "anon")
    assert (by_function(scope), by_function(bare)) == (None, "f:anon")
    long = compile_key("t", "X-API-Key")({"client": None, "headers": [(b"x-api-key", b"k" * 999)]})
    assert long is not None
    assert long.startswith("h:#")
    assert len(long) < 64


@pytest.mark.parametrize(
    ("storage", "kind", "client"),
    [
        pytest.param("memory://", "MemoryCounts", None, id="memory"),
        pytest.param("redis://127.0.0.1:1/0", "RedisStorage", "Redis", id="redis"),
        pytest.param("unix:///tmp/none.sock", "RedisStorage", "Redis", id="unix"),
        pytest.param(
            "redis+cluster://127.0.0.1:1,127.0.0.1:2",
            "RedisClusterStorage",
            "RedisCluster",
            id="cluster",
        ),
        pytest.param(
            "redis+sentinel://127.0.0.1:1/main", "RedisSentinelStorage", "Redis", id="sentinel"
        ),
    ],
)
async def test_ratelimit_storage_is_limits_async_storage_over_redis_py(
    storage: str, kind: str, client: str | None
) -> None:
    """Each Redis URL builds limits' async storage of its kind, talking through redis-py's
    asyncio clients (aeros' own dependency), not coredis; nothing connects before the first
    hit. memory:// gets aeros' own counters (aeros.ratelimit.memory)."""
    import redis.asyncio

    from aeros.ratelimit.backend import Backend

    built = Backend(storage, "fixed-window", "aeros-rl").storage()
    assert type(built).__name__ == kind
    if client is not None:
        bridge: Any = built.bridge  # type: ignore[attr-defined]
        assert type(bridge.storage).__name__ == client
        assert type(bridge.storage).__module__.startswith(redis.asyncio.__name__)
        assert bridge.key_prefix == "aeros-rl"
