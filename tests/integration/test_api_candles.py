"""The API's live candles against the real test broker: ``WS /ws/candles/{symbol}`` sends the
candles it holds of that symbol and length at once, then each new one as it is written - and only
real candles of that length: a record of the candle topic that is not one never reaches a client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.candles import MAX_CANDLE_BYTES, Candle
from orderbook_kit.settings.environment import Settings, load_settings
from tests.integration.test_api import RunningApi

pytestmark = pytest.mark.kafka

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def settings() -> Settings:
    return load_settings().isolated(f"api-candles-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def api(settings: Settings) -> Iterator[RunningApi]:
    running = RunningApi(settings)
    yield running
    running.close()


def candle(symbol: str, index: int, seconds: int = 1, **changes: object) -> Candle:
    start = START + timedelta(seconds=index * seconds)
    mid = 30.0 + index / 100
    fields: dict[str, object] = {
        "symbol": symbol,
        "start": start,
        "end": start + timedelta(seconds=seconds),
        "open": mid,
        "high": mid + 0.05,
        "low": mid - 0.05,
        "close": mid + 0.01,
        "ticks": 3 + index,
        "first_seq": 10 * index,
        "last_seq": 10 * index + 2 + index,
    }
    return Candle(**{**fields, **changes})  # type: ignore[arg-type]


def write(settings: Settings, topic: str, values: list[bytes | None]) -> None:
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, topic, settings.topics.partitions)
    with TickProducer(settings, topic=topic) as producer:
        for value in values:
            producer.send_raw(b"TTF-GAS", value, partition=0)  # in order: one partition


def received(socket: ClientConnection, count: int) -> list[dict[str, object]]:
    """The next ``count`` candles ``socket`` sends (each message is a JSON array of them)."""
    out: list[dict[str, object]] = []
    while len(out) < count:
        out.extend(json.loads(socket.recv(timeout=30)))
    assert len(out) == count, out
    return out


def as_sent(candles: list[Candle]) -> list[dict[str, object]]:
    return [json.loads(c.to_json()) for c in candles]


def hostile(symbol: str) -> list[bytes | None]:
    """Records a reader of the candle topic must not pass on: not JSON, empty, huge, a field
    missing or of the wrong type, impossible prices, the wrong length, a symbol that is markup."""
    good = json.loads(candle(symbol, 50).to_json())
    return [
        b"not json",
        None,
        b"{" + b" " * (MAX_CANDLE_BYTES + 1) + b"}",
        json.dumps({k: v for k, v in good.items() if k != "close"}).encode(),
        json.dumps({**good, "ticks": "3"}).encode(),
        json.dumps({**good, "low": good["high"] + 1}).encode(),
        json.dumps({**good, "open": -1.0}).encode(),
        candle(symbol, 50, seconds=60).to_json(),  # a minute's candle on the 1 s topic
        candle("<img src=x onerror=alert(1)>", 50).to_json(),
    ]


def test_a_client_gets_the_held_candles_then_each_new_one_and_nothing_else(
    settings: Settings,
) -> None:
    one_second = settings.topics.candles_1s
    history = [candle("TTF-GAS", i) for i in range(10)]
    others = [candle("NBP-GAS", i) for i in range(10)]
    write(settings, one_second, [c.to_json() for c in history] + [c.to_json() for c in others])
    api = RunningApi(settings)  # after the writes: what it holds is read from the topic
    try:
        url = api.url.replace("http://", "ws://") + "/ws/candles/TTF-GAS?interval=1"
        with connect(url, open_timeout=10) as socket:
            assert received(socket, 10) == as_sent(history)
            live = [candle("TTF-GAS", i) for i in range(10, 15)]
            write(settings, one_second, [*hostile("TTF-GAS"), *(c.to_json() for c in live)])
            assert received(socket, 5) == as_sent(live)  # the hostile ones never came
        candles = api.app.state.backends.candles
        assert candles.rejected == len(hostile("TTF-GAS"))
        assert candles.symbols(1) == ["NBP-GAS", "TTF-GAS"]
        # The 1-minute candles: another topic, another length.
        minute = candle("TTF-GAS", 3, seconds=60)
        write(settings, settings.topics.candles_1m, [minute.to_json()])
        url = api.url.replace("http://", "ws://") + "/ws/candles/TTF-GAS?interval=60"
        with connect(url, open_timeout=10) as socket:
            assert received(socket, 1) == as_sent([minute])
    finally:
        api.close()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws/candles/TTF-GAS?interval=5", "interval must be 1 or 60 seconds"),
        ("/ws/candles/bad%20symbol", "not a symbol: 'bad symbol'"),
    ],
)
def test_bad_input_closes_the_socket_saying_why(api: RunningApi, path: str, reason: str) -> None:
    with (
        connect(api.url.replace("http://", "ws://") + path, open_timeout=10) as socket,
        pytest.raises(ConnectionClosed) as closed,
    ):
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, reason)
