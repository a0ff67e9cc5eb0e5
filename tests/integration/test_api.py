"""The API against the real test broker and PostgreSQL: the hot store's answers over HTTP, ticks
from Kafka by time, a live WebSocket that drops a slow client without slowing the others, clear
4xx errors for bad input, and 503 while a dependency is down - recovering by itself."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from orderbook_kit.api.__main__ import bind
from orderbook_kit.api.app import create_app
from orderbook_kit.api.client import ApiStreamError, live_ticks, websocket_url
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.lab import ports as lab_ports
from orderbook_kit.lab.broker import server as process
from orderbook_kit.lab.postgres import server
from orderbook_kit.market.candles import WindowTick, closed_windows
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.launcher import ServiceProcess, start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store import queries as hot
from orderbook_kit.store.sink import CANDLE_SOURCE, StoreSink
from tests.conftest import produce_clean, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


class RunningApi:
    """The API served by uvicorn in a thread of the test, on a free port of 127.0.0.1."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        sock = bind(0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "the API to start")
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def ws(self, query: str = "") -> ClientConnection:
        return connect(self.url.replace("http://", "ws://") + "/ws/ticks" + query)

    def stream_ready(self) -> bool:
        return self.app.state.stream.ready.is_set()

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def settings() -> Settings:
    return load_settings().isolated(f"api-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def api(settings: Settings) -> Iterator[RunningApi]:
    running = RunningApi(settings)
    yield running
    running.close()


def ticks(count: int, seed: int = 1) -> list[Tick]:
    return list(OrderbookSimulator(SYMBOLS, seed=seed).ticks(count))


def produce_paced(settings: Settings, sent: list[Tick], per_second: int) -> None:
    with TickProducer(settings, topic=settings.topics.clean) as producer:
        started = time.monotonic()
        for index, tick in enumerate(sent):
            producer.send(tick)
            if index % 100 == 99:
                time.sleep(max(started + (index + 1) / per_second - time.monotonic(), 0))
        producer.flush()


@pytest.fixture
def stored(settings: Settings) -> list[Tick]:
    """3,000 ticks in the clean topic and in the hot store."""
    sent = ticks(3000)
    produce_clean(settings, sent)
    StoreSink(settings).run(count=len(sent))
    return sent


def test_quotes_and_candles_are_the_hot_stores(
    api: RunningApi, settings: Settings, stored: list[Tick]
) -> None:
    assert api.http.get("/symbols").json() == sorted(SYMBOLS)

    latest = {q["symbol"]: q for q in api.http.get("/quotes/latest").json()}
    for symbol in SYMBOLS:
        last = max((t for t in stored if t.symbol == symbol), key=lambda t: t.seq)
        assert (latest[symbol]["seq"], latest[symbol]["bid"], latest[symbol]["ask"]) == (
            last.seq,
            last.bid,
            last.ask,
        )
        one = api.http.get(f"/quotes/{symbol}/latest")
        assert one.status_code == 200 and one.json() == latest[symbol]

    start = min(t.event_time for t in stored) - timedelta(seconds=30)
    end = max(t.event_time for t in stored) + timedelta(seconds=30)
    answer = api.http.get(
        "/candles/TTF-GAS",
        params={"interval": 10, "start": start.isoformat(), "end": end.isoformat()},
    )
    assert answer.status_code == 200
    candles = pd.DataFrame(answer.json())
    expected = hot.candles("TTF-GAS", seconds=10, start=start, end=end, settings=settings)
    assert len(candles) == len(expected) > 5
    assert candles["ticks"].sum() == 1000
    pd.testing.assert_frame_equal(
        candles.drop(columns="bucket"), expected.drop(columns="bucket"), check_dtype=False
    )
    assert pd.to_datetime(candles["bucket"]).tolist() == expected["bucket"].tolist()


def test_the_streamed_candles_are_served_as_the_store_wrote_them(
    api: RunningApi, settings: Settings, stored: list[Tick]
) -> None:
    # The candle topic as the candles service writes it (computed here with its own folding),
    # stored by the store's candle sink, served from the candles table.
    # Four minutes of a market (the stored ticks span less than one), ending now.
    market = OrderbookSimulator(SYMBOLS, interval_s=0.5).ticks(1_500)
    closed = closed_windows([WindowTick.of(t) for t in market], grace_ms=0)
    minutes = closed.candles["candles_1m"]
    with TickProducer(settings, topic=settings.topics.candles_1m) as producer:
        for candle in minutes:
            producer.send_raw(candle.symbol.encode(), candle.to_json())
    StoreSink(settings, source=CANDLE_SOURCE).run(count=len(minutes))
    answer = api.http.get("/candles/TTF-GAS", params={"source": "stream"})
    assert answer.status_code == 200, answer.text
    served = answer.json()
    mine = [c for c in minutes if c.symbol == "TTF-GAS"]
    assert len(served) == len(mine) >= 3
    for row, candle in zip(served, mine, strict=True):
        assert datetime.fromisoformat(row["bucket"]) == candle.start
        assert (row["open"], row["high"], row["low"], row["close"], row["ticks"]) == (
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.ticks,
        )
    wrong = api.http.get("/candles/TTF-GAS", params={"source": "stream", "interval": 10})
    assert wrong.status_code == 422 and "the stream's candles are 60 s long" in wrong.text
    bogus = api.http.get("/candles/TTF-GAS", params={"source": "kafka"})
    assert bogus.status_code == 422 and "query.source" in bogus.text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/quotes/NO-SUCH/latest", 404, "no ticks of 'NO-SUCH' in the hot store; known symbols:"),
        ("/candles/NO-SUCH", 404, "known symbols: EUA-CO2, NBP-GAS, TTF-GAS"),
        ("/quotes/ttf gas/latest", 422, "path.symbol: String should match pattern"),
        ("/candles/TTF-GAS?interval=0", 422, "query.interval: Input should be greater than"),
        ("/candles/TTF-GAS?interval=abc", 422, "query.interval: Input should be a valid integer"),
        ("/candles/TTF-GAS?interval=1&start=2000-01-01T00:00:00Z", 422, "at most 10000"),
        ("/candles/TTF-GAS?start=2026-01-01T00:00:00", 422, "is not an ISO 8601 time with a zone"),
        ("/candles/TTF-GAS?end=1767225600", 422, "query.end: Value error, '1767225600' is not"),
        ("/candles/TTF-GAS?end=0001-01-01T00:00:00Z", 422, "must be before end"),
        ("/candles/TTF-GAS?start=0001-01-01T00:00:00%2B01:00", 422, "outside the years 1-9999"),
        ("/candles/TTF-GAS?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", 422, "before"),
        ("/candles/TTF-GAS?start=yesterday", 422, "query.start: Value error, 'yesterday' is not"),
        ("/ticks/TTF-GAS/recent?seconds=-1", 422, "query.seconds: Input should be greater"),
        ("/ticks/TTF-GAS/recent?limit=1000000", 422, "query.limit: Input should be less"),
        ("/quotes/" + "A" * 5000 + "/latest", 422, "String should match pattern"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_to_change(
    api: RunningApi, stored: list[Tick], path: str, status: int, says: str
) -> None:
    answer = api.http.get(path)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]


def test_recent_ticks_are_read_from_kafka_by_time(api: RunningApi, settings: Settings) -> None:
    old = ticks(300)  # stamped up to now, then published: all within the last minute or two
    produce_clean(settings, old)
    answer = api.http.get("/ticks/NBP-GAS/recent", params={"seconds": 600, "limit": 40})
    assert answer.status_code == 200
    expected = [t.seq for t in old if t.symbol == "NBP-GAS"][-40:]
    assert [t["seq"] for t in answer.json()] == expected
    assert all(t["symbol"] == "NBP-GAS" and t["publish_time"] for t in answer.json())


def received(client: ClientConnection, count: int, timeout_s: float = 60) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend(json.loads(client.recv(timeout=max(deadline - time.monotonic(), 0.1))))
    return got


def test_the_websocket_streams_live_ticks_in_order_and_filters_by_symbol(
    api: RunningApi, settings: Settings
) -> None:
    produce_clean(settings, ticks(30, seed=9))  # before: never sent to a client
    wait_for(api.stream_ready, 30, "the stream to read the topic")
    sent = ticks(900, seed=2)
    with api.ws() as everything, api.ws("?symbol=TTF-GAS&symbol=EUA-CO2") as two:
        wait_for(lambda: api.app.state.stream.clients == 2, 10, "both clients subscribed")
        produce_clean(settings, sent)
        all_ticks = received(everything, 900)
        some = received(two, 600)
    # Kafka orders each partition (so each symbol), not the topic: per symbol, in seq order.
    for symbol in SYMBOLS:
        assert [t["seq"] for t in all_ticks if t["symbol"] == symbol] == list(range(300))
    assert len(all_ticks) == 900  # and none of those sent before the clients came
    assert {t["symbol"] for t in some} == {"TTF-GAS", "EUA-CO2"}
    assert [t["seq"] for t in some if t["symbol"] == "TTF-GAS"] == list(range(300))


def test_the_kits_client_reads_live_ticks_bounded_and_says_why_a_stream_ends(
    api: RunningApi, settings: Settings
) -> None:
    produce_clean(settings, ticks(30, seed=9))  # before the client: never sent to it
    wait_for(api.stream_ready, 30, "the stream to read the topic")
    sent = ticks(600, seed=3)
    got: list[Tick] = []

    def read() -> None:
        for tick in live_ticks(api.url, symbols=["NBP-GAS"], duration_s=30):
            got.append(tick)
            if len(got) == 200:
                return

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: api.app.state.stream.clients == 1, 10, "the client subscribed")
    produce_clean(settings, sent)
    reader.join(40)
    # Decoded Ticks, every field as sent; the producer stamped publish_time on the way.
    assert [t.model_dump(exclude={"publish_time"}) for t in got] == [
        t.model_dump(exclude={"publish_time"}) for t in sent if t.symbol == "NBP-GAS"
    ]
    assert all(t.publish_time is not None for t in got)
    # A quiet stream ends at its deadline, not later.
    started = time.monotonic()
    assert list(live_ticks(api.url, duration_s=1.0)) == []
    assert time.monotonic() - started < 5
    with pytest.raises(ApiStreamError, match=r"code 1008: not a symbol: 'x y'"):
        list(live_ticks(api.url, symbols=["x y"], duration_s=10))
    nowhere = f"http://127.0.0.1:{lab_ports.free_port('127.0.0.1')}"
    with pytest.raises(ApiStreamError, match=r"could not be opened.*python -m orderbook_kit\.api"):
        list(live_ticks(nowhere, duration_s=10))
    with pytest.raises(ApiStreamError, match="not an API URL"):
        websocket_url("127.0.0.1:8000")
    assert websocket_url("https://example.org/api/", ["TTF-GAS", "EUA-CO2"]) == (
        "wss://example.org/api/ws/ticks?symbol=TTF-GAS&symbol=EUA-CO2"
    )


def test_a_bad_symbol_on_the_websocket_is_refused_with_the_reason(api: RunningApi) -> None:
    with api.ws("?symbol=not%20a%20symbol") as client, pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "not a symbol" in closed.value.rcvd.reason


def started_api(settings: Settings, *arguments: str) -> tuple[ServiceProcess, str]:
    """``python -m orderbook_kit.api --port 0``, and its URL once it serves."""
    service = start_service("api", settings, "--port", "0", *arguments)
    return service, service.api_url()


def silent_client(url: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then reads nothing, on a socket
    with a small receive buffer: the slowest client there is."""
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/ticks HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def frames(sock: socket.socket, timeout_s: float) -> tuple[int, tuple[int, str] | None]:
    """Everything ``sock`` receives until the server closes it: (ticks, (close code, reason))."""
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(TimeoutError):
        while chunk := sock.recv(1 << 16):
            data += chunk
    ticks, close, at = 0, None, 0
    while at + 2 <= len(data):  # server frames: FIN+opcode, then an unmasked length
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length >= 126:
            size = 2 if length == 126 else 8
            length = int.from_bytes(data[at : at + size], "big")
            at += size
        payload, at = data[at : at + length], at + length
        if opcode == 1:
            ticks += len(json.loads(payload))
        elif opcode == 8:
            close = (int.from_bytes(payload[:2], "big"), payload[2:].decode())
    return ticks, close


def test_a_slow_client_is_dropped_and_never_slows_the_others(settings: Settings) -> None:
    """The API in a process of its own, as deployed (in the test's process the producer and
    clients would compete with it for one interpreter)."""
    service, url = started_api(settings, "--stream-buffer", "4000")
    try:
        # Started before the topic exists: the stream picks it up once it does.
        produce_clean(settings, ticks(3, seed=8))
        health = lambda: httpx.get(f"{url}/health", timeout=10).json()  # noqa: E731
        wait_for(lambda: health()["kafka"]["ok"], 30, "the stream to read the topic")
        slow = silent_client(url)
        with connect(url.replace("http://", "ws://") + "/ws/ticks") as fast:
            wait_for(lambda: health()["stream_clients"] == 2, 10, "both clients subscribed")
            # 50,000 ticks (12 MB) at 6,000 a second: far more than the silent client's
            # connection holds in kernel buffers (about 3 MB here) plus its 4,000-tick queue; and
            # a buffer of two thirds of a second lets this test's own client keep up even while
            # the other test worker loads the machine (with 500 ticks, it was dropped once).
            sent = ticks(50_000, seed=3)
            producing = threading.Thread(target=produce_paced, args=(settings, sent, 6000))
            producing.start()
            got = received(fast, len(sent))
            producing.join()
        assert len(got) == len(sent)  # every tick, while the slow one sat there
        slow_ticks, close = frames(slow, timeout_s=30)
        slow.close()
        assert close == (1013, "too slow: more than 4000 ticks behind; reconnect")
        assert slow_ticks < len(sent)
        wait_for(lambda: health()["stream_clients"] == 0, 10, "both clients gone")
    finally:
        service.stop()


def test_postgres_down_answers_503_with_the_reason_and_recovers_by_itself(
    settings: Settings, own_database: tuple[str, Path]
) -> None:
    url, state = own_database
    own = settings.replace(store={"database_url": url})
    produce_clean(own, ticks(300))
    StoreSink(own).run(count=300)
    api = RunningApi(own)
    try:
        assert api.http.get("/quotes/latest").status_code == 200
        wait_for(api.stream_ready, 30, "the stream to read the topic")
        healthy = api.http.get("/health")
        assert healthy.status_code == 200
        assert (
            healthy.json()["database"]
            == healthy.json()["kafka"]
            == {
                "ok": True,
                "detail": "answers",
            }
        )
        server.stop(state)
        down = api.http.get("/quotes/latest")
        assert down.status_code == 503
        assert "PostgreSQL at postgresql://orderbook@127.0.0.1" in down.json()["detail"]
        assert down.headers["retry-after"]
        health = api.http.get("/health")
        assert health.status_code == 503 and not health.json()["database"]["ok"]
        assert health.json()["database"]["detail"] not in {"", "answers"}  # the reason
        assert health.json()["kafka"] == {"ok": True, "detail": "answers"}
        server.start(url, state)
        back = api.http.get("/quotes/latest")
        assert back.status_code == 200 and len(back.json()) == 3
    finally:
        api.close()


def test_kafka_down_answers_503_with_the_reason_and_recovers_by_itself(
    settings: Settings, own_broker: tuple[str, Path]
) -> None:
    address, state = own_broker
    own = settings.replace(kafka={"bootstrap_servers": address})
    produce_clean(own, ticks(60))
    api = RunningApi(own)
    try:
        wait_for(api.stream_ready, 30, "the stream to read the topic")
        assert api.http.get("/ticks/TTF-GAS/recent").status_code == 200
        process.stop(state)
        down = api.http.get("/ticks/TTF-GAS/recent")
        assert down.status_code == 503, down.text
        assert f"Kafka at {address}" in down.json()["detail"]
        wait_for(lambda: not api.http.get("/health").json()["kafka"]["ok"], 20, "health to see")
        process.start(address, state)
        wait_for(lambda: api.http.get("/ticks/TTF-GAS/recent").status_code == 200, 60, "recovery")
        wait_for(lambda: api.http.get("/health").json()["kafka"]["ok"], 30, "the stream back")
        with api.ws() as client:
            wait_for(lambda: api.app.state.stream.clients == 1, 10, "subscribed")
            produce_clean(own, ticks(30, seed=5))
            assert len(received(client, 30)) == 30
    finally:
        api.close()


def test_the_service_prints_its_url_refuses_a_taken_port_and_stops_on_ctrl_c(
    settings: Settings,
) -> None:
    service, url = started_api(settings)
    try:
        assert httpx.get(f"{url}/openapi.json", timeout=10).json()["info"]["title"]
        taken = url.rsplit(":", 1)[1]
        second = start_service("api", settings, "--port", taken)
        assert second.wait(30) == 2
        last = second.output().strip().splitlines()[-1]
        assert last.startswith(f"error: --port / ORDERBOOK_API_PORT: port {taken}"), last
    finally:
        code = service.stop()
    assert code == 0 and service.last_line() == "API stopped."


def test_openapi_documents_every_endpoint(api: RunningApi) -> None:
    paths = set(api.http.get("/openapi.json").json()["paths"])
    assert {
        "/health",
        "/symbols",
        "/quotes/latest",
        "/quotes/{symbol}/latest",
        "/candles/{symbol}",
        "/ticks/{symbol}/recent",
    } <= paths
    assert datetime.now(UTC)  # (the docs page itself)
    assert api.http.get("/docs").status_code == 200
