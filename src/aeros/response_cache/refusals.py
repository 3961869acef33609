"""Responses the cache layer does not store, said once per route and reason. Pure ASGI.

A route whose responses can never be stored (a ``Set-Cookie``, a stream, a ``tags=`` callable
that fails) would otherwise stay a silent miss: the access log says ``uncacheable`` for each
request, and the log says why once per route and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aeros.response_cache.capture import Refusal
from aeros.response_cache.policy import CachePolicy
from aeros.types import CACHE_STATE, Scope

__all__ = ["Refusals"]

_QUIET_REFUSALS = frozenset({"status"})  # a status outside statuses= is the route's choice


class Refusals:
    """Reports responses that are not stored to ``logger``, once per (route, reason)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._told: set[tuple[str, str]] = set()

    def refused(self, policy: CachePolicy, scope: Scope, refusal: Refusal | None) -> None:
        """A fill that was not stored: ``uncacheable`` in the access log, and a warning."""
        if refusal is None:
            return  # the app failed before answering: nothing to say about caching
        scope[CACHE_STATE] = "uncacheable"
        kind, text = refusal
        told = (policy.route, kind)
        if kind in _QUIET_REFUSALS or told in self._told:
            return
        self._told.add(told)
        self.logger.warning(
            "response cache: %s responses of route %r (%s) are not stored: %s; every request "
            "runs the view (cache=uncacheable in the access log)",
            scope["method"],
            policy.route or "?",
            scope.get("path", ""),
            text,
        )

    def tags(
        self,
        tags_for: Callable[[CachePolicy, Scope], tuple[str, ...]],
        policy: CachePolicy,
        scope: Scope,
    ) -> tuple[str, ...] | None:
        """``tags_for(policy, scope)``; None when it failed (the error is logged once per
        route: the response is served, not stored, since an untagged entry would escape its
        purges)."""
        try:
            return tags_for(policy, scope)
        except Exception:
            if (policy.route, "tags") not in self._told:
                self._told.add((policy.route, "tags"))
                self.logger.exception(
                    "response cache: the tags= of route %r failed; its responses are not stored",
                    policy.route or "?",
                )
            return None
