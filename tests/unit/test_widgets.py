"""The simulator's sliders and the live chart, driven as a learner's clicks would drive them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from threading import Event

import pytest

from orderbook_kit.lessons.plots import LiveChart, price_figure
from orderbook_kit.lessons.widgets import INTERVALS_S, VOLATILITIES, SimulatorControls
from orderbook_kit.market.frames import simulated_frame
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from tests.conftest import wait_for

START = datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_the_sliders_offer_round_values_and_the_preview_uses_exactly_what_they_show() -> None:
    controls = SimulatorControls.create()
    for slider in (controls.interval, controls.volatility):
        for label, value in slider.options:
            assert label == f"{value:g}" and len(label) <= 6, label  # 0.05, never 0.0501187
    controls.interval.value = 0.2
    controls.volatility.value = 0.005
    title = controls.preview.layout.title.text
    assert "every 0.2 s, volatility 0.005/sqrt(s)" in title
    assert set(INTERVALS_S) <= {v for _, v in controls.interval.options}
    assert set(VOLATILITIES) <= {v for _, v in controls.volatility.options}


def test_a_setting_that_is_not_round_keeps_its_exact_value() -> None:
    controls = SimulatorControls.create(interval_s=0.03, volatility=0.0025)
    assert (controls.interval.value, controls.volatility.value) == (0.03, 0.0025)


def test_interval_and_volatility_retune_the_live_simulator_symbol_and_seed_do_not() -> None:
    live = OrderbookSimulator("TTF-GAS", seed=1)
    controls = SimulatorControls.create(simulator=live)
    controls.interval.value = 0.5
    controls.volatility.value = 0.01
    controls.symbol.value = "NBP-GAS"
    controls.seed.value = 7
    assert (live.interval_s, live.volatility, live.symbols) == (0.5, 0.01, ["TTF-GAS"])
    assert "NBP-GAS" in controls.preview.layout.title.text


def fast_ticks(count: int) -> Iterator[Tick]:
    return OrderbookSimulator(["TTF-GAS", "NBP-GAS"], seed=2).ticks(count, start_time=START)


def test_the_live_chart_redraws_at_most_ten_times_a_second_and_shows_the_last_tick() -> None:
    chart = LiveChart(lambda stop: fast_ticks(20_000), symbol="TTF-GAS", window=50)
    started = time.monotonic()
    chart.start()
    wait_for(lambda: not chart.running, 60, "the chart to show every tick")
    took = time.monotonic() - started
    assert chart.error is None
    assert chart.received == 10_000  # only TTF-GAS, the other half filtered out
    assert chart.redraws <= took * 10 + 2, f"{chart.redraws} redraws in {took:.2f} s"
    bid = chart.figure.data[0]
    assert len(bid.y) == 50
    last = [t for t in fast_ticks(20_000) if t.symbol == "TTF-GAS"][-1]
    assert bid.y[-1] == last.bid


def test_stop_and_start_return_at_once_and_an_endless_stream_really_stops() -> None:
    def endless(stop: Event) -> Iterator[Tick]:
        return OrderbookSimulator("TTF-GAS").stream(stop=stop)

    chart = LiveChart(endless, symbol="TTF-GAS")
    chart.start()
    wait_for(lambda: chart.received > 3, 10, "ticks to arrive")
    chart.stop()
    wait_for(lambda: not chart.running, 5, "the chart's thread to end after stop()")
    shown = chart.received
    chart.start()  # a second start streams again
    wait_for(lambda: chart.received > shown, 10, "ticks after a restart")
    chart.stop()
    wait_for(lambda: not chart.running, 5, "the chart's thread to end")


def test_an_error_in_the_source_is_kept_for_the_learner() -> None:
    def broken(stop: Event) -> Iterator[Tick]:
        yield from fast_ticks(3)
        raise RuntimeError("feed went away")

    chart = LiveChart(broken)
    chart.start()
    wait_for(lambda: not chart.running, 10, "the chart to stop")
    assert isinstance(chart.error, RuntimeError) and chart.received == 3


@pytest.mark.parametrize("symbols", [["TTF-GAS", "NBP-GAS"], ["TTF-GAS", "NBP-GAS", "EUA-CO2"]])
def test_each_symbol_gets_its_own_price_axis(symbols: list[str]) -> None:
    # TTF (about 35) and NBP (about 85) on one axis would both look flat.
    frame = simulated_frame(OrderbookSimulator(symbols).ticks(60, start_time=START))
    figure = price_figure(frame)
    axes = {trace.yaxis for trace in figure.data}
    assert len(axes) == len(symbols)
    for symbol in symbols:
        assert len({t.yaxis for t in figure.data if t.name.startswith(symbol)}) == 1


def test_the_status_line_follows_the_chart_while_it_runs_and_after() -> None:
    # It once said "running; 1 ticks shown" under a chart of 100 ticks, for good.
    release = Event()

    def paced(stop: Event) -> Iterator[Tick]:
        ticks = list(fast_ticks(100))
        yield from ticks[:60]
        release.wait(10)  # hold the stream here while the test reads the status
        yield from ticks[60:]

    chart = LiveChart(paced, max_redraws_per_s=1000)
    box = chart.controls()
    status = box.children[0].children[2]
    chart.start()
    wait_for(lambda: chart.received == 60, 10, "the first 60 ticks")
    wait_for(lambda: status.value == "running; 60 ticks shown", 10, "the status to follow")
    release.set()
    wait_for(lambda: not chart.running, 10, "the stream to end")
    assert status.value == chart.status == "stopped; 100 ticks shown"


def test_the_status_line_says_why_a_chart_failed() -> None:
    def broken(stop: Event) -> Iterator[Tick]:
        yield from fast_ticks(3)
        raise RuntimeError("feed went away")

    chart = LiveChart(broken)
    status = chart.controls().children[0].children[2]
    chart.start()
    wait_for(lambda: not chart.running, 10, "the chart to stop")
    assert status.value == "failed: RuntimeError: feed went away; 3 ticks shown"
