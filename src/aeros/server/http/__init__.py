"""aeros' HTTP/1.1 protocol on top of uvicorn's: limits, deadlines, the write path.

- ``protocol.py``: the connection protocol (request limits, deadlines, the server's answers).
- ``cycle.py``: one request/response cycle and the batched write path.
- ``rules.py``: the request-line and header rules the protocol enforces.
"""
