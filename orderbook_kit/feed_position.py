"""Where a feed stopped: the last tick of each symbol in the topic it publishes to.

A real feed handler that reconnects does not start its sequence numbers again: the exchange's
numbering goes on, and the handler continues from the last message it published. The kit's
exchange is the simulator, which lives only as long as ``python -m orderbook_kit.ingest`` runs; so
ingest, before it sends anything, reads back where its own feed stopped - the last tick of each
symbol in the raw topic - and the simulator continues from there: the next seq, the same price.
A restarted feed then continues the very sequence the quality gate remembers, and its first tick
is clean (a feed that started at seq 0 again was rejected as ``out_of_order`` for minutes).

A symbol's ticks all sit in one partition (the key decides it, by the same murmur2 hash in both
clients), so only that partition is read, backwards from its end in growing windows, until the
symbol's newest tick is found or the partition's beginning is reached. Every read is bounded by
``timeout_s``.

What is trusted: the raw topic. Anyone who may write to it may also move the feed's position (a
valid tick with a huge seq); restricting who writes to it is the job of Kafka's ACLs.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from .config import Settings
from .consumer import open_consumer
from .decoding import decode_message
from .errors import OrderbookKitError
from .models import MAX_SEQ, Tick

__all__ = ["FIRST_WINDOW", "FeedPositionError", "last_ticks", "partition_of"]

log = logging.getLogger(__name__)

# Records read from a partition's end at first; each further window back is four times larger,
# so a symbol that ticks often is found in one small read and a rare one in a few.
FIRST_WINDOW = 2_000
_GROWTH = 4
_POLL_MS = 200


class FeedPositionError(OrderbookKitError):
    """Where a feed stopped could not be read (in time), or the feed cannot continue from it."""


def partition_of(symbol: str, partitions: int) -> int:
    """The partition a message keyed ``symbol`` goes to: the Java client's default partitioner,
    which the kit's producers use with either client."""
    return (murmur2(symbol.encode()) & 0x7FFFFFFF) % partitions


def last_ticks(
    settings: Settings, topic: str, symbols: Iterable[str], *, timeout_s: float
) -> dict[str, Tick]:
    """The newest valid tick of each of ``symbols`` in ``topic`` (the highest seq in the newest
    stretch of the log that has the symbol); a symbol that never ticked there is left out.

    FeedPositionError if the reads take longer than ``timeout_s`` in all, or a symbol's last seq
    is the largest a seq can be (its feed cannot go on).
    """
    wanted = sorted(set(symbols))
    deadline = time.monotonic() + timeout_s
    consumer = open_consumer(settings, client_id="orderbook-kit-feed-position")
    try:
        count = len(consumer.partitions_for_topic(topic) or ())
        if count == 0:  # no such topic yet: every feed starts at seq 0
            return {}
        by_partition: dict[int, set[str]] = defaultdict(set)
        for symbol in wanted:
            by_partition[partition_of(symbol, count)].add(symbol)
        found: dict[str, Tick] = {}
        for partition, names in sorted(by_partition.items()):
            tp = TopicPartition(topic, partition)
            found |= _scan_backwards(consumer, tp, names, deadline, timeout_s)
    except KafkaError as exc:
        raise FeedPositionError(
            f"Could not read where the feed stopped in {topic!r} ({exc}). Check the broker "
            "(`make status`) and start again."
        ) from exc
    finally:
        consumer.close()
    for symbol, tick in found.items():
        if tick.seq >= MAX_SEQ:
            raise FeedPositionError(
                f"The last tick of {symbol} in {topic!r} has seq {tick.seq:,}, the largest a seq "
                "can be, so its feed cannot continue. Publish to a new topic (ORDERBOOK_TOPIC, or "
                "`--topic`)."
            )
    return found


def _scan_backwards(
    consumer: KafkaConsumer, tp: TopicPartition, symbols: set[str], deadline: float, budget: float
) -> dict[str, Tick]:
    consumer.assign([tp])
    request_ms = _left_ms(deadline, budget, tp)
    begin = consumer.beginning_offsets([tp], timeout_ms=request_ms)[tp]
    stop = consumer.end_offsets([tp], timeout_ms=request_ms)[tp]
    found: dict[str, Tick] = {}
    window = FIRST_WINDOW
    while stop > begin and not symbols <= found.keys():
        start = max(begin, stop - window)
        newest = _newest_in(consumer, tp, start, stop, symbols - found.keys(), deadline, budget)
        found |= newest
        stop, window = start, window * _GROWTH
    return found


def _newest_in(
    consumer: KafkaConsumer,
    tp: TopicPartition,
    start: int,
    stop: int,
    symbols: set[str],
    deadline: float,
    budget: float,
) -> dict[str, Tick]:
    """The highest-seq valid tick of each of ``symbols`` in offsets [start, stop) of ``tp``."""
    consumer.seek(tp, start)
    newest: dict[str, Tick] = {}
    position = start
    while position < stop:
        left_ms = _left_ms(deadline, budget, tp)
        batches = consumer.poll(timeout_ms=min(_POLL_MS, left_ms))
        for record in batches.get(tp, ()):
            position = record.offset + 1
            if record.offset >= stop:
                break
            tick = decode_message(record.key, record.value)
            if isinstance(tick, Tick) and tick.symbol in symbols:
                kept = newest.get(tick.symbol)
                if kept is None or tick.seq > kept.seq:
                    newest[tick.symbol] = tick
        # A partition whose end is an aborted transaction's marker has no record at stop - 1.
        position = max(position, consumer.position(tp, timeout_ms=left_ms) or position)
    return newest


def _left_ms(deadline: float, budget: float, tp: TopicPartition) -> int:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FeedPositionError(
            f"Could not read where the feed stopped in {tp.topic!r} partition {tp.partition} "
            f"within {budget:g} s. Check the broker (`make status`), or allow a longer wait "
            "with KAFKA_DELIVERY_TIMEOUT_S."
        )
    return max(1, int(left * 1000))
