"""The book service: every symbol's order book kept from the exchange's updates, checked, and
published for any reader to rebuild.

::

    orderbook.book.raw ──> BookService ──> orderbook.book.updates    each update that continues
    (updates, and the                  │                               the book, byte for byte
     exchange's snapshots)             ├─> orderbook.book.snapshots  the book, every N updates or
                                       │                               T seconds (compacted)
                                       └─> orderbook.book.dlq        the rest, with the reason

What it accepts and sets aside, and how it loses and finds a book: :mod:`~orderbook_kit.market.
book_keeper`. So the update topic holds only updates that continue the book (after a lost book,
the next snapshot bridges the hole), and every snapshot is a book the service checked.

**Exactly once.** Each batch's writes - updates, snapshots, dead letters - and its raw offsets
are one Kafka transaction (as the quality gate's). The service's memory is its own output: a
restarted service (or one handed a partition) rebuilds each book of the partition from the
snapshot topic and the updates after it, read committed - as any reader does (:mod:`~orderbook_kit.
market.book_sync`) - and goes on from the committed raw offset. Killed at any moment, it leaves
every raw update in exactly one of the update topic or the dead-letter topic.

Each output record goes to the partition its raw record came from, so raw partition p's books are
in partition p of the two book topics, whatever the producer's partitioner.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata
from pydantic import ValidationError

from orderbook_kit.book.metrics import BookMetrics
from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, ensure_topic, topic_identity
from orderbook_kit.kafka.book_topics import SNAPSHOT_TOPIC_CONFIGS
from orderbook_kit.kafka.headers import HEADER_DETAIL, HEADER_REASON, source_headers
from orderbook_kit.kafka.offsets import wait_for_committed_reads
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.kafka.transactions import TransactionalProducer, Transactions
from orderbook_kit.market.book_decoding import decode_book_message
from orderbook_kit.market.book_keeper import BookVerdict, SymbolBook, judge_book_message
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.book_sync import BookSync
from orderbook_kit.market.reasons import BookReason
from orderbook_kit.runtime.group_loop import (
    Batches,
    BatchHandler,
    GroupLoop,
    GroupService,
    KafkaTransactions,
    Offsets,
)
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["MAX_BATCH", "BookService", "BookStats", "Judged"]

log = logging.getLogger(__name__)

# Raw records per batch, so per transaction (the gate's measured best: see quality/gate.py).
MAX_BATCH = 5000


@dataclass(frozen=True)
class Judged:
    """What the service did with one raw record (passed to ``on_judged``)."""

    record: ConsumerRecord
    verdict: BookVerdict


@dataclass
class BookStats:
    """Counts of one :meth:`BookService.run`."""

    processed: int = 0
    accepted: int = 0  # updates published
    rejected: Counter[BookReason] = field(default_factory=Counter)
    exchange_snapshots: int = 0  # the exchange's snapshots read
    resynced: int = 0  # ... of which became a book
    snapshots: int = 0  # snapshots published
    batches: int = 0

    def summary(self) -> str:
        text = (
            f"Read {self.processed} raw message(s): {self.accepted} update(s) published, "
            f"{sum(self.rejected.values())} set aside"
        )
        if self.rejected:
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) + ")"
        return text + (
            f"; {self.exchange_snapshots} exchange snapshot(s) read, {self.resynced} used to "
            f"resynchronise; {self.snapshots} snapshot(s) published."
        )


class BookService(GroupService[BookStats], BatchHandler[BookStats]):
    """Keeps the books of ``settings.topics.book_raw`` as consumer group ``settings.book.group``
    (see the module). Nothing connects until :meth:`connect` (or ``with``, or :meth:`run`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_judged: Callable[[Judged], None] | None = None,
        metrics: BookMetrics | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.settings = settings or load_settings()
        self.on_judged = on_judged
        self.metrics = metrics  # counted after each committed batch
        self.max_batch = max_batch
        self._producer: TransactionalProducer | None = None
        self._books: dict[int, dict[str, SymbolBook]] = {}  # by raw partition, then symbol
        self._last_offset: dict[str, int] = {}  # per symbol: its last committed update's offset
        self._sent: dict[str, FutureRecordMetadata] = {}  # ... and its last one sent since
        self._snapshot_at: dict[str, float] = {}  # per symbol: when its last snapshot went out
        self._moved: set[int] = set()
        self._moved_lock = threading.Lock()
        # The open transaction's counts, and a copy of them from before it (put back if it
        # aborts: the batch is read and counted again).
        self._open: tuple[BookStats, BookStats] | None = None
        self.loop = GroupLoop(
            self.settings,
            self,
            KafkaTransactions(self._transactions, self._forget, rejoin=lambda: self.loop.rejoin()),
            group=self.settings.book.group,
            topic=self.settings.topics.book_raw,
            client_id=f"orderbook-kit-book-{os.getpid()}",
            max_batch=max_batch,
            service="the book service",
            on_restart="a restart goes on from the last committed batch",
            consumer_options={"max_poll_records": max_batch},
        )

    def books(self) -> dict[str, SymbolBook]:
        """The symbols' books on the partitions this service holds now."""
        return {s: book for books in self._books.values() for s, book in books.items()}

    # --- BatchHandler ------------------------------------------------------------------------

    def prepare(self) -> None:
        if self._producer is not None:
            return
        try:
            self._prepare_topics()
            self._producer = TransactionalProducer(
                self.settings, self.settings.book.transactional_id
            ).connect()
        except BaseException:
            self.release(timeout_s=0)
            raise

    def release(self, timeout_s: float | None) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout_s)

    def new_stats(self) -> BookStats:
        return BookStats()

    def handled(self, stats: BookStats) -> int:
        return stats.processed

    def partitions_moved(self, partitions: set[TopicPartition], *, assigned: bool) -> None:
        with self._moved_lock:
            self._moved.update(tp.partition for tp in partitions)

    def handle(self, batches: Batches, stats: BookStats) -> Offsets:
        producer = self._producer
        assert producer is not None
        with self._moved_lock:
            moved, self._moved = self._moved, set()
        for partition in moved:
            self._drop(partition)
        for tp in batches:
            if tp.partition not in self._books:
                self._restore(tp.partition)
        self._open = stats, replace(stats, rejected=Counter(stats.rejected))
        producer.begin()
        for tp, records in batches.items():
            books = self._books[tp.partition]
            for record in records:
                self._route(record, books, producer, stats)
        self._publish_due(producer, stats)
        stats.batches += 1
        return {tp: records[-1].offset + 1 for tp, records in batches.items() if records}

    def after_poll(self, stats: BookStats) -> Offsets:
        """The batch committed: its updates' offsets are where the next snapshots point."""
        if self._producer is not None and not self._producer.in_transaction:
            self._open = None
            for symbol, sent in list(self._sent.items()):
                if sent.succeeded():
                    self._last_offset[symbol] = sent.value.offset
            self._sent.clear()
            if self.metrics is not None:
                self.metrics.count(stats)
        return {}

    def finish(self, stats: BookStats) -> Offsets:
        """At the end of a run: wait (bounded) until readers of committed data see the last
        transaction (its commit returns before the markers are written)."""
        if stats.batches:
            topics = self.settings.topics
            wait_for_committed_reads(
                [topics.book_updates, topics.book_snapshots, topics.book_dead_letters],
                self.settings,
                timeout_s=self.settings.kafka.client_timeout_s,
            )
        return {}

    # --- the work ----------------------------------------------------------------------------

    def _route(
        self,
        record: ConsumerRecord,
        books: dict[str, SymbolBook],
        producer: TransactionalProducer,
        stats: BookStats,
    ) -> None:
        topics, partition = self.settings.topics, record.partition
        verdict = judge_book_message(
            books, decode_book_message(record.headers, record.key, record.value)
        )
        stats.processed += 1
        if verdict.accepted:
            assert isinstance(verdict.message, BookUpdate)
            sent = _copy(producer, topics.book_updates, record, source_headers(record))
            self._sent[verdict.message.symbol] = sent
            books[verdict.message.symbol].event_time = verdict.message.event_time
            stats.accepted += 1
        elif verdict.reason is not None:
            why = [
                (HEADER_REASON, verdict.reason.value.encode()),
                (HEADER_DETAIL, verdict.detail.encode()),
            ]
            _copy(producer, topics.book_dead_letters, record, source_headers(record) + why)
            stats.rejected[verdict.reason] += 1
        else:  # an exchange snapshot, taken or not needed
            assert isinstance(verdict.message, BookSnapshot)
            stats.exchange_snapshots += 1
            if verdict.resynced:
                # Published at once: readers that lost the book at the same hole in the
                # update topic find it again here, before the updates that follow.
                stats.resynced += 1
                state = books[verdict.message.symbol]
                state.event_time = verdict.message.event_time
                self._publish(state, partition, producer, stats)
        if self.on_judged is not None:
            self.on_judged(Judged(record, verdict))

    def _publish_due(self, producer: TransactionalProducer, stats: BookStats) -> None:
        """At the end of a batch, a snapshot of every book that is due: ``snapshot_every``
        updates or ``snapshot_interval_s`` seconds since its last."""
        every, interval = self.settings.book.snapshot_every, self.settings.book.snapshot_interval_s
        now = time.monotonic()
        for partition, books in self._books.items():
            for symbol, state in books.items():
                waited = now - self._snapshot_at.get(symbol, 0.0)
                if state.since_snapshot >= every or (state.since_snapshot and waited >= interval):
                    self._publish(state, partition, producer, stats)

    def _publish(
        self, state: SymbolBook, partition: int, producer: TransactionalProducer, stats: BookStats
    ) -> None:
        """A snapshot of ``state``'s book. It points at the symbol's last committed update: a
        reader reads the updates after that one, skipping those the snapshot already holds."""
        if state.book is None or state.event_time is None:
            return
        snapshot = state.book.snapshot(
            state.event_time,
            update_partition=partition,
            update_offset=self._last_offset.get(state.symbol, -1),
        )
        producer.send(
            self.settings.topics.book_snapshots,
            state.symbol.encode(),
            snapshot.to_json(),
            partition=partition,
        )
        state.since_snapshot, state.resynced = 0, False
        self._snapshot_at[state.symbol] = time.monotonic()
        stats.snapshots += 1

    def _forget(self, partitions: set[TopicPartition]) -> None:
        """An aborted batch changed books that readers will never see: read them again."""
        self.partitions_moved(partitions, assigned=True)
        self._sent.clear()
        if self._open is not None:
            stats, before = self._open
            for counted in fields(BookStats):  # in place: the loop holds this object
                setattr(stats, counted.name, getattr(before, counted.name))
            self._open = None

    def _drop(self, partition: int) -> None:
        for symbol in self._books.pop(partition, {}):
            self._last_offset.pop(symbol, None)
            self._snapshot_at.pop(symbol, None)

    def _restore(self, partition: int) -> None:
        """Rebuild partition ``partition``'s books from the committed snapshots and the updates
        after them - what any reader does - before judging its next raw record."""
        newest, updates = self._read_back(partition)
        syncs: dict[str, BookSync] = {}
        event_times = {}
        for symbol, snapshot in newest.items():
            syncs[symbol] = BookSync(symbol)
            syncs[symbol].on_snapshot(snapshot)
            self._last_offset[symbol] = snapshot.update_offset
            event_times[symbol] = snapshot.event_time
        since: Counter[str] = Counter()  # updates after each symbol's newest snapshot
        for offset, update in updates:
            syncs.setdefault(update.symbol, BookSync(update.symbol)).on_update(update)
            self._last_offset[update.symbol] = offset
            event_times[update.symbol] = update.event_time
            if update.symbol not in newest or update.seq > newest[update.symbol].seq:
                since[update.symbol] += 1
        books = {}
        now = time.monotonic()
        for symbol, sync in syncs.items():
            if sync.book is None:
                log.warning(
                    "partition %d: %s's book could not be rebuilt (%r)", partition, symbol, sync
                )
            books[symbol] = SymbolBook(
                symbol, sync.book, since_snapshot=since[symbol], event_time=event_times[symbol]
            )
            self._snapshot_at[symbol] = now
        self._books[partition] = books
        log.info(
            "partition %d: %d book(s) rebuilt from %d snapshot(s) and %d update(s)",
            partition,
            len(books),
            len(newest),
            len(updates),
        )

    def _read_back(
        self, partition: int
    ) -> tuple[dict[str, BookSnapshot], list[tuple[int, BookUpdate]]]:
        """Partition ``partition``'s newest snapshot of each symbol, and the updates after the
        oldest of them (with their offsets), read committed."""
        settings, topics = self.settings, self.settings.topics
        timeout_s = settings.kafka.delivery_timeout_s
        snapshots = read_records(
            topics.book_snapshots, settings=settings, partitions=[partition], timeout_s=timeout_s
        )
        newest: dict[str, BookSnapshot] = {}
        for _, snapshot in _messages(BookSnapshot, snapshots.records, partition):
            if snapshot.symbol not in newest or snapshot.seq > newest[snapshot.symbol].seq:
                newest[snapshot.symbol] = snapshot
        start = min((s.update_offset + 1 for s in newest.values()), default=0)
        updates = read_records(
            topics.book_updates,
            settings=settings,
            partitions=[partition],
            offsets={partition: start},
            timeout_s=timeout_s,
        )
        if snapshots.timed_out or updates.timed_out:
            raise OrderbookKitError(
                f"The book service could not read partition {partition}'s books back from "
                f"{topics.book_snapshots!r} and {topics.book_updates!r} within {timeout_s:g} s, "
                "so it stopped before judging its updates; nothing was committed. Check the "
                "brokers (`make status`) and start it again."
            )
        return newest, list(_messages(BookUpdate, updates.records, partition))

    def _prepare_topics(self) -> None:
        """The raw topic, and the three the service writes: each with a partition for each raw
        one (raw p's books are in p)."""
        settings, topics = self.settings, self.settings.topics
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            ensure_topic(admin, topics.book_raw, topics.partitions)
            _, raw_partitions = topic_identity(admin, topics.book_raw)
            for topic, configs in (
                (topics.book_updates, None),
                (topics.book_snapshots, SNAPSHOT_TOPIC_CONFIGS),
                (topics.book_dead_letters, None),
            ):
                ensure_topic(admin, topic, raw_partitions, configs)
                _, partitions = topic_identity(admin, topic)
                if partitions < raw_partitions:
                    raise OrderbookKitError(
                        f"{topic!r} has {partitions} partition(s) and the raw topic "
                        f"{topics.book_raw!r} has {raw_partitions}: the book service writes raw "
                        f"partition p's books to partition p. Add partitions to it "
                        f"(kafka-topics.sh --alter --topic {topic} --partitions "
                        f"{raw_partitions}) and start again."
                    )

    def _transactions(self) -> Transactions:
        assert self._producer is not None, "connect() first"
        return self._producer


def _copy(
    producer: TransactionalProducer,
    topic: str,
    record: ConsumerRecord,
    headers: list[tuple[str, bytes]],
) -> FutureRecordMetadata:
    """``record`` into ``topic``, byte for byte: same key, value, timestamp and partition."""
    return producer.send(
        topic,
        record.key,
        record.value,
        headers=headers,
        timestamp_ms=record.timestamp,
        partition=record.partition,
    )


Message = TypeVar("Message", BookSnapshot, BookUpdate)


def _messages(
    model: type[Message], records: list[ConsumerRecord], partition: int
) -> Iterator[tuple[int, Message]]:
    """(offset, message) of each record that is one; the others skipped, and logged."""
    unreadable = 0
    for record in records:
        try:
            yield record.offset, model.from_json(record.value or b"")
        except ValidationError:
            unreadable += 1
    if unreadable:
        log.warning(
            "partition %d: %d record(s) of the book's topics are no %s (written by something "
            "else?) and were skipped",
            partition,
            unreadable,
            model.__name__,
        )
