"""app.run() takes Quart's signature: debug, use_reloader, ca_certs, certfile, keyfile."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import current_app, render_template

from aeros import WebServer
from aeros.errors import ConfigurationError
from aeros.server.runner import bind_socket
from tests.support.net import free_port


def _app(**kwargs: Any) -> WebServer:
    app = WebServer(__name__, access_log=False, **kwargs)

    @app.route("/")
    async def home() -> str:
        return f"debug={current_app.debug}"

    @app.route("/page")
    async def page() -> str:
        return await render_template("page.html")

    return app


@contextmanager
def _running(app: WebServer, *args: Any, **kwargs: Any) -> Iterator[str]:
    """``app.run(*args, **kwargs)`` in a thread on a free port; yields the base URL."""
    sock = bind_socket("127.0.0.1", 0, 128)
    started = threading.Event()
    urls: list[str] = []
    errors: list[BaseException] = []

    def on_started(url: str) -> None:
        urls.append(url)
        started.set()

    def target() -> None:
        try:
            app.run(*args, sock=sock, on_started=on_started, **kwargs)
        except BaseException as exc:
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        assert started.wait(10), "the server did not start"
        if errors:
            raise errors[0]
        yield urls[0]
    finally:
        app.stop()
        thread.join(10)
        sock.close()
    assert not thread.is_alive()


def test_app_run_debug_true_turns_on_debug_and_template_reload(tmp_path: Path) -> None:
    """run(debug=True) serves with Quart's debug mode on and templates reloaded when edited."""
    template = tmp_path / "page.html"
    template.write_text("first")
    app = _app(template_folder=str(tmp_path))
    with _running(app, debug=True) as url:
        assert httpx.get(url + "/").text == "debug=True"
        assert httpx.get(url + "/page").text == "first"
        template.write_text("second")
        later = time.time() + 5  # jinja compares mtimes: make the edit visibly newer
        os.utime(template, (later, later))
        assert httpx.get(url + "/page").text == "second"


def test_app_run_positional_third_argument_is_debug() -> None:
    """run("127.0.0.1", 0, True): True is Quart's debug, not aeros' workers."""
    app = _app()
    with _running(app, "127.0.0.1", 0, True) as url:
        assert httpx.get(url + "/").text == "debug=True"
    assert app.server_config.workers == 1


def test_app_run_quart_debug_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Quart, QUART_DEBUG=1 turns debug on for run() when debug is not given."""
    monkeypatch.setenv("QUART_DEBUG", "1")
    with _running(_app()) as url:
        assert httpx.get(url + "/").text == "debug=True"


def test_app_run_certfile_keyfile_serve_https(tmp_path: Path) -> None:
    """run(certfile=..., keyfile=...) serves HTTPS, as Quart's run does."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    app = _app()
    with _running(app, certfile=str(cert), keyfile=str(key), ca_certs=str(cert)) as url:
        assert url.startswith("https://127.0.0.1:")
        response = httpx.get(url + "/", verify=ssl.create_default_context(cafile=str(cert)))
    assert response.text == "debug=False"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"loop": object()}, ConfigurationError, r"run\(loop=", id="loop"),
        pytest.param(
            {"certfile": "cert.pem"}, ConfigurationError, "give both or neither", id="half-tls"
        ),
        pytest.param(
            {"ca_certs": __file__}, ConfigurationError, "needs certfile", id="ca-without-tls"
        ),
        pytest.param(
            {"certfile": "/nope.pem", "keyfile": "/nope.key"},
            ConfigurationError,
            r"run\(certfile='/nope.pem'\): no such file",
            id="missing-cert",
        ),
        pytest.param({"debug": "yes"}, ConfigurationError, r"run\(debug='yes'\)", id="debug-type"),
        pytest.param(
            {"use_reloader": 1},
            ConfigurationError,
            r"run\(use_reloader=1\) must be True or False",
            id="reloader-type",
        ),
        pytest.param({"threads": 4}, TypeError, "threads", id="unknown-kwarg"),
    ],
)
def test_app_run_refuses_what_it_cannot_do(kwargs, error, message) -> None:
    """Arguments run() cannot honour raise at once, naming the argument."""
    app = _app()
    with pytest.raises(error, match=message):
        app.run(**kwargs)
    assert app.stop() is False  # nothing was started


def test_app_run_reloader_outside_main_thread_is_refused() -> None:
    """run(use_reloader=True) needs the main thread (the reloader handles signals)."""
    app = _app()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            app.run(use_reloader=True)
        except ConfigurationError as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert "main thread" in str(errors[0])


SCRIPT = """\
import sys

from quart import current_app

from aeros import WebServer

app = WebServer(__name__, access_log=False)


@app.route("/")
async def home():
    return f"VERSION debug={current_app.debug}"


if __name__ == "__main__":
    app.run(port=int(sys.argv[1]), debug=True, use_reloader=True)
"""


def _get_text(url: str, deadline: float, proc: subprocess.Popen[str]) -> str:
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            return httpx.get(url, timeout=2).text
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.1)


def test_app_run_use_reloader_restarts_on_change(tmp_path: Path) -> None:
    """python app.py with run(debug=True, use_reloader=True) serves, reloads after an edit."""
    script = tmp_path / "reloadapp.py"
    script.write_text(SCRIPT.replace("VERSION", "v1"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        assert _get_text(url, time.monotonic() + 30, proc) == "v1 debug=True"
        script.write_text(SCRIPT.replace("VERSION", "v2"))
        deadline = time.monotonic() + 30
        while (text := _get_text(url, deadline, proc)) != "v2 debug=True":
            assert text == "v1 debug=True"
            assert time.monotonic() < deadline, "the server was not reloaded"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "reload: " in stderr


def test_app_run_through_quart_cli(tmp_path: Path) -> None:
    """`quart --app module run` (which calls app.run(debug=..., use_reloader=...)) serves."""
    (tmp_path / "quartcliapp.py").write_text(SCRIPT.replace("VERSION", "cli"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quart", "--app", "quartcliapp", "run", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = _get_text(f"http://127.0.0.1:{port}/", time.monotonic() + 30, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert text == "cli debug=False"
    assert proc.returncode == 0, stderr
