"""The book service on a real broker: a depth feed with every kind of fault in, books any reader
rebuilds out - equal to the simulator's true books - and exactly once under SIGKILL.

What is checked, each time, with readers of its own (never the service's word):

- every raw record but the exchange's valid snapshots is in exactly one of the update topic and
  the dead-letter topic, byte for byte, and nothing else is;
- the update topic holds only true updates, each symbol's in rising seq order: nothing spoiled,
  repeated or out of order ever reaches a reader;
- every snapshot published is the true book at its seq;
- after the feed's last snapshot, a reader of the two topics holds every symbol's true book.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.book.feed import publish_exchange_feed
from orderbook_kit.book.service import BookService
from orderbook_kit.ingest.feed_position import last_book_seqs
from orderbook_kit.kafka.book_topics import follow_books
from orderbook_kit.kafka.headers import header, source_of
from orderbook_kit.kafka.offsets import committed_total, end_offsets
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.market.book_decoding import decode_book_message
from orderbook_kit.market.book_faults import BookFaultInjector
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.runtime.launcher import ServiceProcess, start_service
from orderbook_kit.settings.environment import Settings, load_settings
from tests.conftest import wait_for
from tests.transactions import pause_mid_transaction

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]
EXCHANGE_SNAPSHOT_EVERY = 150
FAULTS = {"drop": 0.002, "repeat": 0.002, "reorder": 0.002, "corrupt": 0.002, "garble": 0.002}


def book_settings(label: str) -> Settings:
    return load_settings().isolated(f"{label}-{uuid.uuid4().hex[:10]}")


class TrueFeed:
    """The exchange's messages, and what is true of them: each update's bytes and the checksum
    of the book after each (symbol, seq)."""

    def __init__(self, simulator: DepthSimulator) -> None:
        self.simulator = simulator
        self.updates: dict[tuple[str, int], bytes] = {}
        self.checksums: dict[tuple[str, int], int] = {}

    def messages(self, ticks: int) -> Iterator[BookUpdate | BookSnapshot]:
        for message in self.simulator.exchange_feed(ticks, snapshot_every=EXCHANGE_SNAPSHOT_EVERY):
            if isinstance(message, BookUpdate):
                self.updates[message.symbol, message.seq] = message.to_json()
                self.checksums[message.symbol, message.seq] = message.checksum
            yield message


def outputs(
    settings: Settings, isolation_level: str = "read_committed", *, with_snapshots: bool = False
) -> list[ConsumerRecord]:
    """The records of the update and dead-letter topics (and the snapshot topic)."""
    topics = settings.topics
    written = (topics.book_updates, topics.book_dead_letters)
    return [
        record
        for topic in written + ((topics.book_snapshots,) if with_snapshots else ())
        for record in read_records(
            topic, settings=settings, timeout_s=60, isolation_level=isolation_level
        ).records
    ]


def assert_the_outputs_are_true(settings: Settings, truth: TrueFeed) -> Counter[str]:
    """The module's first three checks; the dead letters' reasons."""
    raw = {
        (r.partition, r.offset): r
        for r in read_records(settings.topics.book_raw, settings=settings, timeout_s=60).records
    }
    exchange_snapshots = {
        where
        for where, r in raw.items()
        if isinstance(decode_book_message(r.headers, r.key, r.value), BookSnapshot)
    }
    raw_updates = set(raw) - exchange_snapshots
    written = outputs(settings)
    sources = Counter(source_of(record)[1:] for record in written)
    assert set(sources) == raw_updates, (
        f"{len(raw_updates - set(sources))} raw updates missing, "
        f"{len(set(sources) - raw_updates)} unknown"
    )
    assert max(sources.values()) == 1, [s for s, n in sources.items() if n > 1][:5]
    for record in written:
        assert record.value == raw[source_of(record)[1:]].value  # byte for byte
    last_seq: dict[str, int] = {}
    published = [r for r in written if r.topic == settings.topics.book_updates]
    for record in sorted(published, key=lambda r: (r.partition, r.offset)):
        update = BookUpdate.from_json(record.value)
        assert record.value == truth.updates[update.symbol, update.seq]
        assert update.seq > last_seq.get(update.symbol, 0), f"{update.symbol} {update.seq}"
        last_seq[update.symbol] = update.seq
    snapshots = read_records(settings.topics.book_snapshots, settings=settings, timeout_s=60)
    assert snapshots.records
    for record in snapshots.records:
        snapshot = BookSnapshot.from_json(record.value)
        assert snapshot.checksum == truth.checksums[snapshot.symbol, snapshot.seq]
    return Counter(
        header(r, "reason") or "" for r in written if r.topic == settings.topics.book_dead_letters
    )


def assert_readers_hold_the_true_books(settings: Settings, simulator: DepthSimulator) -> None:
    follow = follow_books(settings)
    assert set(follow.books) == set(simulator.symbols)
    for symbol, sync in follow.books.items():
        assert sync.book == simulator.books[symbol], sync


def test_every_fault_is_caught_and_readers_rebuild_the_true_books() -> None:
    settings = book_settings("book")
    simulator = DepthSimulator(SYMBOLS, seed=5, updates_per_tick=3)
    truth = TrueFeed(simulator)
    injector = BookFaultInjector(FAULTS, seed=7)
    publish_exchange_feed(settings, truth.messages(1800), injector=injector)
    # A clean stretch to end with, past the exchange's next snapshot of every symbol.
    publish_exchange_feed(settings, truth.messages(400))
    assert set(injector.injected) == set(FAULTS)
    service = BookService(settings)
    stats = service.run(idle_s=3)
    reasons = assert_the_outputs_are_true(settings, truth)
    assert reasons["not_json"] == injector.injected["garble"]  # a cut message, whatever the book
    assert {"seq_gap", "duplicate", "checksum_mismatch", "out_of_sync"} <= set(reasons)
    assert stats.resynced > 0 and stats.snapshots > 0
    assert all(s.book == simulator.books[s.symbol] for s in service.books().values())
    assert_readers_hold_the_true_books(settings, simulator)


def test_a_hostile_raw_record_is_set_aside_and_the_book_goes_on() -> None:
    settings = book_settings("book-hostile")
    simulator = DepthSimulator("TTF-GAS", seed=2, updates_per_tick=2)
    truth = TrueFeed(simulator)
    publish_exchange_feed(settings, truth.messages(30))
    with TickProducer(settings, topic=settings.topics.book_raw, create_topic=False) as producer:
        for key, value, headers in (
            (b"TTF-GAS", b"{}", []),  # no kind header
            (b"TTF-GAS", b"\xff" * 300_000, [("kind", b"update")]),  # too large
            (b"TTF-GAS", b"[" * 100_000, [("kind", b"snapshot")]),  # nested without end
            (None, b'{"symbol": "TTF-GAS"}', [("kind", b"update")]),
        ):
            producer.send_raw(key, value, headers)
        producer.flush()
    publish_exchange_feed(settings, truth.messages(30))
    stats = BookService(settings).run(idle_s=3)
    assert sum(stats.rejected.values()) == 4, stats.summary()
    assert_the_outputs_are_true(settings, truth)
    assert_readers_hold_the_true_books(settings, simulator)


# --- exactly once under SIGKILL --------------------------------------------------------------

KILLS = 2  # at a random moment, then with a transaction open


def committed(settings: Settings) -> int:
    return committed_total(settings.book.group, settings.topics.book_raw, settings)


def live_feed(settings: Settings, truth: TrueFeed, stop: threading.Event) -> threading.Thread:
    """The exchange's feed with faults, about 1,000 messages a second, until ``stop``."""
    injector = BookFaultInjector(FAULTS, seed=11)

    def paced() -> Iterator[BookUpdate | BookSnapshot]:
        for index, message in enumerate(truth.messages(10**9)):
            if stop.is_set():
                return
            if index % 50 == 49:
                time.sleep(0.05)  # pacing the feed, not waiting for anything
            yield message

    thread = threading.Thread(
        target=publish_exchange_feed, args=(settings, paced()), kwargs={"injector": injector}
    )
    thread.start()
    return thread


def test_sigkill_at_random_moments_and_every_raw_update_is_written_exactly_once() -> None:
    settings = book_settings("book-eos")
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    print(f"kill moments from seed {seed}")
    rng.seed(seed)
    simulator = DepthSimulator(SYMBOLS, seed=9, updates_per_tick=3)
    truth = TrueFeed(simulator)
    stop = threading.Event()
    feed = live_feed(settings, truth, stop)
    services: list[ServiceProcess] = []
    try:
        for index in range(KILLS):
            service = start_service("book", settings, "-q", "--snapshot-every", "100")
            services.append(service)
            before = committed(settings)
            wait_for(lambda b=before: committed(settings) > b, 120, "it to commit", service)
            if index % 2:
                topics = settings.topics
                pause_mid_transaction(
                    service,
                    settings,
                    settings.book.transactional_id,
                    outputs={topics.book_updates, topics.book_snapshots, topics.book_dead_letters},
                )
            else:
                time.sleep(rng.uniform(0.0, 1.5))  # places the kill; waits for nothing
            service.kill()
        stop.set()
        feed.join(timeout=60)
        assert not feed.is_alive()
        publish_exchange_feed(settings, truth.messages(600))  # a clean end, with snapshots
        raw_count = sum(end_offsets(settings.topics.book_raw, settings).values())
        last = start_service("book", settings, "-q")
        services.append(last)
        wait_for(lambda: committed(settings) == raw_count, 180, "the last service", last)
        assert last.stop() == 0, last.output()
    finally:
        stop.set()
        for process in services:
            process.kill()
    assert raw_count > 5_000
    assert_the_outputs_are_true(settings, truth)
    # The transactions open when their services were killed: in the log, never read committed
    # (in any of the three topics: the one frozen open may have written only a snapshot).
    aborted = len(outputs(settings, "read_uncommitted", with_snapshots=True)) - len(
        outputs(settings, with_snapshots=True)
    )
    assert aborted > 0
    assert_readers_hold_the_true_books(settings, simulator)
    print(f"{raw_count} raw messages, each update once; the log holds {aborted} aborted records")


def test_the_depth_feed_command_feeds_the_service_and_a_restarted_feed_goes_on() -> None:
    settings = book_settings("book-feed")
    arguments = ("--book", "-q", "--symbol", "TTF-GAS", "--interval", "0.005", "--count")
    first = start_service("ingest", settings, *arguments, "150")
    assert first.wait(120) == 0, first.output()
    seqs = last_book_seqs(settings, settings.topics.book_raw, ["TTF-GAS"], timeout_s=30)
    # Started again: a new exchange session goes on after the last seq, with a fresh book that
    # it announces by a snapshot before its first update.
    second = start_service("ingest", settings, *arguments, "150")
    assert second.wait(120) == 0, second.output()
    assert "continuing the book feed" in second.output()
    after = last_book_seqs(settings, settings.topics.book_raw, ["TTF-GAS"], timeout_s=30)
    assert after["TTF-GAS"] > seqs["TTF-GAS"] >= 150
    stats = BookService(settings).run(idle_s=3)
    assert not stats.rejected, stats.summary()  # nothing set aside: the restart was announced
    assert stats.resynced == 1
    follow = follow_books(settings)
    sync = follow.books["TTF-GAS"]
    assert sync.book is not None and sync.book.seq == after["TTF-GAS"], sync
