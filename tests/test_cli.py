"""The command line: ``aeros run module:app`` and ``python -m aeros`` serve an app module."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aeros import WebServer
from aeros.cli import (
    AppSpecError,
    _apply_log_options,
    build_parser,
    child_command,
    import_app,
    main,
)
from conftest import free_port, get_when_ready

APP_MODULE = textwrap.dedent(
    """
    from aeros import WebServer

    app = WebServer(__name__, port=1)  # the command line's --port wins

    @app.route("/")
    async def home():
        return "MESSAGE"

    not_an_app = 42
    """
)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding clidemo.py, an app module, and broken_dep.py (forgotten after)."""
    (tmp_path / "clidemo.py").write_text(APP_MODULE.replace("MESSAGE", "hello from cli"))
    (tmp_path / "broken_dep.py").write_text("import module_that_does_not_exist_xyz\n")
    monkeypatch.setattr(sys, "path", list(sys.path))  # import_app prepends the app dir
    sys.modules.pop("clidemo", None)
    yield tmp_path
    sys.modules.pop("clidemo", None)


def test_parser_reads_every_option() -> None:
    """Every documented option reaches the parsed arguments."""
    args = build_parser().parse_args(
        [
            "run",
            "pkg.web:app",
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--workers",
            "4",
            "--reload",
            "--log-level",
            "debug",
            "--no-access-log",
            "--access-log-format",
            "json",
            "--access-log-file",
            "a.log",
            "--log-file",
            "s.log",
            "--color",
        ]
    )
    assert (args.app, args.host, args.port, args.workers) == ("pkg.web:app", "0.0.0.0", 9000, 4)
    assert (args.reload, args.log_level, args.access_log, args.color) == (
        True,
        "debug",
        False,
        True,
    )
    assert (args.access_log_format, args.access_log_file, args.log_file) == (
        "json",
        "a.log",
        "s.log",
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["run", "m:app", "--port", "70000"], id="port-range"),
        pytest.param(["run", "m:app", "--port", "http"], id="port-type"),
        pytest.param(["run", "m:app", "--workers", "0"], id="workers"),
        pytest.param(["run", "m:app", "--log-level", "loud"], id="level"),
        pytest.param(["run", "m:app", "--access-log-format", "xml"], id="format"),
        pytest.param(["run"], id="no-app"),
        pytest.param([], id="no-command"),
    ],
)
def test_parser_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad values exit with status 2 and a usage message."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "usage: aeros" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("clidemo", "must be 'module:attribute'", id="no-colon"),
        pytest.param(":app", "must be 'module:attribute'", id="no-module"),
        pytest.param("nosuchmodule_xyz:app", "no module named 'nosuchmodule_xyz'", id="no-module"),
        pytest.param("clidemo:missing", "has no attribute 'missing'", id="no-attribute"),
        pytest.param("clidemo:not_an_app", "'int', not an aeros.WebServer", id="not-an-app"),
    ],
)
def test_import_app_explains_bad_specs(app_dir: Path, spec: str, message: str) -> None:
    """A spec that names no WebServer is refused with a message saying why."""
    with pytest.raises(AppSpecError, match=message):
        import_app(spec, str(app_dir))


def test_import_app_keeps_the_apps_own_import_errors(app_dir: Path) -> None:
    """A module the app imports that is missing is the app's bug: its error is kept."""
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist_xyz"):
        import_app("broken_dep:app", str(app_dir))


def test_import_app_returns_the_webserver(app_dir: Path) -> None:
    """module:attribute resolves to the WebServer object."""
    assert isinstance(import_app("clidemo:app", str(app_dir)), WebServer)


def test_main_reports_bad_spec(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main() turns a bad spec into exit status 2 and one clear line."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "clidemo:missing", "--app-dir", str(app_dir)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "aeros: error: app 'clidemo:missing': module 'clidemo' has no attribute 'missing'"
    )


def test_log_options_override_only_what_is_given() -> None:
    """Options left out keep the app's own log configuration."""
    app = WebServer(__name__, access_log_format="combined", log_level="warning")
    _apply_log_options(
        app,
        build_parser().parse_args(["run", "m:app", "--access-log-file", "x.log", "--no-color"]),
    )
    config = app.log_config
    assert (config.access_log_format, config.level) == ("combined", "warning")
    assert (config.access_log_file, config.color) == ("x.log", False)


def test_reload_child_command_drops_reload() -> None:
    """--reload runs the same command without --reload in a child process."""
    assert child_command(["run", "m:app", "--reload", "--port", "1"]) == [
        sys.executable,
        "-m",
        "aeros",
        "run",
        "m:app",
        "--port",
        "1",
    ]


def start(app_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aeros", "run", "clidemo:app", "--port", str(port), *extra],
        cwd=app_dir,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}/"


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_serves_an_app_module(app_dir: Path) -> None:
    """python -m aeros run module:app --port N serves the app with the chosen access format."""
    proc, url = start(app_dir, "--access-log-format", "common")
    response = get_when_ready(proc, url, time.monotonic() + 30)
    out, err = stop(proc)
    assert response.text == "hello from cli"
    assert proc.returncode == 0, err
    assert f"aeros: serving on {url.rstrip('/')} (workers: 1" in err
    assert '"GET / HTTP/1.1" 200 14' in out


def test_cli_reload_restarts_on_change(app_dir: Path) -> None:
    """--reload restarts the server when a source file changes; SIGTERM stops both."""
    proc, url = start(app_dir, "--reload")
    try:
        assert get_when_ready(proc, url, time.monotonic() + 30).text == "hello from cli"
        (app_dir / "clidemo.py").write_text(APP_MODULE.replace("MESSAGE", "hello again"))
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=2).text == "hello again":
                    break
            except httpx.TransportError:
                pass  # between the old server and the new one
            assert time.monotonic() < deadline, "not reloaded in time"
            time.sleep(0.1)
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    assert "reload: " in err
    assert "clidemo.py changed; restarting" in err


def test_run_hands_overrides_to_run_server(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run module:app passes --host/--port/--workers to run_server and nothing it was not given."""
    calls: list[dict[str, object]] = []

    def fake_run_server(self: WebServer, **kwargs: object) -> None:
        calls.append({"app": self, **kwargs})

    monkeypatch.setattr(WebServer, "run_server", fake_run_server)
    status = main(
        ["run", "clidemo:app", "--app-dir", str(app_dir), "--port", "9", "--workers", "3"]
    )
    (call,) = calls
    assert status == 0
    assert call == {"app": sys.modules["clidemo"].app, "host": None, "port": 9, "workers": 3}


def test_python_dash_m_aeros_is_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m aeros runs the same command line (here: --version)."""
    monkeypatch.setattr(sys, "argv", ["aeros", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("aeros", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("aeros ")
