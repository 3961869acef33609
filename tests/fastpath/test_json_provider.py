"""app.json writes what Quart's provider writes, and raises where it raises (property tests)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from quart import Quart

from aeros import WebServer

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Color(enum.Enum):
    RED = 1
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 10


class Kind(enum.StrEnum):
    A = "a"
    B = "b"


@dataclasses.dataclass
class Point:
    x: Any
    y: Any


ours = WebServer(__name__, access_log=False)
theirs = Quart(__name__)

texts = st.text(st.characters(codec=None), max_size=6)  # any code point, lone surrogates too
floats = st.floats(allow_nan=True, allow_infinity=True)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | floats
    | texts
    | st.decimals(allow_nan=True, places=3)
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=st.just(datetime.UTC))
    | st.uuids()
    | st.sampled_from([*Color, *Level, *Kind])
    | texts.map(Markup)
)
keys = (
    texts | st.integers(-20, 20) | floats | st.booleans() | st.none() | st.sampled_from(["a", "b"])
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(texts, inner, max_size=4)
        | st.builds(Point, inner, inner)
    ),
    max_leaves=12,
)


def outcome(call: Any) -> tuple[str, Any]:
    try:
        result = call()
    except (TypeError, ValueError) as exc:
        return "raises", type(exc)
    assert isinstance(result, (bytes, str))
    return "ok", result


def plain_enums_to_values(value: Any) -> Any:
    """The documented difference: a plain Enum member is written as its value, not refused."""
    if isinstance(value, enum.Enum) and not isinstance(value, (int, str)):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_enums_to_values(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {key: plain_enums_to_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_enums_to_values(item) for item in value]
    return value


def has_small_exponent(value: Any) -> bool:
    """A float Quart spells with ``e-0N`` (orjson may write the same value as 0.0000N)."""
    found = False

    def visit(item: Any) -> None:
        nonlocal found
        if isinstance(item, float) and "e-" in repr(item):
            found = True
        elif isinstance(item, dict):
            for key, inner in item.items():
                visit(key)
                visit(inner)
        elif isinstance(item, (list, tuple)):
            for inner in item:
                visit(inner)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            visit(dataclasses.asdict(item))

    visit(value)
    return found


def assert_same(mine: tuple[str, Any], quarts: tuple[str, Any], value: Any, **dump: Any) -> None:
    assert mine[0] == quarts[0], (mine, quarts)
    if mine[0] == "raises":
        assert mine[1] is quarts[1]
        return
    if has_small_exponent(value):  # same document, floats spelt differently: compare re-dumped
        text = mine[1].decode() if isinstance(mine[1], bytes) else mine[1]
        mine = ("ok", json.dumps(json.loads(text), **dump))
        text = quarts[1].decode() if isinstance(quarts[1], bytes) else quarts[1]
        quarts = ("ok", json.dumps(json.loads(text), **dump))
    assert mine[1] == quarts[1]


@pytest.mark.parametrize("debug", [False, True], ids=["compact", "debug-indented"])
@PROPERTY
@given(value=values)
def test_json_response_body_equals_quarts(value: Any, debug: bool) -> None:
    """jsonify()'s body is Quart's byte for byte (or both raise the same error)."""
    ours.debug = theirs.debug = debug
    dump = {"indent": 2} if debug else {"separators": (",", ":")}
    mine = outcome(lambda: ours.json.response(value).response.data)
    quarts = outcome(lambda: theirs.json.response(value).response.data)
    if mine[0] == "ok" and quarts[0] == "raises":
        value = plain_enums_to_values(value)
        quarts = outcome(lambda: theirs.json.response(value).response.data)
    assert_same(mine, quarts, value, **dump)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="default-separators"),
        pytest.param({"separators": (",", ":")}, id="compact"),
        pytest.param({"indent": 2}, id="indent"),
        pytest.param({"sort_keys": False, "separators": (",", ":")}, id="unsorted"),
        pytest.param({"ensure_ascii": False, "separators": (",", ":")}, id="utf8"),
    ],
)
@PROPERTY
@given(value=values)
def test_json_dumps_equals_quarts(value: Any, kwargs: dict[str, Any]) -> None:
    """app.json.dumps(value, **kwargs) is Quart's string (or both raise the same error)."""
    mine = outcome(lambda: ours.json.dumps(value, **kwargs))
    quarts = outcome(lambda: theirs.json.dumps(value, **kwargs))
    if mine[0] == "ok" and quarts[0] == "raises":
        value = plain_enums_to_values(value)
        quarts = outcome(lambda: theirs.json.dumps(value, **kwargs))
    dump = {key: kwargs[key] for key in ("separators", "indent", "ensure_ascii") if key in kwargs}
    assert_same(mine, quarts, value, **dump)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({10: "a", 9: "b"}, '{"9":"b","10":"a"}', id="int-keys-sort-as-ints"),
        pytest.param({"x": math.nan}, '{"x":NaN}', id="nan-kept"),
        pytest.param([math.inf, -math.inf, None], "[Infinity,-Infinity,null]", id="infinities"),
        pytest.param({"é": "€😀"}, '{"\\u00e9":"\\u20ac\\ud83d\\ude00"}', id="ascii-escapes"),
        pytest.param({True: 1, False: 2}, '{"false":2,"true":1}', id="bool-keys"),
        pytest.param(Point(1, [Point(2, 3)]), '{"x":1,"y":[{"x":2,"y":3}]}', id="dataclass"),
    ],
)
def test_json_response_examples(value: Any, expected: str) -> None:
    """The cases orjson alone got wrong, each as Quart writes it."""
    ours.debug = False
    assert ours.json.response(value).response.data == expected.encode() + b"\n"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1: "a", "b": 2}, id="mixed-keys"),
        pytest.param({(1, 2): "a"}, id="tuple-key"),
        pytest.param({"t": datetime.time(1, 2)}, id="time"),
        pytest.param({"s": {1, 2}}, id="set"),
    ],
)
def test_json_raises_where_quart_raises(value: Any) -> None:
    """What Quart refuses with TypeError, aeros refuses with TypeError too."""
    with pytest.raises(TypeError):
        theirs.json.response(value)
    with pytest.raises(TypeError):
        ours.json.response(value)
    with pytest.raises(TypeError):
        ours.json.dumps(value)


def test_json_dumps_keeps_quarts_spacing_for_tojson() -> None:
    """app.json.dumps (Jinja's tojson) keeps json's ", " and ": " separators, as Quart."""
    assert ours.json.dumps({"b": [1, 2], "a": None}) == '{"a": null, "b": [1, 2]}'


documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 4, max_value=2**80)
    | st.integers(min_value=-(2**80), max_value=-(2**63) + 4)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.integers(min_value=10**17, max_value=10**21).map(str),  # long digit runs in strings
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


@PROPERTY
@given(value=documents, as_bytes=st.booleans())
def test_json_loads_equals_quarts(value: Any, as_bytes: bool) -> None:
    """``app.json.loads`` (and so ``request.get_json()``) reads what Quart reads: integers
    beyond 64 bits stay exact integers (orjson alone made them floats)."""
    text = json.dumps(value)
    data: str | bytes = text.encode() if as_bytes else text
    mine, quarts = ours.json.loads(data), theirs.json.loads(data)
    assert json.dumps(mine) == json.dumps(quarts) == text


async def test_request_json_keeps_a_big_integer() -> None:
    app = WebServer(__name__, access_log=False)

    @app.route("/echo", methods=["POST"])
    async def echo() -> str:
        from quart import request

        number = (await request.get_json())["n"]
        return f"{type(number).__name__} {number}"

    client = app.test_client()
    big = 123456789012345678901234567891
    response = await client.post(
        "/echo", data=f'{{"n": {big}}}'.encode(), headers={"Content-Type": "application/json"}
    )
    assert await response.get_data(as_text=True) == f"int {big}"


async def test_json_response_is_the_apps_own_response_class() -> None:
    """jsonify builds LeanResponse by position only when it is the app's response class; an
    app's own class gets the body and the JSON mimetype by name, as Quart gives them."""
    from quart import Response

    from aeros.fastpath.response import LeanResponse

    class Mine(Response):
        def __init__(self, response: Any = None, *rest: Any, mimetype: Any = None) -> None:
            super().__init__(response, *rest, mimetype=mimetype)
            self.headers["X-Mine"] = "1"

    for response_class, mine in ((LeanResponse, False), (Mine, True)):
        app = WebServer(__name__, access_log=False)
        app.response_class = response_class

        @app.route("/")
        async def index() -> Any:
            return {"a": 1}

        response = await app.test_client().get("/")
        assert response.headers["Content-Type"] == "application/json"
        assert (response.headers.get("X-Mine") == "1") is mine
        assert await response.get_data() == b'{"a":1}\n'


@pytest.mark.parametrize("stock", [True, False], ids=["flasks-debug", "a-class-own-debug"])
def test_json_response_reads_debug_as_the_app_says_it(stock: bool) -> None:
    """The response's indentation follows the app's ``debug``: read from the config when it
    is Flask's property (after the provider was made too), else through the app's own."""

    class OwnDebug(WebServer):
        @property  # type: ignore[override]
        def debug(self) -> bool:
            return True  # whatever the config says

    app = (WebServer if stock else OwnDebug)(__name__, access_log=False)
    compact = b'{"a":1}\n'
    app.config["DEBUG"] = False
    assert app.json.response({"a": 1}).response.data == (compact if stock else b'{\n  "a": 1\n}\n')
    app.config["DEBUG"] = True  # what Flask's debug setter sets
    assert app.json.response({"a": 1}).response.data == b'{\n  "a": 1\n}\n'
    assert app.json.response(1, 2).response.data == b"[\n  1,\n  2\n]\n"  # several: a list
    app.config = app.make_config()  # a config of its own, DEBUG False: the new one is read
    assert app.json.response({"a": 1}).response.data == (compact if stock else b'{\n  "a": 1\n}\n')


def test_json_response_takes_a_providers_own_prepare_response_obj() -> None:
    """A provider class with its own ``_prepare_response_obj`` gets every call of it."""
    from aeros.fastpath.json import OrjsonProvider

    class Wrapping(OrjsonProvider):
        def _prepare_response_obj(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return {"wrapped": super()._prepare_response_obj(args, kwargs)}

    app = WebServer(__name__, access_log=False)
    app.json = Wrapping(app)
    assert app.json.response({"a": 1}).response.data == b'{"wrapped":{"a":1}}\n'
