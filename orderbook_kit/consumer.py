"""Read a topic of ticks into a pandas DataFrame, always within a bounded time.

Reads without a consumer group by default (``assign`` + ``seek``): nothing is committed and no group
is left behind, so reading twice gives the same rows. Messages that are not valid ticks are counted
and kept out of the frame, never allowed to crash the reader.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from .config import Settings, load_settings
from .connection import client_timeouts, unreachable_error
from .decoding import DecodeFailure, decode_message
from .errors import OrderbookKitError
from .frames import ticks_frame

__all__ = ["ReadResult", "RecordsRead", "kafka_time", "open_consumer", "read_records", "read_ticks"]

log = logging.getLogger(__name__)

POLL_MS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class RecordsRead:
    """Records in the order they were read, and whether the read stopped at its time limit."""

    records: list[ConsumerRecord] = field(default_factory=list)
    received_at: list[datetime] = field(default_factory=list)  # when each record was polled
    timed_out: bool = False


@dataclass
class ReadResult:
    """The frame of valid ticks, plus what was skipped and why."""

    frame: pd.DataFrame
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # a few skipped messages, for a report
    timed_out: bool = False

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
        return text


def open_consumer(settings: Settings, **overrides: object) -> KafkaConsumer:
    """A KafkaConsumer with bounded connection time; BrokerUnreachableError if none answers."""
    config = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": "orderbook-kit-consumer",
        "enable_auto_commit": False,
        **client_timeouts(settings.client_timeout_s),
        **overrides,
    }
    try:
        return KafkaConsumer(**config)
    except KafkaError as exc:
        raise unreachable_error(settings.bootstrap_servers, settings.client_timeout_s) from exc


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
) -> RecordsRead:
    """Read the raw Kafka records of ``topic`` (key, value bytes, headers, offsets...).

    Where to start: the beginning (default), ``offsets`` ({partition: offset}), or ``from_time``
    (the first message at or after it, by Kafka timestamp). When to stop, whichever comes first:
    ``max_messages`` read, ``timeout_s`` elapsed, or - with ``until_end`` - every partition read
    up to where it ended when the read began. With a ``group_id`` the group's committed offsets
    are used and advanced (that is the only way this leaves a consumer group behind).
    """
    settings = settings or load_settings()
    topic = topic or settings.raw_topic
    deadline = time.monotonic() + timeout_s
    consumer = open_consumer(
        settings, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise OrderbookKitError(
                f"Topic {topic!r} does not exist at {settings.bootstrap_servers}. Produce to it "
                "first (the kit's producer creates it), or check the topic name."
            )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if group_id is None:
            consumer.assign(assigned)
            _seek(consumer, assigned, offsets, from_time)
        else:
            consumer.subscribe([topic])
        end = consumer.end_offsets(assigned) if until_end else {}
        return _drain(consumer, end, max_messages, deadline, commit=group_id is not None)
    finally:
        consumer.close()


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
) -> ReadResult:
    """Read ticks from ``topic`` into a DataFrame; the arguments are those of :func:`read_records`.

    Messages that are not valid ticks are counted by reason in ``skipped``, not put in the frame.
    """
    read = read_records(
        topic, settings=settings, max_messages=max_messages, timeout_s=timeout_s,
        offsets=offsets, from_time=from_time, group_id=group_id, until_end=until_end,
    )  # fmt: skip
    skipped: Counter[str] = Counter()
    examples: list[str] = []
    rows: list[dict] = []
    for record, received_at in zip(read.records, read.received_at, strict=True):
        decoded = decode_message(record.key, record.value)
        if isinstance(decoded, DecodeFailure):
            skipped[decoded.reason] += 1
            if len(examples) < 5:
                where = f"partition {record.partition} offset {record.offset}"
                examples.append(f"{where}: {decoded.reason}: {decoded.detail}")
            continue
        rows.append(
            {
                **decoded.model_dump(),
                "kafka_time": kafka_time(record),
                "consume_time": received_at,
                "partition": record.partition,
                "offset": record.offset,
            }
        )
    result = ReadResult(ticks_frame(rows), skipped, examples, timed_out=read.timed_out)
    if skipped:
        log.warning("skipped %d message(s) that are not valid ticks: %s", result.skipped_count,
                    "; ".join(examples))  # fmt: skip
    return result


def kafka_time(record: ConsumerRecord) -> datetime:
    """The record's Kafka timestamp (set by the producer: CreateTime) as an aware datetime."""
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


def _seek(
    consumer: KafkaConsumer,
    partitions: list[TopicPartition],
    offsets: dict[int, int] | None,
    from_time: datetime | None,
) -> None:
    if offsets is not None:
        for tp in partitions:
            if tp.partition in offsets:
                consumer.seek(tp, offsets[tp.partition])
            else:
                consumer.seek_to_end(tp)  # partitions not named: nothing from them
    elif from_time is not None:
        timestamp_ms = _ceil_millis(from_time)
        found = consumer.offsets_for_times({tp: timestamp_ms for tp in partitions})
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


def _drain(
    consumer: KafkaConsumer,
    end: dict[TopicPartition, int],
    max_messages: int | None,
    deadline: float,
    *,
    commit: bool,
) -> RecordsRead:
    read = RecordsRead()
    while max_messages is None or len(read.records) < max_messages:
        # A group consumer has no partitions until its first poll joins the group.
        caught_up = end and consumer.assignment() == set(end)
        if caught_up and all(consumer.position(tp) >= offset for tp, offset in end.items()):
            break
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            read.timed_out = True
            break
        limit = None if max_messages is None else max_messages - len(read.records)
        batches = consumer.poll(timeout_ms=min(POLL_MS, remaining_ms), max_records=limit)
        received_at = datetime.now(UTC)
        for records in batches.values():
            for record in records:
                read.records.append(record)
                read.received_at.append(received_at)
        if commit and batches:
            consumer.commit()
    return read
