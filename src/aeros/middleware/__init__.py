"""The ASGI layers between the server and Quart: one module per layer, ASGI only.

Each layer is a plain ASGI callable ``Layer(app, ...)(scope, receive, send)`` that knows
nothing of Quart or the app object, so it can be read, tested and benchmarked alone.
``WebServer.build_stack`` puts them in this order, outermost first (DESIGN.md, "How a
request flows"); a layer with nothing to do for an app is left out:

1. :mod:`~aeros.middleware.access_log`: ``AccessLogMiddleware``, one line per request
   (it sees every answer below it, the 503s and CORS refusals included).
   Then ``HeadersMiddleware(..., https_only=True)``: ``Strict-Transport-Security`` of the
   security preset on every answer to an HTTPS request.
2. :mod:`~aeros.middleware.concurrency_limit`: ``ConcurrencyLimitMiddleware``, 503 over the
   limit of requests in flight (adds the global headers to its 503 itself). Then the rate
   limit (:mod:`aeros.ratelimit.layer`): 429 over a limit, cache hits counted too.
3. :mod:`~aeros.middleware.cors`: ``CORS`` (the policy) and ``CORSMiddleware``, preflights
   answered here, ``Access-Control-Allow-*`` on the rest.
4. user middleware (``app.add_middleware``).
5. the response cache (:mod:`aeros.response_cache.layer`): hits answered there.
6. :mod:`~aeros.middleware.headers`: ``HeadersMiddleware`` and ``GlobalHeaders``, the global
   headers (and ``Server``) on every response that reaches it; the layers above that answer
   themselves add them with the same ``GlobalHeaders``.
7. compression (:mod:`aeros.compression.layer`).
8. Quart.

:mod:`~aeros.middleware.lifespan` (``OptionalLifespanMiddleware``) is not in that stack: the
command line wraps a foreign ASGI app with it when the app does not speak the lifespan protocol.
"""
