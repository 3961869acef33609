"""Invalid WebServer options fail at construction, in one line naming the argument."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aeros import Gzip, WebServer
from aeros.errors import ConfigurationError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"compression": "gzip"},
            r"WebServer\(compression='gzip'\) must be Gzip\(\.\.\.\), Br\(\.\.\.\), Zstd",
            id="compression-name",
        ),
        pytest.param(
            {"compression": [Gzip(), "br"]},
            r"entries must be codecs such as Gzip\(level=2\); got 'br'",
            id="compression-list-entry",
        ),
        pytest.param({"compression": 9}, r"WebServer\(compression=9\)", id="compression-int"),
        pytest.param(
            {"compression": [Gzip(), Gzip(level=5)]}, "lists 'gzip' twice", id="compression-twice"
        ),
        pytest.param(
            {"forwarded_allow_ips": 5},
            r"WebServer\(forwarded_allow_ips=5\) must be a comma-separated str",
            id="forwarded-ips-type",
        ),
    ],
)
def test_app_options_refused_at_construction(kwargs, message) -> None:
    """The bad value raises ConfigurationError when WebServer(...) is built, not at start."""
    with pytest.raises(ConfigurationError, match=message):
        WebServer(__name__, **kwargs)


def test_app_options_bad_compression_is_one_line_not_two_tracebacks() -> None:
    """A script with compression="gzip" dies at construction with one error line."""
    script = "from aeros import WebServer\nWebServer('demo', compression='gzip').run_server()\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.count("Traceback") == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("aeros.errors.ConfigurationError: WebServer(compression='gzip')")
    assert "serving on" not in proc.stderr


def test_readme_option_table_lists_every_webserver_option() -> None:
    """README's WebServer table names exactly the constructor's parameters and options."""
    import inspect
    import re
    from pathlib import Path

    from aeros.options import LogOptions, ObservabilityOptions, ServerOptions

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("| option | default | what it does |", 1)[1].split("\n\n", 1)[0]
    listed = {
        name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    named = set(inspect.signature(WebServer.__init__).parameters) - {
        "self",
        "import_name",
        "options",
    }
    assert (
        listed
        == named
        | ServerOptions.__optional_keys__
        | LogOptions.__optional_keys__
        | ObservabilityOptions.__optional_keys__
    )
