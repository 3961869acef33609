"""Lifespan layer for foreign ASGI apps that may not speak the lifespan protocol.

aeros' server runs the lifespan protocol strictly (a failing startup stops the server), which
is right for a WebServer. A bare ``async def app(scope, receive, send)`` served from the
command line often refuses the ``lifespan`` scope instead; this layer then answers the
startup and shutdown events itself, as uvicorn's ``lifespan="auto"`` does. An app that takes
the startup event and then raises does speak the protocol: its startup failed, and the server
does not start (uvicorn's ``lifespan="on"``).
"""

from __future__ import annotations

import logging

from aeros.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OptionalLifespanMiddleware"]

logger = logging.getLogger("aeros.server")


class OptionalLifespanMiddleware:
    """Pass every scope to ``app``; answer lifespan events itself if the app refuses them.

    The app refuses when it raises on the ``lifespan`` scope before it has received anything
    (logged at INFO, no traceback). One that raises after receiving ``lifespan.startup``
    without answering it failed its startup: the error is logged with its traceback and the
    server is told ``lifespan.startup.failed``, so it does not start. One that raises after
    answering is the server's to handle, as without this layer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        received: list[str] = []
        answered = False

        async def tracking_receive() -> Message:
            message = await receive()
            received.append(message["type"])
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.app(scope, tracking_receive, tracking_send)
        except Exception as exc:
            if answered:
                raise
            if received:  # it took the startup event: it speaks lifespan, and its startup failed
                logger.error("the app's lifespan startup failed", exc_info=exc)
                # no "message": the error and its traceback are logged just above
                await send({"type": "lifespan.startup.failed"})
                return
            logger.info(
                "the app does not support the ASGI lifespan protocol (%s); serving without it",
                type(exc).__name__,
            )
            await _answer_lifespan(receive, send)


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    await receive()  # lifespan.startup
    await send({"type": "lifespan.startup.complete"})
    await receive()  # lifespan.shutdown
    await send({"type": "lifespan.shutdown.complete"})
