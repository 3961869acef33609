"""Start one contender on a loopback port: ``python -m bench.serve CONTENDER PORT [WORKERS]``.

:mod:`bench.run` starts this in a subprocess pinned to the server CPUs. Every server runs one
worker process (unless WORKERS says otherwise), no access log, uvloop where it has a choice.
"""

from __future__ import annotations

import os
import sys

CONTENDERS = (
    "bare",
    "bare-aeros",
    "aeros",
    "aeros-granian",
    "quart",
    "quart-aeros",
    "quart-hypercorn",
    "fastapi",
    "fastapi-aeros",
    "flask-gunicorn",
)


def _exec(argv: list[str]) -> None:
    os.execv(argv[0], argv)  # noqa: S606 - become the server process; no shell involved


def serve(contender: str, port: int, workers: int) -> None:
    """Serve ``contender`` on 127.0.0.1:``port`` until killed."""
    host = "127.0.0.1"
    if contender == "aeros":
        from bench.apps import make_aeros_app

        make_aeros_app().run_server(host=host, port=port, workers=workers)
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
    elif contender in ("bare", "quart", "fastapi"):
        import uvicorn

        target = {"bare": "bench.apps:bare_app", "quart": "bench.apps:quart_app"}.get(
            contender, "bench.apps:fastapi_app"
        )
        uvicorn.run(
            target,
            host=host,
            port=port,
            workers=workers if workers > 1 else None,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
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
