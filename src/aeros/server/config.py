"""Server configuration: frozen dataclasses, validated once when built.

Every bad value raises :class:`aeros.errors.ConfigurationError` naming the argument, the value
and what is allowed (the checks of :mod:`aeros._validate`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aeros import _validate
from aeros.errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "QUART_LIMIT_KEYS",
    "Limits",
    "ServerConfig",
    "body_limit_from_app_config",
    "check_host",
    "not_an_address",
]

# granian was measured as a second backend and was not faster for aeros (docs/performance.md:
# 0.84-0.93x on JSON, 0.64x with awaiting views), so uvicorn is the only one offered.
BACKENDS = ("uvicorn",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Request size and time limits enforced by the server (see docs/security.md).

    The body and form limits are also Quart's: :class:`aeros.WebServer` copies
    ``max_body_size``, ``max_form_memory_size`` and ``max_form_parts`` into
    ``app.config["MAX_CONTENT_LENGTH" | "MAX_FORM_MEMORY_SIZE" | "MAX_FORM_PARTS"]``, and a
    ``MAX_CONTENT_LENGTH`` changed later is what the server enforces (one limit, not two).
    """

    max_request_line: int = 8 * 1024
    """Longest request line (method, target, version) in bytes; longer gets 414."""
    max_header_size: int = 16 * 1024
    """Largest header block in bytes; larger gets 431."""
    max_header_count: int = 100
    """Most header fields in one request; more gets 431."""
    max_body_size: int = 16 * 1024 * 1024
    """Largest request body in bytes; larger gets 413 from the server, before the body is read
    (no ``100 Continue``). Also Quart's ``MAX_CONTENT_LENGTH``."""
    max_form_memory_size: int = 500_000
    """Largest form field that is not a file upload, in bytes (Quart's
    ``MAX_FORM_MEMORY_SIZE``); a larger field makes ``await request.form`` answer 413."""
    max_form_parts: int = 1_000
    """Most fields and files in one multipart form (Quart's ``MAX_FORM_PARTS``); more: 413."""
    header_timeout: float = 30.0
    """Seconds a client has to send a complete request head."""
    body_timeout: float = 60.0
    """Seconds a request body may stay idle between chunks."""

    def __post_init__(self) -> None:
        for name in (
            "max_request_line",
            "max_header_size",
            "max_header_count",
            "max_body_size",
            "max_form_memory_size",
            "max_form_parts",
        ):
            _validate.integer("Limits", name, getattr(self, name), minimum=1)
        for name in ("header_timeout", "body_timeout"):
            _validate.seconds("Limits", name, getattr(self, name), minimum=0.001)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything the server runner needs; built by :class:`aeros.WebServer`."""

    host: str = "127.0.0.1"
    """Address to bind; 127.0.0.1 by default so nothing is exposed by accident. An IPv4 or IPv6
    address (``::1``, without brackets) or a host name (bound as IPv4); no scheme or port."""
    port: int = 8000
    """TCP port; 0 picks a free one."""
    workers: int = 1
    """Worker processes sharing one listening socket (forked on POSIX)."""
    backlog: int = 2048
    """Listen backlog of the socket."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open."""
    graceful_timeout: float = 30.0
    """Seconds in-flight requests get to finish on shutdown before they are cancelled."""
    shutdown_delay: float = 0.0
    """Seconds the server keeps accepting and serving after it is told to stop, before the
    graceful drain starts; the health endpoint (``health_path``) answers 503 meanwhile, so load
    balancers take the instance out of rotation before it stops accepting connections."""
    max_concurrent_requests: int | None = None
    """Requests in flight per worker above which the server answers 503; None: no limit."""
    ssl_certfile: str | None = None
    """PEM certificate file; set together with ``ssl_keyfile`` to serve HTTPS."""
    ssl_keyfile: str | None = None
    """PEM private key file."""
    ssl_ca_certs: str | None = None
    """CA bundle used to verify client certificates (``run(ca_certs=...)``, as in Quart)."""
    proxy_headers: bool = False
    """Honour X-Forwarded-For / X-Forwarded-Proto from ``forwarded_allow_ips`` peers."""
    forwarded_allow_ips: str | Sequence[str] | None = ("127.0.0.1",)
    """Peers (IPs or networks, or "*") whose proxy headers are trusted; kept as a tuple."""
    worker_healthcheck_timeout: float = 30.0
    """Seconds a worker's event loop may go without a heartbeat before it is killed and replaced."""
    freeze_gc: bool = True
    """After start-up, move every object then alive out of the garbage collector's reach
    (``gc.freeze()``): full collections stop re-scanning the app's modules (a 24 ms pause every
    few thousand requests for a Quart app) and forked workers keep sharing those memory pages.
    Applied only where the server owns its process: ``run_server()`` on the main thread and
    worker processes, never ``serve_in_thread()``."""
    max_requests: int = 0
    """Requests after which a worker process is replaced (gunicorn's ``max_requests``): it
    finishes its requests in flight while a fresh worker, started first, takes over, so memory
    leaks and fragmentation stay bounded. 0 (the default): never. Counted per worker, checked
    every 0.1 s, so a busy worker may serve a few more; needs ``workers`` >= 2 (one process has
    nobody to take over and ignores it, with a warning)."""
    max_requests_jitter: int = 0
    """Each worker's quota is ``max_requests`` plus a random 0 to ``max_requests_jitter``, so
    the workers, started together, are not all replaced at once. 0: no jitter."""
    backend: str = "uvicorn"
    """Server implementation; "uvicorn" is the one offered (see docs/performance.md)."""
    limits: Limits = field(default_factory=Limits)
    """Request size and time limits."""
    answer_headers: tuple[tuple[bytes, bytes], ...] = ()
    """Headers added to the answers the server makes itself (a 413, 431 or 503 sent before or
    instead of the app's answer): WebServer passes its global headers and ``server: aeros``."""
    https_answer_headers: tuple[tuple[bytes, bytes], ...] = ()
    """Headers added too to the server's own 500 (an app that failed before answering) when
    the request came over HTTPS as a trusted proxy said (``X-Forwarded-Proto``): WebServer
    passes HSTS there when the server does not serve TLS itself (then it is in
    ``answer_headers``)."""

    def __post_init__(self) -> None:
        owner = "WebServer"
        check_host(owner, self.host)
        _validate.integer(owner, "port", self.port, minimum=0, maximum=65535)
        _validate.integer(owner, "workers", self.workers, minimum=1)
        _validate.integer(owner, "backlog", self.backlog, minimum=1)
        _validate.seconds(owner, "keep_alive_timeout", self.keep_alive_timeout)
        _validate.seconds(owner, "graceful_timeout", self.graceful_timeout)
        _validate.seconds(owner, "shutdown_delay", self.shutdown_delay)
        _validate.seconds(
            owner, "worker_healthcheck_timeout", self.worker_healthcheck_timeout, minimum=0.1
        )
        if self.max_concurrent_requests is not None:
            _validate.integer(
                owner, "max_concurrent_requests", self.max_concurrent_requests, minimum=1
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ConfigurationError(
                f"{owner}(ssl_certfile={self.ssl_certfile!r}, ssl_keyfile={self.ssl_keyfile!r}): "
                "give both or neither"
            )
        if self.ssl_ca_certs is not None and self.ssl_certfile is None:
            raise ConfigurationError(
                f"{owner}: ssl_ca_certs={self.ssl_ca_certs!r} needs ssl_certfile and ssl_keyfile"
            )
        for name in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"{owner}({name}={path!r}): no such file")
        _validate.integer(owner, "max_requests", self.max_requests, minimum=0)
        _validate.integer(owner, "max_requests_jitter", self.max_requests_jitter, minimum=0)
        if self.max_requests_jitter and not self.max_requests:
            raise ConfigurationError(
                f"{owner}(max_requests_jitter={self.max_requests_jitter!r}) needs max_requests "
                "> 0 (the jitter is added to it); got max_requests=0"
            )
        _validate.boolean(owner, "proxy_headers", self.proxy_headers)
        _validate.boolean(owner, "freeze_gc", self.freeze_gc)
        object.__setattr__(self, "forwarded_allow_ips", _parse_ips(self.forwarded_allow_ips))
        if self.backend not in BACKENDS:
            raise ConfigurationError(
                f"{owner}(server={self.backend!r}) is not a known backend; use one of {BACKENDS}"
            )
        if not isinstance(self.limits, Limits):
            raise ConfigurationError(
                f"{owner}(limits={self.limits!r}) must be an aeros.Limits(...)"
            )

        for pair in (*self.answer_headers, *self.https_answer_headers):
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or not all(isinstance(part, bytes) for part in pair)
            ):
                raise ConfigurationError(
                    f"ServerConfig(answer_headers=...) holds (bytes, bytes) pairs; got {pair!r}"
                )

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with the given fields changed; None values are ignored."""
        given = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self

    def with_options(self, options: Mapping[str, Any]) -> ServerConfig:
        """A copy with ``options`` applied by name, :class:`Limits` fields (``max_body_size``)
        to :attr:`limits` and the others to this config; None values are ignored.

        Raises:
            ConfigurationError: a value is not allowed (as when the config is built).
        """
        limit_names = {field.name for field in dataclasses.fields(Limits)}
        given = {name: value for name, value in options.items() if value is not None}
        limits = {name: given.pop(name) for name in list(given) if name in limit_names}
        if limits:
            given["limits"] = dataclasses.replace(self.limits, **limits)
        return self.replace(**given)


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
"""One label of a host name (letters, digits, hyphens; underscores too, as Docker's names
have them), no hyphen first or last."""


def check_host(api: str, host: object) -> str:
    """``host`` when the server can bind it: an IP address or a host name.

    The server binds IPv6 when the host has a colon and IPv4 otherwise (a host name is resolved
    to an IPv4 address), so an IPv6 address is written bare (``::1``), not as in a URL.

    Raises:
        ConfigurationError: ``host`` is not a str, or has a scheme, a port, brackets,
            whitespace or characters no address or host name has; the message says what to
            write instead where it can tell.
    """
    if not isinstance(host, str) or not host:
        raise ConfigurationError(f"{api}(host={host!r}) must be a non-empty str")
    problem = _host_problem(host)
    if problem is not None:
        raise ConfigurationError(
            f"{api}(host={host!r}) must be an IP address (127.0.0.1, 0.0.0.0, ::1, ::) or a "
            f"host name (localhost), with no scheme, port, brackets or whitespace; {problem}"
        )
    return host


def _host_problem(host: str) -> str | None:
    """What is wrong with ``host`` and what to write instead; None when it can be bound."""
    if host != host.strip() or any(char.isspace() for char in host):
        problem = "it has whitespace"
    elif "://" in host:
        problem = "it has a scheme"
    elif host.startswith("["):
        problem = "an IPv6 address is written without brackets"
    elif ":" in host:
        if _is_address(host, ipaddress.IPv6Address):
            return None
        problem = "it has a colon but is not an IPv6 address"
        if host.count(":") == 1:
            problem = "the port is a separate setting"
    elif _is_address(host, ipaddress.IPv4Address):
        return None
    elif host.removesuffix(".").rpartition(".")[2].isdigit():
        return "it is not an IPv4 address"  # no top-level domain is all digits
    elif len(host) > 253 or not all(
        _HOST_LABEL.fullmatch(label) for label in host.removesuffix(".").split(".")
    ):
        return "a host name has letters, digits, hyphens and dots only"
    else:
        return None
    return problem + _suggestion(host)


def _suggestion(host: str) -> str:
    """``: use host=..., port=...`` when ``host`` looks like a URL's parts around a host that
    can be bound (``http://[::1]:8000/``); empty when no such host is found."""
    text = host.strip().split("://", 1)[-1].split("/", 1)[0]
    port = ""
    if text.startswith("["):
        text, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
    if not text or text == host or (port and not port.isdigit()) or _host_problem(text):
        return ""
    return f": use host={text!r}, port={int(port)}" if port else f": use host={text!r}"


def _is_address(host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(host)
    except ValueError:
        return False
    return True


def not_an_address(items: Iterable[str]) -> str | None:
    """The first of ``items`` that is not an IP address, a network or ``"*"``; None if all are."""
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except (ValueError, TypeError):
            return item
    return None


def _parse_ips(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ("127.0.0.1",)
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ConfigurationError(
            f"WebServer(forwarded_allow_ips={value!r}) must be a comma-separated str or a "
            "list of IP addresses / networks ('*' for any)"
        )
    bad = not_an_address(items)
    if bad is not None:
        raise ConfigurationError(
            f"WebServer(forwarded_allow_ips=...): {bad!r} is not an IP address, network or '*'"
        )
    return tuple(items)


QUART_LIMIT_KEYS = {
    "max_body_size": "MAX_CONTENT_LENGTH",
    "max_form_memory_size": "MAX_FORM_MEMORY_SIZE",
    "max_form_parts": "MAX_FORM_PARTS",
}
""":class:`Limits` fields that are also Quart's (``app.config`` keys): a WebServer writes them
there when it is built, and a value given later (``aeros run --max-body-size``) goes there too."""


def body_limit_from_app_config(limits: Limits, app_config: Mapping[str, Any]) -> Limits:
    """``limits`` with ``max_body_size`` taken from Quart's ``MAX_CONTENT_LENGTH``.

    WebServer writes ``Limits.max_body_size`` into ``app.config["MAX_CONTENT_LENGTH"]`` when
    it is built; a value set there later (``app.config["MAX_CONTENT_LENGTH"] = 64 << 20``,
    ``app.config.from_object(...)``) is read when the server starts and becomes the server's
    limit too, so the two never disagree. ``None`` turns Quart's own check off and leaves the
    server's ``max_body_size`` in force: the server always bounds a body.

    Raises:
        ConfigurationError: the config value is not a positive int or None.
    """
    value = app_config.get("MAX_CONTENT_LENGTH")
    if value is None or value == limits.max_body_size:
        return limits
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f'app.config["MAX_CONTENT_LENGTH"]={value!r} must be a positive int (bytes) or None'
        )
    return dataclasses.replace(limits, max_body_size=value)
