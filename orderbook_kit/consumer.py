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
from datetime import UTC, datetime

import pandas as pd
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from .config import Settings, load_settings
from .connection import client_timeouts, unreachable_error
from .decoding import DecodeFailure, decode_tick
from .errors import OrderbookKitError
from .frames import empty_frame, ticks_frame

__all__ = ["ReadResult", "open_consumer", "read_ticks"]

log = logging.getLogger(__name__)

POLL_MS = 200


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
    """Read ticks from ``topic`` into a DataFrame.

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
                "first (the kit's producer creates it), or check ORDERBOOK_TOPIC."
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
        timestamp_ms = int(from_time.timestamp() * 1000)
        found = consumer.offsets_for_times({tp: timestamp_ms for tp in partitions})
        for tp in partitions:
            hit = found.get(tp)
            if hit is None:  # no message at or after from_time in this partition
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)
    else:
        consumer.seek_to_beginning(*partitions)


def _drain(
    consumer: KafkaConsumer,
    end: dict[TopicPartition, int],
    max_messages: int | None,
    deadline: float,
    *,
    commit: bool,
) -> ReadResult:
    rows: list[dict] = []
    result = ReadResult(empty_frame())
    seen = 0
    while max_messages is None or seen < max_messages:
        # A group consumer has no partitions until its first poll joins the group.
        caught_up = end and consumer.assignment() == set(end)
        if caught_up and all(consumer.position(tp) >= offset for tp, offset in end.items()):
            break
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            result.timed_out = True
            break
        limit = None if max_messages is None else max_messages - seen
        batches = consumer.poll(timeout_ms=min(POLL_MS, remaining_ms), max_records=limit)
        for records in batches.values():
            for record in records:
                seen += 1
                decoded = decode_tick(record.value)
                if isinstance(decoded, DecodeFailure):
                    result.skipped[decoded.reason] += 1
                    if len(result.examples) < 5:
                        result.examples.append(f"offset {record.offset}: {decoded.detail}")
                    continue
                rows.append(
                    {
                        **decoded.model_dump(),
                        "kafka_time": datetime.fromtimestamp(record.timestamp / 1000, UTC),
                        "consume_time": datetime.now(UTC),
                        "partition": record.partition,
                        "offset": record.offset,
                    }
                )
        if commit and batches:
            consumer.commit()
    if result.skipped:
        log.warning("skipped %d message(s) that are not valid ticks: %s", result.skipped_count,
                    "; ".join(result.examples))  # fmt: skip
    result.frame = ticks_frame(rows)
    return result
