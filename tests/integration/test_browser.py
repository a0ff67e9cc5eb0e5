"""The live dashboard in a real browser: headless Chromium (the ``browser`` fixture, see
tests/browsing.py) on the API's page while ticks flow (and the candles service closes their
windows), and while a book's updates do."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from orderbook_kit.kafka.book_topics import BookWriter
from orderbook_kit.kafka.candle_topics import read_candles
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.quality.gate import QualityGate
from orderbook_kit.runtime.launcher import ServiceProcess, start_service
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.store.sink import StoreSink
from tests.conftest import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


def eventually(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    wait_for(lambda: bool(condition()), timeout_s, what)


@pytest.fixture
def settings() -> Settings:
    return load_settings().isolated(f"browser-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[ServiceProcess, str]]:
    service = start_service("api", settings, "--port", "0")
    yield service, service.api_url()
    service.stop()


def test_the_dashboard_updates_live_as_ticks_flow(
    browser: webdriver.Chrome, tmp_path: Path, settings: Settings, api: tuple[ServiceProcess, str]
) -> None:
    _, url = api
    # A pipeline with a little history: raw ticks with faults through the gate into the store,
    # and the candles service over the clean ticks.
    market = OrderbookSimulator(SYMBOLS, seed=4)
    messages = list(FaultInjector.uniform(0.01, seed=4).messages(market.ticks(1500)))
    with TickProducer(settings) as producer:
        for message in messages:
            producer.send_raw(message.key, message.value)
    QualityGate(settings).run(count=len(messages), duration_s=60)
    settings = settings.replace(candles={"state_dir": str(tmp_path / "state")})
    candles = start_service("candles", settings, "-q")
    try:
        StoreSink(settings).run(count=sum(m.fault is None for m in messages), duration_s=60)
        look_at_the_dashboard(browser, url, settings)
    finally:
        candles.stop()


def look_at_the_dashboard(browser: webdriver.Chrome, url: str, settings: Settings) -> None:
    """The page while live ticks flow: the charts, the HTTP panels and the candlesticks."""
    browser.get(url)
    status = browser.find_element(By.ID, "status")
    eventually(lambda: status.text.startswith("live"), 30, "the dashboard to connect")

    def received() -> int:
        return int(browser.find_element(By.ID, "ticks-received").text)

    def points(chart: str) -> list[int]:
        return browser.execute_script(
            f"return document.getElementById('{chart}').data.map((t) => t.x.length);"
        )

    stop = threading.Event()

    def feed() -> None:  # live clean ticks in real time, 200 a second, until the test has seen them
        live = OrderbookSimulator(SYMBOLS, interval_s=0.015, seed=5)
        with TickProducer(settings, topic=settings.topics.clean) as producer:
            for tick in live.stream(stop=stop):
                producer.send(tick)

    feeding = threading.Thread(target=feed, daemon=True)
    feeding.start()
    try:
        eventually(lambda: received() >= 300, 60, "300 live ticks on the page")
        first = received()
        eventually(lambda: received() > first + 100, 30, "the count to keep growing")
        candles = look_at_the_candles(browser, settings)
    finally:
        stop.set()
        feeding.join(10)
    legend = browser.execute_script(
        "return document.getElementById('mid-chart').data.map((t) => t.name).sort();"
    )
    assert legend == sorted(SYMBOLS)
    assert all(n > 50 for n in points("mid-chart")), points("mid-chart")
    assert points("spread-chart") == points("mid-chart")
    # The bars and the table come from the HTTP endpoints: the gate's reasons, the store's rows.
    eventually(
        lambda: (
            browser.execute_script(
                "return document.getElementById('dead-letters').data[0].x.length;"
            )
            > 3
        ),
        20,
        "dead letters by reason",
    )
    # Read in one script: the table is redrawn every few seconds, and rows found by one call
    # may be gone by the next (a stale element on a busy machine).
    freshness = browser.execute_script(
        "return [...document.querySelectorAll('#freshness tbody tr')]"
        ".map((row) => row.dataset.symbol).sort();"
    )
    assert freshness == sorted(SYMBOLS)
    # The candlesticks are what the candles service wrote, window for window (read committed).
    symbol, drawn = candles
    written = read_candles(settings.topics.candles_1s, settings=settings)
    by_start = {
        row.bucket.isoformat().replace("+00:00", "Z"): [row.open, row.high, row.low, row.close]
        for row in written[written.symbol == symbol].itertuples()
    }
    assert len(drawn) >= 5
    assert [start for start, *_ in drawn] == sorted(start for start, *_ in drawn)
    assert {start: ohlc for start, *ohlc in drawn} == {
        start: by_start.get(start) for start, *_ in drawn
    }
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []  # no script error, no failed request


def look_at_the_candles(
    browser: webdriver.Chrome, settings: Settings
) -> tuple[str, list[list[object]]]:
    """Wait for the 1-second candlesticks of the symbol the page shows first to grow as their
    seconds close, then for another symbol's, chosen in the list; return the first symbol and
    its candles as drawn ``[start, open, high, low, close]``."""
    status = browser.find_element(By.ID, "candle-status")

    def shown() -> int:
        return int(status.get_attribute("data-count") or 0)

    eventually(lambda: shown() >= 5, 90, "five 1-second candles on the page")
    first = shown()
    eventually(lambda: shown() > first + 2, 30, "new candles as their seconds close")
    symbol = status.get_attribute("data-symbol")
    drawn = browser.execute_script(
        "const t = document.getElementById('candle-chart').data[0];"
        "return t.x.map((x, i) => [x, t.open[i], t.high[i], t.low[i], t.close[i]]);"
    )
    other = next(s for s in SYMBOLS if s != symbol)
    browser.execute_script(
        f"const s = document.getElementById('candle-symbol');"
        f"s.value = '{other}'; s.dispatchEvent(new Event('change'));"
    )
    eventually(
        lambda: status.get_attribute("data-symbol") == other and shown() >= 3,
        30,
        f"the candles of {other}",
    )
    return symbol, drawn


def test_the_dashboard_draws_both_sides_of_the_book_and_they_move(
    browser: webdriver.Chrome, settings: Settings, api: tuple[ServiceProcess, str]
) -> None:
    _, url = api
    market = DepthSimulator(["TTF-GAS", "NBP-GAS"], seed=6, updates_per_tick=2)
    stop = threading.Event()

    def feed() -> None:  # the book's two topics, live: about 60 updates a second
        with BookWriter(settings, snapshot_every=100) as writer:
            while not stop.is_set():
                for tick, updates in market.events(10):
                    writer.write(updates, market.books[tick.symbol])
                writer.flush()
                time.sleep(0.5)

    feeding = threading.Thread(target=feed, daemon=True)
    feeding.start()
    try:
        browser.get(url)

        def book_seq() -> int:
            text = browser.find_element(By.ID, "book-status").get_attribute("data-seq")
            return int(text or 0)

        eventually(lambda: book_seq() > 0, 60, "a book on the page")
        first = book_seq()
        eventually(lambda: book_seq() > first, 30, "the book to move")
        sides = browser.execute_script(
            "return document.getElementById('depth-chart').data"
            ".map((t) => [t.name, t.x.length, t.y[t.y.length - 1]]);"
        )
        assert [name for name, _, _ in sides] == ["bids", "asks"]
        assert all(points >= 5 and total > 0 for _, points, total in sides), sides
        # The ladder: asks above bids, the best ask above the best bid, and the bid below it.
        ladder = browser.execute_script(
            "return [...document.querySelectorAll('#ladder tbody tr')]"
            ".map((r) => [r.dataset.side, parseFloat(r.children[1].textContent)]);"
        )
        kinds = [kind for kind, _ in ladder]
        assert kinds == sorted(kinds) and {"ask", "bid"} == set(kinds), kinds  # asks, then bids
        prices = [price for _, price in ladder]
        assert prices == sorted(prices, reverse=True)  # one price column, highest first
        # Another symbol: chosen in the list, its book replaces the first.
        browser.execute_script(
            "const s = document.getElementById('book-symbol');"
            "s.value = 'TTF-GAS'; s.dispatchEvent(new Event('change'));"
        )
        status = browser.find_element(By.ID, "book-status")
        eventually(lambda: status.get_attribute("data-symbol") == "TTF-GAS", 30, "the TTF-GAS book")
        chart = browser.execute_script("return document.getElementById('depth-chart').data;")
        assert all(len(side["x"]) >= 5 for side in chart)
    finally:
        stop.set()
        feeding.join(10)
    # No script error, and no failed request of the book's (this test runs no hot store, so
    # the page's quotes answer 503, as they should).
    errors = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and (entry["source"] != "network" or "/book" in entry["message"])
    ]
    assert errors == []
