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

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.offsets import end_offsets
from orderbook_kit.kafka.partitioning import partition_of
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.market.book_decoding import decode_book_message
from orderbook_kit.market.book_messages import BookSnapshot, BookUpdate
from orderbook_kit.market.decoding import decode_message
from orderbook_kit.market.tick import MAX_SEQ, Tick
from orderbook_kit.settings.environment import Settings

__all__ = ["FIRST_WINDOW", "FeedPositionError", "last_book_seqs", "last_ticks"]

# Records read from a partition's end at first; each further window back is four times larger,
# so a symbol that ticks often is found in one small read and a rare one in a few.
FIRST_WINDOW = 2_000
_GROWTH = 4


class FeedPositionError(OrderbookKitError):
    """Where a feed stopped could not be read (in time), or the feed cannot continue from it."""


def last_ticks(
    settings: Settings, topic: str, symbols: Iterable[str], *, timeout_s: float
) -> dict[str, Tick]:
    """The newest valid tick of each of ``symbols`` in ``topic`` (the highest seq in the newest
    stretch of the log that has the symbol); a symbol that never ticked there is left out.

    FeedPositionError if the reads take longer than ``timeout_s`` in all, or a symbol's last seq
    is the largest a seq can be (its feed cannot go on).
    """
    found = _newest(settings, topic, symbols, timeout_s, _tick_of)
    for symbol, tick in found.items():
        if tick.seq >= MAX_SEQ:
            raise FeedPositionError(
                f"The last tick of {symbol} in {topic!r} has seq {tick.seq:,}, the largest a seq "
                "can be, so its feed cannot continue. Publish to a new topic (ORDERBOOK_TOPIC, or "
                "`--topic`)."
            )
    return found


def last_book_seqs(
    settings: Settings, topic: str, symbols: Iterable[str], *, timeout_s: float
) -> dict[str, int]:
    """The highest seq of each of ``symbols`` among the valid updates and snapshots of the book's
    raw ``topic`` (in the newest stretch of the log that has the symbol); a symbol never seen
    there is left out. FeedPositionError as :func:`last_ticks`."""
    found = _newest(settings, topic, symbols, timeout_s, _book_message_of)
    return {symbol: message.seq for symbol, message in found.items()}


class _Sequenced(Protocol):
    symbol: str
    seq: int


M = TypeVar("M", bound=_Sequenced)


def _tick_of(record: ConsumerRecord) -> Tick | None:
    tick = decode_message(record.key, record.value)
    return tick if isinstance(tick, Tick) else None


def _book_message_of(record: ConsumerRecord) -> BookUpdate | BookSnapshot | None:
    message = decode_book_message(record.headers, record.key, record.value)
    return message if isinstance(message, BookUpdate | BookSnapshot) else None


def _newest(
    settings: Settings,
    topic: str,
    symbols: Iterable[str],
    timeout_s: float,
    read: Callable[[ConsumerRecord], M | None],
) -> dict[str, M]:
    deadline = time.monotonic() + timeout_s
    ends = end_offsets(topic, settings)
    if not ends:  # no such topic yet: every feed starts at seq 0
        return {}
    by_partition: dict[int, set[str]] = defaultdict(set)
    for symbol in set(symbols):
        by_partition[partition_of(symbol, len(ends))].add(symbol)
    found: dict[str, M] = {}
    for partition, names in sorted(by_partition.items()):
        found |= _scan_backwards(settings, topic, partition, ends[partition], names, deadline, read)
    return found


def _scan_backwards(
    settings: Settings,
    topic: str,
    partition: int,
    end: int,
    symbols: set[str],
    deadline: float,
    read_one: Callable[[ConsumerRecord], M | None],
) -> dict[str, M]:
    """The newest message of each of ``symbols`` in ``partition`` (``read_one`` makes one of a
    record, or None), read window by window from ``end`` back to the partition's first record."""
    found: dict[str, M] = {}
    stop, window = end, FIRST_WINDOW
    while stop > 0 and not symbols <= found.keys():
        start = max(0, stop - window)
        left = deadline - time.monotonic()
        read = read_records(
            topic,
            settings=settings,
            partitions=[partition],
            offsets={partition: start},  # below the log's start (retention): from its start
            max_messages=stop - start,
            timeout_s=max(left, 0.001),
        )
        if read.timed_out:
            raise FeedPositionError(
                f"Could not read where the feed stopped in {topic!r} partition {partition} "
                f"within the time allowed ({read.outage or 'the broker answered too slowly'}). "
                "Check the broker (`make status`), or allow a longer wait with "
                "KAFKA_DELIVERY_TIMEOUT_S."
            )
        records = [r for r in read.records if r.offset < stop]
        wanted, newest = symbols - found.keys(), dict[str, M]()  # not found further on
        for record in records:
            message = read_one(record)
            if message is not None and message.symbol in wanted:
                kept = newest.get(message.symbol)
                if kept is None or message.seq > kept.seq:
                    newest[message.symbol] = message
        found |= newest
        if not records or records[0].offset > start:
            break  # this window reached the first record the partition still holds
        stop, window = start, window * _GROWTH
    return found
