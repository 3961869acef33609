"""Run the echo app in its own process for the slowloris test; prints its base URL."""

from __future__ import annotations

import sys

from echo_app import make_app  # run as a script: this folder is on sys.path

from aeros import Limits


def main() -> None:
    header_timeout = float(sys.argv[1])
    app = make_app(limits=Limits(header_timeout=header_timeout))
    app.run_server(host="127.0.0.1", port=0, on_started=lambda url: print(url, flush=True))


if __name__ == "__main__":
    main()
