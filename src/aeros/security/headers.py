"""The security-header preset: :class:`SecurityHeaders`, turned into global header pairs.

``WebServer(security_headers=SecurityHeaders())`` adds these to the app's global headers, so
they go on every response the global headers reach (views, errors, cache hits and their 304s,
CORS preflights, the 429/503 refusals and the server's own 4xx answers). ``global_headers=``
and a view's own header win over the preset. ``Strict-Transport-Security`` is kept apart: it is
sent only on requests that arrived over HTTPS (or through a trusted proxy that says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aeros.errors import ConfigurationError
from aeros.headers import check_header
from aeros.security.csp import CSP
from aeros.types import Headers

__all__ = ["SecurityHeaders"]

DEFAULT_PERMISSIONS = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
"""Permissions-Policy default: browser features a web service rarely needs, all turned off."""

_NAMES = {
    "content_type_options": "X-Content-Type-Options",
    "referrer_policy": "Referrer-Policy",
    "frame_options": "X-Frame-Options",
    "csp": "Content-Security-Policy",
    "cross_origin_opener_policy": "Cross-Origin-Opener-Policy",
    "cross_origin_resource_policy": "Cross-Origin-Resource-Policy",
    "permissions_policy": "Permissions-Policy",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityHeaders:
    """Response headers that security scanners (Mozilla Observatory and the like) ask for.

    Every field is the header's value; None leaves that header out.

    Attributes:
        content_type_options: ``X-Content-Type-Options``. Default ``nosniff``: browsers keep
            to the declared Content-Type instead of guessing (a JSON body is never run as a
            script).
        referrer_policy: ``Referrer-Policy``. Default ``strict-origin-when-cross-origin``:
            other sites see only your origin, never paths or query strings, and nothing over
            a downgrade to HTTP.
        frame_options: ``X-Frame-Options``. Default ``DENY``: no page may frame yours
            (clickjacking), for browsers that predate CSP ``frame-ancestors``.
        csp: ``Content-Security-Policy``, a :class:`CSP` or a str. Default ``CSP()``:
            ``default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self';
            frame-ancestors 'none'``.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``. Default ``same-origin``:
            a window you open from another origin cannot reach back into yours.
        cross_origin_resource_policy: ``Cross-Origin-Resource-Policy``. Default
            ``same-origin``: other sites cannot embed your responses (``same-site`` or
            ``cross-origin`` for public assets and APIs meant to be embedded).
        permissions_policy: ``Permissions-Policy``. Default: camera, microphone,
            geolocation, payment, USB and motion sensors off (:data:`DEFAULT_PERMISSIONS`).
        hsts: ``Strict-Transport-Security``, sent only on HTTPS requests (browsers ignore it
            over HTTP). Default ``max-age=63072000; includeSubDomains`` (two years). Add
            ``; preload`` only once every subdomain serves HTTPS.

    Raises:
        ConfigurationError: a value is not a str (or a CSP for ``csp``), or holds CR, LF or
            NUL.
    """

    content_type_options: str | None = "nosniff"
    referrer_policy: str | None = "strict-origin-when-cross-origin"
    frame_options: str | None = "DENY"
    csp: CSP | str | None = field(default_factory=CSP)
    cross_origin_opener_policy: str | None = "same-origin"
    cross_origin_resource_policy: str | None = "same-origin"
    permissions_policy: str | None = DEFAULT_PERMISSIONS
    hsts: str | None = "max-age=63072000; includeSubDomains"

    def __post_init__(self) -> None:
        for name in (*_NAMES, "hsts"):
            value = getattr(self, name)
            if value is None or (name == "csp" and isinstance(value, CSP)):
                continue
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(
                    f"SecurityHeaders({name}={value!r}) must be a non-empty str or None "
                    f"(None leaves the header out)"
                    + ("; or an aeros.CSP(...)" if name == "csp" else "")
                )
        if self.hsts is not None and "max-age=" not in self.hsts.lower():
            raise ConfigurationError(
                f"SecurityHeaders(hsts={self.hsts!r}) needs a max-age (RFC 6797), such as "
                "'max-age=63072000; includeSubDomains'"
            )
        self.pairs()  # CR, LF, NUL or non-latin-1 in a value fail here, not when it is served
        self.https_pairs()

    def pairs(self) -> Headers:
        """The headers sent on every response, encoded (names lower-case)."""
        where = "SecurityHeaders(...)"
        return [
            check_header(header, str(value), where=where)
            for name, header in _NAMES.items()
            if (value := getattr(self, name)) is not None
        ]

    def https_pairs(self) -> Headers:
        """The headers sent only on HTTPS requests: ``Strict-Transport-Security``."""
        if self.hsts is None:
            return []
        return [check_header("Strict-Transport-Security", self.hsts, where="SecurityHeaders")]
