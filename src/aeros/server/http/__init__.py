"""aeros' HTTP/1.1 protocol on top of uvicorn's: limits, deadlines, the write path.

- ``protocol.py``: the connection protocol: parsing with the request limits and head rules.
- ``answers.py``: its base: the head/body/keep-alive deadlines and the server's own answers
  (4xx for refused requests, 408, the 503 of a request cut off at shutdown).
- ``cycle.py``: one request/response cycle and the batched write path.
- ``rules.py``: the request-line and header rules the protocol enforces.
"""
