"""A Content-Security-Policy builder that refuses the combinations that defeat the policy.

:class:`CSP` writes the header value from keyword directives (``script_src=["'self'"]`` becomes
``script-src 'self'``) and raises :class:`~aeros.errors.ConfigurationError` when it is built
with what makes a CSP useless against cross-site scripting: ``'unsafe-inline'`` for scripts,
``'unsafe-eval'`` anywhere, a bare ``*`` source, and for scripts any ``http:`` / ``https:`` /
``data:`` scheme source or a host wildcard as wide (``https://*``, ``*:443``, ``*.com``: every
host, or every host under a top-level domain). The script rules hold for every directive that
decides which scripts run: ``script-src``, ``script-src-elem``, ``script-src-attr`` and, when
``script-src`` is not given, ``default-src`` (which browsers without the ``-elem``/``-attr``
directives fall back to). ``allow_unsafe=True`` accepts them, for a migration that needs them
for a while.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aeros.errors import ConfigurationError

__all__ = ["CSP"]

_NAMED = (
    "default_src",
    "script_src",
    "style_src",
    "img_src",
    "connect_src",
    "font_src",
    "object_src",
    "media_src",
    "frame_src",
    "worker_src",
    "manifest_src",
    "base_uri",
    "form_action",
    "frame_ancestors",
)
# Sources that let any page's script run as yours (scheme sources allow every host there).
_SCRIPT_UNSAFE = frozenset({"'unsafe-inline'", "*", "http:", "https:", "data:"})
# A host source whose host is "*" or "*.<one label>" (https://*, *:443, *.com, https://*.com/js/):
# as wide as a scheme source. A path does not narrow it: paths are not checked after a redirect.
_WILDCARD_HOST = re.compile(
    r"""(?:[a-z][a-z0-9+.\-]*://)?  # scheme://, optional
        \*(?:\.[^.:/]+)?\.?        # * or *.label (a top-level domain), a trailing dot or not
        (?::[0-9*]+)?                # :port or :*
        (?:/.*)?                     # any path""",
    re.VERBOSE,
)
# The directives that decide which scripts run (default-src only when script-src is absent).
_SCRIPT_DIRECTIVES = ("script-src", "script-src-elem", "script-src-attr")
_BAD_CHARS = frozenset(";,\r\n\x00")


def _sources(name: str, value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
        raise ConfigurationError(
            f"CSP({name}={value!r}) must be a str or a sequence of source expressions (str)"
        )
    for item in items:
        if not item or _BAD_CHARS & set(item) or " " in item:
            raise ConfigurationError(
                f"CSP({name}=...): {item!r} is not one source expression (no spaces, ';', "
                "',', CR, LF or NUL; give each source as its own item)"
            )
    return tuple(items)


@dataclass(frozen=True, slots=True, kw_only=True)
class CSP:
    """A ``Content-Security-Policy`` value; ``str(csp)`` is what goes on the wire.

    Each fetch or navigation directive is a keyword (underscores for hyphens) taking a source
    expression or a sequence of them; an empty sequence leaves the directive out. The defaults
    allow only the page's own origin, no plugins, no framing by other sites (the modern
    ``X-Frame-Options``) and no form posts elsewhere.

    Attributes:
        default_src: fallback for every fetch directive not given. Default ``'self'``.
        script_src, style_src, img_src, connect_src, font_src, media_src, frame_src,
            worker_src, manifest_src: the fetch directives; default: not sent (they fall back
            to ``default_src``).
        object_src: plugins. Default ``'none'``.
        base_uri: what ``<base href>`` may point at. Default ``'self'``.
        form_action: where forms may be submitted. Default ``'self'``.
        frame_ancestors: who may frame the page. Default ``'none'``.
        upgrade_insecure_requests: send ``upgrade-insecure-requests``. Default False.
        report_to: a ``Reporting-Endpoints`` group name for violation reports; None: none.
        extra: other directives, name (hyphenated) to sources, written after the others.
        allow_unsafe: accept the unsafe sources listed in the module docstring. Default False.

    Raises:
        ConfigurationError: a source expression is malformed, or an unsafe one is used without
            ``allow_unsafe=True`` (the message names the directive and the source).
    """

    default_src: str | Sequence[str] = ("'self'",)
    script_src: str | Sequence[str] = ()
    style_src: str | Sequence[str] = ()
    img_src: str | Sequence[str] = ()
    connect_src: str | Sequence[str] = ()
    font_src: str | Sequence[str] = ()
    object_src: str | Sequence[str] = ("'none'",)
    media_src: str | Sequence[str] = ()
    frame_src: str | Sequence[str] = ()
    worker_src: str | Sequence[str] = ()
    manifest_src: str | Sequence[str] = ()
    base_uri: str | Sequence[str] = ("'self'",)
    form_action: str | Sequence[str] = ("'self'",)
    frame_ancestors: str | Sequence[str] = ("'none'",)
    upgrade_insecure_requests: bool = False
    report_to: str | None = None
    extra: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    allow_unsafe: bool = False
    value: str = field(init=False, default="")
    """The header value, built once."""

    def __post_init__(self) -> None:
        directives: list[tuple[str, tuple[str, ...]]] = []
        for name in _NAMED:
            sources = _sources(name, getattr(self, name))
            object.__setattr__(self, name, sources)
            if sources:
                directives.append((name.replace("_", "-"), sources))
        if not isinstance(self.extra, Mapping):
            raise ConfigurationError(f"CSP(extra={self.extra!r}) must be a mapping")
        for name, value in self.extra.items():
            if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
                raise ConfigurationError(f"CSP(extra=...): {name!r} is not a directive name")
            directives.append((name.lower(), _sources(f"extra[{name!r}]", value)))
        if not isinstance(self.allow_unsafe, bool):
            raise ConfigurationError(f"CSP(allow_unsafe={self.allow_unsafe!r}) must be a bool")
        if not self.allow_unsafe:
            self._refuse_unsafe(directives)
        parts = [" ".join((name, *sources)) for name, sources in directives]
        if self.upgrade_insecure_requests:
            parts.append("upgrade-insecure-requests")
        if self.report_to is not None:
            if not isinstance(self.report_to, str) or not self.report_to.replace("-", "").isalnum():
                raise ConfigurationError(
                    f"CSP(report_to={self.report_to!r}) must be a reporting group name "
                    "(letters, digits, -)"
                )
            parts.append(f"report-to {self.report_to}")
        object.__setattr__(self, "value", "; ".join(parts))

    @staticmethod
    def _refuse_unsafe(directives: list[tuple[str, tuple[str, ...]]]) -> None:
        # each occurrence is checked: a directive given twice (script_src, then again in
        # extra) is enforced by its first occurrence only, and neither may slip through
        names = {name for name, _ in directives}
        scripts = (*_SCRIPT_DIRECTIVES, *(() if "script-src" in names else ("default-src",)))
        for name, sources in directives:
            if name not in scripts:
                continue
            for source in sources:
                lowered = source.lower()
                if lowered in _SCRIPT_UNSAFE or _WILDCARD_HOST.fullmatch(lowered):
                    raise ConfigurationError(
                        f"CSP({_argument(name)}=...): {source!r} lets any script run, which "
                        "defeats the policy; use nonces/hashes or your own hosts, or pass "
                        "allow_unsafe=True"
                    )
        for name, sources in directives:
            for source in sources:
                if source.lower() == "'unsafe-eval'" or source == "*":
                    raise ConfigurationError(
                        f"CSP({_argument(name)}=...): {source!r} is refused (it allows "
                        "eval() or any host); name the hosts, or pass allow_unsafe=True"
                    )

    def __str__(self) -> str:
        return self.value


def _argument(directive: str) -> str:
    """How a directive was given: ``script_src`` for a keyword, ``extra['...']`` otherwise."""
    keyword = directive.replace("-", "_")
    return keyword if keyword in _NAMED else f"extra[{directive!r}]"
