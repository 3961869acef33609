"""LeanResponse builds what Quart's Response builds, attribute for attribute."""

from __future__ import annotations

from typing import Any

import pytest
from quart.wrappers.response import Response

from aeros import WebServer
from aeros.fastpath.response import LeanResponse


def _state(response: Any) -> dict[str, Any]:
    state = {k: v for k, v in vars(response).items() if k not in ("headers", "response")}
    state["headers"] = list(response.headers.items())
    state["status"] = response.status
    state["status_code"] = response.status_code
    body = response.response
    state["body"] = (type(body).__name__, getattr(body, "data", None))
    return state


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param((b"hi",), {}, id="bytes"),
        pytest.param(("h\u00e9",), {}, id="str"),
        pytest.param((b"{}\n",), {"mimetype": "application/json"}, id="json"),
        pytest.param((b"x",), {"status": 201}, id="status"),
        pytest.param((b"x",), {"status": 299}, id="unknown-status"),
        pytest.param((b"x",), {"mimetype": "text/plain"}, id="text-charset"),
        pytest.param((b"x",), {"mimetype": "image/png"}, id="binary-no-charset"),
        pytest.param((b"",), {}, id="empty"),
        pytest.param((b"x",), {"headers": {"X-A": "1"}}, id="headers-quart-path"),
        pytest.param((b"x",), {"content_type": "text/csv"}, id="content-type-quart-path"),
        pytest.param((None,), {}, id="none-quart-path"),
        pytest.param((["a", "b"],), {}, id="iterable-quart-path"),
    ],
)
def test_lean_response_equals_quarts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Headers, status, timeout and body are what Quart's constructor sets."""
    for _ in range(2):  # the second time from the remembered content type and status
        lean, quart = LeanResponse(*args, **kwargs), Response(*args, **kwargs)
        assert _state(lean) == _state(quart)
        assert set(vars(lean)) == set(vars(quart))


def test_lean_response_builds_headers_without_werkzeug_setitem(monkeypatch) -> None:
    """The common response skips Headers.__setitem__ (werkzeug's one-by-one validation)."""
    from werkzeug.datastructures import Headers

    LeanResponse(b"warm", mimetype="application/json")
    calls = []
    original = Headers.__setitem__

    def counting(self: Headers, key: Any, value: Any) -> None:
        calls.append(key)
        original(self, key, value)

    monkeypatch.setattr(Headers, "__setitem__", counting)
    response = LeanResponse(b"{}", mimetype="application/json")
    assert calls == []
    assert response.headers["Content-Length"] == "2"


def test_lean_response_still_rejects_a_bad_mimetype() -> None:
    """A mimetype with a newline raises as in werkzeug, and is never remembered."""
    for _ in range(2):
        with pytest.raises(ValueError, match="newline"):
            LeanResponse(b"x", mimetype="text/plain\nX-Evil: 1")


async def test_webserver_uses_lean_response_and_headers_stay_mutable() -> None:
    """WebServer responses are LeanResponse; views and hooks can still change headers."""
    app = WebServer(__name__, access_log=False)

    @app.route("/")
    async def index() -> Any:
        return b"body", 202, {"content-type": "text/plain; charset=utf-8", "X-Mine": "1"}

    @app.after_request
    async def stamp(response: Response) -> Response:
        response.headers["X-After"] = "yes"
        return response

    response = await app.test_client().get("/")
    assert isinstance(app.response_class(b""), LeanResponse)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Mine"] == "1"
    assert response.headers["X-After"] == "yes"
    assert response.headers["Content-Length"] == "4"
    assert await response.get_data() == b"body"
