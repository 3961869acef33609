"""Serve an ASGI app with uvicorn (uvloop + httptools) in this process, and drain it gracefully.

:class:`AerosServer` is a ``uvicorn.Server`` built, as uvicorn's is, from one config: the app
and its :class:`~aeros.server.config.ServerConfig` (``AerosServer(app, config)``; the
``uvicorn.Config`` is derived from them here, once). ``server.run(sockets=[sock])`` serves in a
fresh event loop. It differs from uvicorn's where a library server must:

- signal handlers only on the main thread, restored afterwards, and a caught signal is *not*
  re-raised after the drain (uvicorn re-raises it, so ``kill -TERM`` would end the process with
  status -15 instead of 0);
- :meth:`AerosServer.request_stop` is safe from any thread and wakes the loop at once;
- :meth:`AerosServer.stop` is the same, for callers that stop a server or a supervisor alike;
- the drain waits up to ``graceful_timeout`` (a float: uvicorn's own setting is typed int), then
  cancels what is left (a 503 each, one warning line each) and closes their connections;
- a second SIGINT cuts the drain short the same way, and the app's shutdown hooks run after
  either (uvicorn skips them after a second SIGINT); a third signal skips them;
- with ``freeze_gc``, what start-up left alive is frozen, where the server owns its process
  (the main thread: ``run_server()`` there, or a forked worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Generator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from aeros.errors import ConfigurationError
from aeros.server import signals
from aeros.server.config import ServerConfig
from aeros.server.http.protocol import build_protocol_class
from aeros.types import DRAINING, PEER, Receive, Scope, Send

__all__ = ["AerosServer", "StartupFailed", "check_ssl", "tls_error"]

logger = logging.getLogger("aeros.server")

_TICK = 0.1
"""Seconds between uvicorn's housekeeping ticks (Date header, max-requests check)."""
_CLOSE_GRACE = 1.0
"""Seconds cancelled requests get to unwind before their connections are closed."""


class StartupFailed(RuntimeError):
    """The app's lifespan startup failed; the reason is in the log above."""


class _KeepPeer:
    """Note the peer's address (``scope[PEER]``) before uvicorn's proxy-headers middleware
    replaces ``scope["client"]`` with the forwarded client: the request-id layer trusts an id
    only from a proxy in ``forwarded_allow_ips``, by the same rule."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[PEER] = scope.get("client")
        await self.app(scope, receive, send)


def _uvicorn_config(app: Any, config: ServerConfig) -> uvicorn.Config:
    """The ``uvicorn.Config`` for ``app`` served with ``config`` (nothing is loaded yet)."""
    entry = getattr(app, "server_entry", None)
    meter = None
    if entry is not None:  # a WebServer: straight into its layers, its metrics counted here
        meter = app.server_meter()
        app = entry(counted=meter is not None)
    if (
        config.proxy_headers
    ):  # uvicorn's own middleware, applied here so _KeepPeer can sit outside it
        trusted = list(config.forwarded_allow_ips or ())
        app = _KeepPeer(ProxyHeadersMiddleware(app, trusted_hosts=trusted))
    return uvicorn.Config(
        app,
        http=build_protocol_class(config, meter),
        loop="auto",  # uvloop when installed
        lifespan="on",
        # every app aeros serves is ASGI 3 (its layers call app(scope, receive, send)); said
        # here because uvicorn's guess asks whether __call__ is a coroutine function, and
        # aeros' layers that pass most requests straight on are plain functions
        interface="asgi3",
        log_config=None,  # aeros configures logging itself (never on import)
        access_log=False,  # aeros writes its own access log, off the event loop
        server_header=False,  # WebServer adds `server: aeros` (or nothing) itself
        backlog=config.backlog,
        # uvicorn annotates these as int but hands them to loop.call_later, which takes float;
        # int() would turn keep_alive_timeout=0.5 into 0 (close at once).
        timeout_keep_alive=config.keep_alive_timeout,  # type: ignore[arg-type]
        timeout_graceful_shutdown=None,  # AerosServer.shutdown enforces graceful_timeout
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
        ssl_ca_certs=config.ssl_ca_certs,
        proxy_headers=False,  # applied above when wanted
        forwarded_allow_ips=list(config.forwarded_allow_ips or ()),
    )


def tls_error(certfile: str, keyfile: str | None) -> str | None:
    """Why the certificate and key cannot be loaded (the SSL or OS error), None when they load."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        return str(exc)
    return None


def check_ssl(config: ServerConfig) -> None:
    """Load the certificate and key once, so a bad pair fails before any worker starts."""
    if config.ssl_certfile is None:
        return
    error = tls_error(config.ssl_certfile, config.ssl_keyfile)
    if error is not None:
        raise ConfigurationError(
            f"WebServer(ssl_certfile={config.ssl_certfile!r}, ssl_keyfile={config.ssl_keyfile!r})"
            f": cannot load the certificate and key: {error}"
        )


class AerosServer(uvicorn.Server):
    """uvicorn's server with a thread-safe stop and a bounded, logged drain.

    Args:
        app: the ASGI app to serve.
        config: the whole server configuration (limits, timeouts, TLS, ``freeze_gc``...).
        on_started: called once, on the event loop, when the server accepts connections.
        companions: coroutine functions run alongside the server (a worker's heartbeat and
            peer channel), each given the server; cancelled when it stops.
        replaceable: a supervisor's worker, which :data:`~aeros.server.signals.RETIRE_SIGNAL`
            tells to drain (it is replaced); one process alone leaves that signal to its runner.
    """

    def __init__(
        self,
        app: Any,
        config: ServerConfig,
        *,
        on_started: Callable[[], None] | None = None,
        companions: tuple[Callable[[AerosServer], Coroutine[Any, Any, None]], ...] = (),
        replaceable: bool = False,
    ) -> None:
        super().__init__(_uvicorn_config(app, config))
        self.settings = config
        """aeros' configuration (``self.config`` is the ``uvicorn.Config`` made from it)."""
        self.graceful_timeout = config.graceful_timeout
        self.on_started = on_started
        self.companions = companions
        self.exit_reason = "stop()"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._last_signal = "signal"
        self._signals_seen = 0
        self.replaceable = replaceable
        self.retiring = False
        """Told it is replaced (:data:`~aeros.server.signals.RETIRE_SIGNAL`): drain at once."""

    def stop(self) -> None:
        """Start the graceful shutdown; safe from any thread, idempotent."""
        self.request_stop()

    def request_stop(self, reason: str = "stop()") -> None:
        """Start the graceful shutdown; safe from any thread, idempotent."""
        if not self.should_exit:
            self.exit_reason = reason
        self.should_exit = True
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            # The loop may have closed meanwhile; the flag alone then suffices.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wakeup.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Main thread only, old handlers restored, and no re-raise after the drain."""
        watched: set[int] = set(signals.SHUTDOWN_SIGNALS)
        if self.replaceable:
            watched.add(signals.RETIRE_SIGNAL)
        with signals.capture(sorted(watched), self.handle_exit):
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler: only flags. A second SIGINT cancels the requests still in flight
        (as in uvicorn) but the shutdown hooks still run; a third one skips those too.
        :data:`~aeros.server.signals.RETIRE_SIGNAL` (this worker is replaced) drains at once."""
        if sig == signals.RETIRE_SIGNAL and sig not in signals.SHUTDOWN_SIGNALS:
            self.retiring = True
        self._last_signal = signals.signal_name(sig)
        self._signals_seen += 1
        if not self.should_exit:
            self.exit_reason = self._last_signal
        super().handle_exit(sig, frame)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on ``sockets`` in a fresh event loop (uvloop when installed) until stopped."""
        with asyncio.Runner(loop_factory=self.config.get_loop_factory()) as runner:
            runner.run(self.serve(sockets=sockets))

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on ``sockets`` until stopped, running the companion coroutines alongside."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        tasks = [asyncio.ensure_future(companion(self)) for companion in self.companions]
        try:
            await super().serve(sockets)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup; a failed lifespan raises :class:`StartupFailed`, not SystemExit.

        With ``freeze_gc`` the objects alive once the app has started (modules, routes, the
        app's own state) are collected once and frozen: later full collections skip them. Only
        on the main thread: a server in a helper thread shares its process with the caller,
        whose garbage it must leave alone.
        """
        try:
            await super().startup(sockets)
        except SystemExit as exc:
            raise StartupFailed(
                "the app's startup failed (see the lifespan error logged above)"
            ) from exc
        if (
            self.settings.freeze_gc
            and self.started
            and threading.current_thread() is threading.main_thread()
        ):
            gc.collect()
            gc.freeze()
        if self.started and not self.should_exit and self.on_started is not None:
            self.on_started()

    async def main_loop(self) -> None:
        """uvicorn's tick loop, woken at once by :meth:`request_stop`."""
        assert self._wakeup is not None  # set in serve()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), _TICK)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, let requests in flight finish within ``graceful_timeout``, then cut.

        First the lifespan state says draining (the health endpoint answers 503 from now on),
        and with ``shutdown_delay`` the server keeps serving that long before it stops accepting.
        """
        if not self.retiring:  # a replaced worker: the server stays up, its health says so
            self.lifespan.state[DRAINING] = True  # each request's scope["state"] is a copy
            await self._delay_shutdown()
        state = self.server_state
        logger.info(
            "Shutting down (%s): draining %d connection(s), up to %gs",
            self.exit_reason,
            len(state.connections),
            self.graceful_timeout,
        )
        for server in self.servers:
            server.close()
        for sock in sockets or ():
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.graceful_timeout
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)  # uvicorn's state has no event to await
        if state.tasks:
            if self.force_exit:
                reason = f"second {self._last_signal}"
                logger.warning("%s: cancelling %d in-flight request(s)", reason, len(state.tasks))
            else:
                reason = f"graceful_timeout of {self.graceful_timeout:g}s exceeded"
                logger.warning(
                    "%s: cancelling %d request(s) still running", reason, len(state.tasks)
                )
            for connection in list(state.connections):
                cut_off = getattr(connection, "cut_off", None)
                if cut_off is not None:
                    cut_off(reason)  # a 503 for a request whose response has not started
            for task in list(state.tasks):
                task.cancel(reason)
            await asyncio.wait(list(state.tasks), timeout=_CLOSE_GRACE)
        elif self.force_exit:
            logger.info("second %s: nothing in flight", self._last_signal)
        for connection in list(state.connections):
            # Past the deadline: abort, since close() would wait on a TLS peer that never
            # answers close_notify.
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(server.wait_closed() for server in self.servers)), _CLOSE_GRACE
            )
        await self._shutdown_lifespan()

    async def _delay_shutdown(self) -> None:
        """Keep serving for ``shutdown_delay`` seconds (a second signal cuts it short)."""
        delay = self.settings.shutdown_delay
        if delay <= 0:
            return
        logger.info(
            "Shutting down (%s): serving %gs more, health says draining", self.exit_reason, delay
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self.force_exit:  # a second signal sets it: stop waiting
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(0.05, left))

    async def _shutdown_lifespan(self) -> None:
        """Run the app's shutdown hooks (``after_serving``), also after a second signal; a
        third signal while they run skips the rest of them."""
        signals_seen = self._signals_seen
        hooks = asyncio.ensure_future(self.lifespan.shutdown())
        while not hooks.done():
            await asyncio.wait((hooks,), timeout=0.05)
            if self._signals_seen > max(signals_seen, 2) and not hooks.done():
                logger.warning(
                    "%s again: skipping the rest of the shutdown hooks", self._last_signal
                )
                hooks.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hooks
                # the app's lifespan task is cancelled with the loop; uvicorn would log that
                # as a lifespan error (a traceback) unless told the shutdown failed already
                self.lifespan.shutdown_failed = True
                return
        hooks.result()
