"""An orjson JSON provider for WebServer, with Quart's output and stdlib json as a fallback.

Quart (through Flask's ``DefaultJSONProvider``) serialises with :mod:`json`: sorted keys, ASCII
escapes, compact separators in responses and ``", "`` / ``": "`` in ``app.json.dumps`` (Jinja's
``tojson``). :class:`OrjsonProvider` writes the same documents with orjson where orjson can, and
hands everything else to :mod:`json` with the arguments Flask would have used, so the result
(or the exception) is Quart's:

- plain documents (dicts with str keys, lists, tuples, str, int, float, bool, None) go through
  orjson; non-ASCII text is then escaped as Quart escapes it (``\\u00e9``), so responses are
  byte for byte Quart's;
- dates, ``Decimal``, ``UUID``, dataclasses and ``__html__`` objects go through Flask's
  ``default`` (HTTP dates, strings, ``dataclasses.asdict``, markup), as in Quart;
- non-str keys (Quart sorts ``{10: .., 9: ..}`` as ints and refuses mixed key types), NaN and
  infinities (Quart writes ``NaN`` / ``Infinity``; orjson would write ``null``), integers beyond
  64 bits, str/float/tuple subclasses orjson does not know, ``cls=``, other separators and
  indents: :mod:`json` decides, exactly as on Quart.

Parsing (``request.get_json()``, ``app.json.loads``) is orjson's, except for text holding a run
of 19 or more digits: orjson reads an integer beyond 64 bits as a float (losing digits), so such
text goes to :mod:`json`, which keeps it exact (a long float or a long digit string in a value
goes there too, to the same result).

Differences that remain, neither changing a decoded value: a float below 1e-4 may be spelt
without an exponent (``0.00001`` where Quart writes ``1e-05``); and a plain :class:`enum.Enum`
member (not ``IntEnum``/``StrEnum``, which both write as their value) is written as its value
where Quart raises ``TypeError``: orjson serialises enums natively, and finding one would mean
walking every document in Python, which costs more than serialising it.
"""

from __future__ import annotations

import json
import re
from gc import get_referents
from itertools import compress
from json.encoder import encode_basestring_ascii
from math import isfinite
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider, _default
from flask.sansio.app import App

from aeros.fastpath.response import LeanResponse

__all__ = ["OrjsonProvider"]

# No OPT_NON_STR_KEYS: a non-str key makes orjson raise, and json sorts and converts it as
# Quart does. Dataclasses go to Flask's default (dataclasses.asdict), as in Quart.
_FLASKS_DEBUG = App.debug
_FLASKS_PREPARE = DefaultJSONProvider._prepare_response_obj
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_COMPACT = (",", ":")
_FAST_KWARGS = frozenset({"default", "ensure_ascii", "sort_keys", "separators", "indent"})
# json's ensure_ascii escapes DEL (0x7f) as well as every non-ASCII character
_NON_ASCII = re.compile("[\x7f-\U0010ffff]+")
_PLAIN = frozenset({str, int, bool, type(None)})
_FLOAT = frozenset({float})
_CONTAINERS = frozenset({dict, list, tuple})
_KNOWN = _PLAIN | _FLOAT | _CONTAINERS
# 19 digits in a row may be an integer beyond 64 bits (orjson would make it a float)
_LONG_DIGITS = re.compile("[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(b"[0-9]{19}")


def _long_digits(text: str | bytes) -> bool:
    """Whether ``text`` has a run of 19 digits (an integer that may not fit 64 bits)."""
    if isinstance(text, str):
        return _LONG_DIGITS.search(text) is not None
    return _LONG_DIGITS_BYTES.search(text) is not None


def _escape_run(match: re.Match[str]) -> str:
    # json's own escaper (C), so the escapes (surrogate pairs included) are json's exactly
    return encode_basestring_ascii(match.group())[1:-1]


def _to_ascii(data: bytes) -> bytes:
    """orjson's UTF-8 output with non-ASCII text escaped as ``json.dumps(ensure_ascii=True)``."""
    return _NON_ASCII.sub(_escape_run, data.decode()).encode()


def _needs_json(obj: Any) -> bool:
    """True when ``obj`` holds a non-finite float or anything beyond plain JSON types.

    Called only when orjson wrote ``null`` (what it makes of NaN and infinities); anything
    unusual sends the document to :mod:`json`, which writes it as Quart does. It walks the
    document one depth at a time with C-level passes (``gc.get_referents`` yields the values
    of every dict and the items of every list and tuple of a level), not item by item.
    """
    kind = type(obj)
    if kind not in _CONTAINERS:
        return kind not in _KNOWN or (kind is float and not isfinite(obj))
    items: list[Any] = get_referents(obj)
    while True:
        kinds_list = list(map(type, items))
        kinds = set(kinds_list)
        if not kinds <= _KNOWN:
            return True
        if float in kinds:
            # NaN and infinities survive a sum; an overflow to inf only sends it to json
            floats = compress(items, map(_FLOAT.__contains__, kinds_list))
            if not isfinite(sum(floats, 0.0)):
                return True
        if kinds.isdisjoint(_CONTAINERS):
            return False
        items = get_referents(*compress(items, map(_CONTAINERS.__contains__, kinds_list)))


class OrjsonProvider(DefaultJSONProvider):
    """``app.json`` backed by orjson, writing what Quart writes (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        # where the app's ``debug`` is Flask's property, config["DEBUG"] is read in its place
        # (the app's config of the moment: it may be replaced), with no property call
        self._debug_in_config = getattr(type(app), "debug", None) is _FLASKS_DEBUG
        # where _prepare_response_obj is Flask's, its one-argument case is taken in place
        self._flasks_prepare = type(self)._prepare_response_obj is _FLASKS_PREPARE

    def _fast(self, obj: Any, sort_keys: bool, indent: bool, ensure_ascii: bool) -> bytes | None:
        """orjson's rendering of ``obj`` as json would write it, or None: let json do it."""
        option = _PASSTHROUGH
        if sort_keys:
            option |= orjson.OPT_SORT_KEYS
        if indent:
            option |= orjson.OPT_INDENT_2
        try:
            data = orjson.dumps(obj, default=self.default, option=option)
        except (TypeError, orjson.JSONEncodeError):
            return None  # json decides: it may accept it (huge ints, int keys) or raise
        if data.find(b"null") != -1 and _needs_json(obj):  # "in" would raise and drop a TypeError
            return None
        if ensure_ascii and (not data.isascii() or 0x7F in data):
            data = _to_ascii(data)
        return data

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj`` to a JSON string exactly as Quart's provider does.

        orjson writes it when the options are ones it has (compact separators, or ``indent=2``
        with json's default separators); json otherwise, e.g. for ``tojson``'s ``", "``.
        """
        if kwargs.keys() <= _FAST_KWARGS and kwargs.get("default", _default) is _default:
            separators = kwargs.get("separators")
            indent = kwargs.get("indent")
            fast = None
            if (separators == _COMPACT and indent is None) or (indent == 2 and separators is None):
                fast = self._fast(
                    obj,
                    kwargs.get("sort_keys", self.sort_keys),
                    indent == 2,
                    kwargs.get("ensure_ascii", self.ensure_ascii),
                )
            if fast is not None:
                return fast.decode()
        return super().dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text or UTF-8 bytes (orjson; :mod:`json` for kwargs, NaN, integers that
        may not fit 64 bits, and errors)."""
        if not kwargs and not _long_digits(s):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass  # json accepts NaN/Infinity and raises the error Quart users expect
        return json.loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        """A JSON response, as Flask builds it (compact, trailing newline), serialised by orjson."""
        if self._flasks_prepare and len(args) == 1 and not kwargs:
            obj = args[0]  # _prepare_response_obj's commonest case, with no call
        else:
            obj = self._prepare_response_obj(args, kwargs)
        debug = self._app.config["DEBUG"] if self._debug_in_config else self._app.debug
        indent = (self.compact is None and debug) or self.compact is False
        body = self._fast(obj, self.sort_keys, indent, self.ensure_ascii)
        if body is None:
            return super().response(*args, **kwargs)
        response_class = self._app.response_class
        if response_class is LeanResponse:  # its parameters by position: 1 k less than by name
            return LeanResponse(body + b"\n", None, None, self.mimetype)
        return response_class(body + b"\n", mimetype=self.mimetype)  # type: ignore[arg-type]
