"""The book service's judgement, one raw message at a time: which update continues a symbol's
book, which one is set aside and why, and when the book is lost and found again. No I/O.

The raw topic holds what a feed handler receives from the exchange, in the exchange's order
(one partition per symbol): every update, and now and then the exchange's own snapshot (its
recovery feed, written right after the update it reflects). For each symbol the keeper holds a
book, or knows it has lost it:

- an update that continues the book (``seq`` + 1, uncrossed, the checksum it carries) is applied
  and *accepted*: the service publishes it;
- a repeat (``seq`` at or below the book's) is a ``duplicate``; an update after missing ones is a
  ``seq_gap``; one that gives another checksum or a crossed book is a ``checksum_mismatch`` or
  ``crosses_book``. The last three lose the book: every update until the next exchange snapshot is
  ``out_of_sync`` (that snapshot covers it);
- an exchange snapshot newer than the book - or any snapshot while the book is lost - becomes the
  book (*resynchronised*); one at the book's own ``seq`` is compared with it level by level, and
  replaces it if they differ (never seen unless the book went wrong below the checksum's levels).

The first update of a symbol, seq 1, needs no snapshot: the book before it was empty.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from orderbook_kit.errors import BookOutOfSyncError
from orderbook_kit.market.book_decoding import BookRejection
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.market.reasons import BookReason
from orderbook_kit.market.simulator import instrument_for

__all__ = ["BookVerdict", "SymbolBook", "judge_book_message"]

_LOST_BY = {"gap": BookReason.SEQ_GAP, "crossed": BookReason.CROSSES_BOOK}


@dataclass
class SymbolBook:
    """One symbol's book as the service keeps it, and what it needs to publish snapshots."""

    symbol: str
    book: OrderBook | None  # None: lost, waiting for an exchange snapshot
    lost_after: int = 0  # the seq the book was at when it was lost
    since_snapshot: int = 0  # updates accepted since the last published snapshot
    resynced: bool = False  # the book came from an exchange snapshot since the last publication
    snapshot_differed: int = 0  # exchange snapshots at the book's seq that did not match it
    lost: Counter[str] = field(default_factory=Counter)  # times lost, by reason
    event_time: datetime | None = None  # of the last update applied, or snapshot taken

    @classmethod
    def empty(cls, symbol: str) -> SymbolBook:
        return cls(symbol, OrderBook(symbol, instrument_for(symbol).tick_size))


@dataclass(frozen=True)
class BookVerdict:
    """What the keeper did with one raw message: ``accepted`` (an update to publish), set aside
    (``reason`` and ``detail``: a dead letter), or a snapshot taken (``resynced``) or not needed."""

    message: BookUpdate | BookSnapshot | None
    reason: BookReason | None = None
    detail: str = ""
    resynced: bool = False

    @property
    def accepted(self) -> bool:
        return self.reason is None and isinstance(self.message, BookUpdate)


def judge_book_message(
    books: dict[str, SymbolBook], decoded: BookUpdate | BookSnapshot | BookRejection
) -> BookVerdict:
    """Judge one decoded raw message against ``books`` (by symbol), changing them as it says."""
    if isinstance(decoded, BookRejection):
        return BookVerdict(None, decoded.reason, decoded.detail)
    state = books.get(decoded.symbol)
    if state is None:
        state = books[decoded.symbol] = SymbolBook.empty(decoded.symbol)
    if isinstance(decoded, BookSnapshot):
        return _snapshot(state, decoded)
    return _update(state, decoded)


def _update(state: SymbolBook, update: BookUpdate) -> BookVerdict:
    book = state.book
    if book is None:
        return BookVerdict(
            update,
            BookReason.OUT_OF_SYNC,
            f"{update.symbol}: the book was lost after update {state.lost_after}; update "
            f"{update.seq} waits for the exchange's next snapshot, which covers it",
        )
    if update.seq <= book.seq:
        return BookVerdict(
            update,
            BookReason.DUPLICATE,
            f"{update.symbol}: update {update.seq} is already in the book (at {book.seq})",
        )
    try:
        book.apply(update)
        book.verify(update)
    except BookOutOfSyncError as exc:
        reason = _LOST_BY.get(exc.reason, BookReason.CHECKSUM_MISMATCH)
        # A gap leaves the book where it was; the other two applied the update first.
        state.lost_after = book.seq if reason is BookReason.SEQ_GAP else update.seq - 1
        state.book = None
        state.lost[reason.value] += 1
        return BookVerdict(update, reason, f"{exc}; the book is lost until a snapshot")
    state.since_snapshot += 1
    return BookVerdict(update)


def _snapshot(state: SymbolBook, snapshot: BookSnapshot) -> BookVerdict:
    book = state.book
    if book is not None and snapshot.seq < book.seq:
        return BookVerdict(snapshot)  # older than the book: not needed
    if book is not None and snapshot.seq == book.seq:
        if _same_levels(book, snapshot):
            return BookVerdict(snapshot)
        state.snapshot_differed += 1
    state.book = OrderBook.from_snapshot(snapshot)
    state.resynced = True
    return BookVerdict(snapshot, resynced=True)


def _same_levels(book: OrderBook, snapshot: BookSnapshot) -> bool:
    other = OrderBook.from_snapshot(snapshot)
    return book.levels() == other.levels()
