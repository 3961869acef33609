"""Server knobs reach uvicorn and do what their names say, checked on the wire."""

from __future__ import annotations

import asyncio
import errno
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from quart import request

from aeros import ConfigurationError, WebServer
from aeros.server.config import ServerConfig
from tests.support.net import make_certificate, require


def test_server_max_concurrent_requests_answers_503(live_server) -> None:
    """max_concurrent_requests=1: a second request while one is in flight gets 503, then 200."""
    app = WebServer(__name__, access_log=False, max_concurrent_requests=1)
    entered = threading.Event()

    @app.route("/slow")
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(0.5)
        return "slow"

    @app.route("/")
    async def home() -> str:
        return "ok"

    with live_server(app) as url, httpx.Client() as idle:
        assert idle.get(url).status_code == 200  # an idle keep-alive connection uses no slot
        results: list[httpx.Response] = []
        first = threading.Thread(target=lambda: results.append(httpx.get(url + "/slow")))
        first.start()
        assert entered.wait(5)
        refused = httpx.get(url + "/slow")
        first.join(5)
        after = httpx.get(url)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert results[0].status_code == 200
    assert after.status_code == 200


def _request(path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"ok"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_server_keep_alive_timeout_closes_idle_connections(live_server) -> None:
    """keep_alive_timeout=0.5 (a float): reused within it, closed once idle past it."""
    app = WebServer(__name__, access_log=False, keep_alive_timeout=0.5)

    @app.route("/")
    async def home() -> str:
        return "ok"

    with live_server(app) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(_request())
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(0.1)  # idle, but within the timeout: the connection is still usable
            sock.sendall(_request())
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            idle_since = time.monotonic()
            assert sock.recv(1) == b""  # the server closes it...
            idle_for = time.monotonic() - idle_since
    assert 0.3 < idle_for < 3  # ...after about 0.5 s, not the default 5 s


def test_server_backlog_reaches_the_listening_socket() -> None:
    """backlog=17 is the listen queue length the kernel reports for the serving socket."""
    ss = shutil.which("ss")
    require(ss is not None, "ss (iproute2) is not installed")
    app = WebServer(__name__, access_log=False, backlog=17)
    with app.serve_in_thread() as url:
        port = urlsplit(url).port
        listing = subprocess.run(
            [str(ss), "-ltnH", f"sport = :{port}"], check=True, capture_output=True, text=True
        ).stdout.split()
    assert listing[0] == "LISTEN"
    assert listing[2] == "17"  # Send-Q of a listening socket is its backlog


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certfile, keyfile)."""
    return make_certificate(tmp_path)


def test_server_serves_https(live_server, certificate: tuple[str, str]) -> None:
    """ssl_certfile/ssl_keyfile serve HTTPS that verifies against the certificate."""
    cert, key = certificate
    app = WebServer(__name__, access_log=False, ssl_certfile=cert, ssl_keyfile=key)

    @app.route("/")
    async def home() -> str:
        return request.scheme

    with live_server(app) as url:
        assert url.startswith("https://")
        context = ssl.create_default_context(cafile=cert)
        response = httpx.get(url, verify=context)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url.replace("https://", "http://"))  # plain HTTP gets no answer
    assert response.status_code == 200
    assert response.text == "https"


def test_server_refuses_unloadable_certificate(tmp_path: Path) -> None:
    """A certificate/key pair that cannot be loaded fails when the app is built, both named."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    with pytest.raises(
        ConfigurationError, match=r"WebServer\(ssl_certfile=.*, ssl_keyfile=.*\): cannot load"
    ):
        WebServer(__name__, access_log=False, ssl_certfile=str(cert), ssl_keyfile=str(key))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"proxy_headers": True}, "203.0.113.7", id="trusted-peer"),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.1"},
            "127.0.0.1",
            id="untrusted-peer",
        ),
        pytest.param({"proxy_headers": False}, "127.0.0.1", id="off"),
    ],
)
def test_server_proxy_headers_only_from_allowed_peers(live_server, options, expected) -> None:
    """X-Forwarded-For sets remote_addr only with proxy_headers and from a trusted peer."""
    app = WebServer(__name__, access_log=False, **options)

    @app.route("/")
    async def home() -> str:
        return f"{request.remote_addr} {request.scheme}"

    with live_server(app) as url:
        response = httpx.get(
            url, headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        )
    addr, scheme = response.text.split()
    assert addr == expected
    assert scheme == ("https" if expected != "127.0.0.1" else "http")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(0, ConfigurationError, id="zero"),
        pytest.param(-1.0, ConfigurationError, id="negative"),
        pytest.param("30", ConfigurationError, id="string"),
    ],
)
def test_server_worker_healthcheck_timeout_is_validated(value, error) -> None:
    """worker_healthcheck_timeout must be a positive number; the message names it."""
    with pytest.raises(error, match="worker_healthcheck_timeout"):
        ServerConfig(worker_healthcheck_timeout=value)


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        pytest.param({"host": 5}, r"host=5\) must be a non-empty str", id="host-type"),
        pytest.param({"port": True}, r"port=True\) must be an integer from 0 to 65535", id="port"),
        pytest.param({"backlog": 1.5}, r"backlog=1.5\) must be an integer >= 1", id="backlog"),
        pytest.param({"keep_alive_timeout": "5"}, r"keep_alive_timeout='5'\)", id="keep-alive"),
        pytest.param({"graceful_timeout": float("inf")}, r"graceful_timeout=inf\)", id="inf"),
        pytest.param({"proxy_headers": "yes"}, r"proxy_headers='yes'\) must be True", id="bool"),
        pytest.param({"limits": {}}, r"limits=\{\}\) must be an aeros.Limits", id="limits"),
        pytest.param({"answer_headers": (("a", "b"),)}, r"\(bytes, bytes\) pairs", id="headers"),
    ],
)
def test_server_config_refuses_every_bad_argument_with_configuration_error(
    changes: dict[str, object], shown: str
) -> None:
    """A wrong type is a bad argument like a wrong value: ConfigurationError naming both."""
    with pytest.raises(ConfigurationError, match=shown):
        ServerConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        pytest.param({"max_requests": -1}, r"max_requests=-1\) must be an integer >= 0", id="neg"),
        pytest.param({"max_requests": "1000"}, r"max_requests='1000'\)", id="str"),
        pytest.param({"max_requests": True}, r"max_requests=True\)", id="bool"),
        pytest.param(
            {"max_requests": 10, "max_requests_jitter": -5},
            r"max_requests_jitter=-5\) must be an integer >= 0",
            id="jitter-neg",
        ),
        pytest.param(
            {"max_requests_jitter": 50},
            r"max_requests_jitter=50\) needs max_requests > 0",
            id="jitter-alone",
        ),
    ],
)
def test_server_max_requests_is_validated(changes: dict[str, object], shown: str) -> None:
    """max_requests / max_requests_jitter: integers >= 0, jitter only with a quota."""
    with pytest.raises(ConfigurationError, match=shown):
        ServerConfig(**changes)  # type: ignore[arg-type]


def test_server_max_requests_reaches_the_config_from_webserver() -> None:
    """WebServer(max_requests=..., max_requests_jitter=...) sets the server's fields."""
    from aeros import WebServer

    app = WebServer(__name__, max_requests=1000, max_requests_jitter=50)
    assert (app.server_config.max_requests, app.server_config.max_requests_jitter) == (1000, 50)
    with pytest.raises(ConfigurationError, match=r"max_requests=0\.5"):
        WebServer(__name__, max_requests=0.5)  # type: ignore[arg-type]


def test_worker_quota_adds_jitter_in_range() -> None:
    """A worker's quota is max_requests plus 0..jitter; 0 means no quota."""
    from aeros.server.worker import quota

    assert quota(0, 0) == 0
    assert quota(100, 0) == 100
    seen = {quota(100, 3) for _ in range(400)}
    assert seen == {100, 101, 102, 103}


def test_server_run_server_max_requests_is_validated() -> None:
    """run_server(max_requests=...) is checked like the constructor's, before serving."""
    from aeros import WebServer

    app = WebServer(__name__, access_log=False)
    with pytest.raises(ConfigurationError, match=r"max_requests=-3\)"):
        app.run_server(max_requests=-3)


@pytest.mark.parametrize(
    ("host", "advice"),
    [
        pytest.param("[::1]", "without brackets: use host='::1'", id="brackets"),
        pytest.param("[::1]:8000", "use host='::1', port=8000", id="brackets-port"),
        pytest.param("localhost:8000", "use host='localhost', port=8000", id="port"),
        pytest.param("http://127.0.0.1", "scheme: use host='127.0.0.1'", id="scheme"),
        pytest.param("127.0.0.1 ", "whitespace: use host='127.0.0.1'", id="whitespace"),
        pytest.param("::ffff:zz", "not an IPv6 address", id="bad-ipv6"),
        pytest.param("999.1.1.1", "not an IPv4 address", id="bad-ipv4"),
        pytest.param("my host", "whitespace", id="inner-space"),
        pytest.param("-x.example", "letters, digits, hyphens and dots", id="bad-name"),
    ],
)
def test_server_host_refuses_what_cannot_be_bound(host: str, advice: str) -> None:
    """A host with a scheme, port, brackets or whitespace fails at construction, saying what
    is allowed and what to write instead (it used to fail later, at bind, with gaierror)."""
    with pytest.raises(ConfigurationError) as caught:
        WebServer(__name__, host=host)
    message = str(caught.value)
    assert message.startswith(f"WebServer(host={host!r}) must be an IP address")
    assert "host name" in message
    assert advice in message


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "example.com", "fe80::1%lo"]
)
def test_server_host_accepts_addresses_and_names(host: str) -> None:
    """IPv4 and bare IPv6 addresses and host names are accepted as given."""
    assert WebServer(__name__, host=host).server_config.host == host


def test_server_host_is_checked_by_run_server_and_serve_in_thread() -> None:
    """A host given per run is checked like the constructor's, before anything binds."""
    app = WebServer(__name__, access_log=False)
    with pytest.raises(ConfigurationError, match=r"WebServer\(host='\[::1\]'\)"):
        app.run_server(host="[::1]")
    with (
        pytest.raises(ConfigurationError, match=r"serve_in_thread\(host='localhost:80'\)"),
        app.serve_in_thread(host="localhost:80"),
    ):
        pass


def test_server_serves_on_a_bare_ipv6_address() -> None:
    """host='::1' (no brackets) is what the server binds; the URL shows it bracketed."""
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        loopback = True
    except OSError:
        loopback = False
    require(socket.has_ipv6 and loopback, "no IPv6 loopback (::1) here")
    app = WebServer(__name__, host="::1", access_log=False)

    @app.route("/")
    async def home() -> str:
        return "ok"

    with app.serve_in_thread() as url:
        assert url.startswith("http://[::1]:")
        assert httpx.get(url).text == "ok"


def test_server_port_in_use_names_the_address() -> None:
    """A port already taken raises an OSError (EADDRINUSE, as callers expect) that names the
    host and port and says what to do, from serve_in_thread and run_server alike."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        app = WebServer(__name__, port=port, access_log=False)
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{port}.*choose another port") as caught:
            app.run_server()
        assert caught.value.errno == errno.EADDRINUSE
        with (
            pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{port}"),
            app.serve_in_thread(port=port),
        ):
            pass
    assert all(thread.name != "aeros-server" for thread in threading.enumerate())
