"""The command line: ``aeros run APP`` and ``python -m aeros``: options, environment, errors."""

from __future__ import annotations

import dataclasses
import runpy
import shutil
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aeros import WebServer
from aeros.cli import (
    AppSpecError,
    _subparser,
    build_parser,
    child_command,
    import_app,
    log_options,
    main,
    parse_arguments,
    server_options,
)
from aeros.server.config import Limits, ServerConfig
from aeros.server.serve import serve_app
from tests.support.cli import start_cli, stop_cli, wait_for
from tests.support.net import require

APP_MODULE = textwrap.dedent(
    """
    from aeros import WebServer
    from quart import request

    app = WebServer(__name__, port=1)  # the command line's --port wins

    @app.route("/")
    async def home():
        return "MESSAGE"

    @app.route("/peer", methods=["GET", "POST"])
    async def peer():
        await request.get_data()
        return f"{request.scheme} {request.remote_addr}"

    not_an_app = 42
    """
)

RAW_MODULE = textwrap.dedent(
    """
    async def app(scope, receive, send):  # a bare ASGI app, no lifespan support
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        body = f"{scope['scheme']} {scope['client'][0]}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding clidemo.py and rawdemo.py (app modules) and broken_dep.py."""
    (tmp_path / "clidemo.py").write_text(APP_MODULE.replace("MESSAGE", "hello from cli"))
    (tmp_path / "rawdemo.py").write_text(RAW_MODULE)
    (tmp_path / "broken_dep.py").write_text("import module_that_does_not_exist_xyz\n")
    monkeypatch.setattr(sys, "path", list(sys.path))  # import_app prepends the app dir
    sys.modules.pop("clidemo", None)
    yield tmp_path
    sys.modules.pop("clidemo", None)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 made with openssl: (certfile, keyfile)."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(str(openssl), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


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
        parse_arguments(argv, {})
    assert exit_info.value.code == 2
    assert "usage: aeros" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(":app", "must be 'module', 'module:attribute'", id="no-module-name"),
        pytest.param("nosuchmodule_xyz:app", "no module named 'nosuchmodule_xyz'", id="no-module"),
        pytest.param("clidemo:missing", "has no attribute 'missing'", id="no-attribute"),
        pytest.param("clidemo:not_an_app", "'int', not an ASGI app", id="not-an-app"),
    ],
)
def test_import_app_explains_bad_specs(app_dir: Path, spec: str, message: str) -> None:
    """A spec that names no app is refused with a message saying why."""
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
    assert main(["run", "clidemo:missing", "--app-dir", str(app_dir)]) == 2
    assert capsys.readouterr().err == (
        "aeros: error: app 'clidemo:missing': module 'clidemo' has no attribute 'missing'\n"
    )


def test_log_options_override_only_what_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options left out keep the app's own log configuration."""
    served: list[WebServer] = []
    monkeypatch.setattr(WebServer, "run_server", lambda self, **kwargs: served.append(self))
    app = WebServer(__name__, access_log_format="combined", log_level="warning")
    args = parse_arguments(["run", "m:app", "--access-log-file", "x.log", "--no-color"], {})
    serve_app(app, server_options(args), log_options(args))
    config = app.log_config
    assert served == [app]
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


def test_cli_serves_an_app_module(app_dir: Path) -> None:
    """python -m aeros run module:app --port N serves the app with the chosen access format."""
    proc, url = start_cli(app_dir, "clidemo:app", "--access-log-format", "common")
    try:
        response = wait_for(proc, lambda: httpx.get(url, timeout=2), lambda r: True)
    finally:
        out, err = stop_cli(proc)
    assert response.text == "hello from cli"
    assert proc.returncode == 0, err
    assert f"aeros: serving on {url.rstrip('/')} (workers: 1" in err
    assert '"GET / HTTP/1.1" 200 14' in out


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


# ---- item: errors name the option; every option has help and an AEROS_* variable --------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        pytest.param(
            ["--port", "abc"], "argument --port: must be 0 to 65535; got 'abc'", id="port-text"
        ),
        pytest.param(
            ["--port", "70000"], "argument --port: must be 0 to 65535; got '70000'", id="port"
        ),
        pytest.param(
            ["--workers", "two"],
            "argument --workers: must be an integer >= 1; got 'two'",
            id="workers",
        ),
        pytest.param(
            ["--graceful-timeout", "-1"],
            "argument --graceful-timeout: must be seconds >= 0; got '-1'",
            id="timeout",
        ),
        pytest.param(
            ["--keep-alive-timeout", "nan"],
            "argument --keep-alive-timeout: must be seconds >= 0; got 'nan'",
            id="nan",
        ),
        pytest.param(
            ["--max-body-size", "1e6"],
            "argument --max-body-size: must be an integer >= 1; got '1e6'",
            id="limit",
        ),
        pytest.param(
            ["--ssl-certfile", "/no/such.pem"],
            "argument --ssl-certfile: no such file: '/no/such.pem'",
            id="certfile",
        ),
        pytest.param(
            ["--forwarded-allow-ips", "10.0.0.1,proxy"],
            "argument --forwarded-allow-ips: 'proxy' is not an IP address, a network or '*'",
            id="ips",
        ),
    ],
)
def test_cli_errors_name_the_option(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits 2 with one line naming the option, the value and what is allowed."""
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["run", "m:app", *argv], {})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"aeros run: error: {line}" in err
    assert "invalid _" not in err  # never the name of a private converter


def test_cli_tls_files_go_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A certificate without its key, an unloadable pair or a CA bundle without them is refused
    naming the options."""
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    with pytest.raises(SystemExit):
        parse_arguments(["run", "m:app", "--ssl-certfile", str(cert)], {})
    assert "--ssl-certfile and --ssl-keyfile go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_arguments(
            ["run", "m:app", "--ssl-certfile", str(cert), "--ssl-keyfile", str(cert)], {}
        )
    assert "--ssl-certfile/--ssl-keyfile: cannot load" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_arguments(["run", "m:app", "--ssl-ca-certs", str(cert)], {})
    assert "--ssl-ca-certs needs --ssl-certfile and --ssl-keyfile" in capsys.readouterr().err


def test_cli_help_documents_every_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """aeros run --help lists every server option WebServer has, each with help and its variable."""
    monkeypatch.setenv("COLUMNS", "400")  # one option a line, nothing wrapped
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    # the answer headers are no options: WebServer makes them from its global headers
    server_fields = {f.name for f in dataclasses.fields(ServerConfig)}
    server_fields -= {"backend", "limits", "answer_headers", "https_answer_headers"}
    for name in sorted(server_fields | {f.name for f in dataclasses.fields(Limits)}):
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"[env: AEROS_{name.upper()}]" in text, name
    for action in _subparser(build_parser(), "run")._actions:
        assert action.help, action.dest
        assert not action.help.startswith("None"), action.dest
        if action.dest != "help":
            assert f"[env: AEROS_{action.dest.upper()}]" in text, action.dest


def test_cli_environment_gives_defaults() -> None:
    """AEROS_* variables fill what the command line left out; the command line wins."""
    environ = {
        "AEROS_APP": "pkg.web:create_app()",
        "AEROS_PORT": "9000",
        "AEROS_WORKERS": "4",
        "AEROS_ACCESS_LOG": "off",
        "AEROS_PROXY_HEADERS": "1",
        "AEROS_GRACEFUL_TIMEOUT": "2.5",
        "AEROS_MAX_BODY_SIZE": "1024",
        "AEROS_LOG_LEVEL": "debug",
        "AEROS_RELOAD_DIR": f"src{':' if sys.platform != 'win32' else ';'}templates",
        "AEROS_HOST": "",  # empty: unset
    }
    args = parse_arguments(["run", "--workers", "2"], environ)
    assert (args.app, args.port, args.workers, args.host) == ("pkg.web:create_app()", 9000, 2, None)
    assert (args.access_log, args.proxy_headers, args.graceful_timeout) == (False, True, 2.5)
    assert (args.max_body_size, args.log_level, args.reload_dir) == (
        1024,
        "debug",
        ["src", "templates"],
    )
    assert parse_arguments(["run", "other:app"], environ).app == "other:app"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("AEROS_PORT", "abc", "must be 0 to 65535; got 'abc'", id="port"),
        pytest.param("AEROS_WORKERS", "0", "must be an integer >= 1; got '0'", id="workers"),
        pytest.param("AEROS_LOG_LEVEL", "loud", "invalid choice 'loud'", id="choice"),
        pytest.param("AEROS_PROXY_HEADERS", "maybe", "must be true or false", id="flag"),
    ],
)
def test_cli_bad_environment_names_the_variable(
    variable: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad AEROS_* value exits 2 with one line naming the variable."""
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["run", "m:app"], {variable: value})
    assert exit_info.value.code == 2
    assert f"aeros run: error: environment variable {variable}: {message}" in (
        capsys.readouterr().err
    )


def test_cli_needs_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    """Without APP and AEROS_APP the command says what to give."""
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["run"], {})
    assert exit_info.value.code == 2
    assert "give the app to serve (APP" in capsys.readouterr().err


def test_cli_server_options_reach_the_webserver(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server and limit options given are applied to the app's config; the rest is kept."""
    monkeypatch.setattr(WebServer, "run_server", lambda self, **kwargs: None)
    argv = ["run", "clidemo:app", "--app-dir", str(app_dir), "--backlog", "64"]
    argv += ["--keep-alive-timeout", "0.5", "--max-concurrent-requests", "7"]
    argv += ["--worker-healthcheck-timeout", "3", "--no-freeze-gc", "--header-timeout", "4"]
    argv += ["--max-form-parts", "5"]
    assert main(argv) == 0
    app = sys.modules["clidemo"].app
    config = app.server_config
    # a limit that is also Quart's is Quart's too, so the app and the server agree
    assert (config.limits.max_form_parts, app.config["MAX_FORM_PARTS"]) == (5, 5)
    assert (config.backlog, config.keep_alive_timeout, config.max_concurrent_requests) == (
        64,
        0.5,
        7,
    )
    assert (config.worker_healthcheck_timeout, config.freeze_gc) == (3.0, False)
    assert (config.limits.header_timeout, config.limits.max_body_size) == (
        4.0,
        Limits().max_body_size,
    )
    assert (config.port, config.graceful_timeout) == (1, 30.0)  # the app's own, not given


@pytest.mark.parametrize("spec", ["clidemo:app", "rawdemo"])
def test_cli_serves_tls_proxy_headers_and_limits(
    app_dir: Path, certificate: tuple[str, str], spec: str
) -> None:
    """TLS, proxy-header and limit options (command line and AEROS_*) reach any served app."""
    cert, key = certificate
    proc, url = start_cli(
        app_dir,
        spec,
        "--ssl-certfile",
        cert,
        "--proxy-headers",
        "--forwarded-allow-ips",
        "127.0.0.1",
        env={"AEROS_SSL_KEYFILE": key, "AEROS_MAX_BODY_SIZE": "10", "AEROS_PORT": "1"},
    )
    url = url.replace("http://", "https://") + ("peer" if spec == "clidemo:app" else "")
    context = ssl.create_default_context(cafile=cert)
    forwarded = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    try:
        response = wait_for(
            proc,
            lambda: httpx.get(url, headers=forwarded, verify=context, timeout=2),
            lambda r: True,
        )
        small = httpx.post(url, content=b"0123456789", verify=context, timeout=5)
        large = httpx.post(url, content=b"01234567890", verify=context, timeout=5)
    finally:
        _, err = stop_cli(proc)
    assert (response.status_code, response.text) == (200, "https 203.0.113.7"), err
    assert (small.status_code, small.text) == (200, "https 127.0.0.1")
    assert large.status_code == 413
