"""``--reload``: restart on source changes; templates re-read at once and their folders watched."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from quart import Blueprint

from aeros import WebServer
from aeros.server.reload import FOLDERS_ENV, _Watcher, app_folders, prepare_app
from tests.support.cli import start_cli, stop_cli, wait_for
from tests.support.net import free_port
from tests.support.server import alive, wait_until

APP_MODULE = textwrap.dedent(
    """
    import os

    from aeros import WebServer, render_template

    app = WebServer(__name__)

    @app.route("/")
    async def home():
        return "MESSAGE"

    @app.route("/pid")
    async def pid():
        return str(os.getpid())

    @app.route("/page")
    async def page():
        return await render_template("page.html", name="aeros")
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A project: reloadapp.py with templates/page.html and static/site.css."""
    (tmp_path / "reloadapp.py").write_text(APP_MODULE.replace("MESSAGE", "hello"))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>first {{ name }}</p>")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "site.css").write_text("body {}")
    return tmp_path


def test_reload_restarts_on_source_change(app_dir: Path) -> None:
    """--reload restarts the server when a .py file changes; SIGTERM stops both."""
    proc, url = start_cli(app_dir, "reloadapp:app", "--reload")
    try:
        wait_for(proc, lambda: httpx.get(url, timeout=2), lambda r: r.text == "hello")
        (app_dir / "reloadapp.py").write_text(APP_MODULE.replace("MESSAGE", "hello again"))
        wait_for(proc, lambda: httpx.get(url, timeout=2), lambda r: r.text == "hello again")
    finally:
        _, err = stop_cli(proc)
    assert proc.returncode == 0, err
    assert "reloadapp.py changed; restarting" in err


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX hang-up")
def test_reload_hangup_stops_the_server_and_cleans_up(
    app_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A terminal hang-up (SIGHUP to the whole process group) stops the reloader like SIGTERM:
    the server child, which ignores SIGHUP, is stopped too (not left serving as an orphan)
    and the reloader's scratch directory is removed."""
    scratch_root = tmp_path_factory.mktemp("reload_tmp")
    port = free_port()
    command = [sys.executable, "-m", "aeros", "run", "reloadapp:app", "--reload"]
    with (app_dir / "reloader.stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=app_dir,
            env={**os.environ, "NO_COLOR": "1", "TMPDIR": str(scratch_root)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    url = f"http://127.0.0.1:{port}/"
    child = 0
    try:
        child = int(
            wait_for(proc, lambda: httpx.get(url + "pid", timeout=2), lambda r: r.is_success).text
        )
        assert [path.name[:13] for path in scratch_root.iterdir()] == ["aeros-reload-"]
        os.killpg(proc.pid, signal.SIGHUP)
        assert proc.wait(40) == 0, (app_dir / "reloader.stderr").read_text()
        wait_until(lambda: not alive(child), 10, "the server child outlived its reloader")
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=2),
        ):
            pass
        assert list(scratch_root.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_reload_picks_up_template_changes(
    app_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With --reload an edited template is served; template and static folders are watched."""
    elsewhere = tmp_path_factory.mktemp("no_sources")  # no .py here: only templates can restart
    proc, url = start_cli(app_dir, "reloadapp:app", "--reload", "--reload-dir", str(elsewhere))

    def get(path: str) -> httpx.Response:
        return httpx.get(url + path, timeout=2)

    try:
        wait_for(proc, lambda: get("page"), lambda r: r.text == "<p>first aeros</p>")
        first_pid = get("pid").text
        (app_dir / "templates" / "page.html").write_text("<p>second {{ name }}</p>")
        wait_for(proc, lambda: get("page"), lambda r: r.text == "<p>second aeros</p>")
        # the folder outside --reload-dir is watched too: the server restarts
        second_pid = wait_for(proc, lambda: get("pid"), lambda r: r.text != first_pid).text
        (app_dir / "static" / "site.css").write_text("body { color: red }")
        wait_for(proc, lambda: get("pid"), lambda r: r.text not in {first_pid, second_pid})
        assert "red" in get("static/site.css").text
    finally:
        _, err = stop_cli(proc)
    assert proc.returncode == 0, err
    assert "page.html changed; restarting" in err
    assert "site.css changed; restarting" in err


def test_prepare_app_turns_on_template_reload(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a reloader child, templates auto-reload and the folders to watch are announced."""
    monkeypatch.chdir(app_dir)
    app = WebServer("reloadapp_unit", root_path=str(app_dir))
    bp_templates = app_dir / "bp_templates"
    bp_templates.mkdir()
    app.register_blueprint(Blueprint("bp", __name__, template_folder=str(bp_templates)))
    assert not app.jinja_env.auto_reload  # built before prepare_app, as in real apps
    folders_file = app_dir / "folders.json"
    prepare_app(app)  # outside a reloader child: nothing happens
    assert not folders_file.exists()
    monkeypatch.setenv(FOLDERS_ENV, str(folders_file))
    prepare_app(app)
    assert app.jinja_env.auto_reload is True
    assert app.config["TEMPLATES_AUTO_RELOAD"] is True
    assert json.loads(folders_file.read_text()) == [
        str(app_dir / "templates"),
        str(app_dir / "static"),
        str(bp_templates),
    ]


def test_app_folders_skip_missing_ones(tmp_path: Path) -> None:
    """Only template and static folders that exist are watched."""
    assert app_folders(WebServer("nothing_here", root_path=str(tmp_path))) == []


def test_watcher_takes_announced_folders_as_a_baseline(tmp_path: Path) -> None:
    """Files of newly announced folders are not changes; edits inside them later are."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "a.html").write_text("a")
    (tmp_path / "app.py").write_text("")
    folders_file = tmp_path / "folders.json"
    watcher = _Watcher([str(tmp_path / "src")], folders_file)
    assert watcher.poll() == []
    folders_file.write_text(json.dumps([str(templates)]))
    assert watcher.poll() == []  # a.html was there before: not a change
    (templates / "b.html").write_text("b")
    os.utime(templates / "a.html", (1, 1))
    assert watcher.poll() == [str(templates / "a.html"), str(templates / "b.html")]
    assert watcher.poll() == []
