"""The URL map's match cache: the same answers as werkzeug, the second time from memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from aeros import WebServer
from aeros.fastpath.routing import MATCH_CACHE_SIZE, LeanMap


class _CountingMatcher:
    """Wraps werkzeug's matcher, counting how often a path really goes through it."""

    def __init__(self, matcher: Any) -> None:
        self.matcher = matcher
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.matcher, name)

    def match(self, *args: Any) -> Any:
        self.calls += 1
        return self.matcher.match(*args)


def _maps(**options: Any) -> tuple[Map, LeanMap]:
    rules = [
        Rule("/items/<int:item_id>", endpoint="item"),
        Rule("/files/<path:name>", endpoint="file"),
        Rule("/dir/", endpoint="dir"),
        Rule("/post", endpoint="post", methods=["POST"]),
        Rule("/", endpoint="index"),
    ]
    plain = Map([r.empty() for r in rules], **options)
    lean = LeanMap([r.empty() for r in rules], **options)
    return plain, lean


def _outcome(adapter: Any, path: str, method: str = "GET") -> Any:
    try:
        rule, values = adapter.match(path, method, return_rule=True)
    except (NotFound, MethodNotAllowed, RequestRedirect) as exc:
        return type(exc).__name__, getattr(exc, "new_url", None)
    return rule.endpoint, values


@pytest.mark.parametrize(
    ("path", "method"),
    [
        pytest.param("/items/42", "GET", id="int"),
        pytest.param("/items/x", "GET", id="int-404"),
        pytest.param("/files/a/b.txt", "GET", id="path"),
        pytest.param("/dir", "GET", id="strict-slash-redirect"),
        pytest.param("/dir/", "HEAD", id="head"),
        pytest.param("/post", "GET", id="405"),
        pytest.param("/", "GET", id="index"),
        pytest.param("/nope", "GET", id="404"),
    ],
)
def test_match_cache_answers_as_werkzeug_every_time(path: str, method: str) -> None:
    """First and repeated matches give werkzeug's result: values, 404, 405 and redirects."""
    plain, lean = _maps()
    expected = _outcome(plain.bind("example.com"), path, method)
    for _ in range(3):
        assert _outcome(lean.bind("example.com"), path, method) == expected


def test_match_cache_skips_the_matcher_for_a_repeated_path() -> None:
    """A path matched once is answered from the cache; failures and redirects are not cached."""
    _, lean = _maps()
    counting = _CountingMatcher(lean._matcher)
    lean._matcher = counting
    for _ in range(3):
        assert lean.bind("example.com").match("/items/7", return_rule=True)[1] == {"item_id": 7}
    assert counting.calls == 1
    for path in ("/dir", "/nope"):
        for _ in range(2):
            _outcome(lean.bind("example.com"), path)
    assert counting.calls == 5


def test_match_cache_keys_on_host_when_host_matching() -> None:
    """With host matching the host is part of the key: another host is matched on its own."""
    lean = LeanMap(
        [Rule("/", endpoint="a", host="a.example"), Rule("/", endpoint="b", host="b.example")],
        host_matching=True,
    )
    for _ in range(2):
        assert lean.bind("a.example").match("/")[0] == "a"
        assert lean.bind("b.example").match("/")[0] == "b"
        with pytest.raises(NotFound):
            lean.bind("c.example").match("/")


def test_match_cache_is_bounded_least_recently_used_first() -> None:
    """At most MATCH_CACHE_SIZE matches are kept; a path in use stays while others go."""
    _, lean = _maps()
    adapter = lean.bind("example.com")
    for i in range(MATCH_CACHE_SIZE + 200):
        adapter.match("/items/0")  # kept in use
        adapter.match(f"/items/{i + 1}")
    assert len(lean._matches) == MATCH_CACHE_SIZE
    counting = _CountingMatcher(lean._matcher)
    lean._matcher = counting
    adapter.match("/items/0")
    assert counting.calls == 0


def test_match_cache_forgets_when_a_rule_is_added() -> None:
    """A rule added after a path was matched takes part in the next match of that path."""
    app = WebServer(__name__, access_log=False)

    @app.route("/<name>")
    async def anything(name: str) -> str:
        return "generic"

    client = app.test_client()

    async def run() -> list[bytes]:
        first = await (await client.get("/special")).get_data()

        @app.route("/special")
        async def special() -> str:
            return "special"

        second = await (await client.get("/special")).get_data()
        return [first, second]

    assert asyncio.run(run()) == [b"generic", b"special"]


async def test_cached_view_args_are_a_fresh_dict_per_request() -> None:
    """A url_value_preprocessor popping a value does not take it from the next request."""
    app = WebServer(__name__, access_log=False)

    @app.url_value_preprocessor
    def pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
        assert values is not None
        app.config["LANG_SEEN"] = values.pop("lang")

    @app.route("/<lang>/hello")
    async def hello() -> str:
        return app.config["LANG_SEEN"]

    client = app.test_client()
    for _ in range(3):
        response = await client.get("/fr/hello")
        assert await response.get_data() == b"fr"


async def test_mutable_converter_values_are_not_shared() -> None:
    """A converter returning a list is matched per request: a view mutating it changes nothing."""
    from werkzeug.routing import BaseConverter

    class ListConverter(BaseConverter):
        def to_python(self, value: str) -> list[str]:
            return value.split("+")

    app = WebServer(__name__, access_log=False)
    app.url_map.converters["list"] = ListConverter

    @app.route("/sum/<list:parts>")
    async def total(parts: list[str]) -> str:
        parts.append("mutated")
        return str(len(parts))

    client = app.test_client()
    for _ in range(3):
        assert await (await client.get("/sum/a+b")).get_data() == b"3"


async def test_a_custom_converter_is_asked_on_every_request() -> None:
    """A converter that looks a value up may refuse a path it accepted before (the user was
    removed): matches of a rule with a converter that is not werkzeug's own are never cached."""
    from werkzeug.routing import BaseConverter, ValidationError

    active = {"alice", "bob"}

    class ActiveUser(BaseConverter):
        def to_python(self, value: str) -> str:
            if value not in active:
                raise ValidationError
            return value

    app = WebServer(__name__, access_log=False)
    app.url_map.converters["active"] = ActiveUser

    @app.route("/users/<active:name>")
    async def user(name: str) -> str:
        return f"hello {name}"

    client = app.test_client()
    for _ in range(3):  # the first request of a host binds differently: past it
        assert (await client.get("/users/alice")).status_code == 200
    active.discard("alice")
    assert (await client.get("/users/alice")).status_code == 404
    assert (await client.get("/users/bob")).status_code == 200


def _current_adapter() -> Any:
    """The URL adapter of the request being served (Quart 0.22's request context or 0.23's
    one context)."""
    import quart.globals

    variable = getattr(quart.globals, "_cv_request", None) or quart.globals._cv_app
    return variable.get().url_adapter


async def test_each_request_gets_its_own_adapter() -> None:
    """Requests alike get adapters made from one remembered state, never one shared object:
    url_for's temporary scheme (Quart sets it on the adapter) stays in its own request, and
    the second request's adapter already knows its match."""
    from quart import url_for

    app = WebServer(__name__, access_log=False)
    adapters: list[Any] = []

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        adapter = _current_adapter()
        adapters.append(adapter)
        scheme = adapter.url_scheme
        link = url_for("item", item_id=item_id, _scheme="https", _external=True)
        adapter.url_scheme = "changed"  # a view or extension mutating its own adapter
        return f"{scheme} {link}"

    client = app.test_client()
    answers = [await (await client.get("/items/7")).get_data() for _ in range(3)]
    assert answers == [b"http https://localhost/items/7"] * 3
    assert len({id(adapter) for adapter in adapters}) == 3
    assert "_aeros_match" in vars(adapters[2])  # matched from the remembered state


async def test_remembered_adapters_are_bounded() -> None:
    """One-off paths (ids, queries) do not grow the remembered adapter states without bound."""
    from aeros.fastpath.routing import _MAX_ADAPTERS

    app = WebServer(__name__, access_log=False)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return "ok"

    client = app.test_client()
    for i in range(_MAX_ADAPTERS + 50):
        assert (await client.get(f"/items/{i}?q={i}")).status_code == 200
    assert 0 < len(app.url_map._adapters) <= _MAX_ADAPTERS


def test_remembered_match_is_for_the_adapters_own_path_and_method() -> None:
    """An adapter whose path or method was changed after binding (an override of Quart's
    create_url_adapter may do it) is matched on what it holds now, and does not leave its match
    for the next requests bound like it."""
    _, lean = _maps()

    class _Request:
        scheme = "http"
        root_path = ""
        query_string = b""

        def __init__(self, path: str, method: str = "GET") -> None:
            self.path = path
            self.method = method
            self.scope = {"headers": [(b"host", b"example.com")]}

    def bind(path: str, method: str = "GET") -> Any:
        return lean.bind_to_request(_Request(path, method), None, None)

    lean._bound_hosts[("http", b"example.com", None, None)] = ("example.com", "")  # bound
    first = bind("/items/1")
    first.path_info = "/files/x"  # changed before it matches
    assert first.match(return_rule=True)[0].endpoint == "file"
    second = bind("/items/1")
    assert second.match(return_rule=True)[0].endpoint == "item"
    assert bind("/post", "POST").match(return_rule=True)[0].endpoint == "post"  # remembered
    changed = bind("/post", "POST")
    changed.default_method = "GET"
    with pytest.raises(MethodNotAllowed):
        changed.match(return_rule=True)
    assert bind("/items/1").match(return_rule=True) == (
        lean._matches[("", "/items/1", "GET", False)][0],
        {"item_id": 1},
    )


# ---- the rule taken from the remembered matches, without binding (LeanMap.remembered_route) --


def _counting_binds(app: WebServer) -> list[str]:
    """Paths the app's map binds an adapter for, from now on (for a request, or late for a
    remembered route)."""
    url_map = app.url_map
    binds: list[str] = []
    bind, late = url_map.bind_to_request, url_map.bind_remembered

    def counting(request: Any, subdomain: Any, server_name: Any) -> Any:
        binds.append(request.path)
        return bind(request, subdomain, server_name)

    def counting_late(route: Any, root_path: str, query_string: bytes) -> Any:
        binds.append(route[2][4])
        return late(route, root_path, query_string)

    url_map.bind_to_request = counting  # type: ignore[method-assign]
    url_map.bind_remembered = counting_late  # type: ignore[method-assign]
    return binds


async def test_remembered_route_binds_only_when_the_adapter_is_read() -> None:
    """A request like an earlier one takes its rule and arguments from memory: no adapter is
    bound unless the view reads it (url_for), and then it is the request's own, as Quart's."""
    from quart import request, url_for

    app = WebServer(__name__, access_log=False)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return f"{request.url_rule.rule} {request.view_args} {item_id}"

    @app.route("/link/<int:item_id>")
    async def link(item_id: int) -> str:
        return url_for("item", item_id=item_id, _external=True)

    client = app.test_client()
    for _ in range(3):  # the first requests of a host bind: past them
        assert (await client.get("/items/7")).status_code == 200
        assert (await client.get("/link/7")).status_code == 200
    binds = _counting_binds(app)
    answers = [await (await client.get("/items/7")).get_data() for _ in range(3)]
    assert answers == [b"/items/<int:item_id> {'item_id': 7} 7"] * 3
    assert binds == []
    links = [await (await client.get("/link/7")).get_data() for _ in range(2)]
    assert links == [b"http://localhost/items/7"] * 2
    assert binds == ["/link/7", "/link/7"]  # bound for url_for, once per request
    assert (await client.get("/items/8")).status_code == 200  # a new path: bound and matched
    assert binds[-1] == "/items/8"


async def test_remembered_route_gives_each_request_its_own_arguments() -> None:
    """A URL value preprocessor pops from ``view_args``: every request still gets its value."""
    from quart import g

    app = WebServer(__name__, access_log=False)

    @app.url_value_preprocessor
    def take(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.item = values.pop("item_id") if values else None

    @app.route("/items/<int:item_id>")
    async def item() -> str:
        return str(g.item)

    client = app.test_client()
    answers = [await (await client.get("/items/5")).get_data() for _ in range(4)]
    assert answers == [b"5"] * 4


async def test_remembered_route_answers_automatic_options() -> None:
    """Quart's automatic OPTIONS answer reads the adapter's allowed methods: bound on read."""
    app = WebServer(__name__, access_log=False)

    @app.route("/items/<int:item_id>", methods=["GET", "POST"])
    async def item(item_id: int) -> str:
        return "ok"

    client = app.test_client()
    allowed = [(await client.options("/items/1")).headers.get("Allow") for _ in range(3)]
    assert len(set(allowed)) == 1
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in (allowed[0] or "").split(",")}


async def test_remembered_route_follows_the_server_name_and_new_rules() -> None:
    """A route is remembered for the SERVER_NAME it was bound with (a changed one decides
    again: a host that no longer matches is a 404, as in Quart) and forgotten when a rule is
    added."""
    from quart import Quart

    answers: dict[str, list[int]] = {}
    for app in (WebServer(__name__, access_log=False), Quart(__name__)):

        @app.route("/items/<int:item_id>")
        async def item(item_id: int) -> str:
            return "any"

        client = app.test_client()
        host = {"Host": "localhost"}
        for _ in range(3):
            assert await (await client.get("/items/7", headers=host)).get_data() == b"any"

        async def seven() -> str:
            return "seven"

        app.add_url_rule("/items/7", "seven", seven)  # a static rule wins over a converter
        for _ in range(2):
            assert await (await client.get("/items/7", headers=host)).get_data() == b"seven"
        app.config["SERVER_NAME"] = "elsewhere.example"
        with pytest.warns(UserWarning, match="configured server name"):  # werkzeug's
            statuses = [(await client.get("/items/7", headers=host)).status_code for _ in range(2)]
        answers[type(app).__name__] = statuses
    assert answers["WebServer"] == answers["Quart"] == [404, 404]


async def test_remembered_route_is_not_used_past_an_override_of_create_url_adapter() -> None:
    """An app whose class binds its own way (``create_url_adapter`` overridden) is bound on
    every request, as Quart does."""
    calls: list[str] = []

    class Bound(WebServer):
        def create_url_adapter(self, request: Any) -> Any:
            calls.append(request.path if request is not None else "")
            return super().create_url_adapter(request)

    app = Bound(__name__, access_log=False)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return "ok"

    client = app.test_client()
    for _ in range(4):
        assert (await client.get("/items/1")).status_code == 200
    assert calls.count("/items/1") == 4
    from aeros.fastpath.dispatch import remembering_map

    assert remembering_map(app) is None
    assert remembering_map(WebServer(__name__)) is not None


def test_remembered_route_needs_quarts_context_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Quart whose context sets an attribute the lean one does not know turns the
    remembered route off (the context is then built by Quart's own code)."""
    import quart.ctx

    from aeros.fastpath import _compat
    from aeros.fastpath.dispatch import remembering_map

    # Quart 0.23's one context, or 0.22's request context
    quarts = quart.ctx.AppContext if _compat.UNIFIED_CONTEXT else quart.ctx.RequestContext
    quarts_init = quarts.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        quarts_init(self, *args, **kwargs)
        self.something_new = None

    app = WebServer(__name__)
    assert remembering_map(app) is app.url_map
    monkeypatch.setattr(quarts, "__init__", init)
    assert remembering_map(app) is None


async def test_late_adapter_is_bound_as_the_request_was_when_its_context_was_made() -> None:
    """A hook that changes the request's scheme or root path (a home-made proxy fix) does not
    change ``url_for``'s answer: Quart binds the adapter before any hook runs, and the adapter
    bound late for a remembered route is bound from the request as it was then."""
    from quart import Quart, request, url_for

    answers: dict[str, list[bytes]] = {}
    for app in (WebServer(__name__, access_log=False), Quart(__name__)):

        @app.before_request
        async def proxy_fix() -> None:
            if request.headers.get("X-Forwarded-Proto") == "https":
                request.scheme = "https"
                request.root_path = "/api"

        @app.route("/items/<int:n>")
        async def item(n: int) -> str:
            return url_for("item", n=n, _external=True) + " " + url_for("item", n=n)

        client = app.test_client()
        forwarded = {"X-Forwarded-Proto": "https"}
        answers[type(app).__name__] = [
            await (await client.get("/items/1?q=2", headers=forwarded)).get_data() for _ in range(4)
        ]
    assert answers["WebServer"] == answers["Quart"]
    assert answers["Quart"] == [b"http://localhost/items/1 /items/1"] * 4


async def test_remembered_route_with_a_session_to_open() -> None:
    """With a secret key the context opens the session when pushed (the awaited push): the
    rule still comes from memory, no adapter is bound, and the session works."""
    from quart import session

    app = WebServer(__name__, access_log=False)
    app.secret_key = "test-secret"  # noqa: S105 - a throwaway key for the test

    @app.route("/count/<int:step>")
    async def count(step: int) -> str:
        session["n"] = session.get("n", 0) + step
        return str(session["n"])

    client = app.test_client()
    for _ in range(3):
        await client.get("/count/1")
    binds = _counting_binds(app)
    answers = [await (await client.get("/count/2")).get_data() for _ in range(3)]
    answers += [await (await client.get("/count/2")).get_data() for _ in range(2)]
    assert answers == [b"5", b"7", b"9", b"11", b"13"]
    assert binds == ["/count/2"]  # its first request only: the next ones take the rule


def _current_context() -> Any:
    """The request's context (Quart 0.22's request context or 0.23's one context)."""
    import quart.globals

    return (getattr(quart.globals, "_cv_request", None) or quart.globals._cv_app).get()


async def test_remembered_route_gives_way_to_an_adapter_a_hook_sets() -> None:
    """A hook that rewrites the URL (a new adapter set on the context, then matched again)
    gets the match of its adapter, as in Quart, not the remembered rule."""
    from quart import Quart, request

    answers: dict[str, list[bytes]] = {}
    for app in (WebServer(__name__, access_log=False), Quart(__name__)):

        @app.before_request
        async def rewrite() -> None:
            if request.path == "/old":
                request.path = "/new"
                ctx = _current_context()
                ctx.url_adapter = ctx.app.create_url_adapter(request)
                ctx.match_request()

        @app.route("/old")
        async def old() -> str:
            return "old"

        @app.route("/new")
        async def new() -> str:
            return "new"

        client = app.test_client()
        answers[type(app).__name__] = [
            await (await client.get("/old")).get_data() for _ in range(4)
        ]
    assert answers["WebServer"] == answers["Quart"] == [b"new"] * 4


async def test_late_adapter_keeps_what_the_request_class_made() -> None:
    """A request class that sets its own root path (from a proxy's header) is bound with it:
    the late adapter takes the request's root path and query as they were when the context
    was made, not the scope's."""
    from quart import Quart, url_for
    from quart.wrappers import Request

    from aeros.fastpath import LeanRequest

    def prefixed(base: type[Any]) -> type[Any]:
        class Prefixed(base):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.root_path = self.headers.get("X-Forwarded-Prefix", "")

        return Prefixed

    answers: dict[str, list[bytes]] = {}
    for app in (WebServer(__name__, access_log=False), Quart(__name__)):
        app.request_class = prefixed(LeanRequest if isinstance(app, WebServer) else Request)

        @app.route("/items/<int:n>")
        async def item(n: int) -> str:
            return url_for("item", n=n)

        client = app.test_client()
        headers = {"X-Forwarded-Prefix": "/api"}
        answers[type(app).__name__] = [
            await (await client.get("/items/1", headers=headers)).get_data() for _ in range(4)
        ]
    assert answers["WebServer"] == answers["Quart"] == [b"/api/items/1"] * 4


async def test_query_that_is_not_utf8_is_bound_as_in_quart() -> None:
    """Binding decodes the query, and Quart fails a request whose query is not UTF-8: a
    remembered route does not answer such a request differently from a fresh one."""
    from tests.support.asgi import drive, http_scope

    async def outcome(app: WebServer) -> str:
        try:
            sent = await drive(app, http_scope("/plain", query=b"z=\xff"))
        except Exception as error:  # what Quart raises is the outcome
            return type(error).__name__
        return str(next(m["status"] for m in sent if m["type"] == "http.response.start"))

    def make() -> WebServer:
        app = WebServer(__name__, access_log=False)

        @app.route("/plain")
        async def plain() -> str:
            return "plain"

        return app

    fresh = await outcome(make())
    warmed = make()
    for _ in range(3):
        await drive(warmed, http_scope("/plain"))
    assert await outcome(warmed) == fresh
