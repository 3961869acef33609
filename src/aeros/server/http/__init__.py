"""aeros' HTTP/1.1 protocol on top of uvicorn's: limits, deadlines, the write path.

- ``protocol.py``: the connection protocol: parsing with the request limits and head rules.
- ``starts.py``: its base: where each request starts (its cycle, and its task, scheduled as
  uvicorn's) and ends (the next one started, the keep-alive deadline); ``events.py`` the body
  event.
- ``answers.py``: the base of that: the head/body/keep-alive deadlines and the server's own
  answers (4xx for refused requests, 408, the 503 of a request cut off at shutdown).
- ``cycle.py``: one request/response cycle (and the app's metrics count, when on) and the
  batched write path; ``cycle_ends.py`` its ends other than a response sent (the server's 500,
  a connection closed, a request cut off at shutdown), ``head.py`` its response head,
  ``writes.py`` the loop's write batch.
- ``rules.py``: the request-line and header rules the protocol enforces.
"""
