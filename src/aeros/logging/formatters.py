"""Formatting of aeros' log lines: escaping, the console format, the access-log formats.

Everything here runs in the logging listener thread (:mod:`aeros.logging.listener`), never on
the event loop: the access-log layer hands over raw fields (:class:`AccessEntry`) and this
module turns them into one safe line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import IO, Any

from aeros.errors import ConfigurationError

__all__ = [
    "ACCESS_FORMATS",
    "MAX_HEADER",
    "MAX_PATH",
    "AccessEntry",
    "AccessFormatter",
    "ConsoleFormatter",
    "escape",
    "use_color",
]

ACCESS_FORMATS = ("default", "common", "combined", "json")
"""Access-log formats: aeros' own line, NCSA common and combined log formats, JSON lines."""

MAX_PATH = 2048
"""Characters of path + query kept in an access-log line; the rest is cut and counted."""

MAX_HEADER = 512
"""Characters of User-Agent / Referer kept in an access-log line."""

# Control characters (C0, DEL, C1), line/paragraph separators and bidi overrides can rewrite
# a terminal or forge a log line; quote and backslash would make quoted fields ambiguous.
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f"\\\\\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]')
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_last_stamp: tuple[int, str] = (-1, "")


def _stamp(created: float) -> str:
    """``YYYY-mm-dd HH:MM:SS`` in local time, formatted once per second (one line of the
    default format per request: ``strftime`` and ``localtime`` were a tenth of its cost)."""
    global _last_stamp
    second = int(created)
    last = _last_stamp
    if last[0] == second:
        return last[1]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
    _last_stamp = (second, stamp)  # one assignment: a reader in another thread sees old or new
    return stamp


def escape(value: bytes | str, limit: int) -> str:
    """Make one untrusted field safe for a one-line log: cut at ``limit``, escape the rest.

    Control characters, quotes, backslashes and invalid UTF-8 become ``\\xNN`` / ``\\uNNNN``;
    the cut is marked ``...[+N]`` with the number of characters dropped.
    """
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    suffix = ""
    if len(text) > limit:
        suffix = f"...[+{len(text) - limit}]"
        text = text[:limit]
    if _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_escape_char, text)
    return text + suffix


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class AccessEntry:
    """The raw fields of one request, formatted only when a handler writes it (off the loop).

    ``str(entry)`` is the ``default`` format, so any handler attached to ``aeros.access``
    prints a useful line.
    """

    __slots__ = (
        "cache",
        "client",
        "created",
        "duration_ms",
        "limit",
        "method",
        "path",
        "query",
        "referer",
        "request_id",
        "size",
        "status",
        "user_agent",
        "version",
    )

    def __init__(
        self,
        client: tuple[str, int] | None,
        method: str,
        path: bytes | str,
        query: bytes,
        version: str,
        status: int,
        size: int,
        duration_ms: float,
        cache: str | None,
        referer: bytes | None = None,
        user_agent: bytes | None = None,
        request_id: str | None = None,
        limit: str | None = None,
    ) -> None:
        self.client = client
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.status = status
        self.size = size
        self.duration_ms = duration_ms
        self.cache = cache
        self.referer = referer
        self.user_agent = user_agent
        self.request_id = request_id
        self.limit = limit  # the rate limit's state when it refused or failed ("429", "error")
        self.created = 0.0  # when it was logged (time.time()), set by log_access

    def target(self) -> str:
        """Path and query, escaped and cut at :data:`MAX_PATH`."""
        path = (
            self.path.encode("utf-8", "surrogateescape")
            if isinstance(self.path, str)
            else self.path
        )
        return escape(path + b"?" + self.query if self.query else path, MAX_PATH)

    def host(self) -> str:
        """The client address (``-`` when unknown)."""
        return escape(self.client[0], 64) if self.client else "-"

    def request_line(self) -> str:
        """``METHOD target HTTP/version``, escaped."""
        path, query, method, version = self.path, self.query, self.method, self.version
        if type(path) is bytes and len(method) <= 32 and len(version) <= 8:
            # the usual line, checked once: escape() runs per field only when it must
            target = path.decode("utf-8", "surrogateescape")
            if query:
                target += "?" + query.decode("utf-8", "surrogateescape")
            line = f"{method} {target} HTTP/{version}"
            if len(target) <= MAX_PATH and _UNSAFE.search(line) is None:
                return line
        return f"{escape(method, 32)} {self.target()} HTTP/{escape(version, 8)}"

    def __str__(self) -> str:
        return AccessFormatter.line(self, "default", False)


_RESET = "\x1b[0m"
_LEVEL_COLORS = {10: "\x1b[36m", 20: "\x1b[32m", 30: "\x1b[33m", 40: "\x1b[31m", 50: "\x1b[1;31m"}
_STATUS_COLORS = {2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}


class ConsoleFormatter(logging.Formatter):
    """Server log lines, ``2026-01-31 12:00:00.123 INFO     aeros: message``, level coloured.

    Control characters in messages are escaped (a path quoted in an error message cannot forge
    lines or drive the terminal); tracebacks keep their line breaks.
    """

    def __init__(self, color: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")
        self.default_msec_format = "%s.%03d"
        self.color = color

    def formatMessage(self, record: logging.LogRecord) -> str:
        # a trailing newline (uvicorn's "Exception in ASGI application\n") ends the line anyway
        message = record.message.rstrip("\r\n").replace("\n", "\\n").replace("\r", "\\r")
        if _UNSAFE_TEXT.search(message) is not None:
            message = _UNSAFE_TEXT.sub(_escape_char, message)
        level = f"{record.levelname:<8}"
        request_id = getattr(record, "request_id", None)
        # the request id is well formed (checked or generated by its layer): no escaping
        name = f"{record.name} [{request_id}]" if request_id else record.name
        if self.color:
            color = _LEVEL_COLORS.get(min(max(record.levelno // 10 * 10, 10), 50), "")
            return f"\x1b[2m{record.asctime}{_RESET} {color}{level}{_RESET} {name}: {message}"
        return f"{record.asctime} {level} {name}: {message}"

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return _UNSAFE_TEXT.sub(_escape_char, text) if _UNSAFE_TEXT.search(text) else text


class AccessFormatter(logging.Formatter):
    """Access-log lines in one of :data:`ACCESS_FORMATS`, built from an :class:`AccessEntry`."""

    def __init__(self, fmt: str = "default", color: bool = False) -> None:
        super().__init__()
        if fmt not in ACCESS_FORMATS:
            raise ConfigurationError(f"AccessFormatter(fmt={fmt!r}): use one of {ACCESS_FORMATS}")
        self.fmt = fmt
        self.color = color and fmt == "default"

    def format(self, record: logging.LogRecord) -> str:
        entry = record.msg
        if not isinstance(entry, AccessEntry):  # someone else logged on aeros.access
            return ConsoleFormatter(self.color).format(record)
        # stdout and the file usually share a format: build the line once per record
        cache: dict[tuple[str, bool], str] = record.__dict__.setdefault("aeros_lines", {})
        key = (self.fmt, self.color)
        line = cache.get(key)
        if line is None:
            line = cache[key] = self.line(entry, self.fmt, self.color, record.created)
        return line

    @staticmethod
    def line(entry: AccessEntry, fmt: str, color: bool, created: float | None = None) -> str:
        """Format ``entry`` as one line (no trailing newline)."""
        created = time.time() if created is None else created
        if fmt == "json":
            return _json_line(entry, created)
        if fmt == "default":
            stamp = _stamp(created)
            millis = int(created % 1 * 1000)
            client = f"{entry.host()}:{entry.client[1]}" if entry.client else "-"
            status = str(entry.status)
            cache = escape(entry.cache, 16) if entry.cache else "-"
            if color:
                status = f"{_STATUS_COLORS.get(entry.status // 100, '')}{status}{_RESET}"
                stamp = f"\x1b[2m{stamp}"
                millis_text = f"{millis:03d}{_RESET}"
            else:
                millis_text = f"{millis:03d}"
            line = (
                f'{stamp}.{millis_text} {client} "{entry.request_line()}" {status} '
                f"{entry.size}B {entry.duration_ms:.2f}ms cache={cache}"
                + (f" limit={escape(entry.limit, 16)}" if entry.limit else "")
            )
            return f"{line} id={entry.request_id}" if entry.request_id else line
        local = time.localtime(created)
        offset = local.tm_gmtoff or 0
        stamp = (
            f"{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year}:"
            f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} "
            f"{'-' if offset < 0 else '+'}{abs(offset) // 3600:02d}{abs(offset) % 3600 // 60:02d}"
        )
        size = str(entry.size) if entry.size else "-"
        text = f'{entry.host()} - - [{stamp}] "{entry.request_line()}" {entry.status} {size}'
        if fmt == "combined":
            referer = escape(entry.referer, MAX_HEADER) if entry.referer else "-"
            agent = escape(entry.user_agent, MAX_HEADER) if entry.user_agent else "-"
            text += f' "{referer}" "{agent}"'
        if entry.request_id:  # one more quoted field at the end, as %{X-Request-ID}i adds
            text += f' "{entry.request_id}"'
        return text


def _json_field(value: bytes | None, limit: int) -> str | None:
    if value is None:
        return None
    text = value.decode("utf-8", "backslashreplace")
    return text[:limit] + f"...[+{len(text) - limit}]" if len(text) > limit else text


def _json_line(entry: AccessEntry, created: float) -> str:
    path = entry.path if isinstance(entry.path, bytes) else entry.path.encode("utf-8", "replace")
    data = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(created))
        + f".{int(created % 1 * 1000):03d}"
        + time.strftime("%z", time.localtime(created)),
        "client": f"{entry.client[0]}:{entry.client[1]}" if entry.client else None,
        "method": entry.method[:32],
        "path": _json_field(path, MAX_PATH),
        "query": _json_field(entry.query, MAX_PATH) if entry.query else "",
        "protocol": f"HTTP/{entry.version[:8]}",
        "status": entry.status,
        "bytes": entry.size,
        "duration_ms": round(entry.duration_ms, 3),
        "cache": entry.cache,
        "limit": entry.limit,
        "referer": _json_field(entry.referer, MAX_HEADER),
        "user_agent": _json_field(entry.user_agent, MAX_HEADER),
    }
    if entry.request_id:
        data["request_id"] = entry.request_id
    # ensure_ascii escapes every control and non-ASCII character; DEL is ASCII, so by hand.
    return json.dumps(data, ensure_ascii=True).replace("\x7f", "\\u007f")


def use_color(stream: IO[str], color: bool | None = None) -> bool:
    """Whether to colour output to ``stream``: ``color`` if given, else NO_COLOR > FORCE_COLOR >
    ``stream.isatty()`` (https://no-color.org, https://force-color.org)."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "").lower() not in {"", "0", "false"}:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False
