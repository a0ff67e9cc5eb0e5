"""The order book through Kafka: a simulated depth feed written to the update and snapshot topics,
and every symbol's book rebuilt by a reader that knows only the two topics - equal to the
simulator's true book, also when updates were lost or spoiled on the way (the reader notices,
and the next snapshot repairs it)."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from orderbook_kit.kafka.admin import admin_client, ensure_topic, topic_config
from orderbook_kit.kafka.book_topics import BookWriter, follow_books
from orderbook_kit.market.book_messages import BookUpdate
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.settings.environment import Settings, load_settings

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS"]


def book_settings() -> Settings:
    return load_settings().isolated(f"book-{uuid.uuid4().hex[:10]}")


def spoiled(update: BookUpdate) -> BookUpdate:
    change = update.changes[0]
    changes = [change.model_copy(update={"size": change.size + 7}), *update.changes[1:]]
    return update.model_copy(update={"changes": changes})


def test_a_reader_of_the_two_topics_rebuilds_every_symbols_true_book() -> None:
    settings = book_settings()
    simulator = DepthSimulator(SYMBOLS, seed=21, updates_per_tick=3)
    with BookWriter(settings, snapshot_every=300) as writer:
        for tick, updates in simulator.events(800):
            writer.write(updates, simulator.books[tick.symbol])
        writer.flush()
    assert writer.snapshots_written > 0
    follow = follow_books(settings)
    assert set(follow.books) == set(SYMBOLS) and follow.malformed == 0
    for symbol, sync in follow.books.items():
        assert sync.book == simulator.books[symbol], sync
        assert not sync.lost and sync.snapshots_used == 1  # the newest snapshot, then on
    # It read the updates after the newest snapshots, not the whole topic.
    assert 0 < follow.updates_read < writer.updates_written - 300
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        policy = topic_config(admin, settings.topics.book_snapshots, "cleanup.policy")
    assert policy == "compact"


def test_a_lost_and_a_spoiled_update_are_noticed_and_the_next_snapshot_repairs_the_book() -> None:
    settings = book_settings()
    simulator = DepthSimulator("TTF-GAS", seed=8, updates_per_tick=2)
    book = simulator.books["TTF-GAS"]
    with BookWriter(settings, snapshot_every=10**9) as writer:  # snapshots only when asked
        for index, (_, updates) in enumerate(simulator.events(600)):
            if index == 200:
                updates = updates[1:]  # one update lost on the way
            elif index == 400:
                updates = [spoiled(updates[0]), *updates[1:]]
            writer.write(updates, book)
        writer.flush()
        # Before a snapshot covers the damage, the reader holds no book: it knows it lost it.
        lost = follow_books(settings).books["TTF-GAS"]
        assert lost.book is None and lost.lost["gap"] == 1, lost
        writer.snapshot(book)
        writer.flush()
    # A new reader starts from that snapshot: the damaged stretch is behind it.
    repaired = follow_books(settings).books["TTF-GAS"]
    assert repaired.book == book and repaired.snapshots_used == 1 and not repaired.lost


def test_with_no_snapshot_topic_yet_the_books_are_rebuilt_from_the_updates_alone() -> None:
    # The update topic may exist before the snapshot topic (a writer of its own, or the
    # snapshot topic's metadata not out yet): that is no error. Updates from a symbol's first
    # (seq 1, on an empty book) are a whole book by themselves.
    settings = book_settings()
    simulator = DepthSimulator(SYMBOLS, seed=5, updates_per_tick=2)
    updates = [update for _, step in simulator.events(100) for update in step]
    with admin_client(settings.kafka.bootstrap_servers, 10) as admin:
        ensure_topic(admin, settings.topics.book_updates, settings.topics.partitions)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for update in updates:
        producer.send(
            settings.topics.book_updates, key=update.symbol.encode(), value=update.to_json()
        )
    producer.flush()
    producer.close()
    follow = follow_books(settings)
    assert follow.updates_read == len(updates) and follow.snapshots_read == 0
    for symbol in SYMBOLS:
        assert follow.books[symbol].book == simulator.books[symbol]
