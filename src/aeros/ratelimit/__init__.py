"""Rate limiting in front of the response cache, on the ``limits`` library.

``policy`` (:class:`RateLimit`, ``@rate_limit``), ``keys`` (whom to count), ``backend`` (the
``limits`` storages and strategies), ``fields`` (the IETF RateLimit fields and the 429),
``routes`` (which limits a request meets; the Quart-aware part) and ``layer`` (the ASGI layer).
"""

from __future__ import annotations

from aeros.ratelimit.policy import RateLimit, rate_limit

__all__ = ["RateLimit", "rate_limit"]
