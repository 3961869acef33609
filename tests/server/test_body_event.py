"""The cycle's body event, set and read in place by aeros' server (uvicorn's
``on_message_complete``, ``Event.set``/``is_set``/``clear`` with no call), behaves as uvicorn's
calls do, over real HTTP, with the steps made in place and with the calls: a body that comes
after the app asked for it wakes the app, a ``receive`` still waiting when the response ends
gets ``http.disconnect``, and a keep-alive connection serves one request after another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aeros import WebServer
from aeros.server.http import cycle, events, starts

from .hardening.wire import connect, read_responses


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _answer(send: Any, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_app(seen: list[str], kinds: list[str]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert not send.__self__.access_log  # the cycle's own send, not uvicorn's
        kinds.append(type(send.__self__.message_event).__name__)
        body = await _body(receive)
        if scope["path"] == "/echo":
            await _answer(send, body)
            return
        # /pending: a receive waits (the body is all in) while the response goes out
        waiting = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)  # it waits on the body event now
        assert not waiting.done()
        await _answer(send, b"answered")
        message = await asyncio.wait_for(waiting, 2)
        seen.append(message["type"])

    return app


@pytest.fixture(params=["in place", "called"])
def served(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    if request.param == "called":  # uvicorn's on_message_complete and asyncio's own Event
        monkeypatch.setattr(starts, "UVICORNS_MESSAGE_COMPLETE", False)
        monkeypatch.setattr(starts, "MESSAGE_EVENT", asyncio.Event)
        monkeypatch.setattr(cycle, "PLAIN_EVENT", False)
    seen: list[str] = []
    kinds: list[str] = []  # the class of each request's body event
    app = WebServer(__name__, access_log=False)
    app.asgi_app = make_app(seen, kinds)  # type: ignore[method-assign]  # served as it is
    expected = "BodyEvent" if request.param == "in place" else "Event"

    @contextmanager
    def serve() -> Iterator[tuple[str, list[str]]]:
        # started by the test, not here: a server started while a fixture is set up logs
        # to pytest's handlers of that phase, and uvicorn's access log would then be on
        with app.serve_in_thread() as url:
            yield url, seen
        assert kinds
        assert set(kinds) == {expected}

    return serve


@pytest.mark.parametrize(
    ("framing", "first", "rest"),
    [
        ("content-length: 10", b"01234", b"56789"),
        # the last chunk ends the message with no body bytes: only its end wakes the app
        ("transfer-encoding: chunked", b"5\r\n01234\r\n5\r\n56789\r\n", b"0\r\n\r\n"),
    ],
    ids=["length", "chunked"],
)
def test_a_body_that_comes_after_the_app_asked_wakes_it(
    served: Any, framing: str, first: bytes, rest: bytes
) -> None:
    with served() as (url, _):
        sock = connect(url)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + framing.encode() + b"\r\n\r\n" + first)
        time.sleep(0.2)  # the app waits for the rest
        sock.sendall(rest)
        [response] = read_responses(sock, 1)
        sock.close()
    assert (response.status, response.body) == (200, b"0123456789")


def test_a_receive_waiting_when_the_response_ends_gets_a_disconnect(served: Any) -> None:
    with served() as (url, seen):
        sock = connect(url)
        sock.sendall(b"GET /pending HTTP/1.1\r\nHost: x\r\n\r\n")
        [response] = read_responses(sock, 1)
        deadline = time.monotonic() + 3
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.close()
    assert (response.status, response.body) == (200, b"answered")
    assert seen == ["http.disconnect"]


def test_requests_one_after_another_on_a_connection(served: Any) -> None:
    with served() as (url, _):
        sock = connect(url)
        answers = []
        for number in range(3):
            body = str(number).encode() * 3
            head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
            sock.sendall(head + body)
            answers += read_responses(sock, 1)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        answers += read_responses(sock, 1)
        sock.close()
    assert [(answer.status, answer.body) for answer in answers] == [
        (200, b"000"),
        (200, b"111"),
        (200, b"222"),
        (200, b""),
    ]


def test_the_steps_are_made_in_place_with_the_uvicorn_and_python_installed() -> None:
    """The in-place steps are what runs: uvicorn's on_message_complete reads the names it
    did when they were written, and asyncio's Event keeps its plain state. A new uvicorn or
    Python that changes either falls back to the calls (correct, but slower): this says so."""
    assert events.PLAIN_EVENT
    assert starts.UVICORNS_MESSAGE_COMPLETE
