"""The API's listening socket: on 127.0.0.1 only, and its connections without Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket

import pytest

from orderbook_kit.api.__main__ import bind
from orderbook_kit.errors import OrderbookKitError


def test_the_api_listens_on_loopback_only() -> None:
    with bind(0) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"


def test_a_taken_port_is_one_clear_error() -> None:
    with bind(0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OrderbookKitError, match=rf"port {port} on 127.0.0.1 is in use"):
            bind(port)


def test_accepted_connections_have_tcp_nodelay() -> None:
    """asyncio sets TCP_NODELAY only on accepted sockets whose protocol is TCP, inherited from the
    listener: with a listener made with protocol 0, each keep-alive request after the first
    waited about 40 ms for the client's delayed ACK."""

    async def nodelay_of_an_accepted_connection() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                server_side = transport.get_extra_info("socket")
                accepted.set_result(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = bind(0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            result = await asyncio.wait_for(accepted, 5)
            writer.close()
            return result

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0
