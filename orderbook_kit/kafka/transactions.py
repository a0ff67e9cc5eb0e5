"""A transactional producer: writes to several topics and a consumer group's offsets, committed
together or not at all (Kafka's exactly-once read-process-write).

::

    begin ──> send(clean) send(dead letter) send(memory) ──> commit(offsets, group metadata)
                                                        └──> abort()   (on any error)

Readers with ``isolation_level="read_committed"`` (the kit's default) see a transaction's records
once it commits, and never those of one that aborted. The transactional id names the writer
across restarts: a new producer with the same id *fences* the old one (its next commit fails,
and its open transaction is aborted), so a restarted gate is never raced by its dead or frozen
predecessor. The consumer's group metadata (generation and member id, KIP-447) goes with the
offsets, so a member that lost its partitions in a rebalance cannot commit them either.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from kafka import KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError, ProducerFencedError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import RETRY_PAUSE_S, client_timeouts, unreachable_error
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import TRANSACTION_TIMEOUT_MS

__all__ = [
    "FencedError",
    "TransactionAbortedError",
    "TransactionalProducer",
    "Transactions",
    "fenced_error",
    "not_started_error",
]

log = logging.getLogger(__name__)

# Errors after which the producer cannot go on: only closing it (and a new one) helps.
FATAL = (ProducerFencedError,)


class TransactionLostError(KafkaError):
    """The broker aborted the open transaction under the producer (see
    :meth:`TransactionalProducer._check_still_open`)."""


class FencedError(OrderbookKitError):
    """Another producer with the same transactional id started: this one must stop."""


class TransactionAbortedError(OrderbookKitError):
    """The transaction was aborted: none of its records or offsets count; do the work again.
    ``member_lost``: the offsets were refused because the consumer is no longer the group member
    it was (its group moved on while it was paused): it must join again first."""

    def __init__(self, message: str, *, member_lost: bool = False) -> None:
        super().__init__(message)
        self.member_lost = member_lost


class Transactions(Protocol):
    """A transactional producer as the gate's offset keeper uses it (this module's, on
    kafka-python, or :mod:`orderbook_kit.kafka.confluent.transactions`'s, on librdkafka)."""

    in_transaction: bool

    def commit(self, offsets: dict[TopicPartition, int], group_metadata: object) -> None:
        """Add ``offsets`` for the group of ``group_metadata``, and commit; on failure abort and
        raise :class:`TransactionAbortedError` (:class:`FencedError` when fenced)."""
        ...


def not_started_error(
    settings: Settings, transactional_id: str, exc: Exception
) -> OrderbookKitError:
    """The error of a broker that would not start ``transactional_id`` in time."""
    kafka = settings.kafka
    return OrderbookKitError(
        f"The broker at {kafka.bootstrap_servers} did not start transactional id "
        f"{transactional_id!r} within {kafka.delivery_timeout_s:g} s "
        f"({type(exc).__name__}: {exc}). A broker serves transactions only when it can keep "
        "its transaction log: check that transaction.state.log.replication.factor and "
        "transaction.state.log.min.isr are at most its number of running brokers (1 and 1 on "
        "one broker; the kit's brokers and the compose file set them), and that it runs "
        "(`make status`). Or run the gate at least once: ORDERBOOK_GATE_DELIVERY=at-least-once."
    )


def fenced_error(transactional_id: str, cause: str) -> FencedError:
    """The error of a producer the broker fenced (``cause``: the client's name for it)."""
    return FencedError(
        f"The broker fenced transactional id {transactional_id!r} ({cause}): another producer "
        "took the id over - a newer gate with the same ORDERBOOK_GATE_INSTANCE - or this one's "
        f"transaction ran longer than {TRANSACTION_TIMEOUT_MS // 1000} s (the process was paused "
        "or stalled) and the broker aborted it. So it stopped without committing; nothing it "
        "wrote counts, and the batch is read again by whichever gate has its partitions. Give "
        "each gate that runs at the same time its own instance (ORDERBOOK_GATE_INSTANCE=1, "
        "2, ...), and start this one again."
    )


class TransactionalProducer:
    """kafka-python's transactional producer, with bounded waits and the kit's errors. Nothing
    connects until :meth:`connect`, which also fences any earlier producer of the same id."""

    def __init__(
        self, settings: Settings, transactional_id: str, *, max_request_size: int | None = None
    ) -> None:
        self.settings = settings
        self.transactional_id = transactional_id
        self.max_request_size = max_request_size
        self._producer: KafkaProducer | None = None
        self.in_transaction = False
        self.committed = 0  # transactions committed
        self.aborted = 0  # ... and aborted
        self._began_as = (-1, -1)  # the producer id and epoch the open transaction began with

    def connect(self) -> TransactionalProducer:
        """Open the producer and register its transactional id (fencing the previous holder,
        whose open transaction the broker aborts)."""
        if self._producer is not None:
            return self
        kafka = self.settings.kafka
        config: dict[str, Any] = {
            "bootstrap_servers": kafka.bootstrap_servers,
            "client_id": f"orderbook-kit-{self.transactional_id}",
            "transactional_id": self.transactional_id,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 5,
            "batch_size": 64 * 1024,
            "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS,
            "max_block_ms": int(kafka.client_timeout_s * 1000),
            **client_timeouts(kafka.client_timeout_s),
        }
        if self.max_request_size is not None:
            config["max_request_size"] = self.max_request_size
        # A broker that is restarting does not answer, and one that has just started loads its
        # transaction log first and says "not ready" meanwhile: tried again, each time with a new
        # producer, up to the delivery timeout (the loop says "no broker at all" before this).
        deadline = time.monotonic() + kafka.delivery_timeout_s
        while True:
            try:
                producer = KafkaProducer(**config)
            except KafkaError as exc:  # no broker answered: one restarting is waited for
                if time.monotonic() >= deadline:
                    raise unreachable_error(
                        kafka.bootstrap_servers, kafka.client_timeout_s
                    ) from exc
                log.info("no broker answered yet (%s); trying again", exc)
                time.sleep(RETRY_PAUSE_S)
                continue
            try:
                producer.init_transactions()
                break
            except KafkaError as exc:
                producer.close(timeout=0)
                if not exc.retriable or time.monotonic() >= deadline:
                    raise not_started_error(self.settings, self.transactional_id, exc) from exc
                log.info("transactional id %r not started yet (%s)", self.transactional_id, exc)
                time.sleep(RETRY_PAUSE_S)
        self._producer = producer
        return self

    def begin(self) -> None:
        """Start a transaction, unless one is open."""
        if not self.in_transaction:
            self._require().begin_transaction()
            self.in_transaction = True
            self._began_as = self._identity()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> FutureRecordMetadata:
        """Send inside the open transaction (:meth:`begin` first).

        A send waits at most the client timeout for the topic's metadata; a broker slow to
        answer (a loaded machine, this process just resumed after a pause) is asked again, up
        to the delivery timeout. Nothing was added to the transaction by the failed wait."""
        assert self.in_transaction, "begin() first"
        deadline = time.monotonic() + self.settings.kafka.delivery_timeout_s
        while True:
            try:
                return self._require().send(
                    topic,
                    key=key,
                    value=value,
                    headers=headers,
                    timestamp_ms=timestamp_ms,
                    partition=partition,
                )
            except FATAL as exc:
                raise self._fenced(exc) from exc
            except KafkaTimeoutError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.info("no metadata of %r yet (%s); asking again", topic, exc)
            except KafkaError as exc:
                if self._identity() != self._began_as:
                    raise self._lost(exc) from exc
                raise

    def commit(self, offsets: dict[TopicPartition, int], group_metadata: object) -> None:
        """Add ``offsets`` (the next offset to read, per partition) for the consumer group of
        ``group_metadata`` to the transaction, and commit it. On failure the transaction is
        aborted and :class:`TransactionAbortedError` raised (:class:`FencedError` if another
        producer took the id over)."""
        producer = self._require()
        if not self.in_transaction:
            return
        marks = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        try:
            self._check_still_open()
            if marks:
                tm = producer._transaction_manager
                self._wait(tm.send_offsets_to_transaction(marks, group_metadata), "its offsets")
            self._wait(producer._transaction_manager.begin_commit(), "its commit")
            # The commit waits for the transaction's last writes: one of them may have failed
            # and ended the transaction on the way (see _check_still_open).
            self._check_still_open()
        except FATAL as exc:
            raise self._fenced(exc) from exc
        except KafkaError as exc:
            self.abort()
            raise TransactionAbortedError(
                f"The transaction of {self.transactional_id!r} did not commit "
                f"({type(exc).__name__}: {exc}); it was ended (aborted, unless the broker had "
                "begun committing it), so the batch is read again from the committed offsets.",
                member_lost=isinstance(exc, CommitFailedError),
            ) from exc
        self.in_transaction = False
        self.committed += 1

    def abort(self) -> None:
        """End the open transaction by replacing the producer with a new one of the same
        transactional id. Starting it makes the broker settle the transaction - abort it, or
        finish the commit it had begun - before anything else, and bumps the producer epoch,
        which fences whatever the old producer still had on its way: a write, or an offset
        commit that would otherwise land after the abort and be committed with the next
        transaction.

        kafka-python's own abort is not enough after a failure: with a node down it waited out
        its whole bound, and it ends a transaction whose start it did not see answered only in
        its own books (no EndTxn is sent). On the three-node cluster both lost batches: a
        transaction the gate had aborted was committed after all, or its offsets were."""
        if not self.in_transaction or self._producer is None:
            return
        self.in_transaction = False
        self.aborted += 1
        self.close()
        self.connect()

    def close(self, timeout_s: float | None = None) -> None:
        """Close; an open transaction is left for the broker to abort (readers never see it)."""
        producer, self._producer = self._producer, None
        self.in_transaction = False
        if producer is not None:
            try:
                producer.close(timeout=0 if timeout_s is None else timeout_s)
            except KafkaError as exc:
                log.debug("closing the transactional producer: %s", exc)

    def _check_still_open(self) -> None:
        """Raise if the transaction :meth:`begin` opened is no longer open on the broker.

        kafka-python 3.0.12 recovers from some failed writes (OutOfOrderSequence,
        UnknownProducerId, InvalidProducerEpoch: a partition's new leader after a node died) by
        bumping the producer's epoch (KIP-360), which makes the broker abort the open
        transaction - and goes on as if it were open: a commit then "succeeds" without
        committing anything (kafka-python skips the EndTxn of a transaction it no longer counts
        as started). The gate would then read on past a batch that was never written. Seen on
        the three-node cluster with a leader killed mid-transaction. So a new producer id or
        epoch is an abort, and the batch is handled again."""
        if self._identity() != self._began_as:
            raise TransactionLostError(
                f"kafka-python bumped the producer epoch of {self.transactional_id!r} during the "
                "transaction (a write failed: a partition's leader moved), so the broker "
                "aborted it"
            )

    def _identity(self) -> tuple[int, int]:
        """The producer id and epoch: a new one means the broker ended the open transaction."""
        current = self._require()._transaction_manager.producer_id_and_epoch
        return current.producer_id, current.epoch

    def _lost(self, exc: KafkaError) -> TransactionAbortedError:
        """The error of a send refused because the transaction was lost (see
        :meth:`_check_still_open`)."""
        self.abort()
        return TransactionAbortedError(
            f"The transaction of {self.transactional_id!r} was aborted by the broker after "
            f"kafka-python bumped its producer epoch ({type(exc).__name__}: {exc}); none of its "
            "writes count."
        )

    def _wait(self, result: Any, what: str) -> None:
        """What ``send_offsets_to_transaction`` and ``commit_transaction`` do, with a bound:
        kafka-python 3.0.12 waits for the broker's answer without one, and waited minutes when a
        node of a cluster was killed mid-transaction. Past the transaction timeout the broker
        aborts the transaction anyway, so that is the bound."""
        assert self._producer is not None
        self._producer._sender.wakeup()
        if not result.wait(timeout_ms=TRANSACTION_TIMEOUT_MS):
            raise KafkaTimeoutError(
                f"{what} not answered within {TRANSACTION_TIMEOUT_MS // 1000} s (the transaction "
                "timeout: the broker aborts it by then)"
            )

    def _require(self) -> KafkaProducer:
        if self._producer is None:
            raise OrderbookKitError("The transactional producer is not connected: connect() first.")
        return self._producer

    def _fenced(self, exc: BaseException) -> FencedError:
        self.in_transaction = False
        return fenced_error(self.transactional_id, type(exc).__name__)
