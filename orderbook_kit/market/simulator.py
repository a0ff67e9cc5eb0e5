"""A seeded random-walk simulator of a top-of-book market (by default the Dutch TTF gas market).

The mid price follows a geometric random walk whose volatility is quoted *per square-root
second*: a step of ``dt`` seconds moves the log-price by ``volatility * sqrt(dt) * N(0, 1)``,
minus ``volatility**2 * dt / 2`` so that the expected price does not drift. So a tick every
0.05 s and a tick every 1 s describe the same market, just sampled more or less often.
Bid and ask sit on the instrument's price grid, around the mid, never crossed; the spread and the
sizes vary from tick to tick. The same seed (and start time) gives the same ticks.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orderbook_kit.market.tick import Tick, utc_now
from orderbook_kit.settings import defaults

__all__ = [
    "DEFAULT_SYMBOL",
    "KNOWN_INSTRUMENTS",
    "Instrument",
    "OrderbookSimulator",
    "instrument_for",
]

DEFAULT_SYMBOL = defaults.SYMBOL


@dataclass(frozen=True)
class Instrument:
    symbol: str
    start_price: float
    tick_size: float
    typical_size: float = 50.0  # lots; sizes are log-normal around this

    @property
    def decimals(self) -> int:
        """Digits of the tick size: grid prices print as 35.125, not 35.124999999."""
        return max(0, -math.floor(math.log10(self.tick_size)) + 1)

    def on_grid(self, ticks: int) -> float:
        return round(ticks * self.tick_size, self.decimals)


# A few plausible European energy instruments, so several symbols can share one topic.
KNOWN_INSTRUMENTS = {
    "TTF-GAS": Instrument("TTF-GAS", 35.0, 0.005),
    "NBP-GAS": Instrument("NBP-GAS", 85.0, 0.01),
    "THE-GAS": Instrument("THE-GAS", 36.5, 0.005),
    "EUA-CO2": Instrument("EUA-CO2", 70.0, 0.01),
}


def instrument_for(symbol: str) -> Instrument:
    return KNOWN_INSTRUMENTS.get(symbol, Instrument(symbol, 50.0, 0.01))


@dataclass
class _Book:
    instrument: Instrument
    log_mid: float
    seq: int = 0


class OrderbookSimulator:
    """Top-of-book ticks for one or more symbols. No I/O: it only computes numbers.

    ``interval_s`` and ``volatility`` may be changed while a stream runs (the sliders do that).
    """

    def __init__(
        self,
        symbols: str | Sequence[str] = DEFAULT_SYMBOL,
        *,
        interval_s: float = defaults.TICK_INTERVAL_S,
        volatility: float = defaults.VOLATILITY,
        seed: int | None = defaults.SEED,
        mean_spread_ticks: float = 2.0,
    ) -> None:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"symbols must be distinct and at least one, got {names!r}")
        self.interval_s = interval_s
        self.volatility = volatility
        self.mean_spread_ticks = mean_spread_ticks
        self._random = random.Random(seed)
        self._books = [
            _Book(instrument_for(s), math.log(instrument_for(s).start_price)) for s in names
        ]

    @property
    def symbols(self) -> list[str]:
        return [book.instrument.symbol for book in self._books]

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @interval_s.setter
    def interval_s(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"interval_s must be > 0 seconds, got {value}")
        self._interval_s = float(value)

    @property
    def volatility(self) -> float:
        return self._volatility

    @volatility.setter
    def volatility(self, value: float) -> None:
        if not value >= 0:
            raise ValueError(f"volatility must be >= 0 (per sqrt second), got {value}")
        self._volatility = float(value)

    def continue_from(self, last: Mapping[str, Tick]) -> None:
        """Go on from each symbol's ``last`` tick (a restarted feed): its next tick has the next
        seq, and the walk starts again from its mid. Symbols not in ``last`` are left as they are.
        """
        for book in self._books:
            tick = last.get(book.instrument.symbol)
            if tick is not None:
                book.seq = tick.seq + 1
                book.log_mid = math.log(tick.mid)

    def step(self, event_time: datetime, dt_s: float) -> list[Tick]:
        """Advance every symbol by ``dt_s`` seconds; one tick per symbol, stamped ``event_time``."""
        return [self._step_book(book, event_time, dt_s) for book in self._books]

    def ticks(self, count: int, *, start_time: datetime | None = None) -> Iterator[Tick]:
        """``count`` ticks as fast as possible, in simulated time (for tests and benchmarks).

        Event times start at ``start_time`` and advance by ``interval_s``. By default they end
        now: a stretch of market that has just happened, so no tick is stamped in the future of
        the moment it is published (the quality gate rejects those as ``time_ahead``).
        """
        if count < 0:
            raise ValueError(f"count must be 0 or more, got {count}")
        if start_time is None:
            steps = -(-count // len(self._books))  # every step makes one tick per symbol
            start_time = utc_now() - timedelta(seconds=self.interval_s * max(steps - 1, 0))
        event_time = start_time
        produced = 0
        while produced < count:
            for tick in self.step(event_time, self.interval_s):
                if produced == count:
                    return
                produced += 1
                yield tick
            event_time += timedelta(seconds=self.interval_s)

    def stream(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[Tick]:
        """Ticks in real time, one step every ``interval_s``, stamped with the wall clock.

        Ends after ``count`` ticks, after ``duration_s`` seconds, or when ``stop`` is set; with
        none of these it runs until the caller stops iterating.
        """
        if count is not None and count < 0:
            raise ValueError(f"count must be 0 or more, got {count}")
        deadline = None if duration_s is None else time.monotonic() + duration_s
        produced = 0
        last = time.monotonic()
        next_at = last
        while True:
            now = time.monotonic()
            if (
                (deadline is not None and now >= deadline)
                or (stop is not None and stop.is_set())
                or (count is not None and produced >= count)
            ):
                return
            if now < next_at:
                wait = next_at - now if deadline is None else min(next_at, deadline) - now
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)
                continue
            # The walk advances by the real time elapsed, so a slow consumer of this generator
            # does not slow the market down.
            dt, last = now - last if produced else self.interval_s, now
            for tick in self.step(utc_now(), max(dt, 1e-6)):
                yield tick
                produced += 1
                if count is not None and produced >= count:
                    return
            next_at = max(next_at + self.interval_s, now)

    def _step_book(self, book: _Book, event_time: datetime, dt_s: float) -> Tick:
        rand = self._random
        sigma = self.volatility
        book.log_mid += sigma * math.sqrt(dt_s) * rand.gauss(0.0, 1.0) - 0.5 * sigma**2 * dt_s
        instrument = book.instrument
        mid_in_ticks = math.exp(book.log_mid) / instrument.tick_size
        # Spread in ticks: at least one, usually around the mean, now and then wider.
        spread_ticks = 1 + int(rand.expovariate(1 / max(self.mean_spread_ticks - 1, 1e-9)))
        bid_ticks = math.floor(mid_in_ticks - spread_ticks / 2)
        bid_ticks = max(bid_ticks, 1)  # prices stay positive even after a long fall
        ask_ticks = bid_ticks + spread_ticks
        tick = Tick(
            symbol=instrument.symbol,
            seq=book.seq,
            bid=instrument.on_grid(bid_ticks),
            ask=instrument.on_grid(ask_ticks),
            bid_size=self._size(instrument),
            ask_size=self._size(instrument),
            event_time=event_time,
        )
        book.seq += 1
        return tick

    def _size(self, instrument: Instrument) -> float:
        return float(max(1, round(instrument.typical_size * self._random.lognormvariate(0, 0.6))))
