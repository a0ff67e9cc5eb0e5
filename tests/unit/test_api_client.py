"""The kit's client of the API's live stream, against a WebSocket server in the test that sends
what the API never would: no Kafka, no API process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from orderbook_kit.api.client import ApiStreamError, live_ticks

Handler = Callable[[ServerConnection], None]
FakeApi = Callable[[Handler], str]  # starts a server with this handler; its http:// URL


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    servers: list[Server] = []

    def start(handler: Handler) -> str:
        server = serve(handler, "127.0.0.1", 0)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.socket.getsockname()[1]}"

    yield start
    for server in servers:
        server.shutdown()


def test_a_message_that_is_not_ticks_is_a_clear_error(fake_api: FakeApi) -> None:
    url = fake_api(lambda ws: ws.send('[{"symbol": "TTF-GAS", "seq": "one"}]'))
    with pytest.raises(ApiStreamError, match=r"not a batch of ticks .*is it the kit's API\?"):
        list(live_ticks(url, duration_s=10))


def test_a_close_with_an_error_code_names_the_code_and_reason(fake_api: FakeApi) -> None:
    url = fake_api(lambda ws: ws.close(1013, "too slow: more than 1000 ticks behind; reconnect"))
    with pytest.raises(ApiStreamError, match=r"code 1013: too slow: more than 1000 ticks behind"):
        list(live_ticks(url, duration_s=10))


def test_a_normal_close_ends_the_stream_quietly(fake_api: FakeApi) -> None:
    url = fake_api(lambda ws: ws.close(1000, "bye"))
    assert list(live_ticks(url, duration_s=10)) == []
