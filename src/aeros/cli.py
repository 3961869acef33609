"""The ``aeros`` command line: ``aeros run module:app [options]`` (``python -m aeros`` too).

``module:app`` names a :class:`aeros.WebServer` the way uvicorn does (``module`` imported from
the current directory, ``app`` an attribute, dotted for nested ones). Options given on the
command line override what the app was constructed with; options left out keep it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from aeros.errors import ConfigurationError
from aeros.logging import ACCESS_FORMATS, LEVELS, LogConfig, configure_logging

__all__ = ["AppSpecError", "build_parser", "child_command", "import_app", "main", "reload_loop"]

logger = logging.getLogger("aeros.cli")


class AppSpecError(Exception):
    """``module:app`` could not be resolved to a WebServer; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aeros`` command."""
    parser = argparse.ArgumentParser(
        prog="aeros", description="Run an aeros WebServer with its production server."
    )
    parser.add_argument("--version", action="version", version=f"aeros {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve module:app",
        description="Serve the WebServer named by module:app (e.g. myproject.web:app).",
    )
    run.add_argument("app", metavar="module:app", help="module and attribute of the WebServer")
    run.add_argument("--host", help="address to bind (default: the app's, 127.0.0.1)")
    run.add_argument("--port", type=_port, help="TCP port (default: the app's, 8000)")
    run.add_argument("--workers", type=_positive, help="worker processes (default: the app's)")
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when a .py file under --reload-dir changes (development)",
    )
    run.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="directory to watch with --reload (repeatable; default: the current directory)",
    )
    run.add_argument("--log-level", choices=tuple(LEVELS), help="level of the server log")
    run.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write one access-log line per request",
    )
    run.add_argument("--access-log-format", choices=ACCESS_FORMATS)
    run.add_argument("--access-log-file", metavar="PATH", help="also write the access log here")
    run.add_argument("--log-file", metavar="PATH", help="also write the server log here")
    run.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force coloured (--color) or plain (--no-color) console output",
    )
    run.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory put first on sys.path to import the module (default: .)",
    )
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("aeros")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "(not installed)"


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535; got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"workers must be >= 1; got {value}")
    return value


def import_app(spec: str, app_dir: str = ".") -> Any:
    """Import ``module:attribute`` and return the WebServer it names.

    Raises:
        AppSpecError: the spec is malformed, the module does not exist, the attribute is
            missing or is not an :class:`aeros.WebServer`. Errors raised while the module
            itself runs are left alone: they are the app's bugs, with their traceback.
    """
    from aeros.app import WebServer

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppSpecError(f"app {spec!r} must be 'module:attribute', e.g. 'myproject.web:app'")
    app_path = str(Path(app_dir).resolve())
    if app_path not in sys.path:
        sys.path.insert(0, app_path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise  # a module the app imports is missing: the app's traceback says which
        raise AppSpecError(f"app {spec!r}: no module named {module_name!r} in {app_path}") from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppSpecError(
                f"app {spec!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not isinstance(obj, WebServer):
        raise AppSpecError(
            f"app {spec!r} is {type(obj).__name__!r}, not an aeros.WebServer; "
            "build it with WebServer(__name__, ...)"
        )
    return obj


def _apply_log_options(app: Any, args: argparse.Namespace) -> None:
    changes = {
        "level": args.log_level,
        "color": args.color,
        "access_log": args.access_log,
        "access_log_format": args.access_log_format,
        "access_log_file": args.access_log_file,
        "log_file": args.log_file,
    }
    given = {key: value for key, value in changes.items() if value is not None}
    if given:
        app.log_config = dataclasses.replace(app.log_config, **given)


def run(args: argparse.Namespace) -> int:
    """Serve one app in this process until it is stopped; the exit status."""
    app = import_app(args.app, args.app_dir)
    _apply_log_options(app, args)
    app.run_server(host=args.host, port=args.port, workers=args.workers)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aeros`` and ``python -m aeros``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.reload:
            return reload_loop(sys.argv[1:] if argv is None else list(argv), args)
        return run(args)
    except AppSpecError as exc:
        parser.exit(2, f"aeros: error: {exc}\n")
    except ConfigurationError as exc:  # the message names the option and what is allowed
        parser.exit(2, f"aeros: error: {exc}\n")


# ---- --reload: a parent that restarts a child process when source files change ---------


def _source_mtimes(directories: Sequence[str]) -> dict[Path, float]:
    found: dict[Path, float] = {}
    for directory in directories:
        for path in _python_files(Path(directory)):
            try:
                found[path] = path.stat().st_mtime
            except OSError:  # removed while we looked
                continue
    return found


def _python_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        # skip virtualenvs, caches and hidden directories: big and never the app's source
        dirnames[:] = [
            name
            for name in dirnames
            if not name.startswith((".", "__pycache__")) and name not in {"venv", "node_modules"}
        ]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath, name)


def _changed(before: dict[Path, float], after: dict[Path, float]) -> list[str]:
    return sorted(
        str(path) for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


def child_command(argv: Sequence[str]) -> list[str]:
    """The command ``--reload`` runs and restarts: the same arguments, without ``--reload``."""
    return [sys.executable, "-m", "aeros", *(arg for arg in argv if arg != "--reload")]


def reload_loop(argv: Sequence[str], args: argparse.Namespace, interval: float = 0.5) -> int:
    """Run ``aeros run`` without ``--reload`` in a child process; restart it on changes.

    A child that exits by itself (a syntax error, say) is restarted after the next change.
    SIGINT/SIGTERM stop the child gracefully, then this loop. Returns the exit status.
    """
    child_argv = child_command(argv)
    directories = args.reload_dir or [args.app_dir]
    handle = configure_logging(LogConfig(level=args.log_level or "info", access_log=False))
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        logger.info("reload: watching %s for changes to .py files", ", ".join(directories))
        seen = _source_mtimes(directories)
        while not stopping:
            child = subprocess.Popen(child_argv)  # noqa: S603 (our interpreter, our argv)
            changed: list[str] = []
            while not stopping and not changed:
                time.sleep(interval)
                current = _source_mtimes(directories)
                changed = _changed(seen, current)
                seen = current
                if child.poll() is not None and not changed:
                    logger.warning(
                        "reload: server exited with status %s; waiting for a change",
                        child.returncode,
                    )
                    while not stopping and not changed:
                        time.sleep(interval)
                        current = _source_mtimes(directories)
                        changed, seen = _changed(seen, current), current
            if changed:
                logger.info("reload: %s changed; restarting", ", ".join(changed[:3]))
            _stop_child(child)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handle.stop()


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)  # the server drains in-flight requests
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
