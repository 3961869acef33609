"""FilesystemCache: entries as files in one directory, shared by every worker process.

Why the format looks like this:

- File names are a hash of the key, so a key holding ``../``, NUL or 10 KB of text can never
  name a path outside the directory (or an invalid one).
- No pickle: a file is ``MAGIC | expires (f64, wall clock) | key length (u32) | key | value |
  MAC`` (:mod:`aeros.stores.entry_file`); the MAC is a keyed BLAKE2b over everything before
  it, with a secret kept in the directory (0600). A truncated, corrupt or tampered file fails
  the check and reads as a miss.
- Writes go to a temporary file in the same directory and are renamed over the entry with
  ``os.replace``, so readers in other processes see the old file or the new one, never half.
- Tags: one index file per tag listing its entry files (:mod:`aeros.stores.tag_files`), so a
  purge by tag reads one file; pruning compacts the indexes.
- Every file operation runs in a thread (``asyncio.to_thread``): the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from aeros import _validate
from aeros.errors import ConfigurationError, StoreError
from aeros.stores.base import Capabilities, Clock, checked_timeout, expiry, key_group
from aeros.stores.entry_file import encode_key, group_hash, key_group_of, pack, parse, read_expiry
from aeros.stores.tag_files import TagFiles, is_entry_name

__all__ = ["FileSystemCache", "FilesystemCache"]

_SUFFIX = ".aec"
_TMP_PREFIX = ".tmp-"
_TMP_NAME = re.compile(re.escape(_TMP_PREFIX) + r"[a-z0-9_]{8}")  # what mkstemp names them
_KEYFILE_NAME = ".aeros-mac-key"
_STALE_TMP_SECONDS = 300.0


class FilesystemCache:
    """Entries as files in ``directory``; every worker and process using it shares them.

    The directory is created (mode 0700) when the store is built, which raises
    :class:`~aeros.errors.ConfigurationError` if it cannot be created or written; entries are
    written 0600. The store
    keeps itself near its limits: each process prunes expired and then least recently written
    entries after every ``threshold // 10`` writes.

    Args:
        directory: where entries live; give the cache a directory of its own. Other files
            there are left alone: clears, purges and pruning remove only files named as
            this cache names its own.
        timeout: default lifetime in seconds of a cached response; 0 or None: no expiry.
            Default 300.
        threshold: most entries kept. Default 500.
        max_bytes: most bytes of entry files kept; a larger value is not stored. Default 256 MiB.
        clock: seconds for expiry times; default ``time.time``: the files hold wall-clock
            times, so every process (and a restarted one) reads them alike.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(groups=True, prefix_delete=True, tags=True)
    """Every process using it sees the same entries (shared): nothing to pass between
    workers. A group's files share a name prefix, so a group delete reads no file; a tag's
    entries are listed in its index file, so a tag purge reads only that file."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        timeout: float | None = 300,
        threshold: int = 500,
        *,
        max_bytes: int = 256 << 20,
        clock: Clock = time.time,
    ) -> None:
        if not isinstance(directory, str | os.PathLike) or not os.fspath(directory):
            raise ConfigurationError(
                f"FilesystemCache(directory={directory!r}) must be a non-empty path"
            )
        self.directory = Path(directory).absolute()
        self.timeout = checked_timeout("FilesystemCache", timeout)
        self.threshold = _validate.integer("FilesystemCache", "threshold", threshold, minimum=1)
        self.max_bytes = _validate.integer("FilesystemCache", "max_bytes", max_bytes, minimum=1)
        self.clock = clock
        self._prune_every = max(1, self.threshold // 10)
        self._writes = 0
        self._secret: bytes | None = None
        self._ready_pid = 0
        self._tags = TagFiles(self.directory)
        self._check_usable()

    def _check_usable(self) -> None:
        """Create the directory and write a file in it now, so a path this process cannot use
        fails when the app is configured, not at its first request."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(self.directory, self.directory.stat().st_mode, ConfigurationError)
            with tempfile.TemporaryFile(dir=self.directory, prefix=_TMP_PREFIX):
                pass
        except OSError as exc:
            raise ConfigurationError(
                f"FilesystemCache(directory={str(self.directory)!r}) cannot be used: "
                f"{exc.strerror or exc}; give a directory this process can create and write"
            ) from exc

    def __repr__(self) -> str:
        return f"FilesystemCache({str(self.directory)!r}, timeout={self.timeout!r})"

    # ---- the protocol -------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """Return the live value under ``key``; a missing, expired or corrupt file is None."""
        return await asyncio.to_thread(self._get, key)

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Write ``value`` atomically; prune now and then to stay within the limits."""
        self._writes += 1
        prune = self._writes % self._prune_every == 0
        await asyncio.to_thread(self._set, key, bytes(value), ttl, prune)

    async def set_tagged(
        self, key: str, value: bytes, *, ttl: float | None, tags: Sequence[str]
    ) -> None:
        """:meth:`set`, and list the entry in the index file of each of ``tags``."""
        await self.set(key, value, ttl=ttl)
        if tags:
            await asyncio.to_thread(self._index, key, tuple(dict.fromkeys(tags)))

    async def delete_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry listed under any of ``tags`` and those index files; return how
        many entries were removed."""
        return await asyncio.to_thread(self._delete_tags, tuple(dict.fromkeys(tags)))

    async def delete(self, key: str) -> None:
        """Remove ``key``'s file if present."""
        await asyncio.to_thread(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every entry whose key starts with ``prefix``; return how many."""
        return await asyncio.to_thread(self._delete_prefix, prefix)

    async def delete_group(self, group: str) -> int:
        """Remove every entry whose key's group (up to its last ``:``) is ``group``."""
        return await asyncio.to_thread(self._delete_group, group)

    async def clear(self) -> None:
        """Remove every entry file (the directory and its secret stay)."""
        await asyncio.to_thread(self._clear)

    async def aclose(self) -> None:
        """Nothing to release: no file stays open between calls."""

    # ---- blocking work, always in a thread ----------------------------------------------

    def _path(self, key: str) -> Path:
        # <group hash>-<key hash>.aec: a group's files are found by name, without reading
        group = group_hash(key_group(key))
        digest = hashlib.blake2b(encode_key(key), digest_size=20).hexdigest()
        return self.directory / f"{group}-{digest}{_SUFFIX}"

    def _ready(self) -> bytes:
        """Create the directory and load (or create) the shared secret, once per process."""
        if self._secret is not None and self._ready_pid == os.getpid():
            return self._secret
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.stat()
            if info.st_uid != os.getuid():
                raise StoreError(
                    f"FilesystemCache directory {str(self.directory)!r} belongs to another user"
                )
            _check_private(self.directory, info.st_mode, StoreError)
            self._secret = self._load_secret()
        except OSError as exc:
            raise StoreError(
                f"FilesystemCache cannot use {str(self.directory)!r}: {exc.strerror or exc}"
            ) from exc
        self._ready_pid = os.getpid()
        return self._secret

    def _load_secret(self) -> bytes:
        path = self.directory / _KEYFILE_NAME
        with contextlib.suppress(FileNotFoundError):
            secret = path.read_bytes()
            if len(secret) == 32:
                return secret
        # Publish with link(): it fails if another worker won the race, and then we read theirs.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return path.read_bytes()

    def _get(self, key: str) -> bytes | None:
        secret = self._ready()
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot read an entry: {exc.strerror}") from exc
        parsed = parse(data, secret)
        if parsed is None or parsed[1] != encode_key(key):
            return None
        expires, _, value = parsed
        if expires <= self.clock():
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == inode:  # not a fresh entry another worker just wrote
                    path.unlink()
            return None
        return value

    def _set(self, key: str, value: bytes, ttl: float | None, prune: bool) -> None:
        secret = self._ready()
        raw_key = encode_key(key)
        data = pack(secret, expiry(self.clock(), ttl), raw_key, value)
        if len(data) > self.max_bytes:
            self._delete(key)
            return
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=_TMP_PREFIX)  # mode 0600
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self._path(key))
            tmp = ""
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):  # the directory was removed: the next call
                self._secret = None  # makes it again (and a new secret), so caching resumes
            raise StoreError(f"FilesystemCache cannot write an entry: {exc.strerror}") from exc
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if prune:
            self._prune()

    def _delete(self, key: str) -> None:
        self._ready()
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot delete an entry: {exc.strerror}") from exc

    def _index(self, key: str, tags: tuple[str, ...]) -> None:
        self._ready()
        try:
            self._tags.add(self._path(key).name, tags)
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot write a tag index: {exc.strerror}") from exc

    def _delete_tags(self, tags: tuple[str, ...]) -> int:
        self._ready()
        try:
            return self._tags.delete(tags)
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot delete tags: {exc.strerror}") from exc

    def _entries(self) -> list[os.DirEntry[str]]:
        """The entry files and temporary files in the directory: the files this cache writes
        (besides its secret and tag indexes); any other file is someone else's."""
        try:
            with os.scandir(self.directory) as it:
                return [e for e in it if is_entry_name(e.name) or _TMP_NAME.fullmatch(e.name)]
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot list entries: {exc.strerror}") from exc

    def _delete_prefix(self, prefix: str) -> int:
        raw_prefix = encode_key(prefix)
        return self._delete_matching(is_entry_name, lambda key: key.startswith(raw_prefix))

    def _delete_group(self, group: str) -> int:
        start = group_hash(group) + "-"
        # the name holds a hash of the group: check the key itself before removing
        return self._delete_matching(
            lambda name: name.startswith(start), lambda key: key_group_of(key) == group
        )

    def _delete_matching(
        self, name_matches: Callable[[str], bool], key_matches: Callable[[bytes], bool]
    ) -> int:
        """Remove the entry files whose name and key match (and unreadable ones whose name
        matches); return how many intact entries were removed."""
        secret = self._ready()
        removed = 0
        for entry in self._entries():
            if not name_matches(entry.name):
                continue
            with contextlib.suppress(OSError):
                parsed = parse(Path(entry.path).read_bytes(), secret)
                if parsed is None or key_matches(parsed[1]):
                    os.unlink(entry.path)
                    removed += parsed is not None
        return removed

    def _clear(self) -> None:
        self._ready()
        try:
            self._tags.clear()
        except OSError as exc:
            raise StoreError(f"FilesystemCache cannot clear: {exc.strerror}") from exc
        for entry in self._entries():
            if not is_entry_name(entry.name):
                continue  # temp files are other workers' writes in progress; prune reaps leftovers
            with contextlib.suppress(FileNotFoundError):
                try:
                    os.unlink(entry.path)
                except OSError as exc:
                    raise StoreError(f"FilesystemCache cannot clear: {exc.strerror}") from exc

    def _prune(self) -> None:
        """Drop expired entries, stale temp files, then the oldest until within the limits."""
        now = self.clock()
        mtime_now = time.time()  # file times are the system's, whatever self.clock says
        live: list[tuple[float, int, str]] = []
        for entry in self._entries():
            with contextlib.suppress(OSError):  # another worker may remove it meanwhile
                info = entry.stat()
                if entry.name.startswith(_TMP_PREFIX):
                    if info.st_mtime < mtime_now - _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                    continue
                with open(entry.path, "rb") as handle:
                    expires = read_expiry(handle)
                if expires is None or expires <= now:
                    os.unlink(entry.path)
                    continue
                live.append((info.st_mtime, info.st_size, entry.path))
        live.sort()
        total = sum(size for _, size, _ in live)
        count = len(live)
        for _, size, path in live:
            if count <= self.threshold and total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            count -= 1
            total -= size
        with contextlib.suppress(OSError):
            self._tags.compact()


FileSystemCache = FilesystemCache
"""The seed's spelling of :class:`FilesystemCache`."""


def _check_private(directory: Path, mode: int, error: type[Exception]) -> None:
    """Refuse a directory other users may write to (``/tmp``, a group-writable share): they
    could replace the secret that signs the entries and have forged responses served.

    A directory the cache creates is 0700; one that exists keeps its mode (the cache used to
    chmod it to 0700, which pointed at ``/tmp`` as root would lock every other user out of
    it). Entries and the secret are 0600 either way, so a directory others can only read is
    fine.
    """
    if mode & 0o022:
        raise error(
            f"FilesystemCache(directory={str(directory)!r}) is writable by other users "
            f"(mode {stat.S_IMODE(mode):o}): they could forge cached responses; give the cache "
            "a directory of its own, which aeros creates with mode 0700 (e.g. "
            "'/var/cache/myapp' or '/tmp/myapp-cache')"
        )
