"""The ``aeros`` command line: ``aeros run APP [options]`` (``python -m aeros`` too).

``APP`` is ``module``, ``module:app`` or ``module:create_app(...)`` (see :mod:`aeros.locate`);
any ASGI app is served, an :class:`aeros.WebServer` with its own configuration. Options given
on the command line override what the app was constructed with; options left out keep it.
Every option also reads an ``AEROS_*`` environment variable (``--port`` -> ``AEROS_PORT``,
the app -> ``AEROS_APP``); the command line wins over the environment.

This module parses arguments only: the app is found by :mod:`aeros.locate`, served by
:func:`aeros.server.serve.serve_app`, and ``--reload`` is :mod:`aeros.server.reload`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from aeros import cli_values as values
from aeros.errors import ConfigurationError
from aeros.locate import AppSpecError, import_app
from aeros.logging.config import LEVELS
from aeros.logging.formatters import ACCESS_FORMATS
from aeros.server.config import Limits
from aeros.server.reload import is_reloader_child, prepare_app, run_with_reloader
from aeros.server.serve import serve_app
from aeros.server.uvicorn_backend import tls_error

__all__ = [
    "AppSpecError",
    "build_parser",
    "child_command",
    "import_app",
    "log_options",
    "main",
    "parse_arguments",
    "server_options",
]

ENV_PREFIX = "AEROS_"

SERVER_OPTIONS = (
    "host",
    "port",
    "workers",
    "backlog",
    "keep_alive_timeout",
    "graceful_timeout",
    "shutdown_delay",
    "max_concurrent_requests",
    "worker_healthcheck_timeout",
    "max_requests",
    "max_requests_jitter",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_ca_certs",
    "proxy_headers",
    "forwarded_allow_ips",
    "freeze_gc",
)
"""``run`` options that are :class:`aeros.server.config.ServerConfig` fields of the same name."""

LIMIT_OPTIONS = tuple(field.name for field in dataclasses.fields(Limits))
LOG_OPTIONS = {
    "log_level": "level",
    "color": "color",
    "access_log": "access_log",
    "access_log_format": "access_log_format",
    "access_log_file": "access_log_file",
    "log_file": "log_file",
}
"""``run`` option -> :class:`aeros.logging.config.LogConfig` field."""


# ---- the parser ------------------------------------------------------------------------

_SERVER_ARGUMENTS = (
    ("port", values.integer(0, 65535), "TCP port (default: 8000)"),
    ("workers", values.integer(1), "worker processes (default: 1)"),
    ("backlog", values.integer(1), "listen backlog (default: 2048)"),
    (
        "keep_alive_timeout",
        values.seconds(0),
        "seconds an idle keep-alive connection stays open (default: 5)",
    ),
    (
        "graceful_timeout",
        values.seconds(0),
        "seconds in-flight requests get to finish on shutdown (default: 30)",
    ),
    (
        "shutdown_delay",
        values.seconds(0),
        "seconds the server keeps serving after it is told to stop, with the health endpoint "
        "saying 503, before it drains (default: 0)",
    ),
    (
        "max_concurrent_requests",
        values.integer(1),
        "requests in flight per worker above which the answer is 503 (default: no limit)",
    ),
    (
        "worker_healthcheck_timeout",
        values.seconds(0.1),
        "seconds a worker may miss its heartbeat before it is replaced (default: 30)",
    ),
    (
        "max_requests",
        values.integer(0),
        "requests after which a worker is replaced (default: 0, never)",
    ),
    (
        "max_requests_jitter",
        values.integer(0),
        "random 0..N more requests per worker's quota (default: 0)",
    ),
)
"""Valued server options: (ServerConfig field, value type, help)."""
_LIMIT_ARGUMENTS = (
    ("max_request_line", values.integer(1), "longest request line in bytes; longer gets 414"),
    ("max_header_size", values.integer(1), "largest header block in bytes; larger gets 431"),
    ("max_header_count", values.integer(1), "most header fields in a request; more gets 431"),
    ("max_body_size", values.integer(1), "largest request body in bytes; larger gets 413"),
    (
        "max_form_memory_size",
        values.integer(1),
        "largest non-file form field in bytes; larger: 413",
    ),
    ("max_form_parts", values.integer(1), "most fields and files in a multipart form; more: 413"),
    ("header_timeout", values.seconds(0.001), "seconds a client has to send the request head"),
    ("body_timeout", values.seconds(0.001), "seconds a request body may stay idle between chunks"),
)
"""Request limits: (Limits field, value type, help); the default is read from ``Limits()``."""


def _add_switch(group: argparse._ArgumentGroup, flag: str, help_text: str) -> None:
    """``--flag`` / ``--no-flag``; None when neither is given (the app's own setting stays)."""
    group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_valued(
    group: argparse._ArgumentGroup,
    table: Sequence[tuple[str, Callable[[str], Any], str]],
    defaults: object = None,
) -> None:
    for name, convert, help_text in table:
        if defaults is not None:
            help_text = f"{help_text} (default: {getattr(defaults, name):g})"
        metavar = "SECONDS" if name.endswith("timeout") else "N"
        group.add_argument(_flag(name), type=convert, metavar=metavar, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aeros`` command (environment variables not applied)."""
    parser = argparse.ArgumentParser(
        prog="aeros", description="Run an ASGI app (an aeros WebServer) with aeros' server."
    )
    parser.add_argument("--version", action="version", version=f"aeros {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        usage="aeros run [options] [APP]",  # the full list is in --help, not before each error
        help="serve an app",
        description="Serve an app: an aeros WebServer, a Quart app or any ASGI app. Each "
        "option's [env: ...] variable gives its default; the command line wins.",
    )
    run.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="the app: 'module' (finds app, application or create_app()), 'module:app' "
        "or 'module:create_app(...)' with literal arguments",
    )
    server = run.add_argument_group("server")
    server.add_argument("--host", help="address to bind (default: the app's, 127.0.0.1)")
    _add_valued(server, _SERVER_ARGUMENTS)
    _add_switch(server, "--freeze-gc", "gc.freeze() what is alive after start-up (default: on)")
    net = run.add_argument_group("TLS and proxies")
    for name, help_text in (
        ("ssl_certfile", "PEM certificate (HTTPS)"),
        ("ssl_keyfile", "PEM private key (HTTPS)"),
        ("ssl_ca_certs", "CA bundle that verifies client certificates (with the two above)"),
    ):
        net.add_argument(_flag(name), type=values.existing_file, metavar="PATH", help=help_text)
    _add_switch(
        net,
        "--proxy-headers",
        "honour X-Forwarded-For/-Proto from --forwarded-allow-ips (default: off)",
    )
    net.add_argument(
        "--forwarded-allow-ips",
        type=values.addresses,
        metavar="IPS",
        help="comma-separated proxies (IPs, networks or '*') trusted for proxy headers "
        "(default: 127.0.0.1)",
    )
    limits = run.add_argument_group("request limits")
    _add_valued(limits, _LIMIT_ARGUMENTS, Limits())
    _add_log_options(run.add_argument_group("logging"))
    dev = run.add_argument_group("development")
    dev.add_argument(
        "--reload",
        action="store_true",
        default=None,
        help="restart when a .py file under --reload-dir or a template/static file changes; "
        "templates are re-read at once",
    )
    dev.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="directory to watch with --reload (repeatable; default: --app-dir)",
    )
    dev.add_argument(
        "--app-dir",
        metavar="DIR",
        help="directory put first on sys.path to import the module (default: .)",
    )
    for action in run._actions:
        if action.dest != "help":
            action.help = f"{action.help} [env: {env_name(action)}]"
    return parser


def _add_log_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--log-level", choices=tuple(LEVELS), help="level of the server log (default: info)"
    )
    _add_switch(group, "--access-log", "write one access-log line per request (default: on)")
    group.add_argument(
        "--access-log-format",
        choices=ACCESS_FORMATS,
        help="format of the access log (default: default)",
    )
    group.add_argument("--access-log-file", metavar="PATH", help="also write the access log here")
    group.add_argument("--log-file", metavar="PATH", help="also write the server log here")
    _add_switch(group, "--color", "force coloured (--color) or plain (--no-color) console output")


def env_name(action: argparse.Action) -> str:
    """The environment variable that gives ``action``'s default (``AEROS_PORT``)."""
    return ENV_PREFIX + action.dest.upper()


def _version() -> str:
    try:
        return importlib.metadata.version("aeros")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "(not installed)"


def parse_arguments(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """Parse ``argv``, then fill what it left out from ``AEROS_*`` variables of ``environ``.

    Exits with status 2 and one line naming the option or the variable on a bad value.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run = _subparser(parser, "run")
    environ = os.environ if environ is None else environ
    for action in run._actions:
        raw = environ.get(env_name(action), "")
        if action.dest == "help" or getattr(args, action.dest) is not None or not raw:
            continue
        try:
            setattr(args, action.dest, _from_environment(action, raw))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            _fail(run, f"environment variable {env_name(action)}: {exc}")
    if args.app is None:
        _fail(run, "give the app to serve (APP, e.g. 'myproject.web:app') or set AEROS_APP")
    args.app_dir = args.app_dir or "."
    _check_tls(run, args)
    return args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise LookupError(name)  # pragma: no cover - build_parser always adds it


def _from_environment(action: argparse.Action, raw: str) -> Any:
    if action.nargs == 0:  # a flag: --reload, --access-log / --no-access-log
        return values.boolean(raw)
    if isinstance(action, argparse._AppendAction):
        return [item for item in raw.split(os.pathsep) if item]
    value = action.type(raw) if callable(action.type) else raw
    if action.choices is not None and value not in action.choices:
        allowed = ", ".join(map(repr, action.choices))
        raise argparse.ArgumentTypeError(f"invalid choice {raw!r}; choose from {allowed}")
    return value


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.print_usage(sys.stderr)
    parser.exit(2, f"aeros run: error: {message}\n")


def _check_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.ssl_certfile is None and args.ssl_keyfile is None:
        if args.ssl_ca_certs is not None:
            _fail(parser, "--ssl-ca-certs needs --ssl-certfile and --ssl-keyfile")
        return
    if args.ssl_certfile is None or args.ssl_keyfile is None:
        _fail(parser, "--ssl-certfile and --ssl-keyfile go together; give both")
    error = tls_error(args.ssl_certfile, args.ssl_keyfile)
    if error is not None:
        _fail(parser, f"--ssl-certfile/--ssl-keyfile: cannot load the certificate and key: {error}")


# ---- what the arguments say --------------------------------------------------------


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The server and limit options ``args`` gives, by ServerConfig / Limits field name."""
    return {name: getattr(args, name) for name in (*SERVER_OPTIONS, *LIMIT_OPTIONS)}


def log_options(args: argparse.Namespace) -> dict[str, Any]:
    """The logging options ``args`` gives, by LogConfig field name (None: not given)."""
    return {field: getattr(args, option) for option, field in LOG_OPTIONS.items()}


def child_command(argv: Sequence[str]) -> list[str]:
    """The command ``--reload`` runs and restarts: the same arguments, without ``--reload``."""
    return [sys.executable, "-m", "aeros", *(arg for arg in argv if arg != "--reload")]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aeros`` and ``python -m aeros``; returns the exit status."""
    args = parse_arguments(argv)
    try:
        if args.reload and not is_reloader_child():
            return run_with_reloader(
                child_command(sys.argv[1:] if argv is None else argv),
                directories=args.reload_dir or [args.app_dir],
                log_level=args.log_level or "info",
            )
        app = import_app(args.app, args.app_dir)
        prepare_app(app)  # under --reload: template auto-reload, folders to watch
        serve_app(app, server_options(args), log_options(args))
        return 0
    except (AppSpecError, ConfigurationError) as exc:
        # one line: the message names the app or the option and what is allowed
        sys.stderr.write(f"aeros: error: {exc}\n")
        return 2
