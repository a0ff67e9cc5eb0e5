"""Read a topic of ticks into a pandas DataFrame, always within a bounded time.

Every call the read makes to kafka-python (poll, position, end offsets) gets what is left of
the read's ``timeout_s``, so a read returns by then even if the broker goes away mid-read.

Reads without a consumer group by default (``assign`` + ``seek``): nothing is committed and no group
is left behind, so reading twice gives the same rows. Messages that are not valid ticks are counted
and kept out of the frame, never allowed to crash the reader.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from orderbook_kit.errors import OrderbookKitError, TopicNotFoundError
from orderbook_kit.kafka.admin import client_timeouts, unreachable_error
from orderbook_kit.kafka.confluent.reader import read_records_confluent
from orderbook_kit.kafka.log_offsets import end_offsets_of
from orderbook_kit.kafka.records import RecordsRead
from orderbook_kit.market.decoding import DecodeFailure, decode_message
from orderbook_kit.market.frames import KAFKA_COLUMNS, columns_frame
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.settings.timing import POLL_MS

__all__ = ["ReadResult", "RecordsRead", "kafka_time", "open_consumer", "read_records", "read_ticks"]

log = logging.getLogger(__name__)

# Records one poll of a read may return. kafka-python's default, 500, made reading a topic
# about 5x slower than fetching it (measured: 21k against 105k records/s on this machine).
READ_POLL_RECORDS = 5000
OUTAGE_PAUSE_S = 0.5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ReadResult:
    """The frame of valid ticks, plus what was skipped and why."""

    frame: pd.DataFrame
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # a few skipped messages, for a report
    timed_out: bool = False
    outage: str | None = None  # the last broker error waited out during the read, if any

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def report(self) -> str:
        text = f"{len(self.frame)} tick(s) read"
        if self.skipped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            text += f"; {self.skipped_count} message(s) skipped ({reasons})"
        if self.timed_out:
            text += "; stopped at the time limit"
            if self.outage:
                text += f" (the broker was unreachable: {self.outage})"
        return text


READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"
ISOLATION_LEVELS = (READ_COMMITTED, READ_UNCOMMITTED)


def open_consumer(settings: Settings, **overrides: object) -> KafkaConsumer:
    """A KafkaConsumer with bounded connection time; BrokerUnreachableError if none answers.

    It reads committed data only (``isolation_level="read_committed"``, kafka-python's default
    is ``read_uncommitted``): records of a transaction that is still open, or was aborted, are
    never returned, and the log's end for it is the *last stable offset* (where the oldest open
    transaction begins), not the high watermark.
    """
    config = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "client_id": "orderbook-kit-consumer",
        "enable_auto_commit": False,
        "isolation_level": READ_COMMITTED,
        **client_timeouts(settings.kafka.client_timeout_s),
        **overrides,
    }
    try:
        return KafkaConsumer(**config)
    except KafkaError as exc:
        raise unreachable_error(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) from exc


def read_records(
    topic: str | None = None,
    *,
    settings: Settings | None = None,
    max_messages: int | None = None,
    timeout_s: float = 10.0,
    offsets: dict[int, int] | None = None,
    from_time: datetime | None = None,
    group_id: str | None = None,
    until_end: bool = True,
    until: Callable[[], bool] | None = None,
    partitions: Collection[int] | None = None,
    isolation_level: str = READ_COMMITTED,
) -> RecordsRead:
    """Read the raw Kafka records of ``topic`` (key, value bytes, headers, offsets...): of every
    partition, or of ``partitions`` only.

    Where to start: the beginning (default), ``offsets`` ({partition: offset}), ``from_time``
    (the first message at or after it, by Kafka timestamp), or - with a ``group_id`` - the
    group's committed offsets, which the read then advances (the only way this leaves a
    consumer group behind). When to stop, whichever comes first: ``max_messages`` read,
    ``timeout_s`` elapsed, or the end of the log - as it was when the read began
    (``until_end``), or as it is once ``until()`` returns True (say, a producer in the
    background has finished: ``until=writer.finished``).

    A broker outage during the read is ridden out until ``timeout_s``; the result then says
    it stopped at the time limit, and why.

    Only committed data is read (``isolation_level="read_committed"``): what the quality gate's
    transactions committed, never what an aborted or still open one wrote. Pass
    ``"read_uncommitted"`` to see every record in the log, aborted ones too (notebook 06).
    """
    settings = settings or load_settings()
    topic = topic or settings.topics.raw
    _check_where_to_start(offsets, from_time, group_id, partitions)
    if isolation_level not in ISOLATION_LEVELS:
        raise OrderbookKitError(
            f"isolation_level={isolation_level!r}: use 'read_committed' (the default: what "
            "transactions committed) or 'read_uncommitted' (every record, aborted ones too)"
        )
    deadline = time.monotonic() + timeout_s
    if settings.kafka.client == "confluent":
        return read_records_confluent(
            topic,
            settings,
            deadline=deadline,
            batch=READ_POLL_RECORDS,
            max_messages=max_messages,
            offsets=offsets,
            from_ms=None if from_time is None else _ceil_millis(from_time),
            group_id=group_id,
            until_end=until_end,
            until=until,
            partitions=partitions,
            isolation_level=isolation_level,
        )
    consumer = open_consumer(
        settings,
        isolation_level=isolation_level,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=READ_POLL_RECORDS,
    )
    try:
        existing = consumer.partitions_for_topic(topic)
        if not existing:
            raise TopicNotFoundError(
                f"Topic {topic!r} does not exist at {settings.kafka.bootstrap_servers}. Produce to "
                "it "
                "first (the kit's producer creates it), or check the topic name."
            )
        wanted = existing if partitions is None else existing & set(partitions)
        assigned = [TopicPartition(topic, p) for p in sorted(wanted)]
        if group_id is None:
            consumer.assign(assigned)
            _seek(consumer, assigned, offsets, from_time, timeout_s)
        else:
            consumer.subscribe([topic])
        reader = _Reader(consumer, assigned, deadline, commit=group_id is not None)
        return reader.drain(max_messages, until_end=until_end, until=until)
    finally:
        consumer.close()


def _check_where_to_start(
    offsets: dict[int, int] | None,
    from_time: datetime | None,
    group_id: str | None,
    partitions: Collection[int] | None,
) -> None:
    """Refuse start positions that contradict each other, rather than silently pick one."""
    if offsets is not None and from_time is not None:
        raise OrderbookKitError(
            "Pass offsets or from_time, not both: each says where the read starts."
        )
    if group_id is not None and partitions is not None:
        raise OrderbookKitError(
            f"A read with group_id={group_id!r} reads the partitions the group gives it, so "
            "partitions would be ignored. Drop one of the two."
        )
    if group_id is not None and (offsets is not None or from_time is not None):
        chosen = "offsets" if offsets is not None else "from_time"
        raise OrderbookKitError(
            f"A read with group_id={group_id!r} starts at the group's committed offsets, so "
            f"{chosen} would be ignored. Drop group_id to replay from {chosen}, or drop "
            f"{chosen} to read as the group."
        )


def read_ticks(
    topic: str | None = None,
    *,
    settings: Settings | None = None,
    max_messages: int | None = None,
    timeout_s: float = 10.0,
    offsets: dict[int, int] | None = None,
    from_time: datetime | None = None,
    group_id: str | None = None,
    until_end: bool = True,
    until: Callable[[], bool] | None = None,
    isolation_level: str = READ_COMMITTED,
) -> ReadResult:
    """Read ticks from ``topic`` into a DataFrame; the arguments are those of :func:`read_records`
    (committed data only, unless ``isolation_level="read_uncommitted"``).

    Messages that are not valid ticks are counted by reason in ``skipped``, not put in the frame.
    """
    with cyclic_gc_paused():
        return _read_ticks(
            topic,
            settings=settings,
            max_messages=max_messages,
            timeout_s=timeout_s,
            offsets=offsets,
            from_time=from_time,
            group_id=group_id,
            until_end=until_end,
            until=until,
            isolation_level=isolation_level,
        )


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a bulk read, then as it was.

    A read makes a few objects per tick, none of which refer back to each other: reference
    counting frees them all, and the cyclic collector only walks the growing heap again and again
    (measured: a 150,000-tick read ran at 58k ticks/s with it, 111k/s without, on librdkafka).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_ticks(topic: str | None, **arguments: Any) -> ReadResult:
    read = read_records(topic, **arguments)
    skipped: Counter[str] = Counter()
    examples: list[str] = []
    ticks: list[dict[str, Any]] = []  # each valid tick's fields (its __dict__: no copy made)
    where: list[tuple[int, datetime, int, int]] = []  # and where and when Kafka stored it
    for (key, value, timestamp, partition, offset), received_at in zip(
        read.fields(), read.received_at, strict=True
    ):
        decoded = decode_message(key, value)
        if isinstance(decoded, DecodeFailure):
            skipped[decoded.reason] += 1
            if len(examples) < 5:
                place = f"partition {partition} offset {offset}"
                examples.append(f"{place}: {decoded.reason}: {decoded.detail}")
            continue
        ticks.append(decoded.__dict__)
        where.append((timestamp, received_at, partition, offset))
    # Then column by column, one list per field: neither a dict per row nor appends per field
    # in the loop (measured: about a third of a read's time went into per-tick dicts).
    columns: dict[str, Any] = {name: [tick[name] for tick in ticks] for name in Tick.model_fields}
    for index, name in enumerate(KAFKA_COLUMNS):
        columns[name] = [row[index] for row in where]
    # Kafka timestamps are milliseconds since the epoch: converted all at once. A producer sets
    # them, and a broker configured to accept any may hold one beyond what a microsecond column
    # can carry (year 294,247): that one is NaT, and its tick is still read.
    columns["kafka_time"] = pd.to_datetime(
        columns["kafka_time"], unit="ms", utc=True, errors="coerce"
    )
    frame = columns_frame(columns)
    result = ReadResult(frame, skipped, examples, timed_out=read.timed_out, outage=read.outage)
    if skipped:
        shown = "; ".join(examples)
        count = result.skipped_count
        log.warning("skipped %d message(s) that are not valid ticks: %s", count, shown)
    return result


def kafka_time(record: ConsumerRecord) -> datetime | None:
    """The record's Kafka timestamp (set by the producer: CreateTime) as an aware datetime, or
    None for one no datetime can hold (a broker may be configured to accept any)."""
    try:
        return datetime.fromtimestamp(record.timestamp / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _seek(
    consumer: KafkaConsumer,
    partitions: list[TopicPartition],
    offsets: dict[int, int] | None,
    from_time: datetime | None,
    timeout_s: float,
) -> None:
    if offsets is not None:
        for tp in partitions:
            if tp.partition in offsets:
                consumer.seek(tp, offsets[tp.partition])
            else:
                consumer.seek_to_end(tp)  # partitions not named: nothing from them
    elif from_time is not None:
        timestamp_ms = _ceil_millis(from_time)
        found = consumer.offsets_for_times(
            {tp: timestamp_ms for tp in partitions}, timeout_ms=int(timeout_s * 1000)
        )
        for tp in partitions:
            hit = found.get(tp)
            if hit is None:  # no message at or after from_time in this partition
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)
    else:
        consumer.seek_to_beginning(*partitions)


def _ceil_millis(moment: datetime) -> int:
    """Kafka timestamps are whole milliseconds: "at or after 12:00:00.0004" means from .001."""
    if moment.tzinfo is None:
        raise OrderbookKitError(
            f"from_time {moment} has no time zone; pass an aware datetime, e.g. "
            "datetime(2026, 1, 1, 12, tzinfo=UTC)"
        )
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


class _Reader:
    """The poll loop of one read: every call in it is bounded by the read's deadline."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        partitions: list[TopicPartition],
        deadline: float,
        *,
        commit: bool,
    ) -> None:
        self.consumer = consumer
        self.partitions = partitions
        self.deadline = deadline
        self.commit = commit
        self.read = RecordsRead()

    def drain(
        self, max_messages: int | None, *, until_end: bool, until: Callable[[], bool] | None
    ) -> RecordsRead:
        read = self.read
        # Read up to the end of the log as it is when we look: at once with until_end, or as
        # soon as until() says so. (If the broker does not answer then, look again next turn.)
        end_wanted = until_end and until is None
        end: dict[TopicPartition, int] | None = None
        while max_messages is None or len(read.records) < max_messages:
            if self._remaining_ms() <= 0:
                read.timed_out = True
                break
            end_wanted = end_wanted or (until is not None and until())
            if end_wanted and end is None:
                end = self._end_offsets()
            if end is not None and self._reached(end):
                break
            limit = None if max_messages is None else max_messages - len(read.records)
            self._poll_once(limit)
        return read

    def _poll_once(self, limit: int | None) -> None:
        try:
            batches = self.consumer.poll(
                timeout_ms=min(POLL_MS, max(self._remaining_ms(), 1)), max_records=limit
            )
            if self.commit and batches:
                self.consumer.commit()
        except KafkaError as exc:
            self._outage(exc)
            return
        received_at = datetime.now(UTC)
        for records in batches.values():
            for record in records:
                self.read.kafka_records.append(record)
                self.read.received_at.append(received_at)

    def _end_offsets(self) -> dict[TopicPartition, int] | None:
        try:
            return end_offsets_of(self.consumer, self.partitions, self._remaining_ms())
        except KafkaError as exc:
            self._outage(exc)
            return None

    def _reached(self, end: dict[TopicPartition, int]) -> bool:
        """Has every partition been read up to ``end``? (Bounded: position() can block.)"""
        # A group consumer has no partitions until its first poll joins the group.
        if self.consumer.assignment() != set(end):
            return False
        try:
            for tp, offset in end.items():
                position = self.consumer.position(tp, timeout_ms=self._remaining_ms())
                if position is None or position < offset:
                    return False
        except KafkaError as exc:
            self._outage(exc)
            return False
        return True

    def _outage(self, exc: KafkaError) -> None:
        """A retriable error (the broker restarting) is waited out until the deadline."""
        if not exc.retriable:
            raise OrderbookKitError(f"Reading from Kafka failed: {exc}. See `make logs`.") from exc
        if self.read.outage is None:
            log.warning("the broker is unreachable (%s); waiting for it", exc)
        self.read.outage = str(exc)
        time.sleep(min(OUTAGE_PAUSE_S, max(self._remaining_ms(), 0) / 1000))

    def _remaining_ms(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)
