"""confluent-kafka's Consumer as the group member the kit's consume loop knows: kafka-python's.

:class:`~orderbook_kit.runtime.group_loop.GroupLoop` is written against kafka-python's
``KafkaConsumer``: ``poll`` returns records by partition, a rebalance listener may seek the
partitions it is handed, failures are ``kafka.errors``. This adapter gives librdkafka that shape
(as :mod:`.producer` does for the producer), so the loop, its offset keepers and its limits are
the same code for both clients. What differs underneath, and how it is bridged:

- **Seeking when partitions are handed over.** librdkafka starts fetching a partition where
  ``assign`` says: seeks asked for inside the listener are collected and passed to ``assign``.
- **Outages.** kafka-python's poll raises a retriable error while no broker answers; librdkafka's
  returns nothing and reports the outage to ``error_cb``. A poll that returns nothing after such a
  report raises it (retriable), until a metadata request answers again, so the loop counts the
  outage against ``KAFKA_DELIVERY_TIMEOUT_S`` with either client.
- **Errors inside a batch.** librdkafka may return an error event among the messages of one
  ``consume``: the messages are handed over first, and a lasting error is raised at the next poll
  (raising at once would skip messages already consumed).
- **The position.** librdkafka's is local (no request), and already past a transaction's commit
  marker once the fetch held it (checked here on Kafka 4.3: position 14 after 6 records in
  offsets 0-13).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import unreachable_error
from orderbook_kit.kafka.confluent.loading import LIBRDKAFKA_LOG, confluent_kafka
from orderbook_kit.kafka.records import as_record

__all__ = [
    "MEMBER_LOST",
    "ConfluentGroupConsumer",
    "LibrdkafkaError",
    "as_kafka_error",
    "ready_messages",
]

log = logging.getLogger(__name__)

# kafka-python's name of a consumer setting -> librdkafka's.
_NAMES = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "group_id": "group.id",
    "auto_offset_reset": "auto.offset.reset",
    "enable_auto_commit": "enable.auto.commit",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "metadata_max_age_ms": "topic.metadata.refresh.interval.ms",
    "isolation_level": "isolation.level",
    "request_timeout_ms": "socket.timeout.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
}
# Settings the adapter applies itself.
_APPLIED_HERE = {"max_poll_records", "bootstrap_timeout_ms"}
# The group refused a member's commit because it is no longer the member it was (kafka-python
# raises CommitFailedError for these).
MEMBER_LOST = {
    "ILLEGAL_GENERATION",
    "UNKNOWN_MEMBER_ID",
    "REBALANCE_IN_PROGRESS",
    "FENCED_INSTANCE_ID",
}
# A broker's answer to a fetch can wait this long for data: short, so a watermark or metadata
# request queued behind it on the same connection is answered soon.
FETCH_WAIT_MS = 100


class LibrdkafkaError(KafkaError):
    """A librdkafka error in kafka-python's vocabulary: ``retriable`` as librdkafka says (and
    every local error - a lost connection, a timed-out request - counts as one)."""

    def __init__(self, text: str, *, retriable: bool) -> None:
        super().__init__(text)
        self.retriable = retriable  # kafka-python's errors carry this as a class attribute


def as_kafka_error(error: Any) -> KafkaError:
    """librdkafka's ``KafkaError`` as a kafka-python error the kit already handles."""
    text = f"{error.name()}: {error.str()}"
    if error.name() in MEMBER_LOST:
        return CommitFailedError(text)
    return LibrdkafkaError(text, retriable=bool(error.retriable() or error.code() < 0))


def consumer_config(options: dict[str, Any]) -> dict[str, Any]:
    """The loop's consumer settings (kafka-python names) as librdkafka's; an unknown one is an
    error, never ignored."""
    translated: dict[str, Any] = {}
    for name, value in options.items():
        if name in _APPLIED_HERE:
            continue
        if name not in _NAMES:
            raise OrderbookKitError(
                f"The consumer setting {name!r} has no confluent-kafka equivalent the kit knows "
                f"(known: {', '.join(sorted(_NAMES))}); or use ORDERBOOK_KAFKA_CLIENT=kafka-python."
            )
        translated[_NAMES[name]] = value
    return translated


class ConfluentGroupConsumer:
    """The part of ``KafkaConsumer``'s interface the kit's consume loop uses, on librdkafka.
    Connects here (as kafka-python's constructor does): ``BrokerUnreachableError`` if no broker
    answers within ``bootstrap_timeout_ms``."""

    def __init__(self, **options: Any) -> None:
        module = confluent_kafka()
        self._module = module
        self._max_records = int(options.get("max_poll_records", 500))
        self._timeout_s = options.get("bootstrap_timeout_ms", 10_000) / 1000
        self._bootstrap = options["bootstrap_servers"]
        self._outage: Any = None  # the last error librdkafka reported, until a broker answers
        self._outage_lock = threading.Lock()
        self._pending: Any = None  # an error event that came with messages: raised next poll
        self._listener: ConsumerRebalanceListener | None = None
        self._seeks: dict[TopicPartition, int] | None = None  # inside on_assign: where to start
        self._consumer = module.Consumer(
            {
                "logger": LIBRDKAFKA_LOG,
                "error_cb": self._remember_outage,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                **consumer_config(options),
            }
        )
        try:
            self._consumer.list_topics(timeout=self._timeout_s)
        except module.KafkaException as exc:
            self._consumer.close()
            raise unreachable_error(self._bootstrap, self._timeout_s) from exc

    # --- the group -----------------------------------------------------------------------------

    def subscribe(
        self, topics: list[str], listener: ConsumerRebalanceListener | None = None
    ) -> None:
        self._listener = listener
        self._consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    def unsubscribe(self) -> None:
        self._consumer.unsubscribe()

    def assignment(self) -> set[TopicPartition]:
        return {_kafka_tp(tp) for tp in self._call(self._consumer.assignment)}

    def group_metadata(self) -> Any:
        """What ``send_offsets_to_transaction`` needs (librdkafka's own object)."""
        return self._call(self._consumer.consumer_group_metadata)

    def close(self, autocommit: bool = False) -> None:
        self._consumer.close()  # leaves the group; auto commit is off, nothing is committed

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        assigned = {_kafka_tp(tp) for tp in partitions}
        self._seeks = {}
        try:
            if self._listener is not None:
                self._listener.on_partitions_assigned(assigned)
        finally:
            seeks, self._seeks = self._seeks, None
            start = self._module.TopicPartition
            self._consumer.assign(
                [start(tp.topic, tp.partition, seeks.get(tp, _INVALID)) for tp in assigned]
            )

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        if self._listener is not None:
            self._listener.on_partitions_revoked({_kafka_tp(tp) for tp in partitions})

    # --- reading -----------------------------------------------------------------------------

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to ``max_records`` records by partition. Raises a retriable error while librdkafka
        reports that no broker answers, a lasting one as it comes (after the messages before it)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            raise as_kafka_error(pending)
        limit = max_records or self._max_records
        messages = self._call(lambda: ready_messages(self._consumer, limit, timeout_ms / 1000))
        batches: dict[TopicPartition, list[ConsumerRecord]] = {}
        for message in messages:
            error = message.error()
            if error is None:
                record = as_record(message)
                batches.setdefault(TopicPartition(record.topic, record.partition), []).append(
                    record
                )
            elif error.code() != self._module.KafkaError._PARTITION_EOF:
                self._pending = error if self._pending is None else self._pending
        if batches:
            self._recovered()
        elif self._pending is not None:
            pending, self._pending = self._pending, None
            raise as_kafka_error(pending)
        else:
            self._raise_outage()
        return batches

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if self._seeks is not None:  # inside on_assign: assign starts there
            self._seeks[partition] = offset
            return
        start = self._module.TopicPartition(partition.topic, partition.partition, offset)
        self._call(lambda: self._consumer.seek(start))

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.seek(tp, self._module.OFFSET_BEGINNING)

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        """The next offset to read: local if the consumer has one, else where it starts (the
        group's committed offset, or the partition's beginning)."""
        local = self.local_position(partition)
        if local is not None:
            return local
        committed = self.committed(partition, timeout_ms)
        if committed is not None:
            return committed
        low, _ = self._watermarks(partition, timeout_ms)
        return low

    def local_position(self, partition: TopicPartition) -> int | None:
        """The consumer's own position, without a request; None before its first fetch."""
        found = self._call(
            lambda: self._consumer.position(
                [self._module.TopicPartition(partition.topic, partition.partition)]
            )
        )
        offset = int(found[0].offset) if found else -1
        return offset if offset >= 0 else None

    def committed(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        asked = [self._module.TopicPartition(partition.topic, partition.partition)]
        found = self._call(lambda: self._consumer.committed(asked, timeout=_seconds(timeout_ms)))
        offset = int(found[0].offset) if found else -1
        return offset if offset >= 0 else None

    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        """Each partition's end as this consumer reads it (read_committed: the last stable
        offset, as librdkafka asks with the consumer's isolation level)."""
        return {tp: self._watermarks(tp, timeout_ms)[1] for tp in partitions}

    def commit(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int | None = None
    ) -> None:
        """Commit ``offsets`` and wait for the answer."""
        start = self._module.TopicPartition
        marks = [start(tp.topic, tp.partition, mark.offset) for tp, mark in offsets.items()]
        self._call(lambda: self._consumer.commit(offsets=marks, asynchronous=False))

    def _watermarks(self, partition: TopicPartition, timeout_ms: int | None) -> tuple[int, int]:
        asked = self._module.TopicPartition(partition.topic, partition.partition)
        low, high = self._call(
            lambda: self._consumer.get_watermark_offsets(asked, timeout=_seconds(timeout_ms))
        )
        return int(low), int(high)

    # --- errors --------------------------------------------------------------------------------

    def _call(self, request: Any) -> Any:
        """``request()``, with librdkafka's exception as a kafka-python error."""
        try:
            return request()
        except self._module.KafkaException as exc:
            raise as_kafka_error(exc.args[0]) from exc

    def _remember_outage(self, error: Any) -> None:  # librdkafka's thread, or inside a poll
        with self._outage_lock:
            self._outage = error

    def _recovered(self) -> None:
        with self._outage_lock:
            self._outage = None

    def _raise_outage(self) -> None:
        """After a poll that returned nothing: if librdkafka reported an error since the broker
        last answered, ask for metadata (bounded); no answer raises the error, retriable."""
        with self._outage_lock:
            outage = self._outage
        if outage is None:
            return
        try:
            self._consumer.list_topics(timeout=self._timeout_s)
        except self._module.KafkaException:
            raise as_kafka_error(outage) from None
        log.info("the broker answers again (after: %s)", outage)
        self._recovered()


_INVALID = -1001  # librdkafka's OFFSET_INVALID: start where the group's committed offset says


def ready_messages(consumer: Any, limit: int, timeout_s: float) -> list[Any]:
    """Up to ``limit`` messages, as soon as there is one: librdkafka's ``consume(limit,
    timeout)`` waits until it has ``limit`` messages or the timeout passed, which at a thousand
    ticks a second held each batch for the whole poll (p50 of 400 ms from raw to clean). So: wait
    for the first message, then take what is already fetched."""
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, 0)] if limit > 1 else [first]


def _kafka_tp(tp: Any) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _seconds(timeout_ms: int | None) -> float:
    # librdkafka reads -1 as "forever": never that, the kit bounds every request.
    return 10.0 if timeout_ms is None else max(timeout_ms / 1000, 0.001)
