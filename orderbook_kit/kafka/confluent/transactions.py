"""The transactional producer on confluent-kafka (librdkafka), with the interface and errors of
:class:`orderbook_kit.kafka.transactions.TransactionalProducer` (see there for what a transaction
gives the gate).

librdkafka classifies every failure of a transactional call, and this follows its rules: a
*retriable* one (a timed-out request) may be called again; one that *requires an abort* (a
refused write, a group that moved on) aborts the transaction, which is then done again; a *fatal*
one (fenced by a newer producer with the same id) ends the producer. Every call is bounded by the
transaction timeout, past which the broker aborts the transaction anyway. Unlike kafka-python,
librdkafka's calls take a timeout, so no private member is needed for that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka.structs import TopicPartition

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import RETRY_PAUSE_S, broker_answers, unreachable_error
from orderbook_kit.kafka.confluent.consumer import MEMBER_LOST
from orderbook_kit.kafka.confluent.loading import LIBRDKAFKA_LOG, confluent_kafka
from orderbook_kit.kafka.confluent.producer import BLOCKED_PAUSE_S, SAME_PARTITIONS_AS_JAVA
from orderbook_kit.kafka.transactions import (
    FencedError,
    TransactionAbortedError,
    fenced_error,
    not_started_error,
)
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import TRANSACTION_TIMEOUT_MS

__all__ = ["ConfluentTransactionalProducer"]

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_S = TRANSACTION_TIMEOUT_MS / 1000


class ConfluentTransactionalProducer:
    """librdkafka's transactional producer, with bounded waits and the kit's errors. Nothing
    connects until :meth:`connect`, which also fences any earlier producer of the same id."""

    def __init__(
        self, settings: Settings, transactional_id: str, *, max_request_size: int | None = None
    ) -> None:
        self.settings = settings
        self.transactional_id = transactional_id
        self.max_request_size = max_request_size
        self._module = confluent_kafka()
        self._producer: Any = None
        self.in_transaction = False
        self.committed = 0  # transactions committed
        self.aborted = 0  # ... and aborted

    def connect(self) -> ConfluentTransactionalProducer:
        """Open the producer and register its transactional id (fencing the previous holder,
        whose open transaction the broker aborts). A broker that is (re)starting is tried again,
        each time with a new producer, up to the delivery timeout."""
        if self._producer is not None:
            return self
        kafka = self.settings.kafka
        config: dict[str, Any] = {
            "bootstrap.servers": kafka.bootstrap_servers,
            "client.id": f"orderbook-kit-{self.transactional_id}",
            "transactional.id": self.transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "linger.ms": 5,
            "partitioner": SAME_PARTITIONS_AS_JAVA,  # the same partitions as kafka-python's
            "socket.timeout.ms": max(int(kafka.client_timeout_s * 1000), 1000),
            "reconnect.backoff.max.ms": 1000,
            "logger": LIBRDKAFKA_LOG,
        }
        if self.max_request_size is not None:
            config["message.max.bytes"] = self.max_request_size
        deadline = time.monotonic() + kafka.delivery_timeout_s
        while True:
            producer = self._module.Producer(config)
            try:
                producer.init_transactions(max(min(kafka.client_timeout_s, _left(deadline)), 1))
                break
            except self._module.KafkaException as exc:
                error = exc.args[0]
                _close(producer)
                if error.fatal() or time.monotonic() >= deadline or not _transient(error):
                    if not broker_answers(kafka.bootstrap_servers, kafka.client_timeout_s):
                        raise unreachable_error(
                            kafka.bootstrap_servers, kafka.client_timeout_s
                        ) from exc
                    raise not_started_error(self.settings, self.transactional_id, exc) from exc
                log.info("transactional id %r not started yet (%s)", self.transactional_id, error)
                time.sleep(RETRY_PAUSE_S)
        self._producer = producer
        return self

    def begin(self) -> None:
        """Start a transaction, unless one is open."""
        if not self.in_transaction:
            self._guarded(self._require().begin_transaction)
            self.in_transaction = True

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
        """Send inside the open transaction (:meth:`begin` first). A write that fails makes the
        commit fail, so the transaction is aborted and the batch done again: nothing to wait for
        here. A full local queue is drained for at most the client timeout."""
        assert self.in_transaction, "begin() first"
        producer = self._require()
        deadline: float | None = None
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    key,
                    -1 if partition is None else partition,
                    timestamp=timestamp_ms or 0,
                    headers=headers,
                )
                return
            except BufferError:
                deadline = deadline or time.monotonic() + self.settings.kafka.client_timeout_s
                if time.monotonic() >= deadline:
                    raise OrderbookKitError(
                        f"librdkafka's queue of {self.transactional_id!r} stayed full for "
                        f"{self.settings.kafka.client_timeout_s:g} s (KAFKA_CLIENT_TIMEOUT_S): "
                        "the broker does not take the writes; see `make status`."
                    ) from None
                producer.poll(BLOCKED_PAUSE_S)
            except self._module.KafkaException as exc:
                if exc.args[0].fatal():
                    raise self._fenced(exc.args[0]) from exc
                raise

    def commit(self, offsets: dict[TopicPartition, int], group_metadata: object) -> None:
        """Add ``offsets`` (the next offset to read, per partition) for the consumer group of
        ``group_metadata`` to the transaction, and commit it. On failure the transaction is
        aborted and :class:`TransactionAbortedError` raised (:class:`FencedError` if another
        producer took the id over)."""
        producer = self._require()
        if not self.in_transaction:
            return
        start = self._module.TopicPartition
        marks = [start(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
        try:
            if marks:
                self._bounded(
                    lambda left: producer.send_offsets_to_transaction(marks, group_metadata, left)
                )
            self._bounded(producer.commit_transaction)
        except self._module.KafkaException as exc:
            error = exc.args[0]
            if error.fatal():
                raise self._fenced(error) from exc
            self.abort()
            raise TransactionAbortedError(
                f"The transaction of {self.transactional_id!r} did not commit ({error.name()}: "
                f"{error.str()}); it was aborted, so none of its writes count.",
                member_lost=error.name() in MEMBER_LOST,
            ) from exc
        self.in_transaction = False
        self.committed += 1

    def abort(self) -> None:
        """Abort the open transaction (readers of committed data never see its records). A
        producer that cannot abort in time is replaced by a new one with the same transactional
        id, whose start aborts the transaction on the broker."""
        if not self.in_transaction or self._producer is None:
            return
        self.in_transaction = False
        self.aborted += 1
        try:
            self._bounded(self._producer.abort_transaction)
        except self._module.KafkaException as exc:
            if exc.args[0].fatal():
                raise self._fenced(exc.args[0]) from exc
            log.warning(
                "could not abort (%s): starting transactional id %r again",
                exc.args[0],
                self.transactional_id,
            )
            self.close()
            self.connect()

    def close(self, timeout_s: float | None = None) -> None:
        """Close; an open transaction is left for the broker to abort (readers never see it)."""
        producer, self._producer = self._producer, None
        self.in_transaction = False
        if producer is not None:
            _close(producer)

    def _bounded(self, call: Callable[[float], Any]) -> None:
        """``call(timeout_s)``, again while librdkafka says it may be (a request that timed
        out), within the transaction timeout; its last failure is raised."""
        deadline = time.monotonic() + TRANSACTION_TIMEOUT_S
        while True:
            try:
                call(max(_left(deadline), 0.001))
                return
            except self._module.KafkaException as exc:
                error = exc.args[0]
                if not error.retriable() or _left(deadline) <= 0:
                    raise
                log.info("transaction call of %r: %s; trying again", self.transactional_id, error)

    def _guarded(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except self._module.KafkaException as exc:
            if exc.args[0].fatal():
                raise self._fenced(exc.args[0]) from exc
            raise OrderbookKitError(
                f"Transactional id {self.transactional_id!r}: {exc.args[0].str()}"
            ) from exc

    def _require(self) -> Any:
        if self._producer is None:
            raise OrderbookKitError("The transactional producer is not connected: connect() first.")
        return self._producer

    def _fenced(self, error: Any) -> FencedError:
        self.in_transaction = False
        return fenced_error(self.transactional_id, error.name())


def _transient(error: Any) -> bool:
    # librdkafka's local errors (negative codes: a timeout, a lost connection) pass with time.
    return bool(error.retriable() or error.code() < 0)


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _close(producer: Any) -> None:
    """Drop whatever is queued (an open transaction's records: the broker aborts it) and release
    librdkafka's threads and connections."""
    producer.purge(in_queue=True, in_flight=True, blocking=False)
    producer.flush(0)
    # Producer.close() came with confluent-kafka 2.13; before it, dropping the last reference
    # releases the same (the workbook pins 2.12 for Quix Streams).
    close = getattr(producer, "close", None)
    if close is not None:
        close()
