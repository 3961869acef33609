"""The rate-limit layer on a live server: 429s, fields, cache hits, routes, keys, the log."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from aeros import RateLimit, SimpleCache, WebServer, rate_limit
from aeros.response_cache.entry import decode_entry
from aeros.types import Scope
from tests.support.net import free_port
from tests.support.server import wait_until


def test_ratelimit_counts_cache_hits_like_misses_and_stores_no_fields(live_server) -> None:
    """Over the limit a cached route answers 429 though the entry is fresh; every allowed
    answer (hits included) carries this request's RateLimit fields, once; the entry none."""
    store = SimpleCache()
    app = WebServer(__name__, access_log=False, cache=store, rate_limit=RateLimit("3/minute"))
    calls = []

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> str:
        calls.append(1)
        return "fresh"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        responses = [client.get("/cached") for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert len(calls) == 1
    assert all("age" in r.headers for r in responses[1:3])
    for response, remaining in zip(responses, (2, 1, 0, 0, 0), strict=True):
        assert response.headers.get_list("ratelimit-policy") == ['"app-60s";q=3;w=60']
        (field,) = response.headers.get_list("ratelimit")
        assert field.startswith(f'"app-60s";r={remaining};t=')
        assert 0 < int(field.rsplit("t=", 1)[1]) <= 60
    refused = responses[3]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers.get_list("retry-after") == [refused.headers["retry-after"]]
    assert refused.headers["content-type"].startswith("text/plain")
    assert "limit of 3 per minute reached" in refused.text
    entries = [decode_entry(value) for _, value in store._entries.values()]
    assert len(entries) == 1
    assert entries[0] is not None
    assert not {n for n, _ in entries[0].headers} & {b"ratelimit", b"ratelimit-policy"}


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        pytest.param("application/json", True, id="json"),
        pytest.param("application/problem+json", True, id="problem-json"),
        pytest.param("text/html,application/xhtml+xml,*/*;q=0.8", False, id="browser"),
        pytest.param("application/json;q=0, text/plain", False, id="json-refused"),
        pytest.param(None, False, id="none"),
    ],
)
def test_ratelimit_429_body_follows_accept(live_server, accept: str | None, json: bool) -> None:
    """JSON for clients that ask for it (q > 0), text otherwise."""
    app = WebServer(__name__, access_log=False, rate_limit=RateLimit("1/minute"))

    @app.route("/")
    async def home() -> str:
        return "ok"

    headers = {"Accept": accept} if accept else {}
    with live_server(app) as url, httpx.Client(base_url=url, headers=headers) as client:
        client.get("/")
        refused = client.get("/")
    assert refused.status_code == 429
    if json:
        assert refused.headers["content-type"] == "application/json"
        body = refused.json()
        assert body["status"] == 429
        assert body["retry_after"] == int(refused.headers["retry-after"])
    else:
        assert refused.headers["content-type"] == "text/plain; charset=utf-8"


def test_ratelimit_routes_keys_several_limits_and_exemptions(live_server) -> None:
    """A route's own limits add to the app's; keys count separately; exempt routes skip the
    app-wide limit; a key function returning None leaves the request out."""

    def unless_internal(scope: Scope) -> str | None:
        return None if (b"x-internal", b"1") in scope["headers"] else "everyone"

    app = WebServer(__name__, access_log=False, rate_limit=RateLimit("6/minute"))

    @app.route("/login")
    @rate_limit("2/minute;3/hour")
    async def login() -> str:
        return "login"

    @app.route("/api")
    @rate_limit.exempt
    @rate_limit("2/minute", key="X-API-Key")
    async def api() -> str:
        return "api"

    @app.route("/shared")
    @rate_limit.exempt
    @rate_limit("1/minute", key=unless_internal)
    async def shared() -> str:
        return "shared"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        logins = [client.get("/login").status_code for _ in range(3)]
        policy = client.get("/login").headers["ratelimit-policy"]
        a = [client.get("/api", headers={"X-API-Key": "a"}).status_code for _ in range(3)]
        b = [client.get("/api", headers={"X-API-Key": "b"}).status_code for _ in range(2)]
        shared = [client.get("/shared").status_code for _ in range(2)]
        internal = [client.get("/shared", headers={"X-Internal": "1"}) for _ in range(3)]
        home = [client.get("/nowhere").status_code for _ in range(3)]
    assert logins == [200, 200, 429]
    assert policy == '"app-60s";q=6;w=60, "login-60s";q=2;w=60, "login-3600s";q=3;w=3600'
    assert (a, b) == ([200, 200, 429], [200, 200])  # exempt: the app's 6/minute is spent
    assert shared == [200, 429]
    assert [r.status_code for r in internal] == [200, 200, 200]
    assert all("ratelimit" not in r.headers for r in internal)  # nothing counted them
    # the four /login requests used 4 of the app's 6 (the route's refusal counted too): 404s
    # count against the app-wide limit like any other request
    assert home == [404, 404, 429]


def _read_responses(sock: socket.socket, count: int, body_size: int) -> list[bytes]:
    """The heads of the next ``count`` responses, each followed by ``body_size`` body bytes;
    fewer when the server closes the connection or sends nothing for 10 s."""
    data = b""
    heads: list[bytes] = []
    deadline = time.monotonic() + 30
    sock.settimeout(10)
    while len(heads) < count and time.monotonic() < deadline:
        end = data.find(b"\r\n\r\n")
        if end >= 0 and len(data) >= end + 4 + body_size:
            heads.append(data[:end])
            data = data[end + 4 + body_size :]
            continue
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return heads


def test_ratelimit_fields_go_on_a_response_started_while_the_client_reads_late(
    live_server,
) -> None:
    """A pipelined request answered while the client has not read the response before it (the
    server's writes paused, so uvicorn's own send writes the head) gets its response and both
    fields, once each. The app-wide limit gives both as one item of ``HEADER_LINES``; that
    path once made them one invalid header, and the response was dropped."""
    app = WebServer(
        __name__, access_log=False, compression=None, rate_limit=RateLimit("100/minute")
    )
    body = b"x" * (8 << 20)  # more than the socket buffers hold: the writes pause

    @app.route("/big")
    async def big() -> bytes:
        return body

    with live_server(app) as url, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
        sock.connect((host, int(port)))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: test\r\n\r\n" * 2)
        time.sleep(1)  # the first body fills the buffers before the client reads
        heads = _read_responses(sock, 2, len(body))
    assert len(heads) == 2
    for head, remaining in zip(heads, (99, 98), strict=True):
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 200 OK"
        assert lines.count(b'ratelimit-policy: "app-60s";q=100;w=60') == 1
        (field,) = [line for line in lines if line.startswith(b"ratelimit:")]
        assert field.startswith(b'ratelimit: "app-60s";r=%d;t=' % remaining)


def test_ratelimit_refusal_has_an_access_log_line_with_limit_429(tmp_path: Path) -> None:
    """The access log shows limit=429 on refused requests, and nothing on allowed ones."""
    log = tmp_path / "access.log"
    app = WebServer(__name__, access_log_file=str(log), rate_limit=RateLimit("1/minute"))

    @app.route("/")
    async def home() -> str:
        return "ok"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        assert [httpx.get(url).status_code for _ in range(2)] == [200, 429]
        wait_until(lambda: len(log.read_text().splitlines()) == 2, 5, "two access lines")
    allowed, refused = log.read_text().splitlines()
    assert "limit=" not in allowed
    assert '"GET / HTTP/1.1" 429 ' in refused
    assert refused.endswith(" limit=429")


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
def test_ratelimit_window_frees_requests_once_it_has_passed(live_server, strategy: str) -> None:
    """Both strategies: the limit within a window; once the window has passed (fixed: the
    window ended, moving: the oldest hit aged out) requests pass again, as Retry-After said."""
    app = WebServer(__name__, access_log=False, rate_limit=RateLimit("2/second", strategy=strategy))

    @app.route("/")
    async def home() -> str:
        return "ok"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        first = [client.get("/") for _ in range(3)]
        time.sleep(1.1)
        later = client.get("/")
    assert [r.status_code for r in first] == [200, 200, 429]
    assert first[2].headers["retry-after"] == "1"
    assert later.status_code == 200
    assert later.headers["ratelimit"] == '"app-1s";r=1;t=1'


@pytest.mark.parametrize("fail_open", [True, False])
def test_ratelimit_storage_down_is_never_a_5xx(tmp_path: Path, fail_open: bool) -> None:
    """Redis unreachable: fail_open lets requests through without fields, fail_open=False
    refuses them with 429 and Retry-After; one warning, however many requests."""
    log = tmp_path / "server.log"
    app = WebServer(
        __name__,
        log_file=str(log),
        access_log=False,
        rate_limit=RateLimit(
            "1000/minute", storage=f"redis://127.0.0.1:{free_port()}/0", fail_open=fail_open
        ),
    )

    @app.route("/")
    async def home() -> str:
        return "ok"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url, httpx.Client() as client:
        responses = [client.get(url) for _ in range(20)]
    statuses = {r.status_code for r in responses}
    if fail_open:
        assert statuses == {200}
        assert all("ratelimit" not in r.headers for r in responses)
    else:
        assert statuses == {429}
        assert all(r.headers["retry-after"] == "1" for r in responses)
        assert "could not be checked" in responses[0].text
    assert log.read_text().count("rate limit storage") == 1


def test_ratelimit_layer_is_left_out_when_nothing_is_limited() -> None:
    """No RateLimit and no @rate_limit view: the stack has no rate-limit layer at all."""
    from aeros.ratelimit.layer import RateLimitMiddleware

    plain = WebServer(__name__, access_log=False)
    limited = WebServer(__name__, access_log=False)

    @limited.route("/")
    @rate_limit("1/second")
    async def home() -> str:
        return "ok"

    def layers(app: WebServer) -> list[type]:
        found, layer = [], app.build_stack()
        while layer is not None:
            found.append(type(layer))
            inner = getattr(layer, "app", None)  # a layer's inner app: its __call__, bound
            layer = getattr(inner, "__self__", inner)
        return found

    assert RateLimitMiddleware not in layers(plain)
    assert RateLimitMiddleware in layers(limited)


def test_ratelimit_and_hsts_layers_sit_where_design_says() -> None:
    """HSTS outermost but the request id (every answer gets it, the health probe's and the
    metrics scrape's included), the rate limit after the concurrency limit and before CORS,
    user middleware and the cache."""
    from aeros import CORS, SecurityHeaders
    from aeros.middleware.access_log import AccessLogMiddleware
    from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
    from aeros.middleware.cors import CORSMiddleware
    from aeros.middleware.headers import HeadersMiddleware
    from aeros.ratelimit.layer import rate_limit_layer

    app = WebServer(
        __name__,
        cache=SimpleCache(),
        cors=CORS(origins=["https://a.example"]),
        max_concurrent_requests=5,
        rate_limit=RateLimit("10/second"),
        security_headers=SecurityHeaders(),
        compression=None,
    )
    layers = app.layers()
    assert [getattr(layer.factory, "__name__", "") for layer in layers] == [
        HeadersMiddleware.__name__,  # HSTS, on https requests only
        AccessLogMiddleware.__name__,
        ConcurrencyLimitMiddleware.__name__,
        rate_limit_layer.__name__,
        CORSMiddleware.__name__,
        "wrap",  # the response cache
        HeadersMiddleware.__name__,  # the global headers, security preset included
    ]
    assert layers[0].options == {"https_only": True}


def test_ratelimit_decorator_on_a_blueprint_view(live_server) -> None:
    """@rate_limit needs no app: on a blueprint view, the app that serves it applies it."""
    from quart import Blueprint

    blog = Blueprint("blog", __name__)

    @blog.route("/post")
    @rate_limit("1/minute")
    async def post() -> str:
        return "post"

    app = WebServer(__name__, access_log=False)
    app.register_blueprint(blog)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        first, second = client.get("/post"), client.get("/post")
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["ratelimit-policy"] == '"blog.post-60s";q=1;w=60'


def test_ratelimit_views_added_after_the_first_request_get_their_own_limits(live_server) -> None:
    """With only an app-wide limit every request shares one plan and no route is matched;
    a ``@rate_limit`` or exempt view added while serving is still honoured at once."""
    app = WebServer(__name__, access_log=False, rate_limit=RateLimit("100/minute"))

    @app.route("/first")
    async def first() -> str:
        return "first"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        before = client.get("/first")
        assert before.headers.get_list("ratelimit-policy") == ['"app-60s";q=100;w=60']

        @app.route("/late")
        @rate_limit("1/minute")
        async def late() -> str:
            return "late"

        @app.route("/open")
        @rate_limit.exempt
        async def open_() -> str:
            return "open"

        late_answers = [client.get("/late") for _ in range(2)]
        opened = client.get("/open")
        after = client.get("/first")
    assert [r.status_code for r in late_answers] == [200, 429]
    assert late_answers[0].headers["ratelimit-policy"].count('"late-60s";q=1;w=60') == 1
    assert opened.status_code == 200
    assert "ratelimit" not in opened.headers
    assert after.headers.get_list("ratelimit-policy") == ['"app-60s";q=100;w=60']
