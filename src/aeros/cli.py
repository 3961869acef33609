"""The ``aeros`` command line: ``aeros run APP [options]`` (``python -m aeros`` too).

``APP`` is ``module``, ``module:app`` or ``module:create_app(...)`` (see :mod:`aeros.locate`);
any ASGI app is served, an :class:`aeros.WebServer` with its own configuration. Options given
on the command line override what the app was constructed with; options left out keep it.
Every option also reads an ``AEROS_*`` environment variable (``--port`` -> ``AEROS_PORT``,
the app -> ``AEROS_APP``); the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import ipaddress
import os
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from aeros.app import WebServer
from aeros.errors import ConfigurationError
from aeros.locate import AppSpecError, import_app
from aeros.logging.config import LEVELS, LogConfig
from aeros.logging.formatters import ACCESS_FORMATS
from aeros.server.config import Limits, ServerConfig
from aeros.server.reload import is_reloader_child, prepare_app, run_with_reloader
from aeros.server.serve import serve_asgi

__all__ = [
    "AppSpecError",
    "build_parser",
    "child_command",
    "import_app",
    "main",
    "parse_arguments",
]

ENV_PREFIX = "AEROS_"

SERVER_OPTIONS = (
    "host",
    "port",
    "workers",
    "backlog",
    "keep_alive_timeout",
    "graceful_timeout",
    "max_concurrent_requests",
    "worker_healthcheck_timeout",
    "ssl_certfile",
    "ssl_keyfile",
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


# ---- value types: each error names what is allowed; argparse adds the option's name ------


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    allowed = f"an integer >= {minimum}" if maximum is None else f"{minimum} to {maximum}"

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {text!r}")
        return value

    return convert


def _seconds(minimum: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= minimum or value == float("inf"):  # NaN fails the comparison
            raise argparse.ArgumentTypeError(f"must be seconds >= {minimum:g}; got {text!r}")
        return value

    return convert


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _addresses(text: str) -> str:
    for item in (part.strip() for part in text.split(",")):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not an IP address, a network or '*' (comma-separated)"
            ) from None
    return text


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"must be true or false (1/0, yes/no, on/off); got {text!r}")


# ---- the parser ------------------------------------------------------------------------


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
    server.add_argument(
        "--port", type=_integer(0, 65535), metavar="N", help="TCP port (default: 8000)"
    )
    server.add_argument(
        "--workers", type=_integer(1), metavar="N", help="worker processes (default: 1)"
    )
    server.add_argument(
        "--backlog", type=_integer(1), metavar="N", help="listen backlog (default: 2048)"
    )
    server.add_argument(
        "--keep-alive-timeout",
        type=_seconds(0),
        metavar="SECONDS",
        help="seconds an idle keep-alive connection stays open (default: 5)",
    )
    server.add_argument(
        "--graceful-timeout",
        type=_seconds(0),
        metavar="SECONDS",
        help="seconds in-flight requests get to finish on shutdown (default: 30)",
    )
    server.add_argument(
        "--max-concurrent-requests",
        type=_integer(1),
        metavar="N",
        help="requests in flight per worker above which the answer is 503 (default: no limit)",
    )
    server.add_argument(
        "--worker-healthcheck-timeout",
        type=_seconds(0.1),
        metavar="SECONDS",
        help="seconds a worker may miss its heartbeat before it is replaced (default: 30)",
    )
    server.add_argument(
        "--freeze-gc",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="gc.freeze() what is alive after start-up (default: on)",
    )
    net = run.add_argument_group("TLS and proxies")
    net.add_argument(
        "--ssl-certfile", type=_existing_file, metavar="PATH", help="PEM certificate (HTTPS)"
    )
    net.add_argument(
        "--ssl-keyfile", type=_existing_file, metavar="PATH", help="PEM private key (HTTPS)"
    )
    net.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="honour X-Forwarded-For/-Proto from --forwarded-allow-ips (default: off)",
    )
    net.add_argument(
        "--forwarded-allow-ips",
        type=_addresses,
        metavar="IPS",
        help="comma-separated proxies (IPs, networks or '*') trusted for proxy headers "
        "(default: 127.0.0.1)",
    )
    limits = run.add_argument_group("request limits")
    for name, help_text in (
        ("max_request_line", "longest request line in bytes; longer gets 414"),
        ("max_header_size", "largest header block in bytes; larger gets 431"),
        ("max_header_count", "most header fields in a request; more gets 431"),
        ("max_body_size", "largest request body in bytes; larger gets 413"),
    ):
        default = getattr(Limits(), name)
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=_integer(1),
            metavar="N",
            help=f"{help_text} (default: {default})",
        )
    for name, help_text in (
        ("header_timeout", "seconds a client has to send the request head"),
        ("body_timeout", "seconds a request body may stay idle between chunks"),
    ):
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=_seconds(0.001),
            metavar="SECONDS",
            help=f"{help_text} (default: {getattr(Limits(), name):g})",
        )
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
    group.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write one access-log line per request (default: on)",
    )
    group.add_argument(
        "--access-log-format",
        choices=ACCESS_FORMATS,
        help="format of the access log (default: default)",
    )
    group.add_argument("--access-log-file", metavar="PATH", help="also write the access log here")
    group.add_argument("--log-file", metavar="PATH", help="also write the server log here")
    group.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force coloured (--color) or plain (--no-color) console output",
    )


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
        return _boolean(raw)
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
        return
    if args.ssl_certfile is None or args.ssl_keyfile is None:
        _fail(parser, "--ssl-certfile and --ssl-keyfile go together; give both")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        _fail(parser, f"--ssl-certfile/--ssl-keyfile: cannot load the certificate and key: {exc}")


# ---- running ---------------------------------------------------------------------------


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def server_config(base: ServerConfig, args: argparse.Namespace) -> ServerConfig:
    """``base`` with the server and limit options of ``args`` applied (the rest kept)."""
    config = base.replace(**_given(args, SERVER_OPTIONS))
    limits = _given(args, LIMIT_OPTIONS)
    if limits:
        config = config.replace(limits=dataclasses.replace(config.limits, **limits))
    return config


def log_config(base: LogConfig, args: argparse.Namespace) -> LogConfig:
    """``base`` with the logging options of ``args`` applied (the rest kept)."""
    given = {LOG_OPTIONS[name]: value for name, value in _given(args, list(LOG_OPTIONS)).items()}
    return dataclasses.replace(base, **given) if given else base


def run(args: argparse.Namespace) -> int:
    """Serve the app ``args`` names in this process until it is stopped; the exit status."""
    app = import_app(args.app, args.app_dir)
    prepare_app(app)  # under --reload: template auto-reload, folders to watch
    if isinstance(app, WebServer):
        app.server_config = server_config(app.server_config, args)
        app.log_config = log_config(app.log_config, args)
        app.run_server(host=args.host, port=args.port, workers=args.workers)
    else:
        serve_asgi(app, server_config(ServerConfig(), args), log_config(LogConfig(), args))
    return 0


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
        return run(args)
    except (AppSpecError, ConfigurationError) as exc:
        # one line: the message names the app or the option and what is allowed
        sys.stderr.write(f"aeros: error: {exc}\n")
        return 2
