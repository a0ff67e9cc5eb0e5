"""The order book on Kafka: an update topic and a compacted snapshot topic, both keyed by symbol.

::

    orderbook.book.updates    key = symbol, value = BookUpdate JSON   (every change, in seq order)
    orderbook.book.snapshots  key = symbol, value = BookSnapshot JSON (compacted: the newest stays)

The key puts all of a symbol's updates in one partition, so Kafka keeps them in ``seq`` order;
spread over partitions they could be read out of order, and a reader would see gaps that are not
there. A snapshot says which update it reflects (``seq``) and where that update is
(``update_partition``, ``update_offset``), so a reader starts reading updates right after it.

:class:`BookWriter` writes both (a feed, or the book service). :func:`follow_books` reads both
and keeps each symbol's book with :class:`~orderbook_kit.market.book_sync.BookSync`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from typing import Self

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from orderbook_kit.errors import OrderbookKitError, TopicNotFoundError
from orderbook_kit.kafka.admin import admin_client, ensure_topic
from orderbook_kit.kafka.log_offsets import end_offsets_of
from orderbook_kit.kafka.producer import SendFuture, TickProducer
from orderbook_kit.kafka.reader import open_consumer
from orderbook_kit.lifecycle import Connectable
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.book_sync import BookSync
from orderbook_kit.market.order_book import OrderBook
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.settings.timing import POLL_MS

__all__ = [
    "SNAPSHOT_EVERY",
    "SNAPSHOT_TOPIC_CONFIGS",
    "BookFollow",
    "BookReader",
    "BookWriter",
    "ensure_book_topics",
    "follow_books",
]

log = logging.getLogger(__name__)

# Compacted: Kafka keeps at least the newest snapshot of each symbol, and drops older ones once
# their segment is closed and the cleaner runs. Segments roll every 10 minutes, so older snapshots
# go within minutes rather than after the 7-day default segment.
SNAPSHOT_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": str(10 * 60_000),
    "min.cleanable.dirty.ratio": "0.1",
}
# A snapshot after this many updates of a symbol: a reader that lost its book waits at most this
# many updates for the next one.
SNAPSHOT_EVERY = 500


def ensure_book_topics(settings: Settings) -> None:
    """Create the update topic and the compacted snapshot topic unless they exist."""
    topics = settings.topics
    with admin_client(settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s) as admin:
        ensure_topic(admin, topics.book_updates, topics.partitions)
        ensure_topic(admin, topics.book_snapshots, topics.partitions, SNAPSHOT_TOPIC_CONFIGS)


class BookWriter(Connectable):
    """Writes each symbol's updates and, every ``snapshot_every`` of them, a snapshot of its
    book after them (pointing at the last update's offset, once Kafka has it)."""

    def __init__(self, settings: Settings | None = None, *, snapshot_every: int = SNAPSHOT_EVERY):
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be 1 or more, got {snapshot_every}")
        self.settings = settings or load_settings()
        self.snapshot_every = snapshot_every
        self.updates_written = 0
        self.snapshots_written = 0
        self._since_snapshot: dict[str, int] = defaultdict(int)
        self._last_sent: dict[str, tuple[BookUpdate, SendFuture]] = {}
        topics = self.settings.topics
        self._updates = TickProducer(self.settings, topic=topics.book_updates, create_topic=False)
        self._snapshots = TickProducer(
            self.settings, topic=topics.book_snapshots, create_topic=False
        )

    def connect(self) -> Self:
        ensure_book_topics(self.settings)
        self._updates.connect()
        self._snapshots.connect()
        return self

    def write(self, updates: Iterable[BookUpdate], book: OrderBook) -> None:
        """Send ``updates`` of ``book``'s symbol; then, if ``snapshot_every`` updates have
        passed, a snapshot of ``book``. ``book`` must be the book as it is right after the last
        of ``updates`` (write each step's updates as they are made, not from a list made
        earlier): the snapshot says it reflects that update."""
        for update in updates:
            sent = self._updates.send_raw(update.symbol, update.to_json())
            self._last_sent[update.symbol] = update, sent
            self.updates_written += 1
            self._since_snapshot[update.symbol] += 1
        if self._since_snapshot[book.symbol] >= self.snapshot_every:
            self.snapshot(book)

    def snapshot(self, book: OrderBook) -> BookSnapshot:
        """Publish ``book`` as a snapshot of the last update written for its symbol (waiting
        until Kafka has that update, to say where it is)."""
        last = self._last_sent.get(book.symbol)
        if last is None:
            raise OrderbookKitError(f"No update of {book.symbol} written yet: nothing to snapshot.")
        update, sent = last
        where = sent.get(timeout=self.settings.kafka.delivery_timeout_s)
        snapshot = book.snapshot(
            update.event_time, update_partition=where.partition, update_offset=where.offset
        )
        self._snapshots.send_raw(book.symbol, snapshot.to_json())
        self._since_snapshot[book.symbol] = 0
        self.snapshots_written += 1
        return snapshot

    def flush(self) -> None:
        self._updates.flush()
        self._snapshots.flush()

    def close(self, timeout_s: float | None = None) -> None:
        try:
            self._updates.close(timeout_s)
        finally:
            self._snapshots.close(timeout_s)


class BookFollow:
    """The books :func:`follow_books` keeps, and what it met on the way."""

    def __init__(self) -> None:
        self.books: dict[str, BookSync] = {}
        self.malformed: int = 0  # records that are no update or snapshot (skipped, counted)
        self.updates_read = 0
        self.snapshots_read = 0

    def sync(self, symbol: str) -> BookSync:
        if symbol not in self.books:
            self.books[symbol] = BookSync(symbol)
        return self.books[symbol]


class BookReader:
    """Follows the two topics with ``consumer`` (assigned, no group), keeping ``follow``'s books:
    :meth:`start` takes the newest snapshot of each symbol and places the consumer after them,
    :meth:`poll` reads on. One thread at a time."""

    def __init__(
        self, consumer: KafkaConsumer, settings: Settings, symbols: Collection[str] | None = None
    ) -> None:
        self.consumer = consumer
        self.settings = settings
        self.symbols = symbols
        self.follow = BookFollow()
        self.assigned: list[TopicPartition] = []

    def start(self, deadline: float) -> None:
        """Read the snapshot topic to its end, keep the newest snapshot of each symbol, and go on
        from there: the updates from just after the oldest of each partition's newest snapshots'
        ``update_offset`` (from its beginning for a partition with no snapshot)."""
        consumer, topics = self.consumer, self.settings.topics
        snapshots = _partitions(consumer, topics.book_snapshots)
        updates = _partitions(consumer, topics.book_updates)
        if not updates:
            raise TopicNotFoundError(
                f"The book's update topic {topics.book_updates!r} does not exist at "
                f"{self.settings.kafka.bootstrap_servers}: write a book first (BookWriter, or "
                "the book service)."
            )
        for snapshot in self._newest_snapshots(snapshots, deadline).values():
            _take(self.follow, snapshot, self.symbols)
        starts: dict[int, int] = {}  # per update partition: after its oldest newest snapshot
        for sync in self.follow.books.values():
            if sync.book is not None and sync.started_at is not None:
                partition, offset = sync.started_at
                starts[partition] = min(starts.get(partition, offset + 1), offset + 1)
        self.assigned = snapshots + updates
        consumer.assign(self.assigned)
        for tp in updates:
            consumer.seek(tp, starts.get(tp.partition, 0))

    def _newest_snapshots(
        self, snapshots: list[TopicPartition], deadline: float
    ) -> dict[str, BookSnapshot]:
        if not snapshots:  # no snapshot topic (yet): every book from the updates alone
            return {}
        self.consumer.assign(snapshots)
        self.consumer.seek_to_beginning(*snapshots)
        return _newest_snapshots(self.consumer, snapshots, self.follow, deadline)

    def poll(self, max_records: int = 5000) -> set[str]:
        """One poll's records into the books, snapshots first (a reader that lost its book
        takes the newest snapshot of the poll before its updates); the symbols it touched."""
        snapshot_topic = self.settings.topics.book_snapshots
        batches = self.consumer.poll(timeout_ms=POLL_MS, max_records=max_records)
        records = sorted(
            (r for rs in batches.values() for r in rs), key=lambda r: r.topic != snapshot_topic
        )
        touched = set()
        for record in records:
            model = BookSnapshot if record.topic == snapshot_topic else BookUpdate
            message = _parse(self.follow, model, record.value)
            if message is not None and _take(self.follow, message, self.symbols):
                touched.add(message.symbol)
        return touched

    def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        return all(self.consumer.position(tp) >= ends[tp] for tp in self.assigned)


def follow_books(
    settings: Settings | None = None,
    *,
    symbols: Collection[str] | None = None,
    until: Callable[[BookFollow], bool] | None = None,
    timeout_s: float = 30.0,
) -> BookFollow:
    """Keep the book of each symbol (or of ``symbols`` only) as exchanges tell clients to: the
    newest snapshot of each, then the updates after it (see :class:`BookReader`), both topics
    on as they grow, until ``until(follow)`` holds - by default, until both are read to their
    ends as they were at the start - or ``timeout_s``.

    A symbol with no snapshot yet, in a partition where others have one, may find its early
    updates behind the starting point: it waits for its first snapshot (the book service
    publishes one within ``ORDERBOOK_BOOK_SNAPSHOT_INTERVAL_S``).

    A record that is no valid message is counted in ``malformed`` and skipped (for the book, the
    update it should have been is missing: a gap, repaired by the next snapshot).
    """
    settings = settings or load_settings()
    consumer = open_consumer(settings, client_id="orderbook-kit-book-reader")
    deadline = time.monotonic() + timeout_s
    reader = BookReader(consumer, settings, symbols)
    try:
        reader.start(deadline)
        ends = end_offsets_of(consumer, reader.assigned, _left_ms(deadline))
        while time.monotonic() < deadline:
            if until is not None and until(reader.follow):
                break
            if until is None and reader.caught_up(ends):
                break
            reader.poll()
        else:
            log.warning("following the book stopped at its time limit (%g s)", timeout_s)
    finally:
        consumer.close()
    return reader.follow


def _left_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 1)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _newest_snapshots(
    consumer: KafkaConsumer,
    partitions: list[TopicPartition],
    follow: BookFollow,
    deadline: float,
) -> dict[str, BookSnapshot]:
    """Read ``partitions`` of the snapshot topic to their ends: the newest snapshot of each
    symbol (until the cleaner has run, older ones are still there)."""
    newest: dict[str, BookSnapshot] = {}
    ends = end_offsets_of(consumer, partitions, _left_ms(deadline))
    while time.monotonic() < deadline:
        if all(consumer.position(tp) >= ends[tp] for tp in partitions):
            break
        for records in consumer.poll(timeout_ms=POLL_MS, max_records=5000).values():
            for record in records:
                snapshot = _parse(follow, BookSnapshot, record.value)
                if isinstance(snapshot, BookSnapshot):
                    held = newest.get(snapshot.symbol)
                    if held is None or snapshot.seq > held.seq:
                        newest[snapshot.symbol] = snapshot
    return newest


def _parse(
    follow: BookFollow, model: type[BookSnapshot] | type[BookUpdate], value: bytes | None
) -> BookSnapshot | BookUpdate | None:
    try:
        return model.model_validate_json(value or b"")
    except ValidationError as exc:
        follow.malformed += 1
        log.debug("skipped a record that is no book message: %s", exc)
        return None


def _take(
    follow: BookFollow, message: BookSnapshot | BookUpdate, symbols: Collection[str] | None
) -> bool:
    """``message`` into its symbol's book; False if the symbol is not followed."""
    if symbols is not None and message.symbol not in symbols:
        return False
    sync = follow.sync(message.symbol)
    if isinstance(message, BookSnapshot):
        follow.snapshots_read += 1
        sync.on_snapshot(message)
    else:
        follow.updates_read += 1
        sync.on_update(message)
    return True
