"""The server-side response cache: which routes cache, how a response is stored and answered.

A request meets the cache in this order:

- ``policy.py``: ``@app.cache()`` / ``@cached()`` attach a policy to a view.
- ``routes.py``: :class:`ResponseCache`, the one Quart-aware module: finds the policy of a
  request's route, builds the layer, purges and clears.
- ``layer.py``: the ASGI layer; a hit is answered here, a miss fills (one view call per key).
- ``entry.py``: keys and stored entries; ``capture.py`` records a response to store;
  ``answer.py`` answers from an entry (ETag, Age, 304, encoded variants).
- ``storage.py``: reads and writes through the store, the one place store errors are caught.
- ``invalidation.py``: write invalidation of a target URI (RFC 9111 section 4.4).

Stores themselves (memory, filesystem, Redis) are in :mod:`aeros.stores` and know no HTTP.
"""
