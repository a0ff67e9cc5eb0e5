"""The API's listening socket: on 127.0.0.1 only, and its connections without Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from orderbook_kit.api.__main__ import bind
from orderbook_kit.api.protocol import bounded_protocol
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


async def _hello(scope: dict, receive: object, send: object) -> None:  # a minimal ASGI app
    assert scope["type"] == "http"
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    await send(start)  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


@pytest.fixture
def bounded_server() -> Iterator[tuple[str, int]]:
    """uvicorn with the API's protocol and a half-second bound, in a thread of the test."""
    listener = bind(0)
    config = uvicorn.Config(_hello, log_level="warning", http=bounded_protocol(0.5))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield listener.getsockname()
    server.should_exit = True
    thread.join(10)


def read_until_closed(client: socket.socket) -> bytes:
    client.settimeout(10)  # far above the bound: a server that never closes fails the test
    received = b""
    while chunk := client.recv(4096):
        received += chunk
    return received


def read_response(client: socket.socket) -> bytes:
    """One whole response of the test's app (it ends with its body, b"hello")."""
    client.settimeout(10)
    received = b""
    while not received.endswith(b"hello"):
        chunk = client.recv(4096)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received


def test_a_half_sent_request_is_answered_408_and_closed(bounded_server: tuple[str, int]) -> None:
    with socket.create_connection(bounded_server) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        answer = read_until_closed(client)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"request not complete within 0.5 s\n")


def test_a_second_request_half_sent_on_a_kept_connection_is_closed_too(
    bounded_server: tuple[str, int],
) -> None:
    with socket.create_connection(bounded_server) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(client)
        client.sendall(b"GET / HTTP/1.1\r\nHo")  # the next request, cut short
        rest = read_until_closed(client)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"hello")
    assert rest.startswith(b"HTTP/1.1 408 ")


def test_a_request_sent_slowly_but_within_the_bound_is_answered(
    bounded_server: tuple[str, int],
) -> None:
    with socket.create_connection(bounded_server) as client:
        for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            client.sendall(part)
            time.sleep(0.05)
        assert read_response(client).startswith(b"HTTP/1.1 200 ")
