"""LeanResponse builds what Quart's Response builds, attribute for attribute."""

from __future__ import annotations

from typing import Any

import pytest
from quart.wrappers.response import Response

from aeros import WebServer, jsonify
from aeros.fastpath.response import LeanResponse


def _state(response: Any) -> dict[str, Any]:
    state = {k: v for k, v in vars(response).items() if k not in ("headers", "response")}
    state["headers"] = list(response.headers.items())
    state["headers_attributes"] = sorted(vars(response.headers))
    state["status"] = response.status
    state["status_code"] = response.status_code
    body = response.response
    # a DataBody's every attribute (data, begin and end); another body's data, if any
    shown = vars(body) if type(body).__name__ == "DataBody" else getattr(body, "data", None)
    state["body"] = (type(body).__name__, shown)
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
@pytest.mark.parametrize("bare_body", [True, False], ids=["body-set-in-place", "body-made"])
def test_lean_response_equals_quarts(
    args: tuple[Any, ...], kwargs: dict[str, Any], bare_body: bool, monkeypatch: Any
) -> None:
    """Headers, status, timeout and body are what Quart's constructor sets, whether the
    DataBody's attributes are set in place (Quart's DataBody) or it is made (any other)."""
    from aeros.fastpath import response as response_module

    assert response_module._BARE_BODY  # the DataBody of every supported Quart
    monkeypatch.setattr(response_module, "_BARE_BODY", bare_body)
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


@pytest.mark.parametrize(
    "result",
    [
        pytest.param((b"hi", 201, {"content-type": "text/plain; charset=utf-8"}), id="bytes"),
        pytest.param(("hi", 200, {"content-type": "text/csv"}), id="str-content-type-alone"),
        pytest.param(("hi", 200, {"content-type": 5}), id="content-type-not-str"),
        pytest.param(("hi", 200, {"Content-Type": "text/csv"}), id="content-type-capitalized"),
        pytest.param(("h\u00e9", 404, {"X-A": "1", "Content-Type": "text/csv"}), id="str"),
        pytest.param((b"x", 200, {}), id="no-headers"),
        pytest.param((b"x", 200, {"X-Multi": ["a", "b"]}), id="list-value"),
    ],
)
async def test_quick_response_equals_quarts_make_response(result: Any) -> None:
    """The (body, status, headers) shortcut builds what Quart's make_response builds."""
    from quart import Quart

    from aeros.fastpath.dispatch import _quick_response

    app = WebServer(__name__, access_log=False)
    quick = _quick_response(app, result)
    assert quick is not None
    async with app.app_context():
        quarts = await Quart.make_response(app, result)
    assert _state(quick) == _state(quarts)


async def test_quick_response_refuses_a_split_content_type_as_quart_does() -> None:
    """A content type holding CR or LF is refused by werkzeug, through either path."""
    from quart import Quart

    from aeros.fastpath.dispatch import _quick_response

    app = WebServer(__name__, access_log=False)
    for value in ("text/plain\r\nX-Evil: 1", "text/plain\nX-Evil: 1"):
        result = ("hi", 200, {"content-type": value})
        with pytest.raises(ValueError, match="newline") as quick:
            _quick_response(app, result)
        async with app.app_context():
            with pytest.raises(ValueError, match="newline") as quarts:
                await Quart.make_response(app, result)
        assert str(quick.value) == str(quarts.value)


async def test_quick_response_leaves_other_shapes_and_overrides_to_quart() -> None:
    """Other return shapes, and an app overriding make_response, go through make_response."""
    from aeros.fastpath.dispatch import _quick_response

    app = WebServer(__name__, access_log=False)
    for result in ((b"x", {"X-A": "1"}), "text", {"a": 1}, (b"x", "201 MADE", {})):
        assert _quick_response(app, result) is None

    class Custom(WebServer):
        async def make_response(self, result: Any) -> Any:
            response = await super().make_response(result)
            response.headers["X-Custom"] = "1"
            return response

    custom = Custom(__name__, access_log=False)

    @custom.route("/")
    async def index() -> Any:
        return b"x", 200, {}

    @custom.route("/json")
    async def json_view() -> Any:
        return jsonify(a=1)  # a LeanResponse: the override still sees it

    assert _quick_response(custom, (b"x", 200, {})) is None
    for path in ("/", "/json"):
        response = await custom.test_client().get(path)
        assert response.headers["X-Custom"] == "1"


def test_encoded_headers_equal_quarts_and_stay_bounded() -> None:
    """The connection's header encoding equals Quart's; its memo never grows past its bound."""
    from quart.utils import encode_headers
    from werkzeug.datastructures import Headers

    from aeros.fastpath import response

    for i in range(response._ENCODED_MAX + 10):
        headers = Headers([("Content-Type", "text/plain"), ("X-Id", f"\u00e9{i}")])
        assert response.encode_header_pairs(headers) == encode_headers(headers)
        assert len(response._ENCODED) <= response._ENCODED_MAX
    odd = Headers()
    odd._list = [["X-List", "1"]]  # not hashable: Quart's conversion
    assert response.encode_header_pairs(odd) == [(b"x-list", b"1")]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"content-type": "text/plain; charset=utf-8"}, id="replace-lower"),
        pytest.param({"Content-Length": "9", "X-A": "1"}, id="replace-and-add"),
        pytest.param({"x-a": "1", "X-A": "2"}, id="same-name-twice"),
        pytest.param({}, id="empty"),
    ],
)
def test_plain_header_dicts_are_set_as_werkzeug_sets_them(headers: dict[str, str]) -> None:
    """A view's ``(body, status, {str: str})`` headers end as werkzeug's ``update`` leaves
    them: replaced in place, spelled as given, later duplicates dropped, new ones appended."""
    from werkzeug.datastructures import Headers

    from aeros.fastpath.dispatch import _set_plain_headers

    start = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "5"), ("x-a", "0")]
    theirs = Headers(list(start))
    theirs.update(headers)
    ours = list(start)
    assert _set_plain_headers(ours, headers)
    assert ours == list(theirs.items())


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Number": 5}, id="not-str"),
        pytest.param({"X-Bad": "a\r\nb"}, id="newline"),
        pytest.param({"X-List": ["a", "b"]}, id="list"),
    ],
)
def test_other_header_dicts_are_left_to_werkzeug(headers: dict[str, Any]) -> None:
    """Values werkzeug converts, refuses or repeats are not touched here (False, unchanged)."""
    from aeros.fastpath.dispatch import _set_plain_headers

    items = [("Content-Type", "text/html; charset=utf-8")]
    assert not _set_plain_headers(items, headers)
    assert items == [("Content-Type", "text/html; charset=utf-8")]
