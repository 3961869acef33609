"""What :mod:`bench.run` measures: the scenarios, who serves each, labels and named groups."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from bench.serve import CONTENDERS, FIELD

GZIP = "Accept-Encoding: gzip, deflate"
FIELDS_VARIABLE = "AEROS_BENCH_FIELDS"
"""Which header fields each request of a load carries besides ``Host``: a name of
:data:`FIELD_SETS` (``--fields`` of bench.run, bench.instructions and bench.bytecodes)."""
BROWSER_FIELDS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.5",
    "Accept-Encoding: gzip, deflate, br, zstd",
    "Connection: keep-alive",
    "Cookie: theme=dark; _ga=GA1.1.123456789.1700000000",
    "Upgrade-Insecure-Requests: 1",
    "Sec-Fetch-Dest: document",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-Site: none",
    "Sec-Fetch-User: ?1",
    "Priority: u=0, i",
)
"""The header fields Firefox sends with a page load, besides ``Host``: a request as browsers
make it, where wrk and the loads of bench.instructions send ``Host`` alone."""
FIELD_SETS: dict[str, tuple[str, ...]] = {
    "host": (),
    "browser": BROWSER_FIELDS,
    # a first visit carries no Cookie (a shared cache answers only requests without one)
    "first-visit": tuple(field for field in BROWSER_FIELDS if not field.startswith("Cookie:")),
}


def add_fields_option(parser: argparse.ArgumentParser) -> None:
    """``--fields NAME``: the header fields each request of the load carries (FIELD_SETS)."""
    parser.add_argument(
        "--fields",
        choices=tuple(FIELD_SETS),
        default="host",
        help="the requests' header fields besides Host: none, a browser's twelve, or those "
        "but Cookie (first-visit)",
    )


def chosen_fields() -> tuple[str, ...]:
    """The fields :data:`FIELDS_VARIABLE` names (none when it is unset)."""
    return FIELD_SETS[os.environ.get(FIELDS_VARIABLE) or "host"]


SCENARIO_FIELD_VARIABLE = "AEROS_BENCH_SCENARIO_FIELD"
"""The scenario's own header field (:attr:`Scenario.header`: the gzip scenarios'
``Accept-Encoding``) for the loads of bench.instructions, bench.bytecodes and
bench.unspecialized (:func:`choose_scenario`)."""


def load_fields(scenario_field: str | None) -> tuple[str, ...]:
    """The header fields each request of a load carries besides ``Host``: the scenario's own,
    then those ``--fields`` chose, less one of the same name as the scenario's (a browser's
    ``Accept-Encoding`` would otherwise come twice in a gzip scenario)."""
    chosen = chosen_fields()
    if not scenario_field:
        return chosen
    name = scenario_field.split(":", 1)[0].lower()
    return (scenario_field, *(f for f in chosen if f.split(":", 1)[0].lower() != name))


def choose_scenario(name: str) -> str:
    """The path of scenario ``name``; its own header field goes with every request of the
    loads this process makes (:data:`SCENARIO_FIELD_VARIABLE`)."""
    scenario = next(s for s in SCENARIOS if s.name == name)
    os.environ[SCENARIO_FIELD_VARIABLE] = scenario.header or ""
    return scenario.path


@dataclass(frozen=True)
class Scenario:
    """One wrk workload: a path, optional request header, and who can serve it."""

    name: str
    path: str
    header: str | None = None
    only: tuple[str, ...] | None = None  # None: every contender
    title: str = ""


AEROS = (
    "aeros",
    "aeros-ratelimit",
    "aeros-granian",
    "aeros-request-id",
    "aeros-metrics",
    "aeros-access-log",
)
BARE = ("bare", "bare-aeros")
EVERY_ROUTE = tuple(c for c in CONTENDERS if c not in FIELD)
"""The contenders of :mod:`bench.apps`: they also serve the 20 KB and 10 ms sleep routes."""
SCENARIOS = (
    Scenario("plaintext", "/plaintext", title="plaintext"),
    Scenario("json", "/json", title="JSON"),
    Scenario("path-param", "/items/42", title="path parameter"),
    Scenario("json-20k", "/big", only=EVERY_ROUTE, title="20 KB JSON"),
    Scenario(
        "json-20k-gzip",
        "/big",
        GZIP,
        (*BARE, *AEROS, "fastapi", "fastapi-aeros"),
        "20 KB JSON, gzip",
    ),
    Scenario("cached-hit", "/cached", only=(*BARE, *AEROS), title="cache hit"),
    Scenario("cached-hit-redis", "/cached", only=("aeros-redis",), title="RedisCache hit"),
    Scenario("cached-hit-tiered", "/cached", only=("aeros-tiered",), title="TieredCache hit"),
    Scenario(
        "cached-20k-gzip-hit",
        "/cached-big",
        GZIP,
        (*BARE, *AEROS),
        "20 KB gzip cache hit",
    ),
    Scenario("sleep-10ms", "/sleep", only=EVERY_ROUTE, title="10 ms await"),
)
UNCACHED = ("plaintext", "json", "path-param")
"""The scenarios every contender serves: the field is compared on these."""
LABELS = {
    "bare": "bare ASGI (uvicorn)",
    "bare-aeros": "bare ASGI (aeros server)",
    "aeros": "aeros (uvicorn)",
    "aeros-ratelimit": "aeros + RateLimit in memory",
    "aeros-granian": "aeros (granian)",
    "aeros-redis": "aeros, RedisCache (uvicorn)",
    "aeros-request-id": "aeros, request ids on",
    "aeros-metrics": "aeros, metrics on",
    "aeros-access-log": "aeros, access log on (stdout)",
    "aeros-tiered": "aeros, TieredCache (uvicorn)",
    "quart": "Quart (uvicorn)",
    "quart-aeros": "Quart (aeros server)",
    "quart-hypercorn": "Quart (Hypercorn)",
    "fastapi": "FastAPI (uvicorn)",
    "fastapi-aeros": "FastAPI (aeros server)",
    "flask-gunicorn": "Flask (Gunicorn)",
    "sanic": "Sanic (own server)",
    "litestar": "Litestar (uvicorn)",
    "starlette": "Starlette (uvicorn)",
    "blacksheep": "BlackSheep (uvicorn)",
    "falcon": "Falcon (uvicorn)",
    "robyn": "Robyn (own server)",
}
SAME_SERVER = {
    "bare": "bare",
    "quart": "bare",
    "fastapi": "bare",
    "starlette": "bare",
    "litestar": "bare",
    "blacksheep": "bare",
    "falcon": "bare",
    "bare-aeros": "bare-aeros",
    "aeros": "bare-aeros",
    "aeros-ratelimit": "bare-aeros",
    "aeros-redis": "bare-aeros",
    "aeros-request-id": "bare-aeros",
    "aeros-metrics": "bare-aeros",
    "aeros-access-log": "bare-aeros",
    "aeros-tiered": "bare-aeros",
    "quart-aeros": "bare-aeros",
    "fastapi-aeros": "bare-aeros",
}
"""The bare app on the server each contender runs on (uvicorn, or aeros' server built on it).

Sanic and Robyn have no entry: no bare app runs on their servers, so they have no ``x same``.
"""
GROUPS = {
    "all": CONTENDERS,
    "core": EVERY_ROUTE,
    "observability": (
        "bare-aeros",
        "aeros",
        "aeros-request-id",
        "aeros-metrics",
        "aeros-access-log",
    ),
    "field": ("bare", "bare-aeros", "aeros", *FIELD, "fastapi", "quart", "flask-gunicorn"),
    "ratelimit": ("bare-aeros", "aeros", "aeros-ratelimit"),
}
"""Names ``--contenders`` accepts for a set: ``core`` is aeros and its baselines on every
scenario, ``field`` the frameworks users pick instead (issue 12's table; ``bare-aeros`` shows
how much of the gap is the server), ``observability``
aeros with request ids and with metrics on against plain aeros (issue 13), ``ratelimit`` the
cost of an app-wide rate limit (issue 14)."""


def expand_contenders(spec: str) -> list[str]:
    """Contender names from a comma-separated ``spec`` of names and group names, in order.

    Raises ``ValueError`` naming the first entry that is neither.
    """
    out: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        if not name:
            continue
        if name in GROUPS:
            out += GROUPS[name]
        elif name in CONTENDERS:
            out.append(name)
        else:
            raise ValueError(
                f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}"
                f" or a group: {', '.join(GROUPS)}"
            )
    return list(dict.fromkeys(out))
