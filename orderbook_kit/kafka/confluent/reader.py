"""``read_records`` on confluent-kafka: the same positions, stops and bounds as kafka-python's.

The caller (:func:`orderbook_kit.kafka.reader.read_records`) has checked the arguments and turned
``from_time`` into milliseconds; this module only reads. Every call is bounded by the read's
deadline. librdkafka reconnects by itself when a broker goes away, so an outage shows here as
polls that return nothing and as errors reported through ``error_cb``: the read waits until its
deadline and then says it stopped at the time limit, and why - as the kafka-python read does.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from orderbook_kit.errors import OrderbookKitError, TopicNotFoundError
from orderbook_kit.kafka.admin import unreachable_error
from orderbook_kit.kafka.confluent.consumer import ready_messages
from orderbook_kit.kafka.confluent.loading import LIBRDKAFKA_LOG, confluent_kafka
from orderbook_kit.kafka.records import RecordsRead
from orderbook_kit.settings.environment import Settings

__all__ = ["read_records_confluent"]

log = logging.getLogger(__name__)

POLL_S = 0.2
FETCH_WAIT_MS = 100


def read_records_confluent(
    topic: str,
    settings: Settings,
    *,
    deadline: float,
    batch: int,
    max_messages: int | None,
    offsets: dict[int, int] | None,
    from_ms: int | None,
    group_id: str | None,
    until_end: bool,
    until: Callable[[], bool] | None,
    partitions: Collection[int] | None,
    isolation_level: str,
) -> RecordsRead:
    """Read ``topic`` with librdkafka; the arguments mean what they mean for ``read_records``."""
    module = confluent_kafka()
    read = RecordsRead()

    def remember_outage(error: Any) -> None:  # librdkafka's background errors (broker down...)
        if read.outage is None:
            log.warning("the broker is unreachable (%s); waiting for it", error)
        read.outage = str(error)

    consumer = module.Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "client.id": "orderbook-kit-consumer",
            # librdkafka needs a group id even to assign; with no commits, nothing is created.
            "group.id": group_id or f"orderbook-kit-read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation_level,
            # An event at each partition's end, with the end's offset: past the commit markers
            # of transactions, which are offsets no record is ever returned for.
            "enable.partition.eof": True,
            "socket.timeout.ms": max(int(settings.kafka.client_timeout_s * 1000), 1000),
            "reconnect.backoff.max.ms": 1000,
            # The broker answers a connection's requests in order, so a watermark asked for while
            # a fetch waits for data (librdkafka's default: up to 500 ms) waits behind it.
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "logger": LIBRDKAFKA_LOG,
            "error_cb": remember_outage,
        }
    )
    try:
        reader = _Reader(module, consumer, topic, read, deadline, settings)
        reader.start(partitions, offsets, from_ms, group_id, end_now=until_end and until is None)
        reader.drain(batch, max_messages, until_end=until_end, until=until)
    finally:
        consumer.close()
    return read


class _Reader:
    """One read's poll loop; the positions it reached are tracked from the records it got."""

    def __init__(
        self,
        module: Any,
        consumer: Any,
        topic: str,
        read: RecordsRead,
        deadline: float,
        settings: Settings,
    ) -> None:
        self.module = module
        self.consumer = consumer
        self.topic = topic
        self.read = read
        self.deadline = deadline
        self.settings = settings
        self.group = False
        self.partitions: list[int] = []
        self.starts: dict[int, int] = {}  # where each partition's read began (assign only)
        self.positions: dict[int, int] = {}  # the next offset of each partition, once read
        self.end: dict[int, tuple[int, int]] | None = None  # (first, next) offsets where to stop

    def start(
        self,
        partitions: Collection[int] | None,
        offsets: dict[int, int] | None,
        from_ms: int | None,
        group_id: str | None,
        *,
        end_now: bool,
    ) -> None:
        """Subscribe or assign; with ``end_now``, note where the partitions end first: asked
        before any fetch is under way, the broker answers at once."""
        existing = self._existing_partitions()
        wanted = existing if partitions is None else existing & set(partitions)
        self.partitions = sorted(wanted)
        if end_now:
            self.end = self._watermarks()
        if group_id is not None:
            self.group = True
            self.consumer.subscribe([self.topic])
            return
        self.starts = self._start_offsets(offsets, from_ms)
        TopicPartition = self.module.TopicPartition
        self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in self.starts.items()])

    def drain(
        self,
        batch: int,
        max_messages: int | None,
        *,
        until_end: bool,
        until: Callable[[], bool] | None,
    ) -> None:
        read = self.read
        end_wanted = until_end and until is None
        end = self.end
        while max_messages is None or len(read.records) < max_messages:
            left = self._left()
            if left <= 0:
                read.timed_out = True
                return
            end_wanted = end_wanted or (until is not None and until())
            if end_wanted and end is None:
                end = self._watermarks()
            if end is not None and self._reached(end):
                return
            limit = batch if max_messages is None else min(batch, max_messages - len(read.records))
            self._consume(limit, min(POLL_S, left))

    def _consume(self, limit: int, timeout_s: float) -> None:
        messages = ready_messages(self.consumer, limit, timeout_s)
        if not messages:
            return
        received_at = datetime.now(UTC)
        read, positions = self.read, self.positions
        kept, stamps = read.confluent_messages, read.received_at
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == self.module.KafkaError._PARTITION_EOF:
                    partition = message.partition()
                    positions[partition] = max(positions.get(partition, 0), message.offset())
                    continue
                self._failed(error)
                continue
            kept.append(message)
            stamps.append(received_at)
            positions[message.partition()] = message.offset() + 1
        if self.group:
            self._call(lambda: self.consumer.commit(asynchronous=False))

    def _failed(self, error: Any) -> None:
        if error.code() != self.module.KafkaError._PARTITION_EOF:
            self._outage(error)

    def _outage(self, error: Any) -> None:
        """A transient error is noted as the read's outage (and waited out); any other ends it."""
        if not (error.retriable() or error.code() < 0):  # librdkafka's local errors are transient
            raise OrderbookKitError(f"Reading from Kafka failed: {error}. See `make logs`.")
        self.read.outage = str(error)

    def _existing_partitions(self) -> set[int]:
        try:
            # Bounded like kafka-python's bootstrap: by the client timeout, not the whole read.
            timeout_s = min(self.settings.kafka.client_timeout_s, self._bound())
            metadata = self.consumer.list_topics(self.topic, timeout=timeout_s)
        except self.module.KafkaException as exc:
            raise unreachable_error(
                self.settings.kafka.bootstrap_servers, self.settings.kafka.client_timeout_s
            ) from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise TopicNotFoundError(
                f"Topic {self.topic!r} does not exist at {self.settings.kafka.bootstrap_servers}. "
                "Produce to it first (the kit's producer creates it), or check the topic name."
            )
        return set(found.partitions)

    def _start_offsets(self, offsets: dict[int, int] | None, from_ms: int | None) -> dict[int, int]:
        end, beginning = self.module.OFFSET_END, self.module.OFFSET_BEGINNING
        if offsets is not None:  # partitions not named: nothing from them
            return {p: offsets.get(p, end) for p in self.partitions}
        if from_ms is None:
            return dict.fromkeys(self.partitions, beginning)
        TopicPartition = self.module.TopicPartition
        asked = [TopicPartition(self.topic, p, from_ms) for p in self.partitions]
        found = self._call(lambda: self.consumer.offsets_for_times(asked, timeout=self._bound()))
        if found is None:
            raise OrderbookKitError(
                f"Kafka did not say where {from_ms} ms is in {self.topic!r} in time ({found}); "
                "check the broker (`make status`)."
            )
        # Offset -1: no message at or after the time in that partition.
        return {tp.partition: tp.offset if tp.offset >= 0 else end for tp in found}

    def _watermarks(self) -> dict[int, tuple[int, int]] | None:
        """Each partition's (first, next) offset now, or None if the broker did not answer."""
        TopicPartition = self.module.TopicPartition
        marks = {}
        for p in self.partitions:
            tp = TopicPartition(self.topic, p)

            def ask(tp: Any = tp) -> tuple[int, int]:
                low, high = self.consumer.get_watermark_offsets(tp, self._bound())
                return int(low), int(high)

            found = self._call(ask)
            if found is None:
                return None
            marks[p] = found
        return marks

    def _reached(self, end: dict[int, tuple[int, int]]) -> bool:
        if self.group and len(self.consumer.assignment()) < len(end):
            return False  # a group read has no partitions until it has joined
        for partition, (low, high) in end.items():
            if high <= low:
                continue  # empty
            position = self.positions.get(partition, self._start_of(partition, low, high))
            if position is None or position < high:
                return False
        return True

    def _start_of(self, partition: int, low: int, high: int) -> int | None:
        """Where a partition that gave no record yet begins: its start offset, or (for a group)
        its committed one."""
        if not self.group:
            start = self.starts[partition]
            if start == self.module.OFFSET_END:
                return high
            return low if start == self.module.OFFSET_BEGINNING else start
        if partition not in self.starts:  # asked once: only this read commits for the group
            tp = self.module.TopicPartition(self.topic, partition)
            committed = self._call(lambda: self.consumer.committed([tp], timeout=self._bound()))
            if committed is None:
                return None
            self.starts[partition] = committed[0].offset if committed[0].offset >= 0 else low
        return self.starts[partition]

    def _call(self, request: Callable[[], Any]) -> Any:
        """A request to the broker; None (and the outage noted) if it failed for now."""
        try:
            return request()
        except self.module.KafkaException as exc:
            self._outage(exc.args[0])
            time.sleep(min(0.2, max(self._left(), 0)))
            return None

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _bound(self) -> float:
        """What is left of the deadline, as a librdkafka timeout (where 0 or less means
        "forever" for some calls: never that)."""
        return max(self._left(), 0.001)
