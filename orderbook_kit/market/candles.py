"""Candles and spread statistics by event time: what the candles service computes, as pure code.

A window is ``[start, end)`` in milliseconds since 1970, aligned to its length (a minute's
windows start on the minute). Each holds one candle per symbol: the first, highest, lowest and
last mid, the number of ticks, and the first and last seq (so a reader can tell which ticks made
it). Spread statistics are kept the same way: count, mean, lowest and highest spread, and the mean
in basis points of the mid.

Only the one-second windows see ticks (:func:`start_second`, :func:`add_to_second`: a candle and
the spread statistics of each symbol). The longer windows are *rolled up* from the seconds as each
second closes (:func:`roll_candles`, :func:`roll_spreads`): a minute's candle is its seconds'
candles folded, in the order of their windows, so the three topics always agree with each other,
and a tick costs one window update instead of seven. :func:`closed_windows` calls the same
functions the same way over a partition's ticks in batch: the reference the tests compare the
stream with, value for value (floats included, since the same operations run in the same order).

A second closes when its partition's clock - the newest event time seen on it - passes its end by
the grace period; a tick whose second already closed is *late*: it goes into no window at all, and
is counted and set aside. One clock per partition (not per symbol) is what makes a feed handler's
held-back ticks late once the other symbols have moved on, and what closes a quiet symbol's
windows while its partition is busy. A minute closes with the first second after it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, NamedTuple

from pydantic import ConfigDict, TypeAdapter, ValidationError

from orderbook_kit.market.decoding import clip
from orderbook_kit.market.tick import Tick

__all__ = [
    "CANDLE_WINDOWS",
    "EPOCH",
    "SPREAD_WINDOW",
    "Candle",
    "CandleWindow",
    "ClosedWindows",
    "LateTick",
    "SpreadStats",
    "WindowTick",
    "add_to_candles",
    "add_to_second",
    "closed_windows",
    "decode_candle",
    "millis",
    "roll_candles",
    "roll_spreads",
    "start_candles",
    "start_second",
    "window_starts",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A candle is about 200 bytes of JSON; a record much larger is not read.
MAX_CANDLE_BYTES = 4096
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class CandleWindow:
    """A window's shape: ``name`` (its state store's name and its topics' suffix), its length and
    its step (a tumbling window steps by its length; a hopping one by less, so windows overlap)."""

    name: str
    length_ms: int
    step_ms: int

    @property
    def tumbling(self) -> bool:
        return self.step_ms == self.length_ms


# OHLC candles of the mid: one-second and one-minute tumbling windows.
CANDLE_WINDOWS = (
    CandleWindow("candles_1s", 1_000, 1_000),
    CandleWindow("candles_1m", 60_000, 60_000),
)
# Spread statistics over the last five minutes, once a minute.
SPREAD_WINDOW = CandleWindow("spreads_5m", 300_000, 60_000)


def millis(moment: datetime) -> int:
    """``moment`` in whole milliseconds since 1970 (floored, so 12:00:00.9995 is in 12:00:00's
    second); negative before 1970. Exact for every datetime, years 1 to 9999."""
    return (moment - EPOCH) // _MS


def window_starts(time_ms: int, window: CandleWindow) -> range:
    """The starts of the windows ``time_ms`` falls in, oldest first (one for a tumbling window,
    length/step for a hopping one)."""
    last = time_ms - time_ms % window.step_ms
    first = last - window.length_ms + window.step_ms
    # None start before 1970: the engine keeps window bounds as unsigned integers.
    return range(max(first, 0), last + 1, window.step_ms)


class WindowTick(NamedTuple):
    """What the windows need of a tick: its symbol, seq, mid, spread and event time (ms). A
    tuple, since the engine copies it for each window (by pickling it)."""

    symbol: str
    seq: int
    mid: float
    spread: float
    time_ms: int

    @classmethod
    def of(cls, tick: Tick) -> WindowTick:
        return cls(tick.symbol, tick.seq, tick.mid, tick.spread, millis(tick.event_time))


# A window's value: symbol -> its candle as a list [open, high, low, close, ticks, first seq,
# last seq] (a list: it goes to the engine's state store and changelog as JSON).
Candles = dict[str, list[float | int]]
# symbol -> [ticks, mean spread, lowest, highest, mean spread in basis points of the mid]
Spreads = dict[str, list[float | int]]
# A second's value: symbol -> its candle and its spread statistics in one list, [open, high, low,
# close, ticks, first seq, last seq, mean spread, lowest, highest, mean spread in bps].
Seconds = dict[str, list[float | int]]


def start_candles(tick: WindowTick) -> Candles:
    """A running candle's first tick (the service's ``--live`` minute)."""
    return {tick.symbol: [tick.mid, tick.mid, tick.mid, tick.mid, 1, tick.seq, tick.seq]}


def add_to_candles(candles: Candles, tick: WindowTick) -> Candles:
    """``tick`` folded into a running candle of its symbol."""
    candle = candles.get(tick.symbol)
    if candle is None:
        candles[tick.symbol] = [tick.mid, tick.mid, tick.mid, tick.mid, 1, tick.seq, tick.seq]
        return candles
    _add_mid(candle, tick)
    return candles


def _add_mid(candle: list[float | int], tick: WindowTick) -> None:
    mid = tick.mid
    if mid > candle[1]:
        candle[1] = mid
    if mid < candle[2]:
        candle[2] = mid
    candle[3] = mid
    candle[4] += 1
    candle[6] = tick.seq


def _bps(tick: WindowTick) -> float:
    # The spread in basis points of the mid; finite for every valid tick (mid > 0, and a spread
    # near float's maximum over a mid near its minimum is capped, not inf).
    ratio = tick.spread / tick.mid * 10_000
    return ratio if math.isfinite(ratio) else 1.7976931348623157e308


def _first(tick: WindowTick) -> list[float | int]:
    mid, spread = tick.mid, tick.spread
    return [mid, mid, mid, mid, 1, tick.seq, tick.seq, spread, spread, spread, _bps(tick)]


def start_second(tick: WindowTick) -> Seconds:
    """A second's first tick."""
    return {tick.symbol: _first(tick)}


def add_to_second(seconds: Seconds, tick: WindowTick) -> Seconds:
    """``tick`` folded into its second: its symbol's candle and spread statistics."""
    second = seconds.get(tick.symbol)
    if second is None:
        seconds[tick.symbol] = _first(tick)
        return seconds
    _add_mid(second, tick)
    count = second[4]
    # Running means (mean += (x - mean) / n): they never overflow, where a sum of spreads near
    # float's maximum would become inf.
    spread = tick.spread
    second[7] += (spread - second[7]) / count
    if spread < second[8]:
        second[8] = spread
    if spread > second[9]:
        second[9] = spread
    second[10] += (_bps(tick) - second[10]) / count
    return seconds


def roll_candles(candles: Candles, seconds: Seconds) -> Candles:
    """A closed second's candles folded into a longer window's (``{}`` for its first second):
    the first open, the highest high, the lowest low, the last close, the ticks added up."""
    for symbol, second in seconds.items():
        candle = candles.get(symbol)
        if candle is None:
            candles[symbol] = second[:7]
            continue
        if second[1] > candle[1]:
            candle[1] = second[1]
        if second[2] < candle[2]:
            candle[2] = second[2]
        candle[3] = second[3]
        candle[4] += second[4]
        candle[6] = second[6]
    return candles


def roll_spreads(spreads: Spreads, seconds: Seconds) -> Spreads:
    """A closed second's spread statistics folded into a longer window's (``{}`` for its first
    second): means weighted by their ticks, lowest of the lows, highest of the highs."""
    for symbol, second in seconds.items():
        count = second[4]
        stats = spreads.get(symbol)
        if stats is None:
            spreads[symbol] = [count, *second[7:11]]
            continue
        total = stats[0] + count
        weight = count / total
        stats[0] = total
        # mean + (other - mean) * weight: between the two means, so never beyond float's range.
        stats[1] += (second[7] - stats[1]) * weight
        if second[8] < stats[2]:
            stats[2] = second[8]
        if second[9] > stats[3]:
            stats[3] = second[9]
        stats[4] += (second[10] - stats[4]) * weight
    return spreads


def _time(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class Candle:
    """One symbol's OHLC candle of the mid over ``[start, end)``."""

    # Read back strictly (decode_candle): JSON "3" is not a tick count.
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(strict=True)

    symbol: str
    start: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    ticks: int
    first_seq: int
    last_seq: int

    @classmethod
    def of(cls, symbol: str, start_ms: int, end_ms: int, value: list[float | int]) -> Candle:
        """The candle of a window's folded ``value`` (a second's carries its spread statistics
        after the candle's seven numbers)."""
        open_, high, low, close, ticks, first_seq, last_seq = value[:7]
        return cls(
            symbol,
            _time(start_ms),
            _time(end_ms),
            float(open_),
            float(high),
            float(low),
            float(close),
            int(ticks),
            int(first_seq),
            int(last_seq),
        )

    def to_json(self) -> bytes:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Candle:
        fields = json.loads(data)
        fields["start"] = datetime.fromisoformat(fields["start"])
        fields["end"] = datetime.fromisoformat(fields["end"])
        return cls(**fields)


@dataclass(frozen=True)
class SpreadStats:
    """One symbol's bid-ask spread over ``[start, end)``: count, mean, lowest, highest, and the
    mean in basis points of the mid."""

    symbol: str
    start: datetime
    end: datetime
    ticks: int
    mean_spread: float
    min_spread: float
    max_spread: float
    mean_spread_bps: float

    @classmethod
    def of(cls, symbol: str, start_ms: int, end_ms: int, value: list[float | int]) -> SpreadStats:
        ticks, mean, low, high, bps = value
        return cls(
            symbol,
            _time(start_ms),
            _time(end_ms),
            int(ticks),
            float(mean),
            float(low),
            float(high),
            float(bps),
        )

    def to_json(self) -> bytes:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> SpreadStats:
        fields = json.loads(data)
        fields["start"] = datetime.fromisoformat(fields["start"])
        fields["end"] = datetime.fromisoformat(fields["end"])
        return cls(**fields)


def _to_json(record: Candle | SpreadStats) -> bytes:
    # Field by field: dataclasses.asdict deep-copies every value, a quarter of the cost of a
    # closed window in the service.
    fields = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    fields["start"] = record.start.isoformat().replace("+00:00", "Z")
    fields["end"] = record.end.isoformat().replace("+00:00", "Z")
    # repr-exact floats (json writes the shortest text that reads back the same float).
    return json.dumps(fields, separators=(",", ":"), allow_nan=False).encode()


@functools.cache
def _candle_adapter() -> TypeAdapter[Candle]:
    return TypeAdapter(Candle)


def decode_candle(value: bytes | None) -> Candle | str:
    """The candle in a record of a candle topic, or why it is not one (a reader's check: the
    topic is written by the candles service, but anyone with access can write to it)."""
    if value is None or len(value) > MAX_CANDLE_BYTES:
        return "empty or far too large for a candle"
    try:
        candle = _candle_adapter().validate_json(value)
    except ValidationError as exc:
        return clip(f"not a candle: {exc.errors(include_url=False)[0]['msg']}")
    prices = (candle.open, candle.high, candle.low, candle.close)
    if not all(math.isfinite(p) and p > 0 for p in prices):
        return "not a candle: prices must be finite and positive"
    if (
        not candle.low
        <= min(candle.open, candle.close)
        <= max(candle.open, candle.close)
        <= (candle.high)
    ):
        return "not a candle: open and close must lie between low and high"
    if candle.ticks < 1 or candle.first_seq > candle.last_seq or candle.end <= candle.start:
        return "not a candle: it needs a tick, seqs in order and an end after its start"
    return candle


@dataclass(frozen=True)
class LateTick:
    """A tick that came after its window closed: which window, and by how much it missed it."""

    tick: WindowTick
    window: str
    start_ms: int
    late_by_ms: int


@dataclass
class ClosedWindows:
    """What a partition's ticks give, windows closed in the order they close: candles per
    window name, and the ticks that came too late for one of their windows."""

    candles: dict[str, list[Candle]]
    spreads: list[SpreadStats]
    late: list[LateTick]


def closed_windows(ticks: Iterable[WindowTick], *, grace_ms: int) -> ClosedWindows:
    """The windows ``ticks`` (one partition's, in offset order) close, and the late ticks: what
    the candles service emits for them, computed in batch. Windows still open at the end are not
    in the answer, as they are not on the candle topics: a second until the partition's clock has
    passed its end by ``grace_ms``, a longer window until a second after it has closed."""
    second_window, minute_window = CANDLE_WINDOWS
    result = ClosedWindows({window.name: [] for window in CANDLE_WINDOWS}, [], [])
    seconds: dict[int, Seconds] = {}
    minutes: dict[int, Candles] = {}
    spreads: dict[int, Spreads] = {}
    clock: int | None = None
    for tick in ticks:
        clock = tick.time_ms if clock is None else max(clock, tick.time_ms)
        closes_before = clock - grace_ms  # seconds ending at or before this are closed
        start = tick.time_ms - tick.time_ms % second_window.length_ms
        if start + second_window.length_ms <= closes_before:
            late_by = closes_before - tick.time_ms
            result.late.append(LateTick(tick, second_window.name, start, late_by))
        else:
            current = seconds.get(start)
            seconds[start] = start_second(tick) if current is None else add_to_second(current, tick)
        for closed in sorted(s for s in seconds if s + second_window.length_ms <= closes_before):
            value = seconds.pop(closed)
            end = closed + second_window.length_ms
            result.candles[second_window.name].extend(
                Candle.of(symbol, closed, end, value[symbol]) for symbol in sorted(value)
            )
            # The longer windows, by the seconds' own clock (the start of the newest second):
            # a window ends once a second after it has closed.
            for begun in window_starts(closed, minute_window):
                minutes[begun] = roll_candles(minutes.get(begun, {}), value)
            for begun in window_starts(closed, SPREAD_WINDOW):
                spreads[begun] = roll_spreads(spreads.get(begun, {}), value)
            for begun in sorted(m for m in minutes if m + minute_window.length_ms <= closed):
                folded = minutes.pop(begun)
                result.candles[minute_window.name].extend(
                    Candle.of(symbol, begun, begun + minute_window.length_ms, folded[symbol])
                    for symbol in sorted(folded)
                )
            for begun in sorted(m for m in spreads if m + SPREAD_WINDOW.length_ms <= closed):
                folded = spreads.pop(begun)
                result.spreads.extend(
                    SpreadStats.of(symbol, begun, begun + SPREAD_WINDOW.length_ms, folded[symbol])
                    for symbol in sorted(folded)
                )
    return result
