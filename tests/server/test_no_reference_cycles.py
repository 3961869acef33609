"""A served request is freed when it ends, not left to Python's cycle collector.

The layers that learn a request's status and size from aeros' server put a callback in the
scope (``RESPONSE_DONE``) that refers back to the scope. Unless the server lets go of the
callbacks once it has called them, every request leaves a reference cycle (its scope, the
callbacks and everything they hold) that only a collection frees: measured over loopback,
metrics cost 13 us per JSON request that way against 7 us without the cycle, and the access
log (on by default) had the same cycle.
"""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest

from aeros import RateLimit, WebServer
from aeros.types import RESPONSE_DONE

OPTIONS = {
    "metrics": {"metrics": True},
    "access log": {"access_log": True},
    "request id": {"request_id": True},
    "rate limit": {"rate_limit": RateLimit("1000/minute")},
    "all of them": {
        "metrics": True,
        "access_log": True,
        "request_id": True,
        "rate_limit": RateLimit("1000/minute"),
    },
}


def cyclic_scopes(url: str, requests: int) -> list[dict[str, Any]]:
    """The request scopes that only the cycle collector would free, after ``requests``."""
    with httpx.Client() as client:
        assert client.get(url).status_code == 200  # start-up garbage goes before counting
        gc.collect()
        gc.disable()
        try:
            for _ in range(requests):
                assert client.get(url).status_code == 200
            gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at it
            gc.collect()
            return [
                found for found in gc.garbage if isinstance(found, dict) and RESPONSE_DONE in found
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()


@pytest.mark.parametrize("options", OPTIONS.values(), ids=list(OPTIONS))
def test_served_requests_leave_no_reference_cycles(options: dict[str, Any], tmp_path: Any) -> None:
    if options.get("access_log"):
        options = {**options, "access_log_file": str(tmp_path / "access.log")}
    app = WebServer(__name__, **{"access_log": False, **options})

    @app.route("/json")
    async def hello() -> dict[str, str]:
        return {"message": "Hello, World!"}

    with app.serve_in_thread() as url:
        assert cyclic_scopes(url + "/json", 50) == []
