"""The API's order books against the real test broker: ``GET /book/{symbol}`` answers the book a
reader of the two book topics holds - equal to the simulator's true book, to the depth asked -
and ``WS /ws/book/{symbol}`` sends it at once and then as it changes, until it is the true book
again after a live stretch of updates. Bad input gets a 4xx that says what to change."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from orderbook_kit.kafka.book_topics import BookWriter
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import wait_for
from tests.integration.test_api import RunningApi

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS"]


@pytest.fixture
def settings() -> Settings:
    return load_settings().isolated(f"api-book-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def api(settings: Settings) -> Iterator[RunningApi]:
    running = RunningApi(settings)
    yield running
    running.close()


def write(settings: Settings, simulator: DepthSimulator, ticks: int) -> None:
    with BookWriter(settings, snapshot_every=200) as writer:
        for tick, updates in simulator.events(ticks):
            writer.write(updates, simulator.books[tick.symbol])
        writer.flush()


def expected(book: OrderBook, depth: int) -> dict[str, object]:
    bids, asks = book.depth(depth)

    def cumulative(levels: list[tuple[float, int]]) -> list[list[float]]:
        total, out = 0, []
        for price, size in levels:
            total += size
            out.append([price, size, total])
        return out

    return {"seq": book.seq, "bids": cumulative(bids), "asks": cumulative(asks)}


def test_the_book_endpoint_answers_the_true_book_to_the_depth_asked(
    settings: Settings,
) -> None:
    simulator = DepthSimulator(SYMBOLS, seed=3, updates_per_tick=3)
    write(settings, simulator, 600)  # before the API starts: it rebuilds from the topics
    api = RunningApi(settings)
    try:
        true = simulator.books["TTF-GAS"]

        def answered() -> bool:
            response = api.http.get("/book/TTF-GAS", params={"depth": 5})
            return response.status_code == 200 and response.json()["seq"] == true.seq

        wait_for(answered, 60, "the API's book of TTF-GAS")
        body = api.http.get("/book/TTF-GAS", params={"depth": 5}).json()
        assert {k: body[k] for k in ("seq", "bids", "asks")} == expected(true, 5)
        assert body["in_sync"] and body["checksum"] == true.checksum()
        assert len(body["bids"]) == len(body["asks"]) == 5
        full = api.http.get("/book/NBP-GAS", params={"depth": 1000}).json()
        assert full["bids"] == expected(simulator.books["NBP-GAS"], 1000)["bids"]
        unknown = api.http.get("/book/EUA-CO2")
        assert unknown.status_code == 404 and "NBP-GAS, TTF-GAS" in unknown.json()["detail"]
        for bad in ("/book/TTF-GAS?depth=0", "/book/TTF-GAS?depth=1001", "/book/ttf%20gas"):
            response = api.http.get(bad)
            assert response.status_code == 422, bad
            assert response.json()["detail"]
        assert "/book/{symbol}" in api.http.get("/openapi.json").json()["paths"]
    finally:
        api.close()


def test_the_book_websocket_sends_the_book_and_then_each_change(
    api: RunningApi, settings: Settings
) -> None:
    simulator = DepthSimulator(SYMBOLS, seed=4, updates_per_tick=2)
    write(settings, simulator, 100)
    true = simulator.books["TTF-GAS"]
    wait_for(
        lambda: api.http.get("/book/TTF-GAS").json().get("seq") == true.seq,
        60,
        "the API's first book",
    )
    url = api.url.replace("http://", "ws://") + "/ws/book/TTF-GAS?depth=3"
    with connect(url, open_timeout=10) as socket:
        first = json.loads(socket.recv(timeout=10))
        assert {k: first[k] for k in ("seq", "bids", "asks")} == expected(true, 3)
        writer = threading.Thread(target=write, args=(settings, simulator, 400))
        writer.start()
        writer.join(120)
        seqs = [first["seq"]]
        while seqs[-1] < true.seq:
            book = json.loads(socket.recv(timeout=30))
            seqs.append(book["seq"])
        assert seqs == sorted(seqs) and len(seqs) > 2  # it moved, forwards only
        assert {k: book[k] for k in ("seq", "bids", "asks")} == expected(true, 3)
    refused = api.url.replace("http://", "ws://") + "/ws/book/TTF-GAS?depth=0"
    with connect(refused) as bad, pytest.raises(ConnectionClosed) as closed:
        bad.recv(timeout=10)
    assert closed.value.rcvd is not None and "depth" in closed.value.rcvd.reason
