"""FilesystemCache's tag indexes: one file per tag listing the entry files tagged with it.

An index file (``<tag hash>.tix``) holds one entry file name per line, appended under an
exclusive ``flock``. A purge by tag takes the same lock, unlinks the index and then removes
the entries it names, so a write landing meanwhile goes to a new index file and is never lost.
:meth:`TagFiles.compact` (run when the cache prunes) keeps only the entries that still exist.
Every method blocks: the cache calls them in a thread. They raise :class:`OSError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["TAG_SUFFIX", "TagFiles", "is_entry_name"]

TAG_SUFFIX = ".tix"
# the names the cache gives its files (FilesystemCache._path, TagFiles.path): a file of any
# other name in the directory is not aeros', and no clear, purge or prune ever touches it
_ENTRY_NAME = re.compile(r"[0-9a-f]{16}-[0-9a-f]{40}\.aec")
_INDEX_NAME = re.compile(r"[0-9a-f]{40}" + re.escape(TAG_SUFFIX))


class TagFiles:
    """The tag index files of one cache directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, tag: str) -> Path:
        """The index file of ``tag`` (a hash: any str is a valid tag)."""
        digest = hashlib.blake2b(tag.encode("utf-8", "surrogatepass"), digest_size=20)
        return self.directory / f"{digest.hexdigest()}{TAG_SUFFIX}"

    def add(self, entry_name: str, tags: Iterable[str]) -> None:
        """List the entry file ``entry_name`` under each of ``tags``."""
        line = (entry_name + "\n").encode()
        for tag in tags:
            with _locked(self.path(tag)) as fd:
                os.write(fd, line)

    def delete(self, tags: Iterable[str]) -> int:
        """Remove each tag's index and the entry files it lists; return how many existed."""
        removed = 0
        for tag in tags:
            path = self.path(tag)
            if not path.exists():
                continue
            with _locked(path) as fd:
                names = _read_all(fd).decode().split()
                os.unlink(path)  # later writes start a new index
            for name in dict.fromkeys(names):
                if not is_entry_name(name):
                    continue  # a damaged line never names a file outside the entries
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / name)
                    removed += 1
        return removed

    def compact(self) -> None:
        """Keep in each index only the entries that still exist (once each)."""
        for path in self._indexes():
            with contextlib.suppress(OSError), _locked(path) as fd:
                names = dict.fromkeys(_read_all(fd).decode().split())
                live = [n for n in names if is_entry_name(n) and (self.directory / n).exists()]
                if not live:
                    os.unlink(path)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, "".join(n + "\n" for n in live).encode())

    def clear(self) -> None:
        """Remove every index file (those named as :meth:`path` names them)."""
        for path in self._indexes():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _indexes(self) -> list[Path]:
        with os.scandir(self.directory) as it:
            return [Path(e.path) for e in it if _INDEX_NAME.fullmatch(e.name)]


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is the name of an entry file (``<group hash>-<key hash>.aec``)."""
    return _ENTRY_NAME.fullmatch(name) is not None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """An index file opened for append under an exclusive lock: the file the path names when
    the lock was granted (a purge may have unlinked the one opened first)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                yield fd
                return
        finally:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
