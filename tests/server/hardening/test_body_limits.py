"""One body limit, not two: ``Limits.max_body_size`` and Quart's ``MAX_CONTENT_LENGTH`` agree,
and the form limits are settable through ``Limits`` as well."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from quart import request

from aeros import Limits, WebServer
from aeros.errors import ConfigurationError
from aeros.server.config import body_limit_from_app_config

from .wire import connect, read_responses, read_until_close

MiB = 1024 * 1024
UPLOAD = 20_000_000  # 20 MB: over Quart's and aeros' default 16 MiB


def upload_app(**options: Any) -> WebServer:
    """A WebServer whose ``/upload`` reads the whole body and ``/form`` the form fields."""
    app = WebServer(__name__, access_log=False, compression=None, **options)

    @app.route("/upload", methods=["POST"])
    async def upload() -> str:
        return str(len(await request.get_data()))

    @app.route("/form", methods=["POST"])
    async def form() -> dict[str, int]:
        return {name: len(value) for name, value in (await request.form).items()}

    return app


def head_with_expect(length: int) -> bytes:
    return (
        b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def read_head(sock: socket.socket) -> bytes:
    """Read one response head (up to and including its blank line)."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def upload_with_expect(url: str, length: int) -> tuple[bytes, int, bytes]:
    """POST ``length`` bytes with ``Expect: 100-continue`` as a careful client does: the body
    goes only after ``100 Continue``. Returns the first head, the final status and its body."""
    with connect(url) as sock:
        sock.sendall(head_with_expect(length))
        first = read_head(sock)
        if not first.startswith(b"HTTP/1.1 100 "):
            final = read_until_close(sock)
            rest_status = int(first.split(b" ", 2)[1])
            return first, rest_status, final.raw
        block = b"x" * MiB
        left = length
        while left:
            sock.sendall(block[: min(left, len(block))])
            left -= min(left, len(block))
        (response,) = read_responses(sock, 1, timeout=30)
        return first, response.status, response.body


def test_raised_max_body_size_lets_a_20mb_upload_through() -> None:
    """Limits(max_body_size=32 MiB) raises Quart's limit too: a 20 MB upload is served."""
    app = upload_app(limits=Limits(max_body_size=32 * MiB))
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        first, status, body = upload_with_expect(url, UPLOAD)
    assert first.startswith(b"HTTP/1.1 100 Continue")
    assert (status, body) == (200, str(UPLOAD).encode())


def test_lowered_max_body_size_refuses_before_100_continue() -> None:
    """Limits(max_body_size=8 MiB): a 20 MB upload gets the server's 413 from its head alone."""
    app = upload_app(limits=Limits(max_body_size=8 * MiB))
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        first, status, _ = upload_with_expect(url, UPLOAD)
    assert status == 413
    assert first.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"text/plain" in first  # the server's answer, not Quart's HTML page


@pytest.mark.parametrize(
    ("config_value", "served"),
    [
        pytest.param(32 * MiB, True, id="config-raised-to-32MiB"),
        pytest.param(8 * MiB, False, id="config-lowered-to-8MiB"),
    ],
)
def test_max_content_length_in_app_config_is_the_server_limit(
    config_value: int, served: bool
) -> None:
    """app.config["MAX_CONTENT_LENGTH"] set after construction is what the server enforces."""
    app = upload_app()
    app.config["MAX_CONTENT_LENGTH"] = config_value
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        first, status, body = upload_with_expect(url, UPLOAD)
    if served:
        assert (status, body) == (200, str(UPLOAD).encode())
    else:
        assert first.startswith(b"HTTP/1.1 413 Content Too Large\r\n")  # no 100 Continue first


def test_limits_are_written_into_quarts_config() -> None:
    """WebServer copies the body and form limits of Limits into Quart's config keys."""
    app = WebServer(
        __name__,
        limits=Limits(max_body_size=3 * MiB, max_form_memory_size=123_456, max_form_parts=7),
    )
    assert app.config["MAX_CONTENT_LENGTH"] == 3 * MiB
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 123_456
    assert app.config["MAX_FORM_PARTS"] == 7
    defaults = WebServer(__name__).config
    assert (defaults["MAX_CONTENT_LENGTH"], defaults["MAX_FORM_MEMORY_SIZE"]) == (16 * MiB, 500_000)


def test_body_limit_from_app_config_rules() -> None:
    """None keeps the server's limit; a bad value is refused naming the config key."""
    limits = Limits(max_body_size=5)
    assert body_limit_from_app_config(limits, {"MAX_CONTENT_LENGTH": None}) is limits
    assert body_limit_from_app_config(limits, {"MAX_CONTENT_LENGTH": 9}).max_body_size == 9
    for bad in ("10", 0, True, 1.5):
        with pytest.raises(ConfigurationError, match=r'MAX_CONTENT_LENGTH"\]=' + repr(bad)):
            body_limit_from_app_config(limits, {"MAX_CONTENT_LENGTH": bad})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("max_form_memory_size", 0, id="form-memory-zero"),
        pytest.param("max_form_parts", "10", id="form-parts-str"),
    ],
)
def test_form_limits_are_validated(name: str, value: object) -> None:
    """The form limits are checked like the other limits, naming the argument and value."""
    with pytest.raises(ConfigurationError, match=rf"Limits\({name}={value!r}\)"):
        Limits(**{name: value})


@pytest.mark.parametrize(
    ("options", "status"),
    [
        pytest.param({}, 413, id="default-500kB-refuses-1MB-field"),
        pytest.param({"max_form_memory_size": 2_000_000}, 200, id="raised-accepts-1MB-field"),
    ],
)
def test_form_memory_limit_is_a_limits_knob(options: dict[str, int], status: int) -> None:
    """A 1 MB text form field: 413 under the default 500 kB, served once Limits raises it."""
    app = upload_app(limits=Limits(**options))
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        response = httpx.post(url + "/form", files={"field": (None, "v" * 1_000_000)}, timeout=10)
    assert response.status_code == status
    if status == 200:
        assert json.loads(response.text) == {"field": 1_000_000}


def test_app_error_handler_sees_quarts_413_but_not_the_servers() -> None:
    """@app.errorhandler(413) answers Quart's form-limit 413; the server's 413 is made before
    the app runs, so the handler never sees it (docs/security.md says so)."""
    app = upload_app(limits=Limits(max_body_size=MiB))
    handled: list[str] = []

    @app.errorhandler(413)
    async def too_large(error: Exception) -> tuple[str, int]:
        handled.append(request.path)
        return "custom 413", 413

    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        form = httpx.post(url + "/form", files={"field": (None, "v" * 600_000)}, timeout=10)
        first, status, _ = upload_with_expect(url, 2 * MiB)
    assert (form.status_code, form.text) == (413, "custom 413")
    assert status == 413
    assert first.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert handled == ["/form"]
