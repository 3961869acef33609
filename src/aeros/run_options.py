"""Quart's ``run()`` arguments on aeros' server: debug, TLS files, and the reloader.

:meth:`aeros.WebServer.run` takes :meth:`quart.Quart.run`'s signature; this module checks and
applies its options. ``run(use_reloader=True)`` serves the app under the ``aeros run --reload``
reloader (:func:`aeros.server.reload.run_with_reloader`), which restarts
``python -m aeros run module:app`` in a child process whenever a source file changes.
``app.run()`` finds the ``module:app`` spec of the app it was called on and hands over to it.
What ``run()`` was told and the command line cannot say (``debug``, TLS files) travels to the
child in :data:`RUN_OPTIONS_ENV`, which the child's ``run_server()`` applies; its presence also
marks the child, so a ``run()`` reached while the child imports the module serves instead of
starting a reloader inside the reloader.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from quart.helpers import get_debug_flag

from aeros._validate import boolean
from aeros.errors import ConfigurationError
from aeros.server.uvicorn_backend import check_ssl

__all__ = [
    "RUN_OPTIONS_ENV",
    "app_spec",
    "apply_run_options",
    "check_run_call",
    "check_run_options",
    "inherited_run_options",
    "run_with_reloader",
]

RUN_OPTIONS_ENV = "AEROS_RELOADER_RUN_OPTIONS"
"""Environment variable carrying ``run()``'s options (JSON) from the reloader to its child."""


def check_run_call(keywords: Iterable[str], loop: object, use_reloader: object) -> None:
    """Refuse ``run()`` keywords aeros does not take, a ``loop``, a non-bool ``use_reloader``."""
    unknown = set(keywords) - {"workers", "sock", "on_started"}
    if unknown:
        raise TypeError(
            f"run() got unexpected keyword argument(s) {', '.join(sorted(unknown))}; it "
            "takes Quart's arguments and aeros' workers=, sock=, on_started="
        )
    if loop is not None:
        raise ConfigurationError(
            f"run(loop={loop!r}) is not supported: aeros' server runs its own event loop "
            "(uvloop); leave loop=None"
        )
    boolean("run", "use_reloader", use_reloader)


def check_run_options(
    debug: bool | None, ca_certs: str | None, certfile: str | None, keyfile: str | None
) -> None:
    """Refuse what Quart's ``run()`` arguments cannot mean, naming the argument."""
    if debug is not None and not isinstance(debug, bool):
        raise ConfigurationError(f"run(debug={debug!r}) must be True, False or None")
    if (certfile is None) != (keyfile is None):
        raise ConfigurationError(
            f"run(certfile={certfile!r}, keyfile={keyfile!r}): give both or neither"
        )
    if ca_certs is not None and certfile is None:
        raise ConfigurationError(
            f"run(ca_certs={ca_certs!r}) needs certfile= and keyfile= (it verifies client "
            "certificates of an HTTPS server)"
        )
    for name, path in (("ca_certs", ca_certs), ("certfile", certfile), ("keyfile", keyfile)):
        if path is not None and not os.path.isfile(path):
            raise ConfigurationError(f"run({name}={path!r}): no such file")


def apply_run_options(
    app: Any,
    debug: bool | None = None,
    ca_certs: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Apply ``run()``'s options to ``app``: debug mode (``QUART_DEBUG`` too), TLS files."""
    check_run_options(debug, ca_certs, certfile, keyfile)
    if "QUART_DEBUG" in os.environ:  # as Quart's run() does
        app.debug = get_debug_flag()
    if debug is not None:
        app.debug = debug  # Flask's setter also turns template auto-reload on
    if certfile is not None:
        app.server_config = app.server_config.replace(
            ssl_certfile=certfile, ssl_keyfile=keyfile, ssl_ca_certs=ca_certs
        )
        check_ssl(app.server_config)


def inherited_run_options() -> dict[str, Any] | None:
    """The options a reloading parent passed to this process, or None when there is none."""
    text = os.environ.get(RUN_OPTIONS_ENV)
    if not text:
        return None
    options = json.loads(text)
    return options if isinstance(options, dict) else None


def app_spec(app: Any) -> tuple[str, str]:
    """``("module:attribute", app_dir)`` naming ``app`` so that a fresh process can import it.

    A script run as ``python app.py`` is ``__main__`` here but ``app`` (imported from the
    script's directory) in the child; ``python -m pkg.web`` is ``pkg.web``.

    Raises:
        ConfigurationError: the app is not a module-level name (built in a function or a
            factory), so a fresh process could not find it.
    """
    module = sys.modules.get(app.import_name)
    app_dir = os.getcwd()
    module_name = app.import_name
    if app.import_name == "__main__" and module is not None:
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name:
            module_name = spec.name.removesuffix(".__main__")
        elif module.__file__:
            path = Path(module.__file__).resolve()
            module_name, app_dir = path.stem, str(path.parent)
    names = [name for name, value in vars(module or object()).items() if value is app]
    if module is None or not names or module_name == "__main__":
        raise ConfigurationError(
            f"run(use_reloader=True) needs the app as a module-level name of {app.import_name!r} "
            "so the reloader can import it again; for an app built by a factory use "
            "`aeros run module:app --reload`"
        )
    return f"{module_name}:{names[0]}", app_dir


def run_with_reloader(
    app: Any, host: str | None, port: int | None, workers: int | None, options: dict[str, Any]
) -> int:
    """Serve ``app`` under the CLI's reloader until SIGINT/SIGTERM; the exit status.

    Args:
        app: the WebServer ``run()`` was called on.
        host: ``run()``'s host (None: the app's).
        port: ``run()``'s port (None: the app's).
        workers: ``run()``'s workers (None: the app's).
        options: ``run()``'s other options (debug, TLS files) for the child, JSON-serialisable.
    """
    if threading.current_thread() is not threading.main_thread():
        raise ConfigurationError(
            "run(use_reloader=True) must be called from the main thread (the reloader handles "
            "SIGINT/SIGTERM); call run(use_reloader=False) in other threads"
        )
    from aeros.server.reload import run_with_reloader as reload_loop

    spec, app_dir = app_spec(app)
    # the child is `python -m aeros run module:app` (what `aeros run --reload` restarts)
    command = [sys.executable, "-m", "aeros", "run", spec, "--app-dir", app_dir]
    for flag, value in (("--host", host), ("--port", port), ("--workers", workers)):
        if value is not None:
            command += [flag, str(value)]
    os.environ[RUN_OPTIONS_ENV] = json.dumps(options)  # inherited by every child it starts
    try:
        return reload_loop(command, directories=[app_dir])
    finally:
        os.environ.pop(RUN_OPTIONS_ENV, None)
