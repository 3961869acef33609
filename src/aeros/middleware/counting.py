"""What a response's ``send`` carried: its status and body bytes, for the layers that report it.

The access log and the metrics each need the status and the size of every HTTP response; both
wrap ``send`` in a :class:`CountingSend`.
"""

from __future__ import annotations

from aeros.types import Message, Send

__all__ = ["CountingSend"]


class CountingSend:
    """``send`` that notes the status of ``http.response.start`` and adds up the body bytes.

    Attributes:
        status: the response's status; 0 until the response starts.
        size: the body bytes sent so far (as the app sent them: a HEAD answer's body too).
    """

    __slots__ = ("_send", "size", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.size = 0

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            self.size += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
        await self._send(message)
