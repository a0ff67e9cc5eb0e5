"""Another client, knowing only the README: a reader written here with confluent-kafka, json and
zlib - none of the kit's book code - rebuilds every symbol's book from the book service's two
topics, following the README's "The order book on Kafka" word for word, and gets the exchange's
true book. If the README and the topics ever disagree, this test says so."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

import confluent_kafka
import pytest

from orderbook_kit import BookFaultInjector, DepthSimulator, load_settings
from orderbook_kit.book import BookService, publish_exchange_feed

pytestmark = pytest.mark.kafka

SYMBOLS = ["TTF-GAS", "NBP-GAS", "EUA-CO2"]


class ReadmeBook:
    """One symbol's book as the README describes it: levels in whole ticks, a seq."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.tick_size = snapshot["tick_size"]
        self.seq = snapshot["seq"]
        self.bids = {self.ticks(price): size for price, size in snapshot["bids"]}
        self.asks = {self.ticks(price): size for price, size in snapshot["asks"]}
        assert self.checksum() == snapshot["checksum"]

    def ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    def apply(self, update: dict[str, Any]) -> bool:
        """The next update applied and checked: False if the book is now wrong."""
        if update["seq"] != self.seq + 1:
            return False
        for change in update["changes"]:
            side = self.bids if change["side"] == "bid" else self.asks
            price = self.ticks(change["price"])
            if change["size"] == 0:
                side.pop(price, None)
            else:
                side[price] = change["size"]
        self.seq = update["seq"]
        crossed = self.bids and self.asks and max(self.bids) >= min(self.asks)
        return not crossed and self.checksum() == update["checksum"]

    def checksum(self) -> int:
        bids = sorted(self.bids.items(), reverse=True)[:10]
        asks = sorted(self.asks.items())[:10]
        text = ",".join([f"b{p}:{s}" for p, s in bids] + [f"a{p}:{s}" for p, s in asks])
        return zlib.crc32(text.encode("ascii"))


def read_partition(
    bootstrap: str, topic: str, partition: int, start: int
) -> list[confluent_kafka.Message]:
    """Every committed record of one partition from ``start`` to its end."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"readme-reader-{uuid.uuid4().hex[:6]}",  # never commits
            "enable.auto.commit": False,
            "isolation.level": "read_committed",  # the service writes in transactions
        }
    )
    try:
        _, end = consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, partition), timeout=10
        )
        consumer.assign([confluent_kafka.TopicPartition(topic, partition, max(start, 0))])
        records: list[confluent_kafka.Message] = []
        position = max(start, 0)
        for _ in range(10_000):  # bounded: far more polls than a test's few thousand records
            if position >= end:
                break
            message = consumer.poll(1.0)
            if message is None:
                # Past the last record, a transaction's commit marker is no message: ask where
                # the consumer is.
                (at,) = consumer.position([confluent_kafka.TopicPartition(topic, partition)])
                position = max(position, at.offset)
                continue
            assert message.error() is None, message.error()
            records.append(message)
            position = message.offset() + 1
        return records
    finally:
        consumer.close()


def test_a_reader_written_from_the_readme_alone_rebuilds_the_true_books() -> None:
    settings = load_settings().isolated(f"readme-{uuid.uuid4().hex[:10]}")
    exchange = DepthSimulator(SYMBOLS, seed=12, updates_per_tick=3)
    faults = BookFaultInjector({"drop": 0.003, "corrupt": 0.003, "repeat": 0.003}, seed=3)
    feed = exchange.exchange_feed(900, snapshot_every=200)
    publish_exchange_feed(settings, feed, injector=faults)
    publish_exchange_feed(settings, exchange.exchange_feed(400, snapshot_every=200))
    service_settings = settings.replace(book={"snapshot_every": 300})
    BookService(service_settings).run(idle_s=3)
    # A last stretch, kept by a restarted service (it rebuilds its books from its own two topics):
    # fewer updates than a snapshot needs, so a reader must apply them after the newest one.
    publish_exchange_feed(settings, exchange.exchange_feed(60, snapshot_every=10**6))
    BookService(service_settings).run(idle_s=3)

    bootstrap = settings.kafka.bootstrap_servers
    topics = settings.topics
    partitions = settings.topics.partitions
    # The newest snapshot of each symbol.
    newest: dict[str, dict[str, Any]] = {}
    for partition in range(partitions):
        for message in read_partition(bootstrap, topics.book_snapshots, partition, 0):
            snapshot = json.loads(message.value())
            assert message.key().decode() == snapshot["symbol"]
            held = newest.get(snapshot["symbol"])
            if held is None or snapshot["seq"] > held["seq"]:
                newest[snapshot["symbol"]] = snapshot
    assert set(newest) == set(SYMBOLS)
    books = {symbol: ReadmeBook(snapshot) for symbol, snapshot in newest.items()}
    # The updates after them, partition by partition.
    applied = 0
    starts: dict[int, int] = {}
    for snapshot in newest.values():
        partition, after = snapshot["update_partition"], snapshot["update_offset"] + 1
        starts[partition] = min(starts.get(partition, after), after)
    for partition, start in starts.items():
        for message in read_partition(bootstrap, topics.book_updates, partition, start):
            update = json.loads(message.value())
            book = books[update["symbol"]]
            if update["seq"] <= book.seq:
                continue
            assert book.apply(update), f"{update['symbol']} wrong after {update['seq']}"
            applied += 1
    assert applied > len(SYMBOLS) * 10  # the checks above ran on many updates, not none
    for symbol, book in books.items():
        true = exchange.books[symbol]
        assert book.seq == true.seq
        assert book.bids == true.bids and book.asks == true.asks
