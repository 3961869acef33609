"""An app factory: the app exists only when create_app() runs."""

from __future__ import annotations

from typing import Any

from tests.apps.cached_blueprint import blog

from aeros import WebServer, cached


def create_app(cache: Any = None) -> WebServer:
    app = WebServer(__name__, access_log=False, cache=cache)
    app.register_blueprint(blog, url_prefix="/blog")
    hits = {"n": 0}

    @app.route("/home")
    @cached(timeout=30, vary=["Accept-Language"])
    async def home() -> str:
        hits["n"] += 1
        return f"home #{hits['n']}"

    return app
