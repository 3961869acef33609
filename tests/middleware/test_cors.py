"""CORS: policy validation at construction, preflights and simple requests on a real server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from quart import Response, jsonify

from aeros import CORS, ConfigurationError, WebServer
from aeros.middleware.cors import CORSMiddleware
from tests.support.asgi import drive
from tests.support.compression import scope, scripted, start_headers

LiveServer = Callable[[WebServer], AbstractContextManager[str]]
APP_ORIGIN = "https://app.example.com"


def serve(live_server: LiveServer, cors: CORS) -> AbstractContextManager[str]:
    app = WebServer(__name__, access_log=False, cors=cors)

    @app.route("/data", methods=["GET", "POST", "PUT"])
    async def data() -> Response:
        return jsonify({"ok": True})

    @app.route("/own")
    async def own() -> Response:
        response = jsonify({"own": True})
        response.headers["Access-Control-Allow-Origin"] = "https://own.example"
        return response

    return live_server(app)


@pytest.fixture
def listed(live_server: LiveServer) -> Iterator[str]:
    """A server allowing one origin, with credentials, one extra header, one exposed header."""
    cors = CORS(
        [APP_ORIGIN, "null"],
        methods=["GET", "POST", "PUT"],
        headers=["X-Token", "Content-Type"],
        expose_headers=["X-Total"],
        allow_credentials=True,
        max_age=120,
    )
    with serve(live_server, cors) as url:
        yield url


def preflight(url: str, origin: str, method: str = "PUT", headers: str | None = None) -> Any:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        request_headers["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=request_headers, timeout=10)


def test_cors_preflight_allowed(listed: str) -> None:
    """An allowed preflight is answered by the layer: 204 with every allow header."""
    response = preflight(listed + "/data", APP_ORIGIN, "PUT", "x-token, content-type")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET, POST, PUT"
    assert response.headers["access-control-allow-headers"] == "x-token, content-type"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-max-age"] == "120"
    assert "origin" in response.headers["vary"]
    assert response.content == b""


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        pytest.param("https://evil.example", "PUT", None, id="origin"),
        pytest.param("https://app.example.com.evil.example", "GET", None, id="origin-suffix"),
        pytest.param(APP_ORIGIN, "DELETE", None, id="method"),
        pytest.param(APP_ORIGIN, "PUT", "x-other", id="header"),
    ],
)
def test_cors_preflight_refused_without_allow_headers(
    listed: str, origin: str, method: str, headers: str | None
) -> None:
    """A refused preflight gets 403 and no Access-Control-Allow-* header at all."""
    response = preflight(listed + "/data", origin, method, headers)
    assert response.status_code == 403
    assert not [name for name in response.headers if name.startswith("access-control-allow")]
    assert "origin" in response.headers["vary"]


@pytest.mark.parametrize(
    ("credentials", "answer"),
    [
        pytest.param(False, "*", id="star"),
        # with credentials browsers read "*" as a method named "*": the method asked is echoed
        pytest.param(True, None, id="credentials-echo"),
    ],
)
def test_cors_any_method_allows_every_preflight(
    live_server: LiveServer, credentials: bool, answer: str | None
) -> None:
    """methods="*" allows any method a preflight asks for (it used to refuse them all)."""
    cors = CORS([APP_ORIGIN], methods="*", allow_credentials=credentials)
    with serve(live_server, cors) as url:
        for method in ("PUT", "DELETE", "PATCH", "GET", "PROPFIND"):
            response = preflight(url + "/data", APP_ORIGIN, method, "x-token")
            assert response.status_code == 204, (method, response.text)
            assert response.headers["access-control-allow-methods"] == (answer or method)
            assert response.headers["access-control-allow-origin"] == APP_ORIGIN
            assert response.headers["access-control-allow-headers"] == "x-token"
            assert ("access-control-allow-credentials" in response.headers) is credentials
        # still refused: another origin, and a method that is not a token
        assert preflight(url + "/data", "https://evil.example").status_code == 403
        refused = preflight(url + "/data", APP_ORIGIN, "GET /x")
        assert refused.status_code == 403
        assert "access-control-allow-methods" not in refused.headers


def test_cors_simple_request_allowed(listed: str) -> None:
    """An allowed origin gets its origin echoed, credentials, exposed headers, Vary: Origin."""
    response = httpx.get(listed + "/data", headers={"Origin": APP_ORIGIN}, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-expose-headers"] == "x-total"
    assert "origin" in response.headers["vary"].lower()


def test_cors_simple_request_other_origin_gets_nothing(listed: str) -> None:
    """Another origin gets the response without CORS headers (the browser blocks it)."""
    response = httpx.get(listed + "/data", headers={"Origin": "https://evil.example"}, timeout=10)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in response.headers["vary"].lower()


def test_cors_vary_origin_without_origin_header(listed: str) -> None:
    """A same-origin request still gets Vary: Origin, so caches keep answers apart."""
    response = httpx.get(listed + "/data", timeout=10)
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in response.headers["vary"].lower()


def test_cors_null_origin_only_when_listed(listed: str, live_server: LiveServer) -> None:
    """The 'null' origin is allowed only when listed, never by '*' or a regex."""
    listed_response = httpx.get(listed + "/data", headers={"Origin": "null"}, timeout=10)
    assert listed_response.headers["access-control-allow-origin"] == "null"
    for cors in (CORS("*"), CORS(re.compile(r".*"))):
        with serve(live_server, cors) as url:
            response = httpx.get(url + "/data", headers={"Origin": "null"}, timeout=10)
            assert "access-control-allow-origin" not in response.headers


def test_cors_wildcard_origin(live_server: LiveServer) -> None:
    """'*' answers '*' and needs no Vary: the answer does not depend on the origin."""
    with serve(live_server, CORS("*")) as url:
        response = httpx.get(url + "/data", headers={"Origin": "https://x.example"}, timeout=10)
        assert response.headers["access-control-allow-origin"] == "*"
        assert "origin" not in response.headers.get("vary", "").lower()
        pre = preflight(url + "/data", "https://x.example", "POST", "X-Anything")
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "*"
        assert pre.headers["access-control-allow-headers"] == "x-anything"


def test_cors_regex_origin(live_server: LiveServer) -> None:
    """A compiled regex must match the whole origin."""
    cors = CORS(re.compile(r"https://[a-z]+\.example\.com"), allow_credentials=True)
    with serve(live_server, cors) as url:
        ok = httpx.get(url + "/data", headers={"Origin": "https://a.example.com"}, timeout=10)
        bad = httpx.get(
            url + "/data", headers={"Origin": "https://a.example.com.evil.io"}, timeout=10
        )
    assert ok.headers["access-control-allow-origin"] == "https://a.example.com"
    assert "access-control-allow-origin" not in bad.headers


def test_cors_view_header_wins(listed: str) -> None:
    """A view that answers CORS itself keeps its own Access-Control-Allow-Origin."""
    response = httpx.get(listed + "/own", headers={"Origin": APP_ORIGIN}, timeout=10)
    assert response.headers.get_list("access-control-allow-origin") == ["https://own.example"]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        pytest.param(lambda: CORS("*", allow_credentials=True), "list the trusted", id="star+cred"),
        pytest.param(lambda: CORS(["*"], allow_credentials=True), "list the trusted", id="list"),
        pytest.param(lambda: CORS("https://a.example/"), "no path", id="trailing-slash"),
        pytest.param(lambda: CORS("a.example"), "scheme://host", id="no-scheme"),
        pytest.param(lambda: CORS(methods=["GET\r\nX: y"]), "tokens", id="crlf-method"),
        pytest.param(lambda: CORS(headers=["X Bad"]), "tokens", id="bad-header"),
        pytest.param(lambda: CORS(max_age=-1), ">= 0", id="max-age"),
        pytest.param(lambda: CORS(allow_credentials="yes"), "True or False", id="credentials"),
        pytest.param(
            lambda: CORS([APP_ORIGIN], expose_headers="*", allow_credentials=True),
            "literally",
            id="expose-star+cred",
        ),
    ],
)
def test_cors_config_refused_at_construction(factory: Any, message: str) -> None:
    """Unsafe or malformed CORS settings fail when built, not per request."""
    with pytest.raises(ConfigurationError, match=message):
        factory()


def test_cors_webserver_refuses_non_policy() -> None:
    """WebServer(cors=...) takes a CORS policy only."""
    with pytest.raises(ConfigurationError, match="CORS"):
        WebServer(__name__, cors={"origins": "*"})  # type: ignore[arg-type]


async def test_cors_layer_precomputes_and_ignores_non_http() -> None:
    """Header bytes are built once; lifespan/websocket scopes pass straight through."""
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    layer = CORSMiddleware(inner, CORS([APP_ORIGIN], expose_headers=["X-A"]))
    assert (b"access-control-expose-headers", b"x-a") in layer.simple_headers
    await layer({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    sent = await drive(
        CORSMiddleware(scripted(200, [(b"vary", b"Accept-Encoding")], [b"x"]), CORS([APP_ORIGIN])),
        scope("GET", [(b"origin", APP_ORIGIN.encode())]),
    )
    assert start_headers(sent)[b"vary"] == b"Accept-Encoding, origin"


async def test_cors_layer_reads_headers_given_as_an_iterator_once() -> None:
    """ASGI lets ``headers`` be any iterable: given as a generator (a user middleware's), the
    app's fields, the CORS fields and ``Vary`` all reach the client."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        fields = [(b"content-type", b"text/plain"), (b"x-own", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": iter(fields)})
        await send({"type": "http.response.body", "body": b"x", "more_body": False})

    sent = await drive(
        CORSMiddleware(inner, CORS([APP_ORIGIN])), scope("GET", [(b"origin", APP_ORIGIN.encode())])
    )
    headers = start_headers(sent)
    assert headers[b"content-type"] == b"text/plain"
    assert headers[b"x-own"] == b"1"
    assert headers[b"access-control-allow-origin"] == APP_ORIGIN.encode()
    assert headers[b"vary"] == b"origin"
