"""Each request runs in an asyncio task of its own, scheduled as uvicorn schedules it: never
started eagerly inside the parser's callback, on any Python (an eager start cost 18 % of the
JSON throughput on 3.13 and 43 % on 3.12 under 64 connections; docs/performance.md, round
twenty-nine).

Over real HTTP: the view sees its task (``asyncio.current_task``, ``asyncio.timeout``), a
context variable set by one request is not seen by the next on the same connection, a view
that waits still answers, and a request pipelined behind one that closed the connection never
runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from quart import request

from aeros import WebServer

from .hardening.wire import connect, read_responses, read_until_close

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


def make_app() -> WebServer:
    app = WebServer(__name__, access_log=False, compression=None)
    app.seen = []  # type: ignore[attr-defined]

    @app.before_request
    async def record() -> None:
        app.seen.append(request.path)  # type: ignore[attr-defined]

    @app.route("/started", methods=["GET", "POST"])
    async def started() -> str:
        await request.get_data()
        # an eager first step would run inside the parser's callback: its frame below ours
        names = {frame.function for frame in inspect.stack(0)}
        return "eagerly" if "on_message_complete" in names else "scheduled"

    @app.route("/task")
    async def task() -> dict[str, object]:
        current = asyncio.current_task()
        async with asyncio.timeout(5):  # raises outside a task
            await asyncio.sleep(0)
        return {
            "task": isinstance(current, asyncio.Task),
            "done": current is not None and current.done(),
        }

    @app.route("/mark/<value>")
    async def mark(value: str) -> str:
        before = MARK.get()
        MARK.set(value)
        return before

    @app.route("/bye")
    async def bye() -> tuple[str, dict[str, str]]:
        return "bye", {"Connection": "close"}  # the server closes after this answer

    @app.route("/wait")
    async def wait() -> str:
        await asyncio.sleep(0.05)
        return "waited"

    @app.route("/length", methods=["POST"])
    async def length() -> str:
        await asyncio.sleep(0.05)  # the body piles up meanwhile: the server stops reading
        return str(len(await request.get_data()))

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[WebServer, str]]:
    app = make_app()
    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url:
        yield app, url


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def test_every_request_starts_in_a_scheduled_task(served: tuple[WebServer, str]) -> None:
    """With a body or without, the request's first step runs in a task the loop schedules,
    not inside the parser's callback (Python 3.12+ could start it eagerly there)."""
    _, url = served
    body = b"x" * 10
    post = b"POST /started HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n" + body
    with connect(url) as sock:
        sock.sendall(get("/started"))
        first = read_responses(sock, 1)[0]
        sock.sendall(post)
        second = read_responses(sock, 1)[0]
    assert first.status == 200
    assert first.body == b"scheduled"
    assert second.body == b"scheduled"


def test_a_task_factory_set_on_the_loop_makes_every_requests_task() -> None:
    """A task factory the app sets on the serving loop (tracing does) makes each request's
    task, as under uvicorn."""
    app = make_app()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **options)

    @app.before_serving
    async def trace() -> None:
        asyncio.get_running_loop().set_task_factory(factory)

    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url, connect(url) as sock:
        sock.sendall(get("/started"))
        first = read_responses(sock, 1)[0]
        sock.sendall(get("/task"))
        second = read_responses(sock, 1)[0]
    assert (first.status, first.body) == (200, b"scheduled")
    assert second.body == b'{"done":false,"task":true}\n'
    assert made.count("LeanCycle.run_asgi") == 2


def test_the_view_runs_in_its_task(served: tuple[WebServer, str]) -> None:
    _, url = served
    with connect(url) as sock:
        sock.sendall(get("/task") * 2)  # the second, pipelined, starts from the first's end
        answers = read_responses(sock, 2)
    assert [answer.status for answer in answers] == [200, 200]
    assert all(answer.body == b'{"done":false,"task":true}\n' for answer in answers)


def test_a_context_variable_does_not_reach_the_next_request(
    served: tuple[WebServer, str],
) -> None:
    _, url = served
    with connect(url) as sock:
        sock.sendall(get("/mark/one"))
        first = read_responses(sock, 1)[0]
        sock.sendall(get("/mark/two") + get("/mark/three"))  # pipelined: one read
        rest = read_responses(sock, 2)
    assert [first.body, *(answer.body for answer in rest)] == [b"unset"] * 3


def test_reading_resumes_after_a_pipeline_and_a_body_past_the_high_water_mark(
    served: tuple[WebServer, str],
) -> None:
    """The server stops reading while requests wait in a pipeline, and while a body it holds
    is past uvicorn's high-water mark (64 KB) and the app has not read it; each time it reads
    again (uvicorn's ``resume_reading``), so what the client sends next on the connection is
    answered."""
    _, url = served
    size = 1 << 20
    post = f"POST /length HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n".encode()
    with connect(url) as sock:
        sock.sendall(get("/wait") + get("/mark/p") + get("/mark/q"))  # pipelined: paused
        pipelined = read_responses(sock, 3)
        sock.sendall(get("/mark/after-pipeline"))  # read only once reading resumed
        after_pipeline = read_responses(sock, 1)[0]
        sock.sendall(post + b"x" * size)
        counted = read_responses(sock, 1)[0]
        sock.sendall(get("/mark/after-body"))
        after_body = read_responses(sock, 1)[0]
    assert [answer.status for answer in pipelined] == [200, 200, 200]
    assert pipelined[0].body == b"waited"
    assert after_pipeline.status == 200
    assert (counted.status, counted.body) == (200, str(size).encode())
    assert after_body.status == 200


def test_a_view_that_waits_still_answers(served: tuple[WebServer, str]) -> None:
    _, url = served
    with connect(url) as sock:
        sock.sendall(get("/wait") + get("/started"))
        answers = read_responses(sock, 2)
    assert [answer.body for answer in answers] == [b"waited", b"scheduled"]


@pytest.mark.parametrize(
    ("first", "path"),
    [
        (get("/mark/a", "Connection: close\r\n"), "/mark/a"),  # the client closes
        (get("/bye"), "/bye"),  # the app's answer closes
    ],
    ids=["client-closes", "answer-closes"],
)
def test_a_request_pipelined_behind_a_close_never_runs(
    served: tuple[WebServer, str], first: bytes, path: str
) -> None:
    app, url = served
    app.seen.clear()  # type: ignore[attr-defined]
    with connect(url) as sock:
        sock.sendall(first + get("/mark/b"))
        exchange = read_until_close(sock)
    assert [answer.status for answer in exchange.responses] == [200]
    assert exchange.closed
    assert app.seen == [path]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "second",
    [
        get("/mark/y", "Connection: close\r\n"),
        b"GET /mark/y HTTP/1.0\r\nHost: t\r\n\r\n",  # HTTP/1.0: closed after its answer
    ],
    ids=["close", "http-1.0"],
)
def test_pipelined_answers_come_in_order_when_the_second_closes(second: bytes) -> None:
    """The first answer waits in the loop's write batch; the second, written at once before
    the connection closes, must not overtake it (nor find it dropped with the connection).
    A server of its own: the shared one's connections leave the batch in another state."""
    app = make_app()
    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url, connect(url) as sock:
        sock.sendall(get("/mark/x") + second)
        exchange = read_until_close(sock)
    assert [answer.body for answer in exchange.responses] == [b"unset", b"unset"]
    assert exchange.closed
