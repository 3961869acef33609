"""The field: frameworks users pick instead of aeros, each written as its docs write hello world.

Every app here serves the three uncached routes of :mod:`bench.apps` with the same content types:

- ``/plaintext``      ``Hello, World!`` as text/plain; charset=utf-8
- ``/json``           ``{"message": "Hello, World!"}`` as application/json
- ``/items/<int:id>`` ``{"id": id}`` (path parameter parsed by the framework's router)

Only these three: the field has no response cache to compare with aeros' cache hits, and the
20 KB, gzip and sleep scenarios stay among the contenders of :mod:`bench.apps`. Each view is the
framework's idiom (its response helpers, its JSON encoder, its path syntax) rather than a copy of
aeros' views, because the question is what a user of that framework gets. Falcon's default JSON
handler (``json.dumps``) writes ``{"message": "Hello, World!"}`` with a space after the colon:
one byte more than the others, kept because it is what ``resp.media`` does.

Starlette, Litestar, BlackSheep and Falcon are ASGI apps served by uvicorn exactly as FastAPI is
(:mod:`bench.serve`); Sanic and Robyn run on their own servers, one process each.
"""

# No ``from __future__ import annotations``: BlackSheep, Litestar and Robyn read the handlers'
# annotations at startup, and the names they use are imported inside the make_* functions.
from typing import Any

from bench.apps import MESSAGE, PLAINTEXT

TEXT = PLAINTEXT.decode()
TEXT_PLAIN = "text/plain; charset=utf-8"


def make_starlette_app() -> Any:
    """Starlette: plain functions, a ``routes`` list, its Response classes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def plaintext(request: Request) -> PlainTextResponse:
        return PlainTextResponse(TEXT)

    async def json_(request: Request) -> JSONResponse:
        return JSONResponse(MESSAGE)

    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["item_id"]})

    return Starlette(
        routes=[
            Route("/plaintext", plaintext),
            Route("/json", json_),
            Route("/items/{item_id:int}", item),
        ]
    )


def make_litestar_app() -> Any:
    """Litestar: ``@get`` handlers returning values (msgspec encodes them), defaults untouched."""
    from litestar import Litestar, MediaType, get

    @get("/plaintext", media_type=MediaType.TEXT)
    async def plaintext() -> str:
        return TEXT

    @get("/json")
    async def json_() -> dict[str, str]:
        return MESSAGE

    @get("/items/{item_id:int}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return Litestar(route_handlers=[plaintext, json_, item])


def make_blacksheep_app() -> Any:
    """BlackSheep: ``Application``, its router's decorators, its ``text``/``json`` helpers."""
    from blacksheep import Application, Response, json, text

    app = Application()

    @app.router.get("/plaintext")
    async def plaintext() -> Response:
        return text(TEXT)

    @app.router.get("/json")
    async def json_() -> Response:
        return json(MESSAGE)

    @app.router.get("/items/{item_id}")
    async def item(item_id: int) -> Response:
        return json({"id": item_id})

    return app


def make_falcon_app() -> Any:
    """Falcon's ASGI app: one resource class per route, ``on_get(req, resp)`` responders."""
    import falcon
    import falcon.asgi

    class PlainText:
        async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            resp.content_type = falcon.MEDIA_TEXT
            resp.data = PLAINTEXT  # bytes: Falcon's docs prefer .data to .text for them

    class Json:
        async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            resp.media = MESSAGE

    class Item:
        async def on_get(
            self, req: falcon.asgi.Request, resp: falcon.asgi.Response, item_id: int
        ) -> None:
            resp.media = {"id": item_id}

    app = falcon.asgi.App()
    app.add_route("/plaintext", PlainText())
    app.add_route("/json", Json())
    app.add_route("/items/{item_id:int}", Item())
    return app


def make_sanic_app() -> Any:
    """Sanic: ``@app.get`` handlers taking the request, its ``text``/``json`` helpers."""
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse, json, text

    app = Sanic("bench_sanic")

    @app.get("/plaintext")
    async def plaintext(request: Request) -> HTTPResponse:
        return text(TEXT)

    @app.get("/json")
    async def json_(request: Request) -> HTTPResponse:
        return json(MESSAGE)

    @app.get("/items/<item_id:int>")
    async def item(request: Request, item_id: int) -> HTTPResponse:
        return json({"id": item_id})

    return app


def make_robyn_app() -> Any:
    """Robyn: ``Robyn(__file__)`` with async handlers; a dict return is sent as JSON.

    One process with one worker and log level WARN: what ``--processes 1 --workers 1
    --log-level WARN`` on its command line would set (its default log level, INFO, is for
    development).
    """
    from robyn import Request, Response, Robyn
    from robyn.argument_parser import Config

    config = Config()
    config.processes, config.workers, config.log_level = 1, 1, "WARN"
    app = Robyn(__file__, config=config)

    @app.get("/plaintext")
    async def plaintext(request: Request) -> Response:
        # a bare str return is sent as text/plain without a charset; this says utf-8 like the rest
        return Response(200, {"Content-Type": TEXT_PLAIN}, TEXT)

    @app.get("/json")
    async def json_(request: Request) -> dict[str, str]:
        return MESSAGE

    @app.get("/items/:item_id")
    async def item(request: Request) -> dict[str, int]:
        return {"id": int(request.path_params["item_id"])}

    return app


def __getattr__(name: str) -> Any:
    """Build an ASGI app on first access (``uvicorn bench.field:starlette_app``), not at import."""
    makers = {
        "starlette_app": make_starlette_app,
        "litestar_app": make_litestar_app,
        "blacksheep_app": make_blacksheep_app,
        "falcon_app": make_falcon_app,
    }
    if name in makers:
        app = makers[name]()
        globals()[name] = app
        return app
    raise AttributeError(name)
