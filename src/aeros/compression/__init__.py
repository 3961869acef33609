"""Response compression: codecs, negotiation, and the Flask-style ``Compress(app)`` extension.

Compression is on by default (gzip level 2, bodies of 500 bytes or more, text-like types).
Configure it with ``WebServer(compression=Gzip(...) | Br(...) | Zstd(...) | [..] | None)``, or
the Flask-Compress way: set ``app.config["COMPRESS_*"]`` keys, then call ``Compress(app)``.

Modules, lowest first (ASGI only; none knows Quart, the app or the response cache):

- :mod:`~aeros.compression.codecs`: ``Gzip``, ``Br``, ``Zstd``: validated frozen settings
  that also encode, whole bodies and streams (one adapter over the three libraries).
- :mod:`~aeros.compression.negotiate`: ``Accept-Encoding`` parsing and the choice of codec
  (q-values, ``*``, ``identity``), memoised per header value by ``Negotiator``.
- :mod:`~aeros.compression.headers`: the headers of an encoded response and whether a
  response is compressible, shared with the response cache.
- :mod:`~aeros.compression.rules`: what a response gets (``plan``: untouched, ``Vary``, or
  encoded) and the headers and body that carry it out.
- :mod:`~aeros.compression.layer`: ``CompressionMiddleware``, the ASGI layer, its
  per-response ``CompressingSender`` and the lean connection's ``WholeEncoder``.
- this package: ``Compress`` and how ``WebServer(compression=...)`` and the ``COMPRESS_*``
  keys turn into the codecs in use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final, Protocol

from aeros.compression.codecs import CODECS, DEFAULT_MIMETYPES, Br, Codec, Gzip, StreamEncoder, Zstd
from aeros.compression.negotiate import Negotiator, negotiate, parse_accept_encoding
from aeros.errors import ConfigurationError

__all__ = [
    "DEFAULT_COMPRESSION",
    "DEFAULT_MIMETYPES",
    "EXTENSION_KEY",
    "Br",
    "Codec",
    "Compress",
    "Gzip",
    "Negotiator",
    "StreamEncoder",
    "Zstd",
    "check_codecs",
    "codecs_from_config",
    "negotiate",
    "parse_accept_encoding",
    "resolve_codecs",
]


class _Default:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT_COMPRESSION"


DEFAULT_COMPRESSION: Final[Any] = _Default()
"""``WebServer(compression=...)`` when not given: gzip, tuned by ``app.config["COMPRESS_*"]``."""

EXTENSION_KEY: Final = "compress"
"""Key of :class:`Compress`'s state in ``app.extensions`` (the tuple of codecs in use)."""

_LEVEL_KEYS = {"gzip": "COMPRESS_LEVEL", "br": "COMPRESS_BR_LEVEL", "zstd": "COMPRESS_ZSTD_LEVEL"}
_IGNORED_ALGORITHMS = frozenset({"deflate"})  # Flask-Compress offers it; no client needs it


class _App(Protocol):
    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def extensions(self) -> MutableMapping[str, Any]: ...


def _algorithms(value: object) -> list[str]:
    names: Iterable[object]
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, Iterable):
        names = value
    else:
        names = [value]
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ConfigurationError(
                f"app.config['COMPRESS_ALGORITHM'] entries must be str; got {name!r}"
            )
        token = name.strip().lower()
        if token in _IGNORED_ALGORITHMS or not token:
            continue
        if token not in CODECS:
            raise ConfigurationError(
                f"app.config['COMPRESS_ALGORITHM'] has {name!r}; use 'gzip', 'br' or 'zstd' "
                "(a list in order of preference)"
            )
        if token not in out:
            out.append(token)
    return out


def codecs_from_config(config: Mapping[str, Any]) -> tuple[Codec, ...]:
    """Build codecs from Flask-Compress style keys; an empty tuple means compression is off.

    Keys (all optional): ``COMPRESS_ALGORITHM`` (``"gzip"``, ``"br"``, ``"zstd"``, a list or a
    comma-separated string in order of preference; default gzip), ``COMPRESS_LEVEL`` (gzip,
    default 2), ``COMPRESS_BR_LEVEL`` (default 4), ``COMPRESS_ZSTD_LEVEL`` (default 3),
    ``COMPRESS_MIN_SIZE`` (bytes, default 500), ``COMPRESS_MIMETYPES`` (default
    :data:`DEFAULT_MIMETYPES`), ``COMPRESS_REGISTER`` (False turns compression off).

    Raises:
        ConfigurationError: a value is out of range or of the wrong type.
    """
    if config.get("COMPRESS_REGISTER", True) is False:
        return ()
    shared: dict[str, Any] = {}
    if config.get("COMPRESS_MIN_SIZE") is not None:
        shared["min_size"] = config["COMPRESS_MIN_SIZE"]
    if config.get("COMPRESS_MIMETYPES") is not None:
        shared["mimetypes"] = config["COMPRESS_MIMETYPES"]
    codecs: list[Codec] = []
    for name in _algorithms(config.get("COMPRESS_ALGORITHM", "gzip")):
        options = dict(shared)
        level = config.get(_LEVEL_KEYS[name])
        if level is not None:
            options["level"] = level
        try:
            codecs.append(CODECS[name](**options))
        except ConfigurationError as exc:
            raise ConfigurationError(f"app.config['COMPRESS_*']: {exc}") from exc
    return tuple(codecs)


def check_codecs(compression: object) -> tuple[Codec, ...]:
    """Validate ``WebServer(compression=...)`` (a codec or a sequence of them); the tuple.

    Raises:
        ConfigurationError: not a codec or a sequence of codecs (``"gzip"`` included: pass
            ``Gzip()``), or a coding listed twice.
    """
    items = [compression] if isinstance(compression, Codec) else compression
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ConfigurationError(
            f"WebServer(compression={compression!r}) must be Gzip(...), Br(...), Zstd(...), a "
            "list of them in order of preference, or None to turn compression off"
        )
    codecs: list[Codec] = []
    for item in items:
        if not isinstance(item, Codec):
            raise ConfigurationError(
                f"WebServer(compression=...) entries must be codecs such as Gzip(level=2); "
                f"got {item!r}"
            )
        if any(seen.name == item.name for seen in codecs):
            raise ConfigurationError(
                f"WebServer(compression=...) lists {item.name!r} twice; give each coding once"
            )
        codecs.append(item)
    return tuple(codecs)


def resolve_codecs(app: _App, compression: object) -> tuple[Codec, ...]:
    """Return the codecs an app compresses with, in order of preference (empty: off).

    Precedence: ``Compress(app)`` (state in ``app.extensions``) over the ``compression``
    argument, over ``app.config["COMPRESS_*"]`` and the defaults.

    Args:
        app: the app (anything with ``config`` and ``extensions``).
        compression: ``WebServer(compression=...)``: :data:`DEFAULT_COMPRESSION`, None, a
            codec, or a sequence of codecs.
    """
    state = app.extensions.get(EXTENSION_KEY)
    if state is not None:
        return tuple(state)
    if compression is None:
        return ()
    if compression is DEFAULT_COMPRESSION:
        return codecs_from_config(app.config)
    return check_codecs(compression)


class Compress:
    """Flask-Compress style extension: reads ``app.config["COMPRESS_*"]`` in :meth:`init_app`.

    ``Compress(app)`` (or ``Compress().init_app(app)``) after construction takes effect: the
    layer stack is built on the first request. Passing ``codecs`` overrides the config keys.

    Args:
        app: the app to configure now, or None to call :meth:`init_app` later.
        codecs: codecs to use instead of the ones the config keys describe.
    """

    def __init__(self, app: _App | None = None, codecs: Codec | Iterable[Codec] | None = None):
        self.codecs = None if codecs is None else check_codecs(codecs)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: _App) -> None:
        """Read the app's ``COMPRESS_*`` config and store the codecs in ``app.extensions``."""
        codecs = self.codecs if self.codecs is not None else codecs_from_config(app.config)
        app.extensions[EXTENSION_KEY] = codecs
