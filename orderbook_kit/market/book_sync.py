"""Keeping a local book in sync with a feed of updates and snapshots, as exchanges tell clients to.

The procedure (Binance's "how to manage a local order book correctly", Coinbase's ``level2``, and
every exchange with a snapshot + incremental feed):

1. Until there is a book, keep the updates that arrive (a bounded buffer). (Update 1 needs no
   snapshot: the book before it was empty.)
2. A snapshot newer than the book (or the first one) becomes the book. Buffered updates at or
   below its ``seq`` are dropped; the rest are applied in order, and the first must be the next
   one (``seq`` = snapshot's + 1).
3. Each update must continue the last one (``seq`` + 1) and leave the book uncrossed, with the
   checksum it carries. A repeat (``seq`` already applied) is ignored.
4. Anything else - a gap, a crossed book, a checksum that differs - means the book is wrong:
   discard it, count why, and go back to 1 until a newer snapshot arrives.

Updates and snapshots come from two topics, so they may arrive in either order: a snapshot may
describe updates not read yet (they are skipped when they come), or updates may run ahead of the
snapshot that will cover them (they wait in the buffer). No I/O here: feed it messages.
"""

from __future__ import annotations

from collections import Counter

from orderbook_kit.errors import BookOutOfSyncError
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.simulator import instrument_for

__all__ = ["MAX_BUFFERED", "BookSync"]

# Updates kept while waiting for a snapshot: a few minutes of a busy symbol. Past it the oldest go
# (counted): a snapshot that comes later than that covers them anyway.
MAX_BUFFERED = 100_000


class BookSync:
    """One symbol's book, kept from its updates and snapshots (see the module)."""

    def __init__(self, symbol: str, *, max_buffered: int = MAX_BUFFERED) -> None:
        self.symbol = symbol
        self.max_buffered = max_buffered
        self.book: OrderBook | None = None  # None: out of sync, waiting for a snapshot
        self.lost: Counter[str] = Counter()  # times the book was discarded, by reason
        self.applied = 0  # updates applied
        self.repeats = 0  # updates already applied, ignored
        self.buffer_overflow = 0  # updates dropped from a full buffer
        self.snapshots_used = 0
        # (update_partition, update_offset) of the last snapshot taken: its updates come after.
        self.started_at: tuple[int, int] | None = None
        self._buffer: dict[int, BookUpdate] = {}  # by seq, while out of sync

    @property
    def in_sync(self) -> bool:
        return self.book is not None

    def on_update(self, update: BookUpdate) -> None:
        if self.book is None and update.seq == 1 and not self.snapshots_used and not self.lost:
            # The first update of all: the book before it was empty, no snapshot needed.
            self.book = OrderBook(self.symbol, instrument_for(self.symbol).tick_size)
        if self.book is None:
            self._keep(update)
            return
        if update.seq <= self.book.seq:
            self.repeats += 1
            return
        try:
            self.book.apply(update)
            self.book.verify(update)
        except BookOutOfSyncError as exc:
            self._discard(exc.reason)
            if exc.reason == "gap":  # it may follow the next snapshot (a spoiled one may not)
                self._keep(update)
            return
        self.applied += 1

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """A snapshot newer than the book (or the first) becomes the book; an older one is
        ignored."""
        if self.book is not None and snapshot.seq <= self.book.seq:
            return
        self.book = OrderBook.from_snapshot(snapshot)
        self.snapshots_used += 1
        self.started_at = snapshot.update_partition, snapshot.update_offset
        waiting, self._buffer = self._buffer, {}
        for seq in sorted(waiting):
            if seq > snapshot.seq:
                self.on_update(waiting[seq])
                if self.book is None:  # out of sync again: the rest waits for the next one
                    for later in sorted(waiting):
                        if later > seq:
                            self._keep(waiting[later])
                    return

    def _discard(self, reason: str) -> None:
        self.lost[reason] += 1
        self.book = None

    def _keep(self, update: BookUpdate) -> None:
        if update.seq in self._buffer:
            self.repeats += 1
            return
        self._buffer[update.seq] = update
        if len(self._buffer) > self.max_buffered:
            del self._buffer[min(self._buffer)]
            self.buffer_overflow += 1

    def __repr__(self) -> str:
        state = f"seq {self.book.seq}" if self.book is not None else "out of sync"
        return (
            f"BookSync({self.symbol!r}, {state}, {self.applied} applied, lost "
            f"{dict(self.lost) or 'never'})"
        )
