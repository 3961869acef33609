"""The security-header preset: on every answer, HSTS only over HTTPS, overridable, checked."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import CORS, CSP, ConfigurationError, SecurityHeaders, SimpleCache, WebServer
from tests.server.hardening.wire import exchange
from tests.support.net import make_certificate

# What an observatory-style scan grades (Mozilla HTTP Observatory's header tests): the header
# must be present and its value must be one the scanner scores as passing.
OBSERVATORY = {
    "x-content-type-options": lambda v: v.lower() == "nosniff",
    "x-frame-options": lambda v: v.upper() in {"DENY", "SAMEORIGIN"},
    "referrer-policy": lambda v: (
        v.lower()
        in {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
    ),
    "content-security-policy": lambda v: (
        "frame-ancestors 'none'" in v
        and "object-src 'none'" in v
        and "default-src 'self'" in v
        and "unsafe-inline" not in v
        and "unsafe-eval" not in v
    ),
    "cross-origin-opener-policy": lambda v: v == "same-origin",
    "cross-origin-resource-policy": lambda v: v in {"same-origin", "same-site"},
    "permissions-policy": lambda v: "camera=()" in v and "geolocation=()" in v,
}


def grade(headers: httpx.Headers) -> list[str]:
    """The observatory checks a response fails (each header once, with a passing value)."""
    failed = [
        name
        for name, passes in OBSERVATORY.items()
        if len(headers.get_list(name)) != 1 or not passes(headers[name])
    ]
    return failed


def preset_app(**options: object) -> WebServer:
    app = WebServer(
        __name__,
        access_log=False,
        cache=SimpleCache(),
        cors=CORS(origins=["https://a.example"]),
        security_headers=SecurityHeaders(),
        **options,  # type: ignore[arg-type]
    )

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> dict[str, str]:
        return {"a": "b"}

    @app.route("/fail")
    async def fail() -> str:
        raise RuntimeError("boom")

    return app


def test_security_headers_preset_passes_an_observatory_scan_on_every_answer(live_server) -> None:
    """View, error, 404, cache hit, 304, CORS preflight (and its refusal): all graded A-worthy."""
    app = preset_app()
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        miss = client.get("/cached")
        hit = client.get("/cached")
        not_modified = client.get("/cached", headers={"If-None-Match": hit.headers["etag"]})
        missing = client.get("/nowhere")
        error = client.get("/fail")
        preflight = client.options(
            "/cached",
            headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
        )
        refused = client.options(
            "/cached",
            headers={"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
        )
    assert "age" in hit.headers
    assert not_modified.status_code == 304
    assert (missing.status_code, error.status_code) == (404, 500)
    assert (preflight.status_code, refused.status_code) == (204, 403)
    for response in (miss, hit, not_modified, missing, error, preflight, refused):
        assert grade(response.headers) == [], response
        assert "strict-transport-security" not in response.headers  # plain HTTP


def test_security_headers_on_the_servers_own_answers_and_the_503() -> None:
    """A malformed request's 400 (written by the server) and the concurrency limit's 503."""
    app = preset_app(max_concurrent_requests=1)
    entered, release = threading.Event(), threading.Event()

    @app.route("/hold")
    async def hold() -> str:
        entered.set()
        await asyncio.to_thread(release.wait, 10)
        return "held"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        (bad,) = exchange(url, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").responses
        holder = threading.Thread(target=httpx.get, args=(url + "/hold",), kwargs={"timeout": 10})
        holder.start()
        try:
            assert entered.wait(10)
            busy = httpx.get(url + "/cached")
        finally:
            release.set()
            holder.join(10)
    assert (bad.status, busy.status_code) == (400, 503)
    assert grade(httpx.Headers(list(bad.headers))) == []
    assert grade(busy.headers) == []


HSTS = "max-age=63072000; includeSubDomains"


def test_security_headers_hsts_over_tls_on_hits_and_the_servers_own_answers(
    tmp_path: Path,
) -> None:
    """Served over TLS: HSTS on views, cache hits and the server's own 400, exactly once."""
    cert, key = make_certificate(tmp_path)
    app = preset_app(ssl_certfile=cert, ssl_keyfile=key)
    context = ssl.create_default_context(cafile=cert)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        with httpx.Client(base_url=url, verify=context) as client:
            miss, hit = client.get("/cached"), client.get("/cached")
        port = int(url.rsplit(":", 1)[1])
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert "age" in hit.headers
    for response in (miss, hit):
        assert response.headers.get_list("strict-transport-security") == [HSTS]
        assert grade(response.headers) == []
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.lower().count(b"strict-transport-security: " + HSTS.lower().encode()) == 1


class _Crash:
    """A user layer that fails on ``/crash`` before any response: the server answers 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/crash":
            raise RuntimeError("the layer failed")
        await self.app(scope, receive, send)


def _probe_scrape_crash(tmp_path: Path | None) -> list[httpx.Response]:
    """The health probe, the metrics scrape and the server's own 500 of a preset app (over
    TLS when ``tmp_path`` is given, for its certificate)."""
    tls: dict[str, Any] = {}
    verify: Any = True
    if tmp_path is not None:
        cert, key = make_certificate(tmp_path)
        tls = {"ssl_certfile": cert, "ssl_keyfile": key}
        verify = ssl.create_default_context(cafile=cert)
    app = preset_app(health_path="/healthz", metrics=True, **tls)
    app.add_middleware(_Crash)
    with (
        app.serve_in_thread(host="127.0.0.1", port=0) as url,
        httpx.Client(base_url=url, verify=verify) as client,
    ):
        answers = [client.get("/healthz"), client.get("/metrics"), client.get("/crash")]
    assert [answer.status_code for answer in answers] == [200, 200, 500]
    return answers


def test_security_headers_on_probes_scrapes_and_the_servers_own_500() -> None:
    """The health probe and the metrics scrape (answered in front of the app) and the 500 the
    server writes for a failing layer pass the scan too."""
    for answer in _probe_scrape_crash(None):
        assert grade(answer.headers) == [], answer.request.url
        assert "strict-transport-security" not in answer.headers


def test_security_headers_hsts_on_probes_scrapes_and_the_servers_own_500(
    tmp_path: Path,
) -> None:
    """Over TLS the same three answers carry HSTS, exactly once."""
    for answer in _probe_scrape_crash(tmp_path):
        assert answer.headers.get_list("strict-transport-security") == [HSTS], answer.request.url
        assert grade(answer.headers) == [], answer.request.url


@pytest.mark.parametrize(
    ("trusted", "proto", "expected"),
    [
        pytest.param("127.0.0.1", "https", [HSTS], id="trusted-proxy-says-https"),
        pytest.param("127.0.0.1", "http", [], id="trusted-proxy-says-http"),
        pytest.param("10.9.8.7", "https", [], id="untrusted-peer-says-https"),
    ],
)
def test_security_headers_hsts_behind_a_proxy_only_when_trusted_and_https(
    live_server, trusted: str, proto: str, expected: list[str]
) -> None:
    """X-Forwarded-Proto: https from a trusted proxy gets HSTS, on a cache hit and on the
    server's own 500 too; from any other peer the header is ignored."""
    app = preset_app(proxy_headers=True, forwarded_allow_ips=trusted)
    app.add_middleware(_Crash)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        forwarded = {"X-Forwarded-Proto": proto, "X-Forwarded-For": "203.0.113.9"}
        miss = client.get("/cached", headers=forwarded)
        hit = client.get("/cached", headers=forwarded)
        crash = client.get("/crash", headers=forwarded)
    assert "age" in hit.headers
    assert crash.status_code == 500
    for response in (miss, hit, crash):
        assert response.headers.get_list("strict-transport-security") == expected


def test_security_headers_overridden_removed_and_global_headers_win(live_server) -> None:
    """A field set to None is not sent, a given value replaces the default, global_headers win
    over the preset and a view's own header over both."""
    app = WebServer(
        __name__,
        access_log=False,
        security_headers=SecurityHeaders(
            frame_options=None, referrer_policy="no-referrer", csp=CSP(img_src=["'self'", "data:"])
        ),
        global_headers={"Cross-Origin-Opener-Policy": "same-origin-allow-popups"},
    )

    @app.route("/")
    async def home() -> str:
        return "ok"

    @app.route("/own")
    async def own() -> tuple[str, dict[str, str]]:
        return "own", {"Referrer-Policy": "same-origin"}

    with live_server(app) as url:
        home_response, own_response = httpx.get(url + "/"), httpx.get(url + "/own")
    assert "x-frame-options" not in home_response.headers
    assert home_response.headers.get_list("referrer-policy") == ["no-referrer"]
    assert home_response.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    assert home_response.headers["content-security-policy"] == (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    assert own_response.headers.get_list("referrer-policy") == ["same-origin"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"script_src": ["'self'", "'unsafe-inline'"]}, "script_src", id="inline"),
        pytest.param({"default_src": ["'unsafe-inline'"]}, "default_src", id="inline-default"),
        pytest.param({"style_src": ["'unsafe-eval'"]}, "'unsafe-eval'", id="eval"),
        pytest.param({"img_src": "*"}, "img_src=...\\): '\\*'", id="wildcard"),
        pytest.param({"script_src": ["https:"]}, "'https:' lets any script run", id="scheme"),
        pytest.param({"script_src": ["'self' x.example"]}, "one source expression", id="space"),
        pytest.param({"connect_src": ["a;b"]}, "one source expression", id="semicolon"),
        pytest.param({"extra": {"bad name": "x"}}, "directive name", id="extra-name"),
        pytest.param({"report_to": "a b"}, "report_to", id="report-to"),
    ],
)
def test_csp_refuses_unsafe_or_malformed_sources(options: dict[str, object], match: str) -> None:
    """CSP(...) names the directive and the source it refuses."""
    with pytest.raises(ConfigurationError, match=match):
        CSP(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param(
            {"extra": {"script-src-elem": ["'unsafe-inline'"]}},
            "extra\\['script-src-elem'\\]=...\\): \"'unsafe-inline'\" lets any script run",
            id="elem-inline",
        ),
        pytest.param(
            {"extra": {"script-src-attr": ["'unsafe-inline'"]}}, "script-src-attr", id="attr-inline"
        ),
        pytest.param(
            {"script_src": ["'self'"], "extra": {"Script-Src-Elem": ["'self'", "https:", "data:"]}},
            "'https:' lets any script run",
            id="elem-scheme",
        ),
        pytest.param({"extra": {"script-src-elem": "data:"}}, "'data:'", id="elem-data"),
        pytest.param({"script_src": ["https://*"]}, "'https://\\*' lets", id="host-star"),
        pytest.param({"script_src": ["http://*:*/js/"]}, "'http://\\*:\\*/js/'", id="star-path"),
        pytest.param({"script_src": ["*:443"]}, "'\\*:443'", id="star-port"),
        pytest.param({"script_src": ["*.com"]}, "'\\*.com'", id="tld"),
        pytest.param({"default_src": ["'self'", "https://*"]}, "default_src", id="default"),
        pytest.param(
            {"extra": {"script-src-attr": ["'self'"], "script-src-elem": ["https://*.com"]}},
            "script-src-elem",
            id="elem-tld",
        ),
        # a directive given twice is enforced once (the first): each occurrence is checked
        pytest.param(
            {"script_src": ["'unsafe-inline'"], "extra": {"script-src": ["'self'"]}},
            "script_src",
            id="twice",
        ),
    ],
)
def test_csp_refuses_unsafe_sources_in_every_script_directive(
    options: dict[str, object], match: str
) -> None:
    """The unsafe-script rule holds for script-src-elem/-attr and scheme-wide host wildcards
    (they went through, unrefused, without allow_unsafe=True)."""
    with pytest.raises(ConfigurationError, match=match):
        CSP(**options)  # type: ignore[arg-type]
    assert CSP(**options, allow_unsafe=True).value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {"script_src": ["'self'", "*.example.com", "https://*.cdn.example"]}, id="sub"
        ),
        pytest.param({"extra": {"script-src-elem": ["'self'", "https://cdn.example"]}}, id="elem"),
        pytest.param({"extra": {"script-src-attr": ["'none'"]}}, id="attr"),
        # script-src given: default-src no longer decides which scripts run
        pytest.param({"default_src": ["https:"], "script_src": ["'self'"]}, id="default"),
        pytest.param({"img_src": ["https:", "data:", "https://*"]}, id="images"),
    ],
)
def test_csp_accepts_narrow_script_sources(options: dict[str, object]) -> None:
    """Named hosts, subdomain wildcards and wide sources outside script directives pass."""
    assert CSP(**options).value  # type: ignore[arg-type]


def test_csp_allow_unsafe_accepts_them() -> None:
    """allow_unsafe=True writes what was asked for."""
    csp = CSP(script_src=["'self'", "'unsafe-inline'", "'unsafe-eval'"], allow_unsafe=True)
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval'" in str(csp)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: SecurityHeaders(frame_options=""), "frame_options=''", id="empty"),
        pytest.param(lambda: SecurityHeaders(referrer_policy=1), "referrer_policy=1", id="type"),
        pytest.param(lambda: SecurityHeaders(hsts="includeSubDomains"), "max-age", id="hsts"),
        pytest.param(lambda: SecurityHeaders(csp="a\r\nb"), "CR, LF", id="crlf"),
        pytest.param(
            lambda: WebServer(__name__, security_headers={"x": "y"}),
            "security_headers=.*SecurityHeaders",
            id="not-a-preset",
        ),
    ],
)
def test_security_headers_bad_arguments_raise_naming_them(call, match: str) -> None:
    """Bad values fail when configured, naming the field and the value."""
    with pytest.raises(ConfigurationError, match=match):
        call()
