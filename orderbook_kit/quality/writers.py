"""How the gate writes a batch: exactly once (one Kafka transaction) or at least once.

Both write the same records (clean copies, dead letters, the gate's memory) to the same topics;
they differ in what makes a batch *done*:

- :class:`TransactionalWrites`: ``begin`` opens a transaction, the loop's keeper
  (:class:`~orderbook_kit.runtime.group_loop.KafkaTransactions`) commits the batch's offsets in
  it. Readers of committed data see the whole batch once, or - killed, aborted - none of it.
- :class:`AcknowledgedWrites`: three producers; ``settle`` waits until Kafka acknowledged every
  write, then the keeper commits the offsets. Killed in between, the batch is written again.
"""

from __future__ import annotations

from typing import Protocol

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.confluent.transactions import ConfluentTransactionalProducer
from orderbook_kit.kafka.producer import TickProducer
from orderbook_kit.kafka.transactions import TransactionalProducer
from orderbook_kit.settings.environment import Settings

__all__ = ["AcknowledgedWrites", "GateWriter", "TransactionalWrites"]


class GateWriter(Protocol):
    """Where the gate's records go, and how a batch of them becomes done."""

    def connect(self) -> None: ...

    def begin(self) -> None:
        """Before a batch's first write."""
        ...

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> None: ...

    def settle(self) -> None:
        """After a batch's routing, before its memory is written."""
        ...

    def close(self, timeout_s: float | None) -> None: ...


class TransactionalWrites:
    """Every write of a batch in one transaction of ``settings.gate.transactional_id``, with the
    client ``settings.kafka.client`` names (the gate's consumer is that client's too: a
    transaction takes the group metadata of its own client's consumer)."""

    def __init__(self, settings: Settings, *, max_request_size: int) -> None:
        kind = (
            ConfluentTransactionalProducer
            if settings.kafka.client == "confluent"
            else TransactionalProducer
        )
        self.producer: TransactionalProducer | ConfluentTransactionalProducer = kind(
            settings, settings.gate.transactional_id, max_request_size=max_request_size
        )

    def connect(self) -> None:
        self.producer.connect()

    def begin(self) -> None:
        self.producer.begin()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> None:
        self.producer.send(
            topic, key, value, headers=headers, timestamp_ms=timestamp_ms, partition=partition
        )

    def settle(self) -> None:
        """Nothing to wait for: the commit makes the writes visible, or none of them."""

    def close(self, timeout_s: float | None) -> None:
        self.producer.close(timeout_s)


class AcknowledgedWrites:
    """A producer per topic (the clean one, the dead-letter one with room for the largest raw
    message, the memory's), each batch flushed before its offsets are committed."""

    def __init__(self, settings: Settings, *, max_request_size: int) -> None:
        topics = settings.topics
        self.producers = {
            topics.clean: TickProducer(settings, topic=topics.clean, create_topic=False),
            topics.dead_letters: TickProducer(
                settings,
                topic=topics.dead_letters,
                create_topic=False,
                max_request_size=max_request_size,
            ),
            topics.gate_state: TickProducer(settings, topic=topics.gate_state, create_topic=False),
        }

    def connect(self) -> None:
        for producer in self.producers.values():
            producer.connect()

    def begin(self) -> None:
        """Nothing to open."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> None:
        self.producers[topic].send_raw(
            key, value, headers, timestamp_ms=timestamp_ms, partition=partition
        )

    def settle(self) -> None:
        """Wait for every acknowledgement: flush raises DeliveryError if a write failed or Kafka
        does not answer in time; the batch's offsets are then not committed."""
        for producer in self.producers.values():
            producer.flush()

    def close(self, timeout_s: float | None) -> None:
        problems = []
        for producer in self.producers.values():
            try:
                producer.close(timeout_s)
            except OrderbookKitError as exc:
                problems.append(exc)
        if problems:
            raise problems[0]
