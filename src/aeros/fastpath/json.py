"""An orjson JSON provider for WebServer, with Quart's output and stdlib json as a fallback.

Quart (through Flask's ``DefaultJSONProvider``) serialises with :mod:`json`, sorted keys and
compact separators. :class:`OrjsonProvider` produces the same documents several times faster:

- keys stay sorted (``sort_keys``), dates are HTTP dates, ``Decimal``/``UUID`` become strings,
  dataclasses become objects and ``__html__`` objects their markup, exactly as Flask does;
- non-ASCII text is written as UTF-8 rather than ``\\uXXXX`` escapes (``ensure_ascii`` is not
  honoured); both decode to the same value;
- anything orjson refuses (integers beyond 64 bits, ``cls=``, custom separators, mixed key types)
  is handed to :mod:`json` with the arguments Flask would have used, so it still works or
  fails exactly as on Quart.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider, _default

__all__ = ["OrjsonProvider"]

_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_UNSORTED = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_ORJSON_KWARGS = frozenset({"default", "ensure_ascii", "sort_keys"})


class OrjsonProvider(DefaultJSONProvider):
    """``app.json`` backed by orjson; see the module docstring for what differs (only escapes)."""

    def _encode(self, obj: Any, indent: bool) -> bytes:
        option = _SORTED if self.sort_keys else _UNSORTED
        if indent:
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, default=self.default, option=option)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj`` to a JSON string (orjson; :mod:`json` for options it lacks)."""
        if kwargs.keys() <= _ORJSON_KWARGS and kwargs.get("default", _default) is _default:
            sort_keys = kwargs.get("sort_keys", self.sort_keys)
            option = _SORTED if sort_keys else _UNSORTED
            try:
                return orjson.dumps(obj, default=self.default, option=option).decode()
            except (TypeError, orjson.JSONEncodeError):
                pass  # json decides: it may accept it (huge ints) or raise Flask's error
        return super().dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text or UTF-8 bytes (orjson; :mod:`json` for kwargs, NaN and errors)."""
        if not kwargs:
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass  # json accepts NaN/Infinity and raises the error Quart users expect
        return json.loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        """A JSON response, as Flask builds it (compact, trailing newline), serialised by orjson."""
        obj = self._prepare_response_obj(args, kwargs)
        indent = (self.compact is None and self._app.debug) or self.compact is False
        try:
            body = self._encode(obj, indent) + b"\n"
        except (TypeError, orjson.JSONEncodeError):
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)  # type: ignore[arg-type]
