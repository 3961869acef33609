"""Quart's websocket connection, refusing cleanly when a view returns before accepting.

Two things go wrong with Quart's own connection when a websocket view returns without accepting
(its way of refusing a connection, as the ASGI spec intends):

- Quart sends nothing, so the server reports an app error (uvicorn answers 500 and logs
  "ASGI callable returned without completing handshake"). Here the connection is closed
  before accepting, which the ASGI spec turns into an HTTP 403 refusal.
- Quart 0.23 runs the handler and its message reader in one ``TaskGroup`` that waits for both;
  the reader waits for a client message that cannot come before the handshake is answered, so
  the client hangs until its own timeout (stock Quart 0.23 on uvicorn too). Quart 0.22 cancelled
  the reader once the handler finished; on 0.23 this does the same.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import quart.asgi
from quart.asgi import ASGIWebsocketConnection

from aeros.fastpath._compat import UNIFIED_CONTEXT

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
    from quart.wrappers import Websocket

__all__ = ["ClosingWebsocketConnection"]

_CLOSE = {"type": "websocket.close", "code": 1000}


class ClosingWebsocketConnection(ASGIWebsocketConnection):
    """Quart's websocket connection; a view that refuses gets a 403, never a 500 or a hang."""

    if UNIFIED_CONTEXT:

        async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            """As Quart 0.23's, but the message reader stops when the handler has finished."""
            converted: Any = quart.asgi._convert_os_error(send)  # type: ignore[attr-defined]
            this: Any = self
            websocket = this._create_websocket_from_scope(converted)
            async with asyncio.TaskGroup() as group:
                handler = group.create_task(this.handle_websocket(websocket, converted))
                reader = group.create_task(this.handle_messages(websocket, receive, handler))
                handler.add_done_callback(lambda _: reader.cancel())

    async def handle_websocket(self, websocket: Websocket, send: ASGISendCallable) -> None:
        """Run the view as Quart does; close (a 403 refusal) if it neither accepted nor answered."""
        answered = False

        async def watched_send(message: Any) -> None:
            nonlocal answered
            answered = True
            await send(message)

        await super().handle_websocket(websocket, watched_send)
        if not answered and not self._accepted and not self._closed:
            await send(_CLOSE)  # type: ignore[arg-type]
