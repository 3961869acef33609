"""Start one contender on a loopback port: ``python -m bench.serve CONTENDER PORT [WORKERS]``.

:mod:`bench.run` starts this in a subprocess pinned to the server CPUs. Every server runs one
worker process (unless WORKERS says otherwise), no access log, uvloop where it has a choice.
"""

from __future__ import annotations

import os
import signal
import sys

FIELD = ("sanic", "litestar", "starlette", "blacksheep", "falcon", "robyn")
"""The frameworks of :mod:`bench.field`: they serve the plaintext, JSON and path-param routes."""
CONTENDERS = (
    "bare",
    "bare-aeros",
    "aeros",
    "aeros-redis",
    "aeros-ratelimit",
    "aeros-tiered",
    "aeros-granian",
    "aeros-request-id",
    "aeros-metrics",
    "aeros-access-log",
    "quart",
    "quart-aeros",
    "quart-hypercorn",
    "fastapi",
    "fastapi-aeros",
    "flask-gunicorn",
    *FIELD,
)

FLUSH_VARIABLE = "AEROS_BENCH_FLUSH_INTERVAL"
"""Seconds between the metrics' flushes (``aeros.metrics.export.FLUSH_INTERVAL``), set by
:mod:`bench.instructions`: under valgrind a second holds about 50 times fewer requests, so a
flush a second would weigh 50 times as much on each."""
REDIS_URL_VARIABLE = "AEROS_BENCH_REDIS_URL"
"""Where the ``aeros-redis`` and ``aeros-tiered`` contenders find their Redis (set by
:mod:`bench.run`)."""

UVICORN = {
    "bare": "bench.apps:bare_app",
    "quart": "bench.apps:quart_app",
    "fastapi": "bench.apps:fastapi_app",
    "starlette": "bench.field:starlette_app",
    "litestar": "bench.field:litestar_app",
    "blacksheep": "bench.field:blacksheep_app",
    "falcon": "bench.field:falcon_app",
}
"""The contenders stock uvicorn serves, by the app's import string."""


OBSERVED = {
    "aeros-request-id": {"request_id": True},
    "aeros-metrics": {"metrics": True},
    # aeros' default: a line per request on stdout (bench.run sends it to /dev/null)
    "aeros-access-log": {"access_log": True, "log_level": "info"},
}
"""The aeros contenders with an observability feature on, and the options that turn it on."""


def _exec(argv: list[str]) -> None:
    os.execv(argv[0], argv)  # noqa: S606 - become the server process; no shell involved


def serve(contender: str, port: int, workers: int) -> None:
    """Serve ``contender`` on 127.0.0.1:``port`` until killed."""
    host = "127.0.0.1"
    if os.environ.get(FLUSH_VARIABLE):
        from aeros.metrics import export

        export.FLUSH_INTERVAL = float(os.environ[FLUSH_VARIABLE])
    if contender == "aeros":
        from bench.apps import make_aeros_app

        make_aeros_app().run_server(host=host, port=port, workers=workers)
    elif contender == "aeros-redis":
        # the same app on a RedisCache: bench.run starts the redis-server and names it here
        from aeros import RedisCache
        from bench.apps import make_aeros_app

        cache = RedisCache(url=os.environ[REDIS_URL_VARIABLE], timeout=3600)
        make_aeros_app(cache).run_server(host=host, port=port, workers=workers)
    elif contender in OBSERVED:  # aeros with request ids or metrics on: what they cost
        from bench.apps import make_aeros_app

        app = make_aeros_app(**OBSERVED[contender])
        app.run_server(host=host, port=port, workers=workers)
    elif contender == "aeros-ratelimit":
        from bench.apps import make_aeros_ratelimit_app

        make_aeros_ratelimit_app().run_server(host=host, port=port, workers=workers)
    elif contender == "aeros-tiered":
        # the same app on a TieredCache: a SimpleCache in front of that Redis
        from aeros import RedisCache, SimpleCache, TieredCache
        from bench.apps import make_aeros_app

        shared = RedisCache(url=os.environ[REDIS_URL_VARIABLE], timeout=3600)
        local = SimpleCache(timeout=3600, threshold=100_000)
        make_aeros_app(TieredCache(local=local, shared=shared)).run_server(
            host=host, port=port, workers=workers
        )
    elif contender in ("bare-aeros", "quart-aeros", "fastapi-aeros"):
        # another app on aeros' own server: the bare app is the ceiling "on the same server"
        # as aeros, and stock Quart and FastAPI there separate the framework from the server
        from aeros.server.config import ServerConfig
        from aeros.server.runner import Runner
        from bench.apps import bare_app, make_fastapi_app, make_quart_app

        if contender == "bare-aeros":
            target = bare_app
        elif contender == "quart-aeros":
            target = make_quart_app()
        else:
            target = make_fastapi_app()
        Runner(target, ServerConfig(host=host, port=port, workers=workers)).run()
    elif contender == "aeros-granian":
        # the same aeros app on granian's ASGI interface (evaluating server="granian")
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            "bench.apps:aeros_app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            log_enabled=False,
        ).serve()
    elif contender in UVICORN:
        import uvicorn

        uvicorn.run(
            UVICORN[contender],
            host=host,
            port=port,
            workers=workers if workers > 1 else None,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    elif contender == "sanic":
        # Sanic's own server in this process (single_process=True: no worker manager), uvloop
        # by default. Its multi-worker mode re-imports the app in spawned processes: not wired.
        if workers > 1:
            raise SystemExit("bench.serve runs sanic in one process only")
        from bench.field import make_sanic_app

        make_sanic_app().run(
            host=host, port=port, single_process=True, access_log=False, motd=False
        )
    elif contender == "robyn":
        # Robyn's own Rust server; with one process it serves from this process (uvloop)
        from bench.field import make_robyn_app

        app = make_robyn_app()
        app.config.processes = workers
        # On SIGTERM its Rust server stops but its Python loop runs on (loop.run_forever()), so
        # bench.run would wait 10 s to kill it: exit at once, as the other servers do.
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        app.start(host=host, port=port)
    elif contender == "quart-hypercorn":
        # in-process, as one Hypercorn worker runs it (the CLI cannot load a lazy module attr)
        import uvloop
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        from bench.apps import make_quart_app

        config = Config()
        config.bind = [f"{host}:{port}"]
        config.loglevel = "WARNING"
        config.accesslog = None
        uvloop.run(hypercorn_serve(make_quart_app(), config))  # type: ignore[arg-type]
    elif contender == "flask-gunicorn":
        _exec(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "16",  # threads give Flask a chance in the 10 ms sleep scenario
                "--log-level",
                "warning",
                "bench.apps:flask_app",
            ]
        )
    else:
        raise SystemExit(f"unknown contender {contender!r}; choose from {', '.join(CONTENDERS)}")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
