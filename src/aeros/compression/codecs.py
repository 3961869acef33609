"""Content codings: gzip, brotli and zstd, one-shot and streaming, behind one small protocol.

The compression layer and the response cache share these objects: a codec is a frozen,
validated configuration (level, minimum size, mimetypes) that also knows how to encode. Building
one has no side effects beyond importing its library; the optional libraries (brotli, zstandard,
isal) are imported only by the codec that needs them, with an error naming the extra.
"""

from __future__ import annotations

import importlib
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from aeros._validate import integer
from aeros.errors import ConfigurationError

__all__ = [
    "DEFAULT_MIMETYPES",
    "Br",
    "Codec",
    "Gzip",
    "StreamEncoder",
    "Zstd",
]

DEFAULT_MIMETYPES: frozenset[str] = frozenset(
    {
        # the seed's list
        "text/plain",
        "text/html",
        "text/css",
        "text/scss",
        "text/xml",
        "application/json",
        "application/javascript",
        # obvious text-like additions
        "text/javascript",
        "text/csv",
        "text/markdown",
        "text/event-stream",
        "image/svg+xml",
        "application/xml",
        "application/xhtml+xml",
        "application/ld+json",
        "application/manifest+json",
        "application/wasm",
        # structured-syntax suffixes (RFC 6839): any */*+json and */*+xml
        "+json",
        "+xml",
    }
)
"""Mimetypes compressed by default. An entry ``type/subtype`` matches exactly, ``type/*``
matches a whole type, ``+suffix`` matches every structured-syntax suffix (``+json``)."""

_MEMO_LIMIT = 256  # distinct Content-Type values remembered per codec; real apps use a handful


class StreamEncoder(Protocol):
    """Incremental encoder for one response body (one per response; not thread-safe)."""

    def compress(self, data: bytes) -> bytes:
        """Feed ``data``; return whatever encoded bytes are ready (often ``b""``)."""

    def flush(self) -> bytes:
        """Return everything fed so far, decodable now, keeping the stream open (a sync flush)."""

    def finish(self) -> bytes:
        """End the stream and return the remaining bytes (trailer included)."""


@runtime_checkable
class Codec(Protocol):
    """What the compression layer and the response cache need from a content coding.

    Attributes:
        name: the ``Content-Encoding`` token (``"gzip"``, ``"br"``, ``"zstd"``).
        encoding: ``name`` as bytes, ready for a header value.
        min_size: bodies smaller than this many bytes are sent as they are.
    """

    name: ClassVar[str]
    encoding: ClassVar[bytes]

    @property
    def min_size(self) -> int: ...

    def compress(self, data: bytes) -> bytes:
        """Encode a whole body at once."""

    def encoder(self) -> StreamEncoder:
        """Return a fresh streaming encoder for one response."""

    def accepts(self, content_type: bytes | None) -> bool:
        """Whether a body of this ``Content-Type`` header value is worth encoding."""


def _normalize_mimetypes(api: str, mimetypes: object) -> frozenset[str]:
    if isinstance(mimetypes, (str, bytes)) or not isinstance(mimetypes, Iterable):
        raise ConfigurationError(
            f"{api}(mimetypes={mimetypes!r}) must be a list of mimetypes such as "
            "['text/html', 'application/json', '+json']"
        )
    out: set[str] = set()
    for item in mimetypes:
        if not isinstance(item, str):
            raise ConfigurationError(f"{api}(mimetypes=...) entries must be str; got {item!r}")
        entry = item.strip().lower()
        valid = (entry.startswith("+") and len(entry) > 1 and "/" not in entry) or (
            entry.count("/") == 1 and all(entry.split("/"))
        )
        if not valid or any(c in entry for c in " ;,\r\n\x00"):
            raise ConfigurationError(
                f"{api}(mimetypes=...) entry {item!r} is not 'type/subtype', 'type/*' or '+suffix'"
            )
        out.add(entry)
    return frozenset(out)


def _matches(mimetypes: frozenset[str], content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    if media in mimetypes:
        return True
    kind, _, subtype = media.partition("/")
    if not subtype:
        return False
    if kind + "/*" in mimetypes:
        return True
    plus = subtype.rfind("+")
    return plus >= 0 and subtype[plus:] in mimetypes


def _import(module: str, extra: str, *, api: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"{api} needs the {module!r} package: pip install 'aeros[{extra}]'"
        ) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    """Fields and mimetype matching every codec shares."""

    level: int
    min_size: int = 500
    """Bodies smaller than this many bytes are sent unencoded (default 500)."""
    mimetypes: Iterable[str] = DEFAULT_MIMETYPES
    """Mimetypes to encode; see :data:`DEFAULT_MIMETYPES` for the entry forms."""
    _memo: dict[bytes, bool] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    name: ClassVar[str] = ""
    encoding: ClassVar[bytes] = b""
    _levels: ClassVar[tuple[int, int]] = (1, 9)
    _library: ClassVar[tuple[str, str] | None] = None  # (module, aeros extra) when optional

    def __post_init__(self) -> None:
        api = type(self).__name__
        low, high = self._levels
        integer(api, "level", self.level, minimum=low, maximum=high)
        integer(api, "min_size", self.min_size, minimum=0)
        object.__setattr__(self, "mimetypes", _normalize_mimetypes(api, self.mimetypes))
        if self._library is not None:
            _import(*self._library, api=f"{api}()")

    def accepts(self, content_type: bytes | None) -> bool:
        """Whether a body with this ``Content-Type`` value is in :attr:`mimetypes`."""
        if content_type is None:
            return False
        memo = self._memo
        found = memo.get(content_type)
        if found is None:
            found = _matches(self.mimetypes, content_type)  # type: ignore[arg-type]
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()  # bounded: a client cannot grow it, only the app's own types
            memo[content_type] = found
        return found


class _Encoder:
    """:class:`StreamEncoder` over a library's own streaming object, given its three calls.

    zlib, brotli and zstandard name them differently (``compress``/``process``, flush modes
    passed as arguments or not); each codec binds them once per response.
    """

    __slots__ = ("compress", "finish", "flush")

    def __init__(
        self,
        compress: Callable[[bytes], bytes],
        flush: Callable[[], bytes],
        finish: Callable[[], bytes],
    ) -> None:
        self.compress = compress
        self.flush = flush
        self.finish = finish


@dataclass(frozen=True, slots=True, kw_only=True)
class Gzip(_Base):
    """gzip coding (RFC 9112 section 7.2), the seed's default.

    Uses the standard library's zlib. ``bench/compression_codecs.py`` compared it with isal
    and zlib-ng on a 20 KB JSON body: neither wins at the same ratio (isal level 2 is about
    1.7x faster but its output is 11% larger; zlib-ng level 2 is about 1.2x faster and 5%
    larger), so no extra dependency is used.
    """

    level: int = 2
    """zlib level, 1 (fastest) to 9 (smallest). Default 2: most of the size win for little CPU."""

    name: ClassVar[str] = "gzip"
    encoding: ClassVar[bytes] = b"gzip"

    def compress(self, data: bytes) -> bytes:
        """Encode a whole body as one gzip member."""
        return zlib.compress(data, self.level, wbits=31)

    def encoder(self) -> StreamEncoder:
        """Return a streaming gzip encoder."""
        obj = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        return _Encoder(
            obj.compress, partial(obj.flush, zlib.Z_SYNC_FLUSH), partial(obj.flush, zlib.Z_FINISH)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Br(_Base):
    """brotli coding (RFC 7932). Needs the ``brotli`` package (``aeros[brotli]``)."""

    level: int = 4
    """brotli quality, 0 (fastest) to 11 (smallest). Default 4: smaller than gzip at similar
    speed; 11 is meant for precompressed static files, not per-request work."""

    name: ClassVar[str] = "br"
    encoding: ClassVar[bytes] = b"br"
    _levels: ClassVar[tuple[int, int]] = (0, 11)
    _library: ClassVar[tuple[str, str] | None] = ("brotli", "brotli")

    def compress(self, data: bytes) -> bytes:
        """Encode a whole body."""
        import brotli  # type: ignore[import-untyped]

        return brotli.compress(data, quality=self.level)  # type: ignore[no-any-return]

    def encoder(self) -> StreamEncoder:
        """Return a streaming brotli encoder."""
        import brotli

        obj = brotli.Compressor(quality=self.level)
        return _Encoder(obj.process, obj.flush, obj.finish)


_local = threading.local()  # one reusable zstd context per thread and level (not thread-safe)


@dataclass(frozen=True, slots=True, kw_only=True)
class Zstd(_Base):
    """zstd coding (RFC 8878). Needs the ``zstandard`` package (``aeros[zstd]``)."""

    level: int = 3
    """zstd level, 1 (fastest) to 22 (smallest). Default 3, zstd's own default."""

    name: ClassVar[str] = "zstd"
    encoding: ClassVar[bytes] = b"zstd"
    _levels: ClassVar[tuple[int, int]] = (1, 22)
    _library: ClassVar[tuple[str, str] | None] = ("zstandard", "zstd")

    def compress(self, data: bytes) -> bytes:
        """Encode a whole body as one zstd frame (with its content size)."""
        contexts: dict[int, Any] | None = getattr(_local, "zstd", None)
        if contexts is None:
            contexts = _local.zstd = {}
        compressor = contexts.get(self.level)
        if compressor is None:
            import zstandard

            compressor = contexts[self.level] = zstandard.ZstdCompressor(level=self.level)
        return compressor.compress(data)

    def encoder(self) -> StreamEncoder:
        """Return a streaming zstd encoder (its own context: streams interleave on a loop)."""
        import zstandard

        obj = zstandard.ZstdCompressor(level=self.level).compressobj()
        return _Encoder(
            obj.compress, partial(obj.flush, zstandard.COMPRESSOBJ_FLUSH_BLOCK), obj.flush
        )


CODECS: dict[str, Callable[..., Codec]] = {"gzip": Gzip, "br": Br, "zstd": Zstd}
"""Codec classes by ``Content-Encoding`` token (what ``COMPRESS_ALGORITHM`` names)."""
