"""Cost of each step of one uncached aeros request, in microseconds (``bench.inprocess --steps``).

Each step is measured by timing cumulative variants of the request path that stop after it and
subtracting the variant before (what the step adds), plus two steps timed alone (routing, the
view). Every variant runs in a tight loop in one event loop; rounds interleave the variants, so
drift on a shared machine hits them alike; time is this thread's CPU time (time given to other
processes is not counted) and the minimum over rounds is reported: the least disturbed run,
the number that is stable from one run to the next.

Variants (each calls the code the real request path calls, for the installed Quart):

- ``request``: the ASGI connection object and Quart's request object for the scope, its (empty)
  body set;
- ``+context``: and the request context made, pushed (routing included) and popped;
- ``+dispatch``: and Quart's dispatch inside it: hooks, the view, ``make_response``;
- ``connection``: the whole lean connection: all of that plus encoding the response and the two
  ASGI messages;
- ``quart``: ``Quart.asgi_app`` (the connection chosen by scope type);
- ``stack``: the app as the server calls it: aeros' layers, then Quart.

Steps: request = ``request``; routing = binding the URL map and matching, alone; context =
``+context`` - ``request`` - routing; view = the view coroutine alone, in a pushed context
(for ``jsonify`` views that includes building the ``Response``); response = ``+dispatch`` -
``+context`` - view (``make_response``, hook checks); send = ``connection`` - ``+dispatch``
(headers encoded, ASGI messages); glue = ``quart`` - ``connection``; layers = ``stack`` -
``quart``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart

from bench.inprocess import SCENARIOS, _Client, make_scope

Variant = Callable[[dict[str, Any], _Client], Awaitable[object]]
STEPS = ("request", "routing", "context", "view", "response", "send", "glue", "layers", "total")


def variants(app: Any) -> dict[str, Variant]:
    """The cumulative variants for ``app`` (a WebServer), keyed by name."""
    from aeros.fastpath import dispatch

    ctx_class = dispatch.LeanRequestContext
    null_session = app.session_interface.null_session_class

    def make_request(scope: dict[str, Any], client: _Client) -> Any:
        conn = app.asgi_http_class(app, scope)
        if hasattr(conn, "_complete_request"):  # the connection's own constructor choice
            return conn._complete_request(client.send, b"")
        request = conn._create_request_from_scope(client.send)
        request.body.set_result(b"")
        return request

    async def request(scope: dict[str, Any], client: _Client) -> object:
        return make_request(scope, client)

    async def context(scope: dict[str, Any], client: _Client) -> object:
        request = make_request(scope, client)
        # entered and left as the lean dispatch does (+dispatch below), not by ``async with``
        ctx = ctx_class(app, request=request, session=null_session())
        entering = ctx.enter()
        if entering is not None:
            await entering
        leaving = ctx.leave(None)  # None on Quart 0.23 when done in place
        if leaving is not None:
            await leaving
        return request

    async def dispatched(scope: dict[str, Any], client: _Client) -> object:
        return await dispatch.handle_request(app, make_request(scope, client))

    async def connection(scope: dict[str, Any], client: _Client) -> object:
        await app.asgi_http_class(app, scope)(client.receive, client.send)
        return None

    async def quart(scope: dict[str, Any], client: _Client) -> object:
        await Quart.asgi_app(app, scope, client.receive, client.send)
        return None

    async def stack(scope: dict[str, Any], client: _Client) -> object:
        await app(scope, client.receive, client.send)
        return None

    return {
        "request": request,
        "+context": context,
        "+dispatch": dispatched,
        "connection": connection,
        "quart": quart,
        "stack": stack,
    }


def alone(app: Any) -> dict[str, Variant]:
    """Routing and the view, each timed alone (the request and context made outside)."""
    from aeros.fastpath import dispatch

    async def routing(scope: dict[str, Any], client: _Client) -> object:
        request = _prepared(app, scope, client)
        return app.create_url_adapter(request).match(return_rule=True)

    async def view(scope: dict[str, Any], client: _Client) -> object:
        ctx = _contexts[id(app)]
        request = ctx.request
        handler = app.view_functions[request.url_rule.endpoint]
        return await dispatch._view(app, handler)(**request.view_args)

    return {"routing": routing, "view": view}


_requests: dict[tuple[int, str], Any] = {}
_contexts: dict[int, Any] = {}


def _prepared(app: Any, scope: dict[str, Any], client: _Client) -> Any:
    key = (id(app), scope["path"])
    request = _requests.get(key)
    if request is None:
        conn = app.asgi_http_class(app, scope)
        request = _requests[key] = conn._create_request_from_scope(client.send)
    return request


async def _time(variant: Variant, path: str, extra: list[Any], n: int) -> float:
    # CPU time of this thread: time the machine gave to other processes is not counted
    start = time.thread_time()
    for _ in range(n):
        await variant(make_scope(path, extra), _Client())
    return (time.thread_time() - start) / n * 1e6


async def _scope_cost(path: str, extra: list[Any], n: int) -> float:
    async def nothing(scope: dict[str, Any], client: _Client) -> object:
        return None

    return await _time(nothing, path, extra, n)


def measure_steps(app: Any, scenario: str, n: int, rounds: int) -> dict[str, float]:
    """Microseconds per request of each step of :data:`STEPS` on ``scenario``."""
    from aeros.fastpath import dispatch

    path, extra = SCENARIOS[scenario]
    cumulative = variants(app)
    single = alone(app)

    async def main() -> dict[str, float]:
        best: dict[str, float] = {}
        for variant in cumulative.values():  # warm-up: caches filled, code paths hot
            for _ in range(200):
                await variant(make_scope(path, extra), _Client())
        request = _prepared(app, make_scope(path, extra), _Client())
        for _ in range(rounds):
            timed = {"scope": await _scope_cost(path, extra, n)}
            for name, variant in cumulative.items():
                timed[name] = await _time(variant, path, extra, n)
            timed["routing"] = await _time(single["routing"], path, extra, n)
            # the view runs in a context of its own, pushed only while it is timed
            ctx = dispatch.LeanRequestContext(
                app, request=request, session=app.session_interface.null_session_class()
            )
            await ctx.push()
            _contexts[id(app)] = ctx
            try:
                timed["view"] = await _time(single["view"], path, extra, n)
            finally:
                await ctx.pop(None)
            for name, value in timed.items():
                best[name] = min(best.get(name, float("inf")), value)
        base = best.pop("scope")  # the loop, the scope dict and the client: not the app's
        return {name: value - base for name, value in best.items()}

    from bench.inprocess import new_loop

    t = new_loop().run_until_complete(main())
    request = t["request"]
    context = t["+context"] - t["request"] - t["routing"]
    response = t["+dispatch"] - t["+context"] - t["view"]
    return {
        "request": request,
        "routing": t["routing"],
        "context": context,
        "view": t["view"],
        "response": response,
        "send": t["connection"] - t["+dispatch"],
        "glue": t["quart"] - t["connection"],
        "layers": t["stack"] - t["quart"],
        "total": t["stack"],
    }


def steps_table(n: int, rounds: int, scenarios: list[str]) -> dict[str, dict[str, float]]:
    """Per-step cost of aeros on each scenario (a fresh app per scenario)."""
    from bench import apps

    results: dict[str, dict[str, float]] = {}
    for scenario in scenarios:
        results[scenario] = measure_steps(apps.make_aeros_app(), scenario, n, rounds)
    return results


def print_steps(results: dict[str, dict[str, float]]) -> None:
    """The per-step table, steps as rows and scenarios as columns."""
    names = list(results)
    print(f"{'step (us/request)':20}" + "".join(f"{n:>12}" for n in names))
    for step in STEPS:
        print(f"{step:20}" + "".join(f"{results[n][step]:12.1f}" for n in names))
