"""uvicorn's HTTP protocol, with a bound on how long a client may take to send its request.

uvicorn times out a keep-alive connection that sends nothing after a response, but not a client
that sends *half* a request: a new connection with a header line and no end, or a keep-alive one
that starts its next request and stops. Two hundred such clients held two hundred connections for
as long as they liked. Here each request must be complete (headers and any body) within
``REQUEST_READ_TIMEOUT_S`` of the connection's start or of the previous response; a client that
is slower gets ``408 Request Timeout`` and the connection is closed. A WebSocket, once upgraded,
is another protocol and is not affected.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["REQUEST_READ_TIMEOUT_S", "BoundedH11Protocol", "bounded_protocol"]

# Far above what any real client needs on loopback, far below "forever".
REQUEST_READ_TIMEOUT_S = 10.0


class BoundedH11Protocol(H11Protocol):
    """H11Protocol that answers 408 and closes when a request is not read in time."""

    request_read_timeout_s = REQUEST_READ_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the whole request is in (or the connection is done)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has the same bound

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.request_read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or upgraded to a WebSocket
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return  # the request is in; the application is answering it
        try:
            if self.conn.our_state is h11.IDLE:
                body = f"request not complete within {self.request_read_timeout_s:g} s\n".encode()
                headers = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                self.transport.write(
                    self.conn.send(h11.Response(status_code=408, headers=headers))
                    + self.conn.send(h11.Data(data=body))
                    + self.conn.send(h11.EndOfMessage())
                )
        except h11.LocalProtocolError:
            pass  # a response was under way: just close
        self.transport.close()


def bounded_protocol(timeout_s: float) -> type[BoundedH11Protocol]:
    """The protocol with another bound (the tests use a short one)."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"request_read_timeout_s": timeout_s})
