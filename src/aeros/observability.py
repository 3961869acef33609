"""Request ids, the health endpoint and metrics: :class:`ObservabilityConfig`, checked once.

Built by :class:`aeros.WebServer` from its ``request_id``, ``health_path``, ``metrics``,
``metrics_path`` and ``metrics_port`` options; the app turns it into layers
(:meth:`aeros.WebServer.layers`). Each feature is off by default and then costs nothing: no
layer is added.
"""

from __future__ import annotations

from dataclasses import dataclass

from aeros import _validate
from aeros.errors import ConfigurationError
from aeros.headers import is_token

__all__ = ["ObservabilityConfig"]


def _path(option: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in "?# "):
        raise ConfigurationError(
            f"WebServer({option}={value!r}) must be a path starting with '/' (no query, "
            "fragment or spaces)"
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservabilityConfig:
    """What :class:`aeros.WebServer` observes; each field is the keyword of the same name."""

    request_id: bool | str = False
    """True: give every request an id, taken from ``X-Request-ID`` when a trusted proxy
    (``forwarded_allow_ips``) sent a well-formed one (at most 128 of ``A-Z a-z 0-9 . _ : / + =
    @ -``), else generated (32 hex digits); sent back on every response, in ``aeros.request_id()``
    and on every log line. A str: the same with that header name. False: off (no layer)."""
    health_path: str | None = None
    """Answer GET/HEAD on this path (``"/healthz"``) in front of the app and the concurrency
    limit: 200 while serving, 503 once the graceful shutdown started. None: off."""
    metrics: bool = False
    """Export Prometheus metrics (requests, latency, in flight, cache results, bytes, workers)
    at ``metrics_path``, or on ``metrics_port`` only."""
    metrics_path: str = "/metrics"
    """Path of the metrics (on the public port, or on ``metrics_port`` when set)."""
    metrics_port: int | None = None
    """Serve the metrics on this port (same host as the app) instead of the public one, which
    then never exposes them. 0 picks a free port. None: on the public port."""

    def __post_init__(self) -> None:
        request_id = self.request_id
        if isinstance(request_id, str):
            if not is_token(request_id):
                raise ConfigurationError(
                    f"WebServer(request_id={request_id!r}) must be True, False or a header name "
                    "(a token: letters, digits, !#$%&'*+-.^_`|~)"
                )
        elif not isinstance(request_id, bool):
            raise ConfigurationError(
                f"WebServer(request_id={request_id!r}) must be True, False or a header name"
            )
        if self.health_path is not None:
            _path("health_path", self.health_path)
        _validate.boolean("WebServer", "metrics", self.metrics)
        _path("metrics_path", self.metrics_path)
        if self.metrics_port is not None:
            _validate.integer(
                "WebServer", "metrics_port", self.metrics_port, minimum=0, maximum=65535
            )
            if not self.metrics:
                raise ConfigurationError(
                    f"WebServer(metrics_port={self.metrics_port!r}) needs metrics=True"
                )
        if self.metrics and self.metrics_port is None and self.health_path == self.metrics_path:
            raise ConfigurationError(
                f"WebServer(health_path={self.health_path!r}) and metrics_path are the same"
            )

    @property
    def request_id_header(self) -> str | None:
        """The request-id header name, or None when request ids are off."""
        if self.request_id is True:
            return "X-Request-ID"
        return self.request_id or None

    @property
    def public_metrics_path(self) -> str | None:
        """Where the public port answers the scrape: ``metrics_path``, or None when the
        metrics are on ``metrics_port`` alone."""
        return self.metrics_path if self.metrics_port is None else None
