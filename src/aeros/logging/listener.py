"""The log listener thread and its sinks: what :mod:`aeros.logging.config` starts.

Every routed logger writes to one queue (:mod:`aeros.logging.router`); :class:`Listener` takes
it in batches on a thread of its own and writes each record, or access entry, to its group of
sinks, so a slow terminal or disk never blocks the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import queue
from logging.handlers import QueueListener
from typing import Any, cast

from aeros.logging.access import ACCESS_LOGGER
from aeros.logging.formatters import AccessEntry, AccessFormatter

__all__ = ["FileSink", "Listener", "StreamSink"]

_BATCH = 512
"""Most queued items the listener takes per wake-up (lines keep flowing under a flood)."""
_SENTINEL = None  # what QueueListener.stop() queues to end the thread
_NEWLINE = logging.StreamHandler.terminator  # what ends each line a sink writes


class Listener(QueueListener):
    """The listener thread: writes each record to its group of sinks (access records to the
    access log's, the rest to the server log's), and flushes them once the queue is empty.

    It takes what is queued in batches (up to :data:`_BATCH` items per wake-up). An access
    entry queued as it is (:meth:`~aeros.logging.router.Router.put_access`: no handler of the
    user's would see it) becomes one line per access format, and a batch's lines go to each
    sink in one write, without a record or the handler's lock and ``emit`` per line. Records (the
    server log, and access records that went through ``Logger.handle``) are handled one by
    one, in queue order: lines queued before a record are written before it.

    Under load (JSON, ``wrk -c64``, one process, its threads' CPU time from ``/proc``) this
    thread took 12-14 us of CPU per request while every record went through every sink and a
    filter on each, and each sink flushed per line (a system call, the GIL handed to the event
    loop each time); routed to their group and flushed once per batch, 6-8 us. A line is still
    written as soon as the thread gets to it, before it waits again.
    """

    def __init__(
        self,
        source: queue.SimpleQueue[Any],
        server: list[StreamSink],
        access: list[StreamSink],
    ) -> None:
        super().__init__(source, *server, *access)
        self.source = source
        self.sinks = (*server, *access)
        self.server = tuple(server)
        self.access = tuple(access)
        # the distinct (format, colour) of the access sinks that take INFO lines (stdout and
        # the file usually share one: a line is made once), and each such sink's
        self.formats: list[tuple[str, bool]] = []
        self.writers: list[tuple[StreamSink, int]] = []
        for sink in access:
            formatter = cast(AccessFormatter, sink.formatter)  # _build_sinks gives them one
            if sink.level <= logging.INFO:
                wanted = (formatter.fmt, formatter.color)
                if wanted not in self.formats:
                    self.formats.append(wanted)
                self.writers.append((sink, self.formats.index(wanted)))

    def _monitor(self) -> None:
        """Take what is queued in batches until the sentinel (``stop()``) comes."""
        source = self.source
        while True:
            batch = [source.get()]
            if batch[0] is not _SENTINEL:
                # no further than a sentinel: what follows it is the next listener's
                while len(batch) < _BATCH:
                    try:
                        item = source.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                    if item is _SENTINEL:
                        break
            if not self.handle_batch(batch):
                return

    def handle_batch(self, batch: list[Any]) -> bool:
        """Write a batch and flush the sinks; False when it ends with the sentinel."""
        lines: list[list[str]] = [[] for _ in self.formats]
        for item in batch:
            if type(item) is AccessEntry:
                for index, (fmt, color) in enumerate(self.formats):
                    lines[index].append(AccessFormatter.line(item, fmt, color, item.created))
                continue
            self._write(lines)
            if item is _SENTINEL:
                self.flush_sinks()
                return False
            self.handle(item)
        self._write(lines)
        self.flush_sinks()
        return True

    def _write(self, lines: list[list[str]]) -> None:
        """Write the access lines gathered per format, one write per sink."""
        if not lines or not lines[0]:  # every format gets every entry: all empty, or none
            return
        texts = [_NEWLINE.join(pending) + _NEWLINE for pending in lines]
        for pending in lines:
            pending.clear()
        for sink, index in self.writers:
            text = texts[index]
            stream = sink.stream
            try:
                if stream is None:  # a closed file sink (they close after the thread)
                    raise ValueError("the sink's stream is closed")
                stream.write(text)
            except Exception:  # as a failing emit: reported on stderr, the thread goes on
                sink.handleError(logging.makeLogRecord({"msg": text.rstrip()}))

    def handle(self, record: logging.LogRecord) -> None:
        """Write one record to its group of sinks (or, a flush marker, flush them)."""
        event = getattr(record, "aeros_flush", None)
        if event is not None:
            self.flush_sinks()
            event.set()
            return
        level = record.levelno
        for sink in self.access if record.name == ACCESS_LOGGER else self.server:
            if level >= sink.level:
                sink.handle(record)

    def flush_sinks(self) -> None:
        """Write out what the sinks hold."""
        for sink in self.sinks:
            # a closed or broken stream must not end the thread; its next write reports it
            # (logging's handleError), as a failing write always did
            with contextlib.suppress(Exception):
                sink.flush_now()

    def stop(self) -> None:
        """Write what is queued, join the thread, and flush the sinks."""
        super().stop()
        self.flush_sinks()


class StreamSink(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream (stderr, stdout) written per record and flushed by the listener once its
    queue is empty: ``StreamHandler.emit`` calls :meth:`flush` after every record."""

    def flush(self) -> None:
        """Nothing: :class:`Listener` flushes (:meth:`flush_now`) after a batch."""

    def flush_now(self) -> None:
        """Flush the stream."""
        super().flush()


class FileSink(StreamSink, logging.FileHandler):
    """A log file (appended to), flushed by the listener; closing it flushes it too."""
