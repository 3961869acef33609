"""Development reloader: run the server in a child process and restart it when files change.

The parent (:func:`run_with_reloader`) never imports the app: it watches ``.py`` files under
the given directories, plus every file under the template and static folders the child
announces once its app is built (:func:`prepare_app`), and restarts the child on a change.
In the child, :func:`prepare_app` also turns Jinja's template auto-reload on, so an edited
template is rendered fresh at once, even before the restart.

``aeros run --reload`` uses it with the command line minus ``--reload``; a script can run
itself again with :func:`current_command` (``[sys.executable, *original arguments]``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from aeros.logging.config import LogConfig, configure_logging

__all__ = [
    "FOLDERS_ENV",
    "app_folders",
    "current_command",
    "is_reloader_child",
    "prepare_app",
    "run_with_reloader",
]

logger = logging.getLogger("aeros.reload")

FOLDERS_ENV = "AEROS_RELOAD_FOLDERS_FILE"
"""Set in the child: the file where it writes the folders it wants watched (JSON list)."""

_SKIPPED_DIRS = frozenset({"venv", "node_modules", "__pycache__"})

# SIGHUP too: a closed terminal (an ssh disconnect) sends it to the whole foreground group, and
# the server child ignores it by design (it is the workers' restart signal), so a reloader
# ended by it would leave that child serving, orphaned, and its scratch directory behind.
_STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
if sys.platform != "win32":
    _STOP_SIGNALS += (signal.SIGHUP,)


def is_reloader_child() -> bool:
    """Whether this process runs under :func:`run_with_reloader` (so it must not start one)."""
    return FOLDERS_ENV in os.environ


def current_command() -> list[str]:
    """The command that started this process (``python app.py ...``, ``python -m pkg ...``)."""
    return [sys.executable, *sys.orig_argv[1:]]


def app_folders(app: Any) -> list[str]:
    """The existing template and static folders of a Quart/Flask app and its blueprints."""
    folders: list[str] = []
    for owner in [app, *getattr(app, "blueprints", {}).values()]:
        loader = getattr(owner, "jinja_loader", None)
        folders.extend(str(path) for path in getattr(loader, "searchpath", ()))
        static = getattr(owner, "static_folder", None)
        if static:
            folders.append(str(static))
    return [folder for folder in dict.fromkeys(folders) if os.path.isdir(folder)]


def prepare_app(app: Any) -> None:
    """In a reloader child: reload templates on change and announce the folders to watch.

    Turns on ``TEMPLATES_AUTO_RELOAD`` (and ``jinja_env.auto_reload``) for a Quart/Flask app;
    outside a reloader child, or for an app without templates, it does nothing.
    """
    target = os.environ.get(FOLDERS_ENV)
    if target is None:
        return
    config = getattr(app, "config", None)
    if isinstance(config, dict):
        config["TEMPLATES_AUTO_RELOAD"] = True
    env = getattr(app, "jinja_env", None)
    if env is not None:
        env.auto_reload = True  # the environment may exist already, built without it
    scratch = f"{target}.{os.getpid()}"
    Path(scratch).write_text(json.dumps(app_folders(app)))
    os.replace(scratch, target)  # the parent never reads half a file


def run_with_reloader(
    command: Sequence[str],
    *,
    directories: Sequence[str] = (".",),
    log_level: str | int = "info",
    interval: float = 0.5,
) -> int:
    """Run ``command`` in a child process and restart it whenever a watched file changes.

    Args:
        command: the child's command line; it serves the app once (no reloader of its own:
            :func:`is_reloader_child` is true there) and calls :func:`prepare_app`.
        directories: where ``.py`` files are watched (recursively; hidden directories,
            ``__pycache__``, ``venv`` and ``node_modules`` are skipped).
        log_level: level of the reloader's own log lines.
        interval: seconds between two scans.

    A child that exits by itself (a syntax error, say) is restarted after the next change.
    SIGINT, SIGTERM and SIGHUP (a closed terminal) stop the child gracefully (SIGTERM, then a
    kill after 35 s), then the loop. Returns the exit status, 0.
    """
    handle = configure_logging(LogConfig(level=log_level, access_log=False))
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="aeros-reload-") as scratch:
            folders_file = Path(scratch, "folders.json")
            env = {**os.environ, FOLDERS_ENV: str(folders_file)}
            watcher = _Watcher(directories, folders_file)
            logger.info("reload: watching %s for changes to .py files", ", ".join(directories))
            while not stopping:
                child = subprocess.Popen(list(command), env=env)  # noqa: S603 (our argv)
                changed: list[str] = []
                reported = False
                while not stopping and not changed:
                    time.sleep(interval)
                    changed = watcher.poll()
                    if not changed and not reported and child.poll() is not None:
                        logger.warning(
                            "reload: server exited with status %s; waiting for a change",
                            child.returncode,
                        )
                        reported = True
                if changed:
                    logger.info("reload: %s changed; restarting", ", ".join(changed[:3]))
                _stop_child(child)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handle.stop()


class _Watcher:
    """Modification times of the watched files; :meth:`poll` says which changed."""

    def __init__(self, directories: Sequence[str], folders_file: Path) -> None:
        self.directories = list(directories)
        self.folders_file = folders_file
        self.folders: list[str] = []
        self.seen = self._scan()

    def poll(self) -> list[str]:
        """The files added, removed or modified since the last call (sorted)."""
        announced, announced_at = self._announced()
        # Files of newly announced folders are the new baseline, not changes, unless they
        # were modified after the child announced them (an edit before this poll saw them).
        fresh = [Path(folder) for folder in announced if folder not in self.folders]
        self.folders = announced
        before, current = self.seen, self._scan()
        self.seen = current
        return sorted(
            str(path)
            for path, mtime in _differences(before, current)
            if path in before
            or mtime > announced_at
            or not any(path.is_relative_to(root) for root in fresh)
        )

    def _announced(self) -> tuple[list[str], float]:
        try:
            announced_at = self.folders_file.stat().st_mtime
            folders = json.loads(self.folders_file.read_text())
        except (OSError, ValueError):
            return self.folders, 0.0  # not written yet, or being replaced
        if not isinstance(folders, list):
            return [], announced_at
        return [str(folder) for folder in folders], announced_at

    def _scan(self) -> dict[Path, float]:
        found: dict[Path, float] = {}
        files = [_files(Path(d), (".py",)) for d in self.directories]
        files += [_files(Path(folder), None) for folder in self.folders]
        for group in files:
            for path in group:
                try:
                    found[path] = path.stat().st_mtime
                except OSError:  # removed while we looked
                    continue
        return found


def _differences(
    before: dict[Path, float], after: dict[Path, float]
) -> Iterator[tuple[Path, float]]:
    """(path, its new mtime, 0 when removed) for every file added, removed or modified."""
    for path in before.keys() | after.keys():
        if before.get(path) != after.get(path):
            yield path, after.get(path, 0.0)


def _files(root: Path, suffixes: tuple[str, ...] | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        # skip virtualenvs, caches and hidden directories: big and never the app's source
        dirnames[:] = [
            name for name in dirnames if not name.startswith(".") and name not in _SKIPPED_DIRS
        ]
        for name in filenames:
            if not name.startswith(".") and (suffixes is None or name.endswith(suffixes)):
                yield Path(dirpath, name)


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)  # the server drains in-flight requests
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
