"""aeros' logs: a queued handler set-up that never blocks the event loop, and the formatters.

- ``config.py``: :class:`LogConfig`, installing and removing the handlers, the access logger.
- ``formatters.py``: console, access-log (default/common/combined/json) formatting.
"""
