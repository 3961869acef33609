"""Security-header preset (:class:`SecurityHeaders`) and a checked CSP builder (:class:`CSP`)."""

from __future__ import annotations

from aeros.security.csp import CSP
from aeros.security.headers import SecurityHeaders

__all__ = ["CSP", "SecurityHeaders"]
