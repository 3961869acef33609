"""aeros' production server: uvicorn underneath, one process, N forked workers or a thread.

Start-up reads top to bottom, each module entered once:

- ``config.py``: :class:`ServerConfig` and :class:`Limits`, frozen and validated once.
- ``runner.py``: binds the socket and chooses one process or workers (a thread is the caller's
  choice, see ``threads.py``); stops either from any thread.
- ``supervisor.py``: the parent of N workers: forks them through the helper, replaces dead or
  hung ones, drains them on stop.
- ``forkserver.py``: the single-threaded helper process that forks every worker.
- ``worker.py``: a worker's body and its heartbeat link with the supervisor.
- ``uvicorn_backend.py``: :class:`AerosServer`, uvicorn's server built from the app and its
  config, with a thread-safe stop and a bounded, logged drain.
- ``http/``: the HTTP/1.1 protocol uvicorn runs (limits, deadlines, the server's own answers,
  the write path).

Around them: ``signals.py`` (handlers on the main thread only, restored after), ``threads.py``
(``serve_in_thread``, ``AdvancedThread``), ``peers.py`` (messages between workers, such as
``clear_cache()``), ``reload.py`` (``--reload``: restart on source changes) and ``serve.py``
(what ``aeros run`` serves: a WebServer or any ASGI app).
"""
