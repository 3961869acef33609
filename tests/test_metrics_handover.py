"""The metrics' multiprocess directory across a SIGUSR2 re-exec: the new image, which inherits
the environment, deletes the directory aeros made (it was left behind), and still leaves one
the user named alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aeros.metrics.multiproc import ENV, OWNED_ENV, MultiprocDir

_NEW_IMAGE = """
from aeros.metrics.multiproc import MultiprocDir
directory = MultiprocDir()
print(directory.owned)
directory.close()
"""


def _new_image(environment: dict[str, str]) -> str:
    """Run the next image's part (a fresh interpreter with this environment, as exec gives)."""
    source = str(Path(__file__).resolve().parents[1] / "src")
    env = {**environment, "PYTHONPATH": source}
    done = subprocess.run(
        [sys.executable, "-c", _NEW_IMAGE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_next_image_deletes_the_directory_aeros_made() -> None:
    assert ENV not in os.environ
    made = MultiprocDir()
    try:
        assert os.environ[OWNED_ENV] == made.path
        assert _new_image(dict(os.environ)) == "True"
        assert not os.path.exists(made.path)
    finally:
        made.close()
    assert ENV not in os.environ
    assert OWNED_ENV not in os.environ


def test_a_directory_the_user_named_is_never_deleted(tmp_path: Path) -> None:
    environment = {**os.environ, ENV: str(tmp_path)}
    environment.pop(OWNED_ENV, None)
    assert _new_image(environment) == "False"
    assert tmp_path.is_dir()
