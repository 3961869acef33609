"""Logging set-up: configuration checks, colour rules, queued handlers, fork, banner, routing."""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import ConfigurationError, SimpleCache, WebServer
from aeros.logging.access import log_access
from aeros.logging.config import LogConfig, configure_logging, log_banner
from aeros.logging.formatters import (
    AccessEntry,
    AccessFormatter,
    ConsoleFormatter,
    escape,
    use_color,
)
from tests.support.net import free_port, wait_for_port

ESC = "\x1b["


def aeros_handlers() -> list[logging.Handler]:
    return list(logging.getLogger("aeros").handlers)


# ---- LogConfig -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"level": "loud"}, ConfigurationError, "critical", id="level-name"),
        pytest.param({"level": -1}, ConfigurationError, "log_level", id="level-negative"),
        pytest.param({"level": True}, ConfigurationError, "log_level", id="level-bool"),
        pytest.param({"access_log_format": "apache"}, ConfigurationError, "combined", id="fmt"),
        pytest.param({"color": "yes"}, ConfigurationError, "color", id="color-type"),
        pytest.param({"access_log": 1}, ConfigurationError, "access_log", id="access-log-type"),
        pytest.param({"log_file": 3}, ConfigurationError, "log_file", id="log-file-type"),
    ],
)
def test_logconfig_refuses_bad_values(kwargs: dict[str, object], error: type, message: str) -> None:
    """Unknown levels/formats and wrong types are refused, naming what is allowed."""
    with pytest.raises(error, match=message):
        LogConfig(**kwargs)  # type: ignore[arg-type]


def test_logconfig_through_webserver() -> None:
    """WebServer(access_log_format=...) is checked at construction (a ValueError)."""
    with pytest.raises(ValueError, match="access_log_format='xml'"):
        WebServer(__name__, access_log_format="xml")


def test_logconfig_normalises_level_and_paths(tmp_path: Path) -> None:
    """Level names are case-insensitive; PathLike files become str."""
    config = LogConfig(level="WARNING", log_file=tmp_path / "x.log")  # type: ignore[arg-type]
    assert config.level == "warning"
    assert config.levelno == logging.WARNING
    assert config.log_file == str(tmp_path / "x.log")
    assert LogConfig(level=15).levelno == 15


# ---- colour ----------------------------------------------------------------------------


class FakeTTY:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("env", "tty", "color", "expected"),
    [
        pytest.param({}, True, None, True, id="tty"),
        pytest.param({}, False, None, False, id="pipe"),
        pytest.param({"NO_COLOR": "1"}, True, None, False, id="no-color-beats-tty"),
        pytest.param({"FORCE_COLOR": "1"}, False, None, True, id="force-color-beats-pipe"),
        pytest.param({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, None, False, id="no-beats-force"),
        pytest.param({"FORCE_COLOR": "0"}, False, None, False, id="force-color-zero"),
        pytest.param({"NO_COLOR": "1"}, False, True, True, id="color-true-forces"),
        pytest.param({"FORCE_COLOR": "1"}, True, False, False, id="color-false-forces"),
    ],
)
def test_use_color_precedence(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    tty: bool,
    color: bool | None,
    expected: bool,
) -> None:
    """color= forces; otherwise NO_COLOR > FORCE_COLOR > isatty."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert use_color(FakeTTY(tty), color) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "color", "coloured"),
    [
        pytest.param({}, None, False, id="captured-stream-is-plain"),
        pytest.param({"FORCE_COLOR": "1"}, None, True, id="force-color"),
        pytest.param({"FORCE_COLOR": "1", "NO_COLOR": "1"}, None, False, id="no-color"),
        pytest.param({"NO_COLOR": "1"}, True, True, id="color-true"),
    ],
)
def test_console_output_colour(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    color: bool | None,
    coloured: bool,
) -> None:
    """What configure_logging writes to the console is coloured exactly when the rules say."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    handle = configure_logging(LogConfig(color=color))
    try:
        logging.getLogger("aeros.test").warning("hello %s", "world")
    finally:
        handle.stop()
    err = capsys.readouterr().err
    assert "hello world" in err
    assert (ESC in err) is coloured


def test_console_formatter_escapes_messages() -> None:
    """A message cannot forge a line or send terminal escapes; tracebacks keep line breaks."""
    formatter = ConsoleFormatter(color=False)
    try:
        raise ValueError("bad \x1b[2J value")
    except ValueError:
        record = logging.LogRecord(
            "quart.app", logging.ERROR, "", 0, "Exception on %s", ("/a\x1b[31m\r\nFAKE",), None
        )
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    first, *rest = text.splitlines()
    assert first.endswith("ERROR    quart.app: Exception on /a\\x1b[31m\\r\\nFAKE")
    assert "\x1b" not in text
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad \\x1b[2J value"


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        pytest.param("plain /path?q=1", 100, "plain /path?q=1", id="plain"),
        pytest.param("a\x1b[31mb", 100, "a\\x1b[31mb", id="esc"),
        pytest.param("a\r\nb\x00", 100, "a\\x0d\\x0ab\\x00", id="crlf-nul"),
        pytest.param('q"\\', 100, "q\\x22\\x5c", id="quote-backslash"),
        pytest.param("\x9b\u2028\u202e", 100, "\\x9b\\u2028\\u202e", id="c1-separators-bidi"),
        pytest.param(b"caf\xc3\xa9\xff", 100, "caf\u00e9\\xff", id="utf8-and-bad-byte"),
        pytest.param("x" * 50, 10, "x" * 10 + "...[+40]", id="truncated"),
    ],
)
def test_escape_field(raw: str | bytes, limit: int, expected: str) -> None:
    """Untrusted fields are cut, then control characters and quotes are escaped."""
    assert escape(raw, limit) == expected


@pytest.mark.parametrize(
    ("method", "path", "query", "version"),
    [
        pytest.param("GET", b"/json", b"", "1.1", id="plain"),
        pytest.param("POST", b"/a/b", b"x=1&y=%22", "1.0", id="query"),
        pytest.param("GET", b'/q"\\x', b"", "1.1", id="quote-backslash"),
        pytest.param("GET", b"/caf\xc3\xa9\xff", b"a=\x1b[2J", "1.1", id="bad-byte-escape"),
        pytest.param("GET", b"/" + b"p" * 3000, b"q=1", "1.1", id="long-path"),
        pytest.param("M" * 40, b"/", b"", "1.1", id="long-method"),
        pytest.param("GET", b"/", b"", "1.1\r\nX", id="bad-version"),
        pytest.param("GET", "/str-path", b"", "1.1", id="str-path"),
    ],
)
def test_request_line_is_each_field_escaped(
    method: str, path: bytes | str, query: bytes, version: str
) -> None:
    """The access line's request, checked in one go when nothing needs escaping, is exactly
    what escaping each field gives."""
    entry = AccessEntry(("127.0.0.1", 1), method, path, query, version, 200, 0, 0.1, None)
    expected = f"{escape(method, 32)} {entry.target()} HTTP/{escape(version, 8)}"
    assert entry.request_line() == expected


def test_access_line_stamp_is_local_time_per_second() -> None:
    """The default line's time stamp is the record's local second (made once per second)."""
    now = time.time()
    for created in (now, now + 0.4, now + 1.2, now - 3600.7, now):
        line = AccessFormatter.line(
            AccessEntry(None, "GET", b"/", b"", "1.1", 200, 0, 0.1, None), "default", False, created
        )
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        assert line.startswith(f"{stamp}.{int(created % 1 * 1000):03d} "), line


def test_access_lines_are_written_without_a_flush_or_stop(tmp_path: Path) -> None:
    """The listener flushes its sinks once its queue is empty, not per line: a line logged
    reaches the file soon after, with nobody calling stop() or flushing."""
    path = tmp_path / "access.log"
    handle = configure_logging(LogConfig(access_log=True, access_log_file=str(path)))
    try:
        for n in range(3):
            log_access(AccessEntry(None, "GET", f"/{n}".encode(), b"", "1.1", 200, 0, 0.1, None))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and path.read_text().count("\n") < 3:
            time.sleep(0.01)
        assert [line.split('"')[1] for line in path.read_text().splitlines()] == [
            "GET /0 HTTP/1.1",
            "GET /1 HTTP/1.1",
            "GET /2 HTTP/1.1",
        ]
    finally:
        handle.stop()


def test_access_records_skip_the_logger_calls_only_when_nothing_else_would_see_them(
    tmp_path: Path,
) -> None:
    """With aeros' handlers alone, an access record is queued directly; a handler or filter of
    the user's on ``aeros.access`` (or the logger disabled) makes it take ``logger.handle``,
    so the user's handler sees every line and aeros' file gets the same lines either way."""
    from aeros.logging.access import ACCESS_LOGGER
    from aeros.logging.router import router

    path = tmp_path / "access.log"
    access = logging.getLogger(ACCESS_LOGGER)
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    def entry(n: int) -> AccessEntry:
        return AccessEntry(None, "GET", f"/{n}".encode(), b"", "1.1", 200, 0, 0.1, None)

    def queued_directly() -> bool:
        return router.put_access(entry(-1), access)

    handle = configure_logging(LogConfig(access_log=True, access_log_file=str(path)))
    collect = Collect()
    try:
        assert queued_directly()  # the probe's lines (/-1) are left out below
        access.disabled = True
        assert not queued_directly()
        access.disabled = False
        log_access(entry(0))
        access.addHandler(collect)
        assert not queued_directly()
        log_access(entry(1))
        access.removeHandler(collect)
        dropping = logging.Filter("nothing")  # passes only records of a logger named so
        access.addFilter(dropping)
        log_access(entry(2))
        access.removeFilter(dropping)
        log_access(entry(3))
    finally:
        access.disabled = False
        access.removeHandler(collect)
        handle.stop()
    assert [record.msg.path for record in seen] == [b"/1"]  # type: ignore[attr-defined]
    lines = [line.split('"')[1] for line in path.read_text().splitlines()]
    assert [line for line in lines if line != "GET /-1 HTTP/1.1"] == [
        "GET /0 HTTP/1.1",
        "GET /1 HTTP/1.1",
        "GET /3 HTTP/1.1",
    ]


def _listener_on_file(path: Path) -> Any:
    """A listener (not started) whose access sinks are stdout and the file ``path``."""
    from aeros.logging.config import _build_sinks
    from aeros.logging.listener import Listener

    server, access = _build_sinks(LogConfig(access_log=True, access_log_file=str(path)))
    return Listener(queue.SimpleQueue(), server, access)


def _entry(path: str) -> AccessEntry:
    entry = AccessEntry(None, "GET", path.encode(), b"", "1.1", 200, 0, 0.1, None)
    entry.created = time.time()
    return entry


def test_listener_batch_keeps_queue_order_between_entries_and_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entries of a batch are written as lines gathered per sink; a record between them (an
    access record that went through ``Logger.handle``) still lands between their lines."""
    from aeros.logging.access import ACCESS_LOGGER, _AccessRecord

    path = tmp_path / "access.log"
    listener = _listener_on_file(path)
    record = _AccessRecord(_entry("/record"))
    assert record.name == ACCESS_LOGGER
    try:
        assert listener.handle_batch([_entry("/0"), _entry("/1"), record, _entry("/2")])
    finally:
        for sink in listener.sinks:
            sink.close()
    targets = [line.split('"')[1] for line in path.read_text().splitlines()]
    assert targets == [f"GET /{name} HTTP/1.1" for name in ("0", "1", "record", "2")]
    assert path.read_text() in capsys.readouterr().out  # stdout got the same lines


def test_listener_writes_each_sink_the_lines_of_its_own_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With colour on, stdout's lines are coloured and the file's plain: a batch's lines are
    made once per format and each sink gets its own format's."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = tmp_path / "access.log"
    listener = _listener_on_file(path)
    assert len(listener.formats) == 2
    try:
        assert listener.handle_batch([_entry("/0"), _entry("/1")])
    finally:
        for sink in listener.sinks:
            sink.close()
    printed = capsys.readouterr().out.splitlines()
    written = path.read_text().splitlines()
    assert len(printed) == len(written) == 2
    assert all("\x1b[" in line for line in printed), printed
    assert not any("\x1b" in line for line in written), written


def test_listener_takes_nothing_queued_after_its_sentinel(tmp_path: Path) -> None:
    """A batch ends at stop()'s sentinel: what was queued after it stays for the next
    listener (a new configuration's), not taken and dropped by the one that ends."""
    path = tmp_path / "access.log"
    listener = _listener_on_file(path)
    later = _entry("/later")
    for item in (_entry("/0"), None, later):
        listener.source.put_nowait(item)
    try:
        listener._monitor()  # returns at the sentinel
    finally:
        for sink in listener.sinks:
            sink.close()
    assert [line.split('"')[1] for line in path.read_text().splitlines()] == ["GET /0 HTTP/1.1"]
    assert listener.source.get_nowait() is later


def test_listener_reports_a_failing_write_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sink whose stream fails gets logging's error report on stderr (as a failing emit
    does); the listener and its other sinks go on."""

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    path = tmp_path / "access.log"
    listener = _listener_on_file(path)
    stdout_sink = listener.writers[0][0]
    stdout_sink.stream = Broken()
    try:
        assert listener.handle_batch([_entry("/0")])
        assert listener.handle_batch([_entry("/1")])
    finally:
        for sink in listener.sinks:
            sink.close()
    assert "--- Logging error ---" in capsys.readouterr().err
    assert [line.split('"')[1] for line in path.read_text().splitlines()] == [
        "GET /0 HTTP/1.1",
        "GET /1 HTTP/1.1",
    ]


# ---- configure_logging: reference counting, threads, fork ----------------------------


def test_configure_logging_is_reference_counted() -> None:
    """Many configure calls share one handler and thread; the last stop removes both."""
    before_threads = set(threading.enumerate())
    before_handlers = aeros_handlers()
    before_propagate = logging.getLogger("uvicorn").propagate
    config = LogConfig(access_log=False)
    handles = []
    lock = threading.Lock()

    def configure() -> None:
        handle = configure_logging(config)
        with lock:
            handles.append(handle)

    workers = [threading.Thread(target=configure) for _ in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(aeros_handlers()) == len(before_handlers) + 1
    assert len(set(threading.enumerate()) - before_threads) == 1  # one listener thread
    for handle in handles[:-1]:
        handle.stop()
    assert len(aeros_handlers()) == len(before_handlers) + 1
    handles[-1].stop()
    handles[-1].stop()  # idempotent
    assert aeros_handlers() == before_handlers
    assert set(threading.enumerate()) - before_threads == set()
    assert logging.getLogger("uvicorn").propagate is before_propagate  # restored


def test_twenty_servers_leave_no_handler_or_thread(live_server) -> None:
    """Starting and stopping 20 servers with logging on leaves no handler or thread behind."""
    app = WebServer(__name__, access_log=True)

    @app.route("/")
    async def home() -> str:
        return "ok"

    before_threads = {t for t in threading.enumerate() if t.is_alive()}
    before_handlers = aeros_handlers()
    for _ in range(20):
        with live_server(app) as url:
            assert httpx.get(url + "/").status_code == 200
    deadline = time.monotonic() + 5
    while {t for t in threading.enumerate() if t.is_alive()} - before_threads:
        assert time.monotonic() < deadline, threading.enumerate()
        time.sleep(0.02)
    assert aeros_handlers() == before_handlers


def test_latest_configuration_wins_and_is_restored(tmp_path: Path) -> None:
    """With two configurations active the newest writes; stopping it restores the older."""
    first = configure_logging(LogConfig(log_file=str(tmp_path / "first.log"), access_log=False))
    log = logging.getLogger("aeros.test")
    try:
        log.info("one")
        second = configure_logging(
            LogConfig(log_file=str(tmp_path / "second.log"), access_log=False)
        )
        log.info("two")
        second.stop()
        log.info("three")
    finally:
        first.stop()
    assert re.findall(r": (\w+)$", (tmp_path / "first.log").read_text(), re.M) == ["one", "three"]
    assert re.findall(r": (\w+)$", (tmp_path / "second.log").read_text(), re.M) == ["two"]


def test_stop_writes_everything_queued(tmp_path: Path) -> None:
    """Records logged before stop() are on disk when stop() returns (no lost tail)."""
    handle = configure_logging(LogConfig(log_file=str(tmp_path / "s.log"), access_log=False))
    log = logging.getLogger("aeros.test")
    for n in range(500):
        log.info("line %d", n)
    handle.stop()
    lines = (tmp_path / "s.log").read_text().splitlines()
    assert len(lines) == 500
    assert lines[-1].endswith("aeros.test: line 499")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_configure_logging_again_in_forked_child(tmp_path: Path) -> None:
    """A forked worker configures logging afresh (the parent's thread does not exist there)."""
    parent = configure_logging(LogConfig(log_file=str(tmp_path / "parent.log"), access_log=False))
    log = logging.getLogger("aeros.test")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: what worker_init does
            code = 1
            try:
                child = configure_logging(
                    LogConfig(log_file=str(tmp_path / "child.log"), access_log=False)
                )
                log.info("from child")
                child.stop()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        log.info("from parent")
    finally:
        parent.stop()
    assert (tmp_path / "child.log").read_text().count("from child") == 1
    parent_text = (tmp_path / "parent.log").read_text()
    assert "from parent" in parent_text
    assert "from child" not in parent_text


def test_foreign_uvicorn_handlers_set_aside_and_restored(tmp_path: Path) -> None:
    """uvicorn's own handlers (from its dictConfig) are set aside while aeros logs: no doubles."""
    foreign_stream = io.StringIO()
    foreign = logging.StreamHandler(foreign_stream)
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(foreign)
    try:
        handle = configure_logging(LogConfig(log_file=str(tmp_path / "s.log"), access_log=False))
        logging.getLogger("uvicorn.error").info("once")
        handle.stop()
        assert foreign in uvicorn_logger.handlers
    finally:
        uvicorn_logger.removeHandler(foreign)
    assert (tmp_path / "s.log").read_text().count("aeros.server: once") == 1
    assert foreign_stream.getvalue() == ""


# ---- banner, routing, tracebacks, sync views --------------------------------------------


def test_banner_names_address_workers_cache_compression(tmp_path: Path) -> None:
    """The start-up banner is one line with the address, workers, cache store and codecs."""
    handle = configure_logging(LogConfig(log_file=str(tmp_path / "b.log"), access_log=False))
    try:
        log_banner("http://127.0.0.1:8000", 4, SimpleCache(), ())
        log_banner("http://[::1]:9000", 1, None, None)
    finally:
        handle.stop()
    lines = (tmp_path / "b.log").read_text().splitlines()
    assert lines[0].endswith(
        "aeros: serving on http://127.0.0.1:8000 (workers: 4, cache: SimpleCache, compression: off)"
    )
    assert lines[1].endswith("(workers: 1, cache: off, compression: off)")


def test_server_log_routes_uvicorn_quart_and_banner(live_server, tmp_path: Path) -> None:
    """uvicorn's messages, the banner and a failing view's traceback reach log_file."""
    log_file = tmp_path / "server.log"
    app = WebServer(__name__, access_log=False, log_file=str(log_file), cache=SimpleCache())

    @app.route("/boom")
    async def boom() -> str:
        raise RuntimeError("view failed")

    with live_server(app) as url:
        assert httpx.get(url + "/boom").status_code == 500
    text = log_file.read_text()
    assert re.search(r"INFO     aeros\.server: Application startup complete", text)
    assert re.search(
        rf"INFO     aeros: serving on {re.escape(url)} \(workers: 1, cache: SimpleCache, "
        r"compression: [a-z, ]+\)",
        text,
    )
    assert re.search(r"ERROR    \S+: Exception on request GET /boom\nTraceback", text)
    assert "RuntimeError: view failed" in text
    assert logging.getLogger(app.name).handlers == []  # removed again after the run


APP_WITH_FAILING_VIEW = textwrap.dedent(
    """
    import os, sys
    from aeros import WebServer
    app = WebServer("failing", port=int(sys.argv[1]))

    @app.route("/boom")
    async def boom():
        raise RuntimeError("view failed")

    @app.route("/sync")
    def sync_view():
        return "sync"

    app.run_server()
    """
)


def test_tracebacks_to_stderr_access_to_stdout(tmp_path: Path) -> None:
    """A failing view's traceback goes to stderr, access lines to stdout; sync note once."""
    script = tmp_path / "failing.py"
    script.write_text(APP_WITH_FAILING_VIEW)
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for_port("127.0.0.1", port, time.monotonic() + 15)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/boom").status_code == 500
        assert [httpx.get(base + "/sync").text for _ in range(3)] == ["sync"] * 3
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: view failed" in err
    assert "Traceback" not in out
    assert re.search(r'"GET /boom HTTP/1.1" 500 ', out)
    assert len(re.findall(r'"GET /sync HTTP/1.1" 200 ', out)) == 3
    assert err.count("sync_view is synchronous: Quart runs it in a thread pool") == 1
    assert ESC not in out + err  # not a terminal, NO_COLOR: plain


@pytest.mark.parametrize("option", ["log_file", "access_log_file"])
def test_unwritable_log_file_is_refused_cleanly(tmp_path: Path, option: str) -> None:
    """A log file that cannot be opened is a ConfigurationError naming it; nothing is left over."""
    before = aeros_handlers()
    bad = str(tmp_path / "missing-dir" / "x.log")
    with pytest.raises(ConfigurationError, match=f"{option}=.*cannot be opened"):
        configure_logging(LogConfig(**{option: bad}))  # type: ignore[arg-type]
    assert aeros_handlers() == before
    handle = configure_logging(LogConfig(log_file=str(tmp_path / "ok.log"), access_log=False))
    logging.getLogger("aeros.test").info("still works")
    handle.stop()
    assert "still works" in (tmp_path / "ok.log").read_text()
