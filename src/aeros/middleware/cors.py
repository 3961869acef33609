"""CORS: the policy (``CORS``, checked once) and the layer that applies it (``CORSMiddleware``).

The layer answers preflight requests itself (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``): 204 with the ``Access-Control-Allow-*`` headers when the
origin, method and headers are allowed, 403 with no allow headers otherwise. On other requests
from an allowed origin it adds ``Access-Control-Allow-Origin`` (and credentials / exposed
headers). Whenever the answer depends on the origin, responses carry ``Vary: Origin`` so shared
caches keep one answer per origin. Header bytes are built once, in ``__init__``.

Browsers do not apply CORS to WebSockets: any page may open one to any site, with the user's
cookies. So, unless every origin is allowed, the layer also checks WebSocket handshakes: one
whose ``Origin`` is neither allowed nor the server's own (the ``Host`` it was sent to) is
refused with 403 before the app sees it. Handshakes without ``Origin`` (not from a browser)
pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass

from aeros._validate import boolean, integer
from aeros.errors import ConfigurationError
from aeros.headers import add_vary, is_token
from aeros.middleware.headers import GlobalHeaders
from aeros.types import ASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["CORS", "CORSMiddleware"]

_ORIGIN = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/?#\s,]+$")
_DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _tokens(api: str, name: str, value: object, *, upper: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"{api}({name}={value!r}) must be a list of str")
    out: list[str] = []
    for item in value:
        tok = item.strip() if isinstance(item, str) else item
        if not isinstance(tok, str) or not (tok == "*" or is_token(tok)):
            raise ConfigurationError(
                f"{api}({name}=...) has {item!r}; use header/method names (tokens) or '*'"
            )
        out.append(tok.upper() if upper else tok.lower())
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class CORS:
    """Cross-origin resource sharing policy for ``WebServer(cors=CORS(...))``.

    Args:
        origins: allowed origins: ``"*"`` (any, the default), a list of exact origins such as
            ``["https://app.example.com"]`` (scheme, host and port, no path), or a compiled
            regex matched against the whole origin. The opaque ``"null"`` origin (sandboxed
            iframes, ``file:``) is allowed only when listed literally.
        methods: methods a preflight may ask for (default GET, HEAD, POST, PUT, PATCH, DELETE);
            ``"*"`` allows any and answers ``*``, or, with credentials (when browsers read
            ``*`` literally), the method asked for.
        headers: request headers a preflight may ask for; ``"*"`` (default) allows any and
            answers with the headers asked for.
        expose_headers: response headers scripts may read beyond the safelisted ones.
        allow_credentials: send ``Access-Control-Allow-Credentials: true`` (cookies, HTTP
            auth). Refused together with the ``"*"`` origin.
        max_age: seconds a browser may cache a preflight answer (default 600); None omits it.

    Raises:
        ConfigurationError: an invalid value, or a wildcard origin with credentials.
    """

    origins: str | Iterable[str] | re.Pattern[str] = "*"
    _: KW_ONLY
    methods: Iterable[str] = _DEFAULT_METHODS
    headers: Iterable[str] = ("*",)
    expose_headers: Iterable[str] = ()
    allow_credentials: bool = False
    max_age: int | None = 600

    def __post_init__(self) -> None:
        origins = self.origins
        if isinstance(origins, re.Pattern):
            if not isinstance(origins.pattern, str):
                raise ConfigurationError("CORS(origins=re.compile(...)) must be a str pattern")
        else:
            if isinstance(origins, str):
                origins = [origins]
            if not isinstance(origins, Iterable):
                raise ConfigurationError(
                    f"CORS(origins={origins!r}) must be '*', a list of origins or a compiled regex"
                )
            normalized: list[str] = []
            for origin in origins:
                if not isinstance(origin, str):
                    raise ConfigurationError(
                        f"CORS(origins=...) entries must be str; got {origin!r}"
                    )
                value = origin.strip().lower()
                if value not in {"*", "null"} and not _ORIGIN.match(value):
                    raise ConfigurationError(
                        f"CORS(origins=...) has {origin!r}; an origin is scheme://host[:port] "
                        "with no path or trailing slash (or '*', or 'null')"
                    )
                normalized.append(value)
            object.__setattr__(self, "origins", tuple(dict.fromkeys(normalized)))
        object.__setattr__(self, "methods", _tokens("CORS", "methods", self.methods, upper=True))
        object.__setattr__(self, "headers", _tokens("CORS", "headers", self.headers))
        object.__setattr__(
            self, "expose_headers", _tokens("CORS", "expose_headers", self.expose_headers)
        )
        boolean("CORS", "allow_credentials", self.allow_credentials)
        if self.max_age is not None:
            integer("CORS", "max_age", self.max_age, minimum=0)
        if self.allow_credentials and self.allows_any_origin:
            raise ConfigurationError(
                "CORS(origins='*', allow_credentials=True) would let every site make credentialed "
                "requests; list the trusted origins (or a regex) instead"
            )
        if self.allow_credentials and "*" in self.expose_headers:
            raise ConfigurationError(
                "CORS(expose_headers='*', allow_credentials=True): browsers read '*' literally "
                "with credentials; list the headers to expose"
            )

    @property
    def allows_any_origin(self) -> bool:
        """Whether every (non-null) origin is allowed: the answer does not depend on it."""
        return not isinstance(self.origins, re.Pattern) and "*" in self.origins

    def allows_origin(self, origin: str) -> bool:
        """Whether a request ``Origin`` value is allowed by this policy."""
        origins = self.origins
        if isinstance(origins, re.Pattern):
            return origin != "null" and origins.fullmatch(origin) is not None
        if origin in origins:
            return True
        return origin != "null" and "*" in origins


class CORSMiddleware:
    """Apply a :class:`CORS` policy: answer preflights, tag responses to allowed origins.

    Args:
        app: the inner ASGI app.
        cors: the policy.
        global_headers: the app's global headers, added to the preflight answers this layer
            makes itself (every other response gets them from the headers layer inside).
    """

    def __init__(
        self, app: ASGIApp, cors: CORS, global_headers: GlobalHeaders | None = None
    ) -> None:
        self.app = app
        self.cors = cors
        self.global_headers = global_headers if global_headers else None
        self.any_origin = cors.allows_any_origin
        self.vary = not self.any_origin  # the answer depends on the origin
        self.exact = (
            frozenset(o.encode("latin-1") for o in cors.origins)
            if not isinstance(cors.origins, re.Pattern)
            else frozenset()
        )
        methods: tuple[str, ...] = cors.methods  # type: ignore[assignment]
        headers: tuple[str, ...] = cors.headers  # type: ignore[assignment]
        exposed: tuple[str, ...] = cors.expose_headers  # type: ignore[assignment]
        self.methods = frozenset(m.encode("ascii") for m in methods)
        self.any_method = "*" in methods
        # Fetch: "*" is a wildcard only without credentials; with them the method is echoed
        self.echo_method = self.any_method and cors.allow_credentials
        self.any_header = "*" in headers
        self.headers = frozenset(h.encode("ascii") for h in headers)
        credentials = [(b"access-control-allow-credentials", b"true")]
        common: Headers = credentials if cors.allow_credentials else []
        self.simple_headers: Headers = list(common)
        if exposed:
            self.simple_headers.append(
                (b"access-control-expose-headers", ", ".join(exposed).encode("ascii"))
            )
        allow_methods = "*" if self.any_method else ", ".join(methods)
        self.preflight_headers: Headers = list(common)
        if not self.echo_method:
            self.preflight_headers.append(
                (b"access-control-allow-methods", allow_methods.encode("ascii"))
            )
        if cors.max_age is not None:
            self.preflight_headers.append(
                (b"access-control-max-age", str(cors.max_age).encode("ascii"))
            )
        if not self.any_header:
            self.preflight_headers.append(
                (b"access-control-allow-headers", ", ".join(headers).encode("ascii"))
            )
        self.preflight_vary = (
            b"origin, access-control-request-method, access-control-request-headers"
        )

    def _allowed(self, origin: bytes) -> bool:
        if origin in self.exact:
            return True
        try:
            text = origin.decode("ascii")
        except UnicodeDecodeError:
            return False
        if "," in text or " " in text:  # one origin per request; a list is not an origin
            return False
        return self.cors.allows_origin(text.lower())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and not self.any_origin:
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        origin = request_method = request_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                request_headers = value
        if origin is None:
            if self.vary:
                await self.app(scope, receive, _vary_sender(send))
            else:
                await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(origin, request_method, request_headers, send)
            return
        if not self._allowed(origin):
            await self.app(scope, receive, _vary_sender(send) if self.vary else send)
            return
        extra = [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin),
            *self.simple_headers,
        ]
        vary = self.vary

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a list read twice below (ASGI allows any iterable: an iterator is read once)
                out = list(message.get("headers") or ())
                if not any(n == b"access-control-allow-origin" for n, _ in out):
                    out += extra  # else the view answered CORS itself
                message["headers"] = add_vary(out, b"origin") if vary else out
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = host = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"host":
                host = value
        if origin is None or self._allowed(origin) or _same_origin(origin, host):
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect; the handshake is answered, never accepted
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # the server sends 403
            return
        body = b"WebSocket refused: origin not allowed"
        headers: Headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        if self.global_headers:
            headers = self.global_headers.apply(headers)
        await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})

    async def _preflight(
        self, origin: bytes, method: bytes, requested: bytes | None, send: Send
    ) -> None:
        asked = [h.strip().lower() for h in requested.split(b",")] if requested else []
        asked = [h for h in asked if h]
        method = method.strip()
        if not self._allowed(origin):
            reason = b"origin not allowed"
        elif not (method.upper() in self.methods or (self.any_method and is_token(method))):
            reason = b"method not allowed"
        elif not self.any_header and not set(asked) <= self.headers:
            reason = b"headers not allowed"
        else:
            headers: Headers = [
                (b"access-control-allow-origin", b"*" if self.any_origin else origin),
                *self.preflight_headers,
            ]
            if self.echo_method:  # as asked: methods are case-sensitive ("patch" is not PATCH)
                headers.append((b"access-control-allow-methods", method))
            if self.any_header and asked and all(is_token(h) for h in asked):
                headers.append((b"access-control-allow-headers", b", ".join(asked)))
            headers += [(b"vary", self.preflight_vary), (b"content-length", b"0")]
            if self.global_headers:
                headers = self.global_headers.apply(headers)
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = b"CORS preflight refused: " + reason
        refused: Headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"vary", self.preflight_vary),
        ]
        if self.global_headers:
            refused = self.global_headers.apply(refused)
        await send({"type": "http.response.start", "status": 403, "headers": refused})
        await send({"type": "http.response.body", "body": body, "more_body": False})


_DEFAULT_PORTS = {b"http": b":80", b"https": b":443", b"ws": b":80", b"wss": b":443"}


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether ``origin`` names the host the request was sent to (default ports ignored)."""
    scheme, sep, authority = origin.lower().partition(b"://")
    if not sep or host is None:
        return False
    default = _DEFAULT_PORTS.get(scheme, b"")
    return authority.removesuffix(default) == host.lower().removesuffix(default)


def _vary_sender(send: Send) -> Send:
    async def send_with_vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = add_vary(message.get("headers") or [], b"origin")
        await send(message)

    return send_with_vary
