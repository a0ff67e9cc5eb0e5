"""Candles without Kafka: the folding the engine runs (and the batch reference built from it)
against a plain group-by written here, windows by event time, late ticks, the held-back feed,
hostile bytes and values at the ends of their ranges."""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from orderbook_kit.candles.application import CandleCounts
from orderbook_kit.candles.arrivals import arrival_of
from orderbook_kit.candles.metrics import CandlesMetrics
from orderbook_kit.market.candles import (
    CANDLE_WINDOWS,
    SPREAD_WINDOW,
    WindowTick,
    closed_windows,
    millis,
    window_starts,
)
from orderbook_kit.market.feed_delays import hold_back
from orderbook_kit.market.reasons import CandleReason, Reason
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


def ticks_of(count: int, seed: int = 1, interval_s: float = 0.25) -> list[Tick]:
    simulator = OrderbookSimulator(SYMBOLS, interval_s=interval_s, seed=seed)
    return list(simulator.ticks(count, start_time=START))


def grouped_candles(ticks: list[Tick], seconds: int) -> dict[tuple[str, int], tuple]:
    """OHLC of the mid per (symbol, window start ms), by a plain group-by (the oracle)."""
    groups: dict[tuple[str, int], list[Tick]] = defaultdict(list)
    for tick in ticks:
        start = millis(tick.event_time) // (seconds * 1000) * seconds * 1000
        groups[tick.symbol, start].append(tick)
    return {
        key: (
            group[0].mid,
            max(t.mid for t in group),
            min(t.mid for t in group),
            group[-1].mid,
            len(group),
            group[0].seq,
            group[-1].seq,
        )
        for key, group in groups.items()
    }


@given(seed=st.integers(0, 10_000), grace_ms=st.integers(0, 5_000))
@settings(max_examples=25, deadline=None)
def test_in_order_ticks_give_the_group_by_candles_of_every_closed_window(
    seed: int, grace_ms: int
) -> None:
    ticks = ticks_of(600, seed)
    closed = closed_windows([WindowTick.of(t) for t in ticks], grace_ms=grace_ms)
    assert closed.late == []  # in order: nothing is late, whatever the grace
    clock = max(millis(t.event_time) for t in ticks)
    for window, seconds in zip(CANDLE_WINDOWS, (1, 60), strict=True):
        oracle = grouped_candles(ticks, seconds)
        closed_keys = {k for k in oracle if k[1] + seconds * 1000 <= clock - grace_ms}
        got = {
            (c.symbol, millis(c.start)): (
                c.open,
                c.high,
                c.low,
                c.close,
                c.ticks,
                c.first_seq,
                c.last_seq,
            )
            for c in closed.candles[window.name]
        }
        assert got == {k: oracle[k] for k in closed_keys}


@given(seed=st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_five_minute_spreads_rolled_up_from_seconds_match_a_group_by(seed: int) -> None:
    ticks = ticks_of(3_000, seed, interval_s=0.5)  # about eight minutes: some windows close
    closed = closed_windows([WindowTick.of(t) for t in ticks], grace_ms=0)
    assert closed.spreads
    for stats in closed.spreads:
        inside = [
            t for t in ticks if t.symbol == stats.symbol and stats.start <= t.event_time < stats.end
        ]
        spreads = [t.spread for t in inside]
        assert stats.ticks == len(inside)
        assert (stats.min_spread, stats.max_spread) == (min(spreads), max(spreads))
        assert math.isclose(stats.mean_spread, sum(spreads) / len(spreads), rel_tol=1e-12)
        bps = sum(t.spread / t.mid * 10_000 for t in inside) / len(inside)
        assert math.isclose(stats.mean_spread_bps, bps, rel_tol=1e-12)


def test_a_tick_after_its_window_closed_is_late_and_in_no_candle() -> None:
    ticks = [WindowTick("TTF-GAS", n, 30.0 + n, 0.01, t) for n, t in enumerate([100, 2_600])]
    straggler = WindowTick("NBP-GAS", 0, 50.0, 0.02, 1_900)  # its second ended 600 ms before
    within = WindowTick("NBP-GAS", 1, 51.0, 0.02, 2_100)  # its second is still open
    closed = closed_windows(
        [*ticks, straggler, within, WindowTick("TTF-GAS", 2, 33.0, 0.01, 9_000)], grace_ms=500
    )
    assert [(late.tick, late.window) for late in closed.late] == [(straggler, "candles_1s")]
    seconds = {(c.symbol, millis(c.start)): c.ticks for c in closed.candles["candles_1s"]}
    assert seconds == {("TTF-GAS", 0): 1, ("TTF-GAS", 2_000): 1, ("NBP-GAS", 2_000): 1}
    assert closed.late[0].late_by_ms == 2_600 - 500 - 1_900


def test_windows_start_on_their_length_and_a_hopping_one_covers_five_minutes() -> None:
    assert list(window_starts(61_500, CANDLE_WINDOWS[0])) == [61_000]
    assert list(window_starts(61_500, CANDLE_WINDOWS[1])) == [60_000]
    starts = list(window_starts(400_000, SPREAD_WINDOW))
    assert starts == [120_000, 180_000, 240_000, 300_000, 360_000]
    assert all(s <= 400_000 < s + SPREAD_WINDOW.length_ms for s in starts)
    assert list(window_starts(30_000, SPREAD_WINDOW)) == [0]  # none before 1970


def test_a_held_back_feed_keeps_every_tick_and_each_symbols_order() -> None:
    ticks = ticks_of(300)
    delayed = list(
        hold_back(
            ticks,
            "NBP-GAS",
            held_from=START + timedelta(seconds=5),
            released_at=START + timedelta(seconds=9),
        )
    )
    assert sorted(delayed, key=lambda t: (t.symbol, t.seq)) == sorted(
        ticks, key=lambda t: (t.symbol, t.seq)
    )
    for symbol in SYMBOLS:
        seqs = [t.seq for t in delayed if t.symbol == symbol]
        assert seqs == sorted(seqs)
    first_held = next(
        i
        for i, t in enumerate(delayed)
        if t.symbol == "NBP-GAS" and t.event_time >= START + timedelta(seconds=5)
    )
    before = delayed[first_held - 1]
    assert before.symbol != "NBP-GAS" and before.event_time >= START + timedelta(seconds=9)
    closed = closed_windows([WindowTick.of(t) for t in delayed], grace_ms=1_000)
    assert closed.late and {late.tick.symbol for late in closed.late} == {"NBP-GAS"}


@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
@settings(max_examples=300)
def test_any_bytes_become_an_arrival_never_an_exception(value: bytes) -> None:
    arrival = arrival_of(value)
    assert arrival.tick is not None or arrival.reason is not None


FINITE = st.floats(min_value=5e-324, max_value=sys.float_info.max, allow_nan=False)


@given(
    bid=FINITE,
    spread=FINITE,
    seconds=st.integers(min_value=-62_135_596_800, max_value=int(datetime.now(UTC).timestamp())),
)
@settings(max_examples=300)
def test_ticks_at_the_ends_of_their_ranges_give_finite_json_or_a_reason(
    bid: float, spread: float, seconds: int
) -> None:
    ask = bid + spread
    if not math.isfinite(ask) or ask <= bid:
        return
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    tick = Tick(
        symbol="TTF-GAS", seq=0, bid=bid, ask=ask, bid_size=1.0, ask_size=1.0, event_time=moment
    )
    arrival = arrival_of(tick.to_json())
    if seconds < 0:
        assert arrival.reason == CandleReason.BEFORE_1970
        return
    assert arrival.tick is not None
    first = arrival.tick
    # Another second after it, then a tick 400 s on and one more: every second, minute and
    # five minutes of the first two ticks close, rolled up from their seconds.
    other = WindowTick("NBP-GAS", 1, first.mid, first.spread, first.time_ms + 1_000)
    later = [first._replace(seq=n, time_ms=first.time_ms + 400_000 + n) for n in (2, 2_000)]
    closed = closed_windows([first, other, *later], grace_ms=0)
    assert [c.ticks for c in closed.candles["candles_1s"]] == [1, 1, 1]
    assert sum(c.ticks for c in closed.candles["candles_1m"]) == 2
    hops = len(window_starts(first.time_ms, SPREAD_WINDOW))  # five, fewer just after 1970
    assert sum(s.ticks for s in closed.spreads if s.symbol == "TTF-GAS") == hops
    records = [*closed.candles["candles_1s"], *closed.candles["candles_1m"], *closed.spreads]
    for record in records:
        text = record.to_json()
        assert all(math.isfinite(v) for v in json.loads(text).values() if isinstance(v, float))
        assert type(record).from_json(text) == record


def test_a_tick_from_the_future_is_refused_so_it_cannot_close_every_window() -> None:
    tick = ticks_of(1)[0]
    future = tick.model_copy(update={"event_time": datetime(9999, 12, 31, 23, 59, tzinfo=UTC)})
    assert arrival_of(future.to_json()).reason == CandleReason.TIME_AHEAD
    assert arrival_of(b"{}").reason == Reason.INVALID_SCHEMA
    assert arrival_of(b"x" * 100_000).reason == Reason.TOO_LARGE


def test_the_metrics_export_the_running_totals() -> None:
    metrics = CandlesMetrics()
    counts = CandleCounts()
    counts.windowed = 7
    counts.emitted["candles_1s"] = 3
    counts.late["candles_1s"] = 2
    counts.skipped["late"] = 2
    counts.skipped["not_json"] = 1
    metrics.count(counts)
    text = generate_latest(metrics.registry).decode()
    assert 'orderbook_candles_ticks_total{reason="",route="windowed"} 7.0' in text
    assert 'orderbook_candles_ticks_total{reason="not_json",route="set_aside"} 1.0' in text
    assert 'orderbook_candles_records_total{window="candles_1s"} 3.0' in text
    assert 'orderbook_candles_late_ticks_total{window="candles_1s"} 2.0' in text
    assert 'orderbook_candles_late_ticks_total{window="spreads_5m"} 0.0' in text
    assert "orderbook_candles_state_bytes 0.0" in text
