"""The live order books: one reader of the book's two topics, any number of clients.

A background thread keeps every symbol's book as any reader does (the newest snapshot, then the
updates after it: :class:`~orderbook_kit.kafka.book_topics.BookReader`) and, after each poll, hands
the top of each book that changed to every client watching that symbol - the book as it is now,
not each update: a client that reads slowly gets fewer, fresher books (conflation, as market-data
APIs do), and one that stops reading is dropped once its queue is full. Broker outages are waited
out: the thread starts again by itself, and :attr:`BookStream.error` says what is wrong meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer

from orderbook_kit.api.stream import ReaderThread, Subscription, hand_over
from orderbook_kit.errors import TopicNotFoundError
from orderbook_kit.kafka.book_topics import BookReader
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.settings.environment import Settings

__all__ = ["BookStream", "BookView", "book_view"]

START_TIMEOUT_S = 30.0  # to read the snapshot topic to its end when (re)starting


@dataclass(frozen=True)
class BookView:
    """One symbol's book as the API shows it: the top ``depth`` levels a side, each
    ``[price, size, cumulative size from the best level]``."""

    symbol: str
    seq: int
    in_sync: bool
    bids: list[tuple[float, int, int]]
    asks: list[tuple[float, int, int]]
    checksum: int | None
    imbalance: float | None
    updated_at: datetime | None


def book_view(symbol: str, book: OrderBook | None, depth: int, at: datetime | None) -> BookView:
    """``book`` (None: out of sync, waiting for a snapshot) as a :class:`BookView`."""
    if book is None:
        return BookView(symbol, 0, False, [], [], None, None, at)
    bids, asks = book.depth(depth)
    return BookView(
        symbol,
        book.seq,
        True,
        _cumulative(bids),
        _cumulative(asks),
        book.checksum(),
        book.imbalance(min(depth, 5)) if bids and asks else None,
        at,
    )


def _cumulative(levels: list[tuple[float, int]]) -> list[tuple[float, int, int]]:
    total, out = 0, []
    for price, size in levels:
        total += size
        out.append((price, size, total))
    return out


def view_json(view: BookView) -> str:
    return json.dumps(_as_dict(view), separators=(",", ":"))


def _as_dict(view: BookView) -> dict[str, Any]:
    return {
        "symbol": view.symbol,
        "seq": view.seq,
        "in_sync": view.in_sync,
        "bids": view.bids,
        "asks": view.asks,
        "checksum": view.checksum,
        "imbalance": view.imbalance,
        "updated_at": view.updated_at.isoformat() if view.updated_at else None,
    }


@dataclass(eq=False)
class BookSubscription:
    """One client's watch of one symbol's book to ``depth`` levels."""

    symbol: str
    depth: int
    inner: Subscription


class BookStream(ReaderThread):
    """Keeps the books of ``settings``' book topics in a thread; :meth:`view` answers from them
    and subscribers get each changed book. :meth:`start` and :meth:`close` bound its life."""

    thread_name = "book-stream"
    client_id = "orderbook-kit-api-books"

    def __init__(self, settings: Settings, *, buffer: int) -> None:
        super().__init__(settings)
        self.buffer = buffer
        self.missing: str | None = None  # why there are no books, when no book was ever written
        self._books: dict[str, tuple[OrderBook | None, datetime | None]] = {}
        self._subscriptions: set[BookSubscription] = set()
        self._lock = threading.Lock()

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._books)

    def view(self, symbol: str, depth: int) -> BookView | None:
        """``symbol``'s book now, or None if no book of it was ever read."""
        with self._lock:
            if symbol not in self._books:
                return None
            book, at = self._books[symbol]
            return book_view(symbol, book, depth, at)

    def subscribe(self, symbol: str, depth: int) -> BookSubscription:
        """A client's watch (call it on the client's event loop); it gets the book at once."""
        inner = Subscription(
            frozenset({symbol}), asyncio.Queue(maxsize=self.buffer), asyncio.get_running_loop()
        )
        subscription = BookSubscription(symbol, depth, inner)
        with self._lock:
            self._subscriptions.add(subscription)
        view = self.view(symbol, depth)
        if view is not None:
            inner.offer([view_json(view)])
        return subscription

    def unsubscribe(self, subscription: BookSubscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, TopicNotFoundError):
            # Nothing written yet: an answer (no books), not an outage.
            self.error, self.missing = None, str(exc)
            return
        super()._failed(exc)

    def _read(self, consumer: KafkaConsumer) -> None:
        self._follow(BookReader(consumer, self.settings))

    def _follow(self, reader: BookReader) -> None:
        reader.start(time.monotonic() + START_TIMEOUT_S)
        self._take(reader, set(reader.follow.books))
        self.error = self.missing = None
        while not self._stop.is_set():
            touched = reader.poll(max_records=2000)
            if touched:
                self._take(reader, touched)

    def _take(self, reader: BookReader, symbols: set[str]) -> None:
        """Copy the touched books (the reader's own change on its thread) and hand them out."""
        now = datetime.now().astimezone()
        with self._lock:
            for symbol in symbols:
                book = reader.follow.books[symbol].book
                self._books[symbol] = (None if book is None else book.copy(), now)
            subscriptions = [s for s in self._subscriptions if s.symbol in symbols]
        gone = hand_over((s.inner, self._view_texts(s)) for s in subscriptions)
        for subscription in subscriptions:
            if subscription.inner in gone:
                self.unsubscribe(subscription)

    def _view_texts(self, subscription: BookSubscription) -> list[str]:
        view = self.view(subscription.symbol, subscription.depth)
        return [] if view is None else [view_json(view)]
