"""Properties of the simulator, checked over many seeds and settings with Hypothesis."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook_kit.market.simulator import OrderbookSimulator, instrument_for

START = datetime(2026, 1, 1, tzinfo=UTC)
seeds = st.integers(min_value=0, max_value=2**32)
intervals = st.floats(min_value=0.001, max_value=5.0)
volatilities = st.floats(min_value=0.0, max_value=0.05)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, interval=intervals, volatility=volatilities)
def test_book_never_crossed_and_prices_on_the_grid(
    seed: int, interval: float, volatility: float
) -> None:
    simulator = OrderbookSimulator(
        ["TTF-GAS", "NBP-GAS"], interval_s=interval, volatility=volatility, seed=seed
    )
    for tick in simulator.ticks(200, start_time=START):
        assert tick.bid < tick.ask
        step = instrument_for(tick.symbol).tick_size
        for price in (tick.bid, tick.ask):
            assert math.isclose(price / step, round(price / step), abs_tol=1e-6)
        assert tick.bid_size >= 1 and tick.ask_size >= 1


@settings(max_examples=30, deadline=None)
@given(seed=seeds, count=st.integers(min_value=0, max_value=300))
def test_seq_contiguous_per_symbol(seed: int, count: int) -> None:
    symbols = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
    ticks = list(OrderbookSimulator(symbols, seed=seed).ticks(count, start_time=START))
    assert len(ticks) == count
    for symbol in symbols:
        seqs = [t.seq for t in ticks if t.symbol == symbol]
        assert seqs == list(range(len(seqs)))


@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_same_seed_same_ticks(seed: int) -> None:
    first = list(OrderbookSimulator(seed=seed).ticks(100, start_time=START))
    again = list(OrderbookSimulator(seed=seed).ticks(100, start_time=START))
    other = list(OrderbookSimulator(seed=seed + 1).ticks(100, start_time=START))
    assert first == again
    assert first != other


def test_volatility_is_per_square_root_second() -> None:
    # Log-returns measured over one second should have about the same spread whatever the
    # interval: sigma * sqrt(1 s), here 0.01.
    def one_second_log_returns(interval: float) -> list[float]:
        simulator = OrderbookSimulator(
            interval_s=interval, volatility=0.01, seed=1, mean_spread_ticks=1.0
        )
        per_second = round(1 / interval)
        mids = [t.mid for t in simulator.ticks(per_second * 400, start_time=START)]
        seconds = mids[::per_second]
        return [math.log(b / a) for a, b in itertools.pairwise(seconds)]

    fast, slow = one_second_log_returns(0.01), one_second_log_returns(0.5)
    assert statistics.stdev(fast) == pytest.approx(0.01, rel=0.2)
    assert statistics.stdev(slow) == pytest.approx(0.01, rel=0.2)


def test_event_times_advance_by_the_interval() -> None:
    ticks = list(OrderbookSimulator(interval_s=0.25).ticks(5, start_time=START))
    assert [(t.event_time - START).total_seconds() for t in ticks] == [0, 0.25, 0.5, 0.75, 1.0]


def test_spread_varies() -> None:
    spreads = {round(t.spread, 6) for t in OrderbookSimulator().ticks(500, start_time=START)}
    assert len(spreads) > 2


def test_stream_is_paced_and_bounded() -> None:
    simulator = OrderbookSimulator(interval_s=0.02)
    ticks = list(simulator.stream(duration_s=0.5))
    assert 10 <= len(ticks) <= 30  # about 25; generous for a loaded machine
    assert [t.seq for t in ticks] == list(range(len(ticks)))
    assert len(list(simulator.stream(count=7))) == 7


@pytest.mark.parametrize("bad", [{"interval_s": 0}, {"volatility": -0.1}, {"symbols": []}])
def test_bad_settings_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        OrderbookSimulator(**bad)


def test_a_continued_feed_goes_on_from_each_symbols_last_tick() -> None:
    first = OrderbookSimulator(["TTF-GAS", "NBP-GAS"], seed=3)
    sent = list(first.ticks(10))
    last = {tick.symbol: tick for tick in sent}  # the newest of each symbol
    restarted = OrderbookSimulator(["TTF-GAS", "NBP-GAS", "EUA-CO2"], seed=3)
    restarted.continue_from(last)
    following = {tick.symbol: tick for tick in restarted.step(sent[-1].event_time, 1e-6)}
    assert following["TTF-GAS"].seq == last["TTF-GAS"].seq + 1 == 5
    assert following["NBP-GAS"].seq == 5
    assert following["EUA-CO2"].seq == 0  # not in the old feed: a new one
    for symbol in ("TTF-GAS", "NBP-GAS"):  # a microsecond later, the price is where it was
        assert abs(following[symbol].mid / last[symbol].mid - 1) < 0.001
