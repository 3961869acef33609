"""LeanCycle writes responses byte for byte as uvicorn's RequestResponseCycle does.

It writes head and first body in one write, and a head whose body does not follow within one
loop iteration alone; the bytes on the wire, the errors and the framing state are uvicorn's.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from aeros.middleware.headers import DefaultLines, GlobalHeaders
from aeros.server.http import cycle as cycle_module
from aeros.server.http import events as events_module
from aeros.server.http import head as head_module
from aeros.server.http import uvicorn_init
from aeros.server.http.cycle import LeanCycle
from aeros.types import HEADER_LINES, RESPONSE_DONE
from tests.support.cycle import DATE, Flow, Transport, make


def state(cycle: Any) -> tuple[Any, ...]:
    return (
        b"".join(cycle.transport.written),
        cycle.chunked_encoding,
        cycle.expected_content_length,
        cycle.keep_alive,
        cycle.response_started,
        cycle.response_complete,
        cycle.transport.closed,
    )


HEADS = {
    "json": (200, [(b"content-type", b"application/json"), (b"content-length", b"27")]),
    "hit": (
        200,
        [
            (b"content-type", b"application/json"),
            (b"etag", b'W/"9c97"'),
            (b"vary", b"accept-encoding"),
            (b"content-length", b"27"),
            (b"server", b"aeros"),
            (b"age", b"3"),
        ],
    ),
    "no-length": (200, [(b"content-type", b"text/plain")]),
    "chunked": (200, [(b"Transfer-Encoding", b"Chunked")]),
    "te-other": (200, [(b"transfer-encoding", b"gzip"), (b"content-length", b"5")]),
    "length-then-chunked": (200, [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]),
    # json's Content-Length, remembered by then (_LENGTHS): still ignored after chunked
    "chunked-then-length": (200, [(b"transfer-encoding", b"chunked"), (b"content-length", b"27")]),
    "close": (200, [(b"Connection", b"keep-alive, Close"), (b"content-length", b"0")]),
    "mixed-case": (201, [(b"X-Custom", b"Value"), (b"CONTENT-LENGTH", b"2")]),
    "list-pairs": (200, [[b"x-list", b"1"], [b"content-length", b"1"]]),
    "no-content": (204, [(b"x-a", b"")]),
    "not-modified": (304, [(b"etag", b'"a"')]),
    "none": (200, None),
    "long": (200, [(b"x-long", b"v" * 600), (b"content-length", b"0")]),
    # a length, though a wrong one: never taken for "no Content-Length" by a remembered head
    "negative-length": (200, [(b"content-type", b"text/plain"), (b"content-length", b"-1")]),
    "negative-length-204": (204, [(b"content-length", b"-1")]),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("name", list(HEADS))
async def test_head_bytes_and_state_match_uvicorn(name: str, method: str, keep_alive: bool) -> None:
    """Same bytes and framing state, on a first sight of each header, on remembered ones and
    on a remembered head."""
    status, headers = HEADS[name]
    message: dict[str, Any] = {"type": "http.response.start", "status": status}
    if headers is not None:
        message["headers"] = headers
    # the second round reads the remembered lines (and remembers the head), the third the head
    for _ in range(3):
        ours = make(LeanCycle, method=method, keep_alive=keep_alive)
        theirs = make(RequestResponseCycle, method=method, keep_alive=keep_alive)
        await ours.send(dict(message))
        await theirs.send(dict(message))
        await asyncio.sleep(0)  # a head whose body does not follow goes out on its own
        assert state(ours) == state(theirs)
        assert ours.transport.writes == 1


@pytest.mark.parametrize(
    "pair",
    [
        (b"x bad", b"v"),
        (b"x-bad:", b"v"),
        (b"x-ok", b"v\r\nset-cookie: a=1"),
        (b"x-ok", b"v\x00"),
    ],
)
async def test_invalid_headers_are_refused_every_time(pair: tuple[bytes, bytes]) -> None:
    """An invalid header raises as in uvicorn, and is never remembered as checked."""
    message = {"type": "http.response.start", "status": 200, "headers": [pair]}
    with pytest.raises(RuntimeError, match="Invalid HTTP header") as theirs:
        await make(RequestResponseCycle).send(dict(message))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Invalid HTTP header") as ours:
            await make(LeanCycle).send(dict(message))
        assert str(ours.value) == str(theirs.value)
    assert pair not in head_module._LINES


async def test_remembered_lines_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables of checked lines and of checked Content-Length values empty themselves at
    their limit; framing headers never enter the first."""
    monkeypatch.setattr(head_module, "_LINES", {})
    monkeypatch.setattr(head_module, "_LENGTHS", {})
    monkeypatch.setattr(head_module, "_LINES_LIMIT", 8)
    for i in range(20):
        headers = [(b"x-n", str(i).encode()), (b"content-length", str(i).encode())]
        await make(LeanCycle).send(
            {"type": "http.response.start", "status": 200, "headers": headers}
        )
        assert len(head_module._LINES) <= 8
        assert len(head_module._LENGTHS) <= 8
    assert all(name != b"content-length" for name, _ in head_module._LINES)
    assert (b"x-n", b"19") in head_module._LINES
    assert head_module._LENGTHS[(b"content-length", b"19")] == (b"content-length: 19\r\n", 19)


async def test_a_remembered_length_after_chunked_is_ignored_as_uvicorn_does() -> None:
    """A Content-Length remembered from an earlier response still leaves a chunked one
    chunked, as uvicorn ignores any Content-Length after Transfer-Encoding."""
    length = (b"content-length", b"31")
    await make(LeanCycle).send({"type": "http.response.start", "status": 200, "headers": [length]})
    assert length in head_module._LENGTHS
    message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"transfer-encoding", b"chunked"), length],
    }
    ours, theirs = make(LeanCycle), make(RequestResponseCycle)
    await ours.send(dict(message))
    await theirs.send(dict(message))
    await asyncio.sleep(0)
    assert state(ours) == state(theirs)
    assert ours.chunked_encoding is True


LENGTH_5 = [(b"content-length", b"5")]
RESPONSES = {
    "whole": (LENGTH_5, [(b"hello", False)]),
    "empty": ([(b"content-length", b"0")], [(b"", False)]),
    "no-body-key": ([(b"content-length", b"0")], [(None, False)]),
    "large": ([(b"content-length", b"40000")], [(b"x" * 40000, False)]),
    "in-parts": (LENGTH_5, [(b"he", True), (b"llo", False)]),
    "chunked": ([], [(b"abc", True), (b"", True), (b"de", False)]),
    "chunked-empty": ([], [(b"", False)]),
    "longer": (LENGTH_5, [(b"hello!", False)]),
    "shorter": (LENGTH_5, [(b"hell", False)]),
    "start-twice": (LENGTH_5, [("start", False)]),
}


async def play(cycle: Any, headers: Any, bodies: Any) -> str | None:
    """Send one response; return the error it raised, if any."""
    try:
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        for body, more in bodies:
            if body == "start":
                await cycle.send({"type": "http.response.start", "status": 200})
                continue
            message: dict[str, Any] = {"type": "http.response.body", "more_body": more}
            if body is not None:
                message["body"] = body
            await cycle.send(message)
    except RuntimeError as exc:
        return str(exc)
    finally:
        await asyncio.sleep(0)
    return None


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("name", list(RESPONSES))
async def test_whole_responses_match_uvicorn(name: str, method: str, keep_alive: bool) -> None:
    """Same bytes, errors, completion and close as uvicorn; head and first body in one write."""
    headers, bodies = RESPONSES[name]
    ours = make(LeanCycle, method=method, keep_alive=keep_alive)
    theirs = make(RequestResponseCycle, method=method, keep_alive=keep_alive)
    ours_error = await play(ours, headers, bodies)
    assert ours_error == await play(theirs, headers, bodies)
    assert state(ours) == state(theirs)
    # one write fewer wherever uvicorn wrote a head and then body bytes
    merged = method == "GET" and name not in ("longer", "start-twice")
    assert ours.transport.writes == theirs.transport.writes - merged


def whole_body(headers: Any) -> bytes:
    """A body for one of HEADS' heads: as long as its Content-Length says, if it has one."""
    for name, value in headers or ():
        if bytes(name).lower() == b"content-length":
            return b"x" * int(value)
    return b"abc"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("name", [*HEADS, "longer", "shorter"])
async def test_send_whole_writes_what_the_two_messages_write(
    name: str, method: str, keep_alive: bool
) -> None:
    """``send_whole(status, headers, body)`` (a caller holding the whole response) leaves the
    bytes, errors, framing state and completion that uvicorn's send of the start and the
    body messages leaves, in one write; on a first sight of the pairs and on remembered ones."""
    if name in ("longer", "shorter"):
        status, headers = 200, LENGTH_5
        body = b"hello!" if name == "longer" else b"hell"
    else:
        status, headers = HEADS[name]
        body = whole_body(headers)
    for _ in range(3):
        ours = make(LeanCycle, method=method, keep_alive=keep_alive)
        theirs = make(RequestResponseCycle, method=method, keep_alive=keep_alive)
        errors = []
        try:
            assert ours.send_whole(status, headers, body) is True
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            start: dict[str, Any] = {"type": "http.response.start", "status": status}
            if headers is not None:
                start["headers"] = headers
            await theirs.send(start)
            await theirs.send({"type": "http.response.body", "body": body})
        except RuntimeError as exc:
            errors.append(str(exc))
        await asyncio.sleep(0)
        assert len(errors) in (0, 2), errors  # both raise, or neither
        assert len(set(errors)) <= 1, errors
        assert state(ours) == state(theirs)
        assert ours.transport.writes == 1
        assert ours.status == status


@pytest.mark.parametrize("why", ["started", "access-log", "disconnected", "paused"])
async def test_send_whole_declines_where_send_must_take_the_messages(why: str) -> None:
    """A response already started, the server's access log, a client gone or paused writes:
    ``send_whole`` returns False having written and changed nothing, so the caller sends the
    two messages through ``send``."""
    cycle = make(LeanCycle)
    if why == "started":
        await cycle.send({"type": "http.response.start", "status": 200, "headers": LENGTH_5})
    elif why == "access-log":
        cycle.access_log = True
    elif why == "disconnected":
        cycle.disconnected = True
    else:
        pause_writes(cycle, True)
    before = (state(cycle), cycle.status, cycle.body_size)
    assert cycle.send_whole(200, LENGTH_5, b"hello") is False
    assert (state(cycle), cycle.status, cycle.body_size) == before


async def test_a_head_without_its_body_goes_out_after_one_loop_iteration() -> None:
    """A stream that waits before its first chunk still shows its headers at once."""
    cycle = make(LeanCycle)
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    assert cycle.transport.written == []
    await asyncio.sleep(0)
    assert cycle.transport.written[0].startswith(b"HTTP/1.1 200 OK\r\n")
    await cycle.send({"type": "http.response.body", "body": b"x", "more_body": True})
    assert cycle.transport.written[1:] == [b"1\r\nx\r\n"]


async def test_a_pending_head_is_dropped_for_a_gone_client() -> None:
    """Nothing is written once the client disconnected or the transport is closing."""
    gone, closing = make(LeanCycle), make(LeanCycle)
    for cycle in (gone, closing):
        await cycle.send({"type": "http.response.start", "status": 200, "headers": LENGTH_5})
    gone.disconnected = True
    closing.transport.close()
    await asyncio.sleep(0)
    await gone.send({"type": "http.response.body", "body": b"hello"})
    assert gone.transport.written == []
    assert closing.transport.written == []


async def test_paused_writing_flushes_the_head_and_waits_as_uvicorn_does() -> None:
    """With the client's buffer full the head goes out and uvicorn's send drains first."""
    cycle = make(LeanCycle)
    drained: list[bool] = []

    async def drain() -> None:
        drained.append(True)
        cycle.flow.write_paused = False

    cycle.flow = Flow()
    cycle.flow.drain = drain
    await cycle.send({"type": "http.response.start", "status": 200, "headers": LENGTH_5})
    cycle.flow.write_paused = True
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    assert drained == [True]
    assert b"".join(cycle.transport.written).endswith(b"\r\n\r\nhello")
    assert cycle.response_complete


def test_stream_headers_arrive_before_a_late_first_chunk(live_server) -> None:
    """Over a real socket: a streamed response's head is not held back for its first chunk,
    and a whole response arrives complete."""
    import socket
    import threading
    import time
    from urllib.parse import urlsplit

    from aeros import WebServer

    app = WebServer(__name__, access_log=False)
    release = threading.Event()

    @app.route("/stream")
    async def stream() -> object:
        async def chunks():  # type: ignore[no-untyped-def]
            while not release.is_set():  # bounded by the test's own deadline below
                await asyncio.sleep(0.01)
            yield b"late"

        return chunks(), 200, {"content-type": "text/plain"}

    @app.route("/whole")
    async def whole() -> str:
        return "whole body"

    with live_server(app) as url:
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            received = b""
            deadline = time.monotonic() + 5
            try:
                while b"\r\n\r\n" not in received and time.monotonic() < deadline:
                    received += sock.recv(4096)
            finally:
                release.set()
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"late" not in received  # the head came while the view still waited
            sock.sendall(b"GET /whole HTTP/1.1\r\nHost: t\r\n\r\n")
            while not received.endswith(b"whole body"):
                chunk = sock.recv(4096)
                assert chunk, received
                received += chunk
        assert b"4\r\nlate\r\n" in received


async def test_batched_responses_are_written_after_the_iteration_in_order() -> None:
    """With a WriteBatch, complete keep-alive responses go out together, each as uvicorn's."""
    from aeros.server.http.writes import WriteBatch

    batch = WriteBatch()
    ours = [make(LeanCycle) for _ in range(3)]
    theirs = [make(RequestResponseCycle) for _ in range(3)]
    for cycle in ours:
        cycle.writes = batch
    for n, (mine, uvicorns) in enumerate(zip(ours, theirs, strict=True)):
        for cycle in (mine, uvicorns):
            headers = [(b"content-length", b"1")]
            await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
            await cycle.send({"type": "http.response.body", "body": str(n).encode()})
    assert all(cycle.response_complete and not cycle.transport.written for cycle in ours)
    assert len(batch.pending) == 3
    await asyncio.sleep(0)
    assert batch.pending == []
    assert [state(cycle) for cycle in ours] == [state(cycle) for cycle in theirs]


async def test_batch_skips_closing_transports_and_never_holds_a_closing_response() -> None:
    """A client gone before the flush gets nothing; Connection: close is written at once."""
    from aeros.server.http.writes import WriteBatch

    batch = WriteBatch()
    gone, closing = make(LeanCycle), make(LeanCycle, keep_alive=False)
    for cycle in (gone, closing):
        cycle.writes = batch
        await cycle.send({"type": "http.response.start", "status": 200, "headers": LENGTH_5})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
    assert closing.transport.closed
    assert b"".join(closing.transport.written).endswith(b"hello")
    gone.transport.close()
    batch.flush()
    assert gone.transport.written == []


async def test_a_failing_write_costs_only_its_own_connection(caplog) -> None:
    """A transport that raises is aborted and logged; the responses behind it still go out."""
    from aeros.server.http.writes import WriteBatch

    class Broken(Transport):
        aborted = False

        def write(self, data: bytes) -> None:
            raise RuntimeError("handler is closed")

        def abort(self) -> None:
            self.aborted = True

    batch = WriteBatch()
    broken, fine = Broken(), Transport()
    batch.add(broken, b"a")  # type: ignore[arg-type]
    batch.add(fine, b"b")  # type: ignore[arg-type]
    batch.flush()
    assert broken.aborted
    assert fine.written == [b"b"]
    assert "writing a response failed" in caplog.text


def test_a_loop_that_served_is_not_kept_alive_by_its_batch() -> None:
    """batch_for keys batches weakly by loop; the batch must not hold its loop."""
    import gc
    import weakref

    from aeros.server.http.writes import batch_for

    loop = asyncio.new_event_loop()
    batch_for(loop)
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None


def pause_writes(cycle: Any, paused: bool) -> None:
    """Give ``cycle`` a flow whose writing is ``paused`` (uvicorn's own send then runs and
    waits on ``drain``, which resumes it) or not (LeanCycle's own head)."""

    async def drain() -> None:
        cycle.flow.write_paused = False

    cycle.flow = Flow()
    cycle.flow.drain = drain
    cycle.flow.write_paused = paused


@pytest.mark.parametrize("paused", [False, True])
async def test_header_lines_of_the_scope_go_into_the_head_on_both_paths(paused: bool) -> None:
    """Lines a layer put in ``scope[HEADER_LINES]`` are written with the head, by LeanCycle's
    own head (not paused) and through uvicorn's send (paused), once each; an item may hold
    several lines (the app-wide rate limit writes both of its fields as one item)."""
    cycle = make(LeanCycle)
    cycle.scope[HEADER_LINES] = [
        b"x-request-id: abc\r\n",
        b'ratelimit-policy: "app";q=5;w=60\r\nratelimit: "app";r=1;t=60\r\n',
    ]

    pause_writes(cycle, paused)
    await cycle.send({"type": "http.response.start", "status": 200, "headers": LENGTH_5})
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    written = b"".join(cycle.transport.written)
    head = written.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\r\nx-request-id: abc") == 1
    assert head.count(b'\r\nratelimit-policy: "app";q=5;w=60\r\n') == 1
    assert head.count(b'\r\nratelimit: "app";r=1;t=60') == 1
    assert written.endswith(b"\r\n\r\nhello")


@pytest.mark.parametrize("paused", [False, True], ids=["lean-head", "uvicorn-send"])
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (LENGTH_5, [b"server: aeros", b"x-frame-options: DENY"]),
        ([*LENGTH_5, (b"Server", b"mine")], [b"Server: mine", b"x-frame-options: DENY"]),
        (
            [(b"x-frame-options", b"SAMEORIGIN"), *LENGTH_5],
            [b"x-frame-options: SAMEORIGIN", b"server: aeros"],
        ),
    ],
    ids=["none-set", "one-set-mixed-case", "other-set"],
)
async def test_global_header_lines_give_way_to_the_responses_own(
    paused: bool, headers: list[tuple[bytes, bytes]], expected: list[bytes]
) -> None:
    """The global headers' item of ``scope[HEADER_LINES]`` (``DefaultLines``) is written
    less every name the response sets itself, on both paths; the other items stay."""
    cycle = make(LeanCycle)
    defaults = GlobalHeaders([(b"server", b"aeros"), (b"x-frame-options", b"DENY")]).lines
    cycle.scope[HEADER_LINES] = [b"x-request-id: abc\r\n", defaults]

    pause_writes(cycle, paused)
    await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    head = b"".join(cycle.transport.written).split(b"\r\n\r\n", 1)[0].lower()
    fields = [line for line in head.split(b"\r\n")[1:] if not line.startswith(b"date:")]
    assert sorted(fields) == sorted(
        [line.lower() for line in expected] + [b"x-request-id: abc", b"content-length: 5"]
    )


@pytest.mark.parametrize("paused", [False, True], ids=["lean-head", "uvicorn-send"])
async def test_headers_given_as_an_iterator_are_read_once(paused: bool) -> None:
    """ASGI lets ``headers`` be any iterable: given as a generator, every field the response
    sets is written, and a global header the response sets itself is not written again."""
    cycle = make(LeanCycle)
    defaults = GlobalHeaders([(b"server", b"aeros"), (b"x-frame-options", b"DENY")]).lines
    cycle.scope[HEADER_LINES] = [defaults]
    own = [(b"x-frame-options", b"SAMEORIGIN"), (b"x-own", b"1"), *LENGTH_5]

    pause_writes(cycle, paused)
    await cycle.send(
        {"type": "http.response.start", "status": 200, "headers": (pair for pair in own)}
    )
    await cycle.send({"type": "http.response.body", "body": b"hello"})
    head = b"".join(cycle.transport.written).split(b"\r\n\r\n", 1)[0].lower()
    fields = [line for line in head.split(b"\r\n")[1:] if not line.startswith(b"date:")]
    assert sorted(fields) == sorted(
        [b"x-frame-options: sameorigin", b"x-own: 1", b"content-length: 5", b"server: aeros"]
    )


async def test_a_remembered_line_of_a_global_name_is_checked_again_once_registered() -> None:
    """A pair remembered before global headers named it (another app, an earlier response)
    is forgotten as soon as they are made; from then on a response setting that name keeps
    its own value alone, and one that does not gets the global line, every time."""
    own = (b"x-aeros-test-global", b"mine")
    first = make(LeanCycle)  # remembered while no global header has this name
    await first.send({"type": "http.response.start", "status": 200, "headers": [own, *LENGTH_5]})
    assert own in head_module._LINES
    defaults = GlobalHeaders([(b"x-aeros-test-global", b"default")]).lines
    assert own not in head_module._LINES  # forgotten before any response carries them
    heads = []
    for headers in ([own, *LENGTH_5], [own, *LENGTH_5], LENGTH_5, [own, *LENGTH_5]):
        cycle = make(LeanCycle)
        cycle.scope[HEADER_LINES] = [defaults]
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        heads.append(b"".join(cycle.transport.written).split(b"\r\n\r\n", 1)[0])
    assert own not in head_module._LINES
    mine, default = b"\r\nx-aeros-test-global: mine", b"\r\nx-aeros-test-global: default"
    assert [(head.count(mine), head.count(default)) for head in heads] == [
        (1, 0),
        (1, 0),
        (0, 1),
        (1, 0),
    ]


async def test_a_remembered_head_is_used_once_whole_and_dropped_when_a_global_name_comes() -> None:
    """A head whose every pair was remembered is remembered whole (the same status, default
    and own pairs then cost one lookup), and gives the same bytes and framing as the lines did.
    When global headers name one of its fields it is dropped, then remembered again noting
    that it sets a global name: read back, the response's own value replaces the global
    line, as for a head never seen."""
    own = (b"x-aeros-test-head", b"mine")
    headers = [own, (b"content-type", b"text/plain"), *LENGTH_5]
    key = (200, *DATE, *headers)
    written = []
    for _ in range(3):  # lines remembered, then the head, then the head read back
        cycle = make(LeanCycle)
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        written.append(b"".join(cycle.transport.written))
        assert (cycle.chunked_encoding, cycle.expected_content_length) == (False, 0)
    assert head_module._HEADS[key][1] == 5
    assert written[0] == written[1] == written[2]
    assert written[2].count(b"\r\nx-aeros-test-head: mine\r\n") == 1
    defaults = GlobalHeaders([(b"x-aeros-test-head", b"default")]).lines
    assert key not in head_module._HEADS
    for _ in range(4):  # the global name's line checked, remembered, then the head, read back
        cycle = make(LeanCycle)
        cycle.scope[HEADER_LINES] = [defaults]
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        head = b"".join(cycle.transport.written).split(b"\r\n\r\n", 1)[0]
        assert head.count(b"\r\nx-aeros-test-head: mine") == 1
        assert b"x-aeros-test-head: default" not in head
    assert head_module._HEADS[key][2] is True  # read back with the note that it sets one


async def test_a_head_carrying_global_headers_as_pairs_is_remembered_whole() -> None:
    """A cache hit carries the global headers among its own pairs (no global lines in the
    scope): its head is remembered whole like any other, though the names are global, and
    written with each field once."""
    name = b"x-aeros-test-hit-" + os.urandom(4).hex().encode()
    GlobalHeaders([(name, b"default")])  # the name is a global header's from now on
    headers = [(b"content-type", b"text/plain"), (name, b"default"), *LENGTH_5]
    key = (200, *DATE, *headers)
    heads = []
    for _ in range(3):  # the lines checked, then the head remembered, then read back
        cycle = make(LeanCycle)
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        heads.append(b"".join(cycle.transport.written).split(b"\r\n\r\n", 1)[0])
    assert key in head_module._HEADS
    assert heads[0] == heads[1] == heads[2]
    assert heads[2].count(b"\r\n" + name + b": default") == 1


async def test_remembered_heads_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of remembered heads empties itself at its limit; a head with a pair seen
    for the first time, or an unhashable one, is never remembered."""
    monkeypatch.setattr(head_module, "_HEADS", {})
    monkeypatch.setattr(head_module, "_HEADS_LIMIT", 4)
    for i in range(10):
        headers = [(b"x-bound", str(i).encode()), *LENGTH_5]
        for _ in range(2):
            await make(LeanCycle).send(
                {"type": "http.response.start", "status": 200, "headers": headers}
            )
        assert 1 <= len(head_module._HEADS) <= 4
    assert (200, *DATE, (b"x-bound", b"9"), *LENGTH_5) in head_module._HEADS
    for headers in ([(b"x-first-seen", b"1")], [[b"x-list", b"1"]], [(b"x-ba", bytearray(b"1"))]):
        head_module._HEADS.clear()
        await make(LeanCycle).send(
            {"type": "http.response.start", "status": 200, "headers": headers}
        )
        assert head_module._HEADS == {}


async def test_a_global_name_registered_by_another_thread_mid_check_is_not_remembered() -> None:
    """Two apps in one process (threads): between one server's check of a new pair's name and
    its store of the line, the other thread makes global headers of that name, which sweeps
    the remembered lines. The pair must not stay remembered, or that server's responses
    setting the name would never drop the global line (two fields of one name)."""
    name = b"x-aeros-test-raced-" + os.urandom(4).hex().encode()  # new in every run
    own = (name, b"mine")
    made: list[DefaultLines] = []

    class RegisterOnSizeCheck(dict):  # type: ignore[type-arg]
        """The remembered lines; the size check before the store of ``own`` is where the
        other thread makes its global headers (as a thread switch there would let it)."""

        storing: tuple[bytes, bytes] | None = None

        def __len__(self) -> int:
            if self.storing == own and not made:
                self.storing = None  # the sweep sizes the table too
                made.append(GlobalHeaders([(name, b"default")]).lines)
            return super().__len__()

    real_new_line = LeanCycle._new_line

    table = RegisterOnSizeCheck()

    def new_line(cycle: Any, pair: tuple[bytes, bytes]) -> tuple[bytes, bool]:
        table.storing = pair
        return real_new_line(cycle, pair)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(head_module, "_LINES", table)
        patched.setattr(LeanCycle, "_new_line", new_line)
        cycle = make(LeanCycle)
        await cycle.send(
            {"type": "http.response.start", "status": 200, "headers": [own, *LENGTH_5]}
        )
        assert made
        assert own not in head_module._LINES
    later = make(LeanCycle)
    later.scope[HEADER_LINES] = [made[0]]
    await later.send({"type": "http.response.start", "status": 200, "headers": [own, *LENGTH_5]})
    await later.send({"type": "http.response.body", "body": b"hello"})
    head = b"".join(later.transport.written).split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\r\n" + name + b": ") == 1
    assert b"\r\n" + name + b": mine" in head


@pytest.mark.parametrize("paused", [False, True], ids=["lean-head", "uvicorn-send"])
async def test_response_done_callbacks_get_the_status_and_bytes_sent(
    paused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """When the request's task ends, each ``(callback, scope)`` in ``scope[RESPONSE_DONE]`` is
    called with its own scope, the status and the body bytes sent, on both send paths; one that
    raises is logged and the next still runs."""
    cycle = make(LeanCycle)
    reports: list[tuple[Any, int, int]] = []

    def failing(scope: Any, status: int, size: int) -> None:
        raise ValueError("broken callback")

    def report(scope: Any, status: int, size: int) -> None:
        reports.append((scope, status, size))

    own = {"a layer's copy": True}
    cycle.scope[RESPONSE_DONE] = [(failing, cycle.scope), (report, own)]

    pause_writes(cycle, paused)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": LENGTH_5})
        await send({"type": "http.response.body", "body": b"he", "more_body": True})
        await send({"type": "http.response.body", "body": b"llo"})

    await cycle.run_asgi(app)
    assert reports == [(own, 201, 5)]
    assert reports[0][0] is own
    assert "a response-done callback failed" in caplog.text


async def test_response_done_reports_the_servers_500_for_an_app_that_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that raises before starting a response: the callbacks see the 500 uvicorn sent."""
    cycle = make(LeanCycle)
    cycle.logger = cycle_module.logger
    reports: list[tuple[int, int]] = []
    cycle.scope[RESPONSE_DONE] = [
        (lambda scope, status, size: reports.append((status, size)), cycle.scope)
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    await cycle.run_asgi(app)
    assert reports == [(500, len(b"Internal Server Error"))]


@pytest.mark.parametrize("kind", [bytearray, memoryview])
async def test_a_header_value_of_another_bytes_type_is_written(kind: Any) -> None:
    """A header value given as a bytearray or memoryview (unhashable: the table of checked
    lines cannot hold it) is checked and written as uvicorn writes it, every time."""
    for _ in range(2):
        cycle = make(LeanCycle)
        headers = [(b"content-length", b"5"), (b"x-kind", kind(b"some value"))]
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        written = b"".join(cycle.transport.written)
        assert b"\r\nx-kind: some value\r\n" in written
        assert written.endswith(b"\r\n\r\nhello")


def _arguments() -> dict[str, Any]:
    return {
        "scope": {"type": "http", "method": "GET"},
        "transport": Transport(),
        "flow": Flow(),
        "logger": None,
        "access_logger": None,
        "access_log": True,
        "default_headers": list(DATE),
        "message_event": asyncio.Event(),
        "expect_100_continue": True,
        "keep_alive": False,
        "on_response": lambda: None,
    }


def _attributes(cycle: Any) -> dict[str, Any]:
    theirs = vars(RequestResponseCycle(**_arguments()))
    return {
        name: bytes(value) if isinstance(value, bytearray) else value
        for name in theirs
        for value in [getattr(cycle, name)]
    }


UVICORNS_STATE = {
    "scope",
    "transport",
    "flow",
    "logger",
    "access_logger",
    "access_log",
    "default_headers",
    "message_event",
    "on_response",
    "disconnected",
    "keep_alive",
    "waiting_for_100_continue",
    "body",
    "more_body",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
}


def test_a_cycle_made_by_position_has_uvicorns_state() -> None:
    """The protocol makes each cycle with positional arguments (LeanCycle's own __init__, in
    _PARAMETERS' order): every attribute uvicorn's __init__ sets reads the same, and each
    cycle gets a body buffer of its own."""
    arguments = _arguments()
    assert tuple(arguments) == cycle_module._PARAMETERS
    own = LeanCycle.__init__ is not cycle_module._uvicorns_init
    assert own == cycle_module._same_state()
    if set(vars(RequestResponseCycle(**arguments))) <= UVICORNS_STATE:  # what uvicorn 0.55 sets
        assert own  # the state LeanCycle's __init__ and class give: it is used
    for init in (LeanCycle.__init__, cycle_module._uvicorns_init):  # and the fallback
        made = LeanCycle.__new__(LeanCycle)
        init(made, *arguments.values())
        expected = RequestResponseCycle(**arguments)
        assert _attributes(made) == _attributes(expected)
        other = LeanCycle.__new__(LeanCycle)
        init(other, *arguments.values())
        assert made.body is not other.body
        # aeros' own state too, whichever __init__ made it
        first = cycle_module._FIRST_VALUES
        assert {"writes", "status", "body_size", "_head", "response_started"} <= set(first)
        assert {name: vars(made)[name] for name in first} == first


def test_the_fallback_cycle_has_aeros_state_whatever_uvicorns_init_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LeanCycle's first values are known without uvicorn's __init__ (one that reads its
    arguments cannot be probed with placeholders), and the fallback sets those uvicorn's
    __init__ leaves unset: its cycle answers a request."""
    uvicorns = RequestResponseCycle.__init__

    def reading(self: Any, **kwargs: Any) -> None:
        kwargs["scope"]["method"]  # an __init__ that uses an argument
        uvicorns(self, **kwargs)

    monkeypatch.setattr(RequestResponseCycle, "__init__", reading)
    placeholders = {name: object() for name in cycle_module._PARAMETERS}
    assert uvicorn_init.made(LeanCycle, **placeholders) is None  # the import-time probe would fail
    assert uvicorn_init.first_values(LeanCycle, cycle_module._PARAMETERS) == (
        cycle_module._FIRST_VALUES
    )
    made = LeanCycle.__new__(LeanCycle)
    given = vars(make(LeanCycle))  # make's arguments, under uvicorn's names
    cycle_module._uvicorns_init(made, *(given[name] for name in _ARGUMENT_NAMES))
    for name, value in cycle_module._FIRST_VALUES.items():
        assert getattr(made, name) == value, name
    assert made.send_whole(200, [(b"content-length", b"2")], b"ok")
    assert b"".join(made.transport.written).endswith(b"\r\n\r\nok")
    assert made.response_complete


# LeanCycle's parameters as the attributes they are stored in (uvicorn's names but one)
_ARGUMENT_NAMES = [
    "waiting_for_100_continue" if name == "expect_100_continue" else name
    for name in cycle_module._PARAMETERS
]


async def test_no_class_attribute_shadows_a_cycles_state() -> None:
    """Every attribute a cycle has once its response went out (one whole, one in two
    messages, one answered in place) was set by __init__, and none is also a class
    attribute: on Python 3.12+ a load or store of a shadowed instance attribute is never
    specialized (a generic lookup through the type each time)."""
    whole, started, answered = cycles = [make(LeanCycle) for _ in range(3)]
    first = [set(vars(cycle)) for cycle in cycles]
    assert whole.send_whole(200, [(b"content-length", b"2")], b"ok")
    await started.send({"type": "http.response.start", "status": 200, "headers": []})
    await started.send({"type": "http.response.body", "body": b"ok"})
    answered.answered_in_place(413)
    for cycle, before in zip(cycles, first, strict=True):
        assert set(vars(cycle)) == before
        shadowed = [
            attribute
            for attribute in vars(cycle)
            if any(attribute in vars(kind) for kind in LeanCycle.__mro__)
        ]
        assert shadowed == []


async def test_the_body_event_is_asyncios_with_its_waiters_made_at_the_first_wait() -> None:
    """BodyEvent behaves as asyncio.Event (set, clear, is_set, wait before and after set,
    several waiters, a cancelled waiter) and makes its waiter queue only when awaited."""
    assert events_module.MESSAGE_EVENT is events_module.BodyEvent  # asyncio's Event as known
    for cls in (asyncio.Event, events_module.BodyEvent):
        event = cls()
        assert not event.is_set()
        event.set()
        event.set()
        assert event.is_set()
        assert await event.wait() is True
        if cls is events_module.BodyEvent:
            assert "_waiters" not in vars(event)  # set and awaited when set: no queue made
        event.clear()
        waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
        cancelled = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0)
        assert not any(waiter.done() for waiter in waiters)
        cancelled.cancel()
        await asyncio.sleep(0)
        assert len(event._waiters) == 3  # type: ignore[attr-defined]
        event.set()
        assert await asyncio.gather(*waiters) == [True, True, True]
        assert len(event._waiters) == 0  # type: ignore[attr-defined]
        assert "set" in repr(event)
