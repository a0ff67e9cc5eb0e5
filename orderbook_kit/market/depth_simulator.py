"""The book behind the ticks: a seeded depth-of-book market, as snapshots and updates. No I/O.

:class:`DepthSimulator` runs the same random walk as :class:`OrderbookSimulator` - with the same
seed it makes the very same ticks, so lessons 01-12 and their figures stay true - and builds each
symbol's book around them, ``depth`` price levels a side:

- for each tick, one update moves the top of the book to the tick's best bid and ask, with their
  sizes (the levels the best prices moved through are removed, as trades and cancels would), and
  keeps ``depth`` levels a side below and above them, each new level with a random size;
- between ticks, ``updates_per_tick`` updates change the sizes of deeper levels (orders joining
  and cancelling), never the best ones: the top of the book moves only with the ticks.

So after the updates of a tick, the book's best bid and ask *are* the tick's. The depth activity
draws on a random stream of its own: the ticks do not depend on ``depth`` or ``updates_per_tick``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from orderbook_kit.market.book_messages import MAX_CHANGES, BookSnapshot, BookUpdate, LevelChange
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.simulator import DEFAULT_SYMBOL, OrderbookSimulator, instrument_for
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings import defaults

__all__ = ["DEFAULT_DEPTH", "DepthSimulator"]

DEFAULT_DEPTH = 10
# At most this many levels a side: an update that moves both best prices far lists every level
# of both sides twice (the old ones removed, the new ones added).
MAX_SIMULATED_DEPTH = MAX_CHANGES // 4


class DepthSimulator:
    """Ticks and the book updates behind them, for one or more symbols (see the module)."""

    def __init__(
        self,
        symbols: str | Sequence[str] = DEFAULT_SYMBOL,
        *,
        depth: int = DEFAULT_DEPTH,
        updates_per_tick: int = 0,
        interval_s: float = defaults.TICK_INTERVAL_S,
        volatility: float = defaults.VOLATILITY,
        seed: int | None = defaults.SEED,
    ) -> None:
        if not 1 <= depth <= MAX_SIMULATED_DEPTH:
            raise ValueError(f"depth must be 1 to {MAX_SIMULATED_DEPTH} levels, got {depth}")
        if updates_per_tick < 0:
            raise ValueError(f"updates_per_tick must be 0 or more, got {updates_per_tick}")
        self.depth = depth
        self.updates_per_tick = updates_per_tick
        self.ticks = OrderbookSimulator(
            symbols, interval_s=interval_s, volatility=volatility, seed=seed
        )
        # Its own stream, so the ticks are the same whatever the depth activity draws.
        self._random = random.Random(f"depth-{seed}" if seed is not None else None)
        self.books = {
            symbol: OrderBook(symbol, instrument_for(symbol).tick_size)
            for symbol in self.ticks.symbols
        }

    @property
    def symbols(self) -> list[str]:
        return self.ticks.symbols

    def events(
        self, count: int, *, start_time: datetime | None = None
    ) -> Iterator[tuple[Tick, list[BookUpdate]]]:
        """``count`` ticks in simulated time (as :meth:`OrderbookSimulator.ticks`), each with
        the updates that lead to it: the deeper activity first, then the tick's own."""
        for tick in self.ticks.ticks(count, start_time=start_time):
            yield tick, self.updates_for(tick)

    def updates(self, count: int, *, start_time: datetime | None = None) -> Iterator[BookUpdate]:
        """Only the updates of :meth:`events`."""
        for _, updates in self.events(count, start_time=start_time):
            yield from updates

    def exchange_feed(
        self, count: int, *, snapshot_every: int, start_time: datetime | None = None
    ) -> Iterator[BookUpdate | BookSnapshot]:
        """What an exchange sends a feed handler: the updates of ``count`` ticks, and after each
        tick that brings a symbol ``snapshot_every`` updates past its last snapshot, a snapshot
        of its true book (the exchange's recovery feed: it knows no Kafka offset, -1)."""
        return self.exchange_feed_of(
            self.ticks.ticks(count, start_time=start_time), snapshot_every=snapshot_every
        )

    def exchange_feed_of(
        self, ticks: Iterable[Tick], *, snapshot_every: int
    ) -> Iterator[BookUpdate | BookSnapshot]:
        """:meth:`exchange_feed` around ``ticks`` of this simulator's own walk (e.g. its paced
        ``self.ticks.stream(...)``)."""
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be 1 or more, got {snapshot_every}")
        since: dict[str, int] = dict.fromkeys(self.symbols, 0)
        for tick in ticks:
            updates = self.updates_for(tick)
            yield from updates
            since[tick.symbol] += len(updates)
            if since[tick.symbol] >= snapshot_every:
                since[tick.symbol] = 0
                yield self.books[tick.symbol].snapshot(tick.event_time)

    def updates_for(self, tick: Tick) -> list[BookUpdate]:
        """The updates that lead to ``tick``, applied to the simulator's own (true) books."""
        book = self.books[tick.symbol]
        updates = []
        if book.bids and book.asks:
            for _ in range(self.updates_per_tick):
                changes = self._deeper_changes(book)
                if changes:
                    updates.append(self._apply(book, changes, tick.event_time))
        updates.append(self._apply(book, self._top_changes(book, tick), tick.event_time))
        return updates

    def _apply(self, book: OrderBook, changes: list[LevelChange], at: datetime) -> BookUpdate:
        book.apply_changes(changes)
        book.seq += 1
        checksum = book.checksum()
        # Valid by construction (the tests read every kind back through validation): built
        # without validating again, about five times faster.
        return BookUpdate.model_construct(
            symbol=book.symbol, seq=book.seq, changes=changes, checksum=checksum, event_time=at
        )

    def _top_changes(self, book: OrderBook, tick: Tick) -> list[LevelChange]:
        """The book's best bid and ask become the tick's (both always listed), with ``depth``
        levels a side behind them: levels kept where they were, new ones with random sizes."""
        best_bid, best_ask = book.ticks(tick.bid), book.ticks(tick.ask)
        bids = {best_bid: int(tick.bid_size)}
        asks = {best_ask: int(tick.ask_size)}
        for step in range(1, self.depth):
            behind = ((bids, book.bids, best_bid - step), (asks, book.asks, best_ask + step))
            for wanted, held, price in behind:
                if price > 0:
                    wanted[price] = held.get(price) or self._size(book.symbol)
        return _as_changes(book, "bid", bids, best_bid) + _as_changes(book, "ask", asks, best_ask)

    def _deeper_changes(self, book: OrderBook) -> list[LevelChange]:
        """A new size at one or two levels behind the best: orders joining or cancelling."""
        rand = self._random
        changed: dict[tuple[str, int], int] = {}
        for _ in range(1 if rand.random() < 0.7 else 2):
            side = "bid" if rand.random() < 0.5 else "ask"
            levels = book.bids if side == "bid" else book.asks
            # Best first, as the book keeps them (no sorting here): all but the best.
            behind = [price for price, _ in book.levels()[side == "ask"]][1:]
            if behind:
                price = rand.choice(behind)
                size = self._size(book.symbol)
                if size != levels[price]:
                    changed[side, price] = size
        bids = sorted(((p, s) for (side, p), s in changed.items() if side == "bid"), reverse=True)
        asks = sorted((p, s) for (side, p), s in changed.items() if side == "ask")
        return [_change("bid", book.price(p), s) for p, s in bids] + [
            _change("ask", book.price(p), s) for p, s in asks
        ]

    def _size(self, symbol: str) -> int:
        typical = instrument_for(symbol).typical_size
        return max(1, round(typical * self._random.lognormvariate(0, 0.6)))


def _as_changes(book: OrderBook, side: str, wanted: dict[int, int], best: int) -> list[LevelChange]:
    """The changes that turn ``book``'s side into ``wanted``: every wanted level whose size
    differs, the best one always, and every held level not wanted removed (size 0)."""
    held = book.bids if side == "bid" else book.asks
    prices = set(wanted) | set(held)
    changes = []
    for price in sorted(prices, reverse=side == "bid"):
        size = wanted.get(price, 0)
        if price == best or held.get(price, 0) != size:
            changes.append(_change(side, book.price(price), size))
    return changes


def _change(side: str, price: float, size: int) -> LevelChange:
    return LevelChange.model_construct(side=side, price=price, size=size)
