"""aeros' logs: a queued handler set-up that never blocks the event loop, and the formatters.

- ``config.py``: :class:`~aeros.logging.config.LogConfig`; installing and removing the
  handlers (:func:`~aeros.logging.config.configure_logging`), the banner.
- ``listener.py``: the listener thread that writes the queue to the sinks, in batches.
- ``router.py``: which logger goes where: aeros', uvicorn's, Quart's and the app's loggers
  onto one queue, uvicorn's and Quart's own handlers set aside meanwhile.
- ``access.py``: the ``aeros.access`` logger and :func:`~aeros.logging.access.log_access`,
  the cheap record the access-log layer and the server hand to the queue.
- ``formatters.py``: escaping, the console format, the access-log formats (default, common,
  combined, json); runs in the listener thread only.
"""
