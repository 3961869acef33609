"""The server-side response cache: which routes cache, how a response is stored and answered.

The modules, in the order a request meets them:

- ``policy.py``: :class:`CachePolicy` (how one route is cached) and ``@cached()`` /
  ``@app.cache()``, which attach a policy to a view function.
- ``routes.py``: :class:`ResponseCache`, the app's side: builds the layer, clears, purges (by
  path, endpoint or tag) and passes both to other workers.
- ``lookup.py``: the route lookup (Quart-aware): the policy of a request's route, and the
  view's arguments for a ``tags=`` callable.
- ``layer.py``: the ASGI layer; a hit is answered before the app is entered, a miss fills.
- ``fill.py``: the fills: a miss runs the app once and stores its answer, a stale entry is
  refilled in the background.
- ``keys.py``: the store key of a request (injective, hashed) and the key groups purges drop.
- ``storage.py``: reads and writes entries through the store; the one place store errors
  are caught (the request is served uncached).
- ``entry.py``: a stored response and its binary layout.
- ``coalesce.py``: one view call per key; concurrent misses wait for the first one's entry, and
  with a store holding locks, for one process of the fleet.
- ``capture.py``: records the app's response, and decides whether a shared cache may store it.
- ``answer.py``: answers from an entry (the coding the client accepts, ETag, Age, 304).
- ``status.py``: the ``Cache-Status`` header (RFC 9211).
- ``invalidation.py``: write invalidation of a target URI after an unsafe request (RFC 9111
  section 4.4).
- ``sync.py``: runs a clear or purge from synchronous code (``app.clear_cache()``).

Only ``routes.py`` and ``lookup.py`` know Quart; the rest is pure ASGI. The stores themselves
(memory, filesystem, Redis, tiered) are in :mod:`aeros.stores` and know no HTTP.
"""
