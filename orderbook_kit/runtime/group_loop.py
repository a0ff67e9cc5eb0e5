"""The consume loop of the services, by composition: a loop, a batch handler, an offset keeper.

::

    raw or clean topic ──poll──> handler.handle(batch) ──> offsets now done ──> keeper.commit
            ▲                                                         (the next offset to read)
            └──seek── keeper.resume_points(partitions) whenever the group hands out partitions

- The **handler** is what a stage does with a batch: the gate routes each message and waits for
  Kafka's acknowledgements, the store inserts the ticks and their offsets in one transaction, the
  archive collects ranges and closes them into files. It returns the offsets it has finished.
- The **offset keeper** is where the group's progress lives, so where a restart resumes:
  :class:`KafkaTransactions` (Kafka's committed offsets, committed in the same transaction as the
  batch's writes: the gate, exactly once), :class:`KafkaCommits` (committed after the writes were
  acknowledged: the gate at least once), or :class:`OwnRecords` (the
  service's own records, written with its data: the store's table, the archive's markers - the
  KafkaConsumer documentation's "Storing Offsets Outside Kafka"; Kafka is then told the same
  offsets afterwards, for lag tools only).
- The **loop** joins the group (riding out a broker that is still starting), polls through
  outages up to ``KAFKA_DELIVERY_TIMEOUT_S``, stops at a limit (:class:`RunLimits`), and leaves.

The whole loop fits on a screen: see :meth:`GroupLoop.run`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import (
    admin_client,
    broker_answers,
    client_timeouts,
    ensure_topic,
    retry_while_retriable,
    unreachable_error,
)
from orderbook_kit.kafka.confluent.consumer import ConfluentGroupConsumer
from orderbook_kit.kafka.reader import READ_COMMITTED, open_consumer
from orderbook_kit.kafka.transactions import TransactionAbortedError, Transactions
from orderbook_kit.lifecycle import Connectable
from orderbook_kit.runtime.polling import (
    GroupConsumer,
    OutageTolerantPoller,
    RunLimits,
    offsets_past_the_end,
)
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import METADATA_MAX_AGE_MS, SESSION_TIMEOUT_MS

__all__ = [
    "BatchHandler",
    "Batches",
    "GroupLoop",
    "GroupService",
    "KafkaCommits",
    "KafkaTransactions",
    "OffsetKeeper",
    "Offsets",
    "OwnRecords",
    "StoredOffsets",
]

log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord]]
Offsets = dict[TopicPartition, int]  # per partition, the next offset to read
StatsT = TypeVar("StatsT")


class BatchHandler(Protocol[StatsT]):
    """What one stage does with the records of its group. ``prepare``/``release`` hold its own
    resources (producers, a database connection, storage); ``prepare`` may be called again after
    a failed join, so it does nothing when already prepared. Subclass it for the no-op hooks."""

    def prepare(self) -> None: ...

    def release(self, timeout_s: float | None) -> None: ...

    def new_stats(self) -> StatsT: ...

    def handled(self, stats: StatsT) -> int:
        """How many messages ``stats`` counts as done (for ``run(count=...)``)."""
        ...

    def handle(self, batches: Batches, stats: StatsT) -> Offsets:
        """Do the stage's work on ``batches``; the offsets it has now finished for good."""
        ...

    def after_poll(self, stats: StatsT) -> Offsets:
        """After every poll, with records or not: work that is due by time."""
        return {}

    def finish(self, stats: StatsT) -> Offsets:
        """At the end of a run that ended normally (a limit, or ``stop``)."""
        return {}

    def passed(self, offsets: Offsets, stats: StatsT) -> Offsets:
        """The consumer moved past offsets that hold no message for it (a transaction's commit
        marker, an aborted transaction's records) and nothing else is pending: ``offsets`` is the
        next offset to read per partition. Return what to record as done (a handler that keeps
        its own offsets records them first), or nothing to leave them as they are."""
        return {}

    def partitions_moved(self, partitions: set[TopicPartition], *, assigned: bool) -> None:
        """The group took ``partitions`` away (``assigned=False``) or handed them over.
        Called inside a poll, on kafka-python's thread: record, do not block."""
        return None


class OffsetKeeper(Protocol):
    """Where a group's progress is kept, and so where its members resume."""

    def resume_points(self, assigned: set[TopicPartition]) -> dict[int, int] | None:
        """{partition: next offset} to seek ``assigned`` to; a partition left out is read from
        its beginning. None: no seeking, the group's offsets in Kafka say. A failure to read them
        is raised as the kit's error, saying what to do."""
        ...

    def commit(self, consumer: GroupConsumer, offsets: Offsets) -> None:
        """Record ``offsets`` as done."""
        ...

    def past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        """The error to stop with when a resume point lies past its partition's end (the topic
        was deleted and created again: the records describe the old one)."""
        ...


def _kafka_offsets(offsets: Offsets) -> dict[TopicPartition, OffsetAndMetadata]:
    return {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}


@dataclass
class KafkaCommits:
    """Offsets kept in Kafka, committed after each batch's work is done (at least once: a member
    that dies before committing leaves the batch to be handled again)."""

    settings: Settings
    group: str

    def resume_points(self, assigned: set[TopicPartition]) -> dict[int, int] | None:
        return None

    def commit(self, consumer: GroupConsumer, offsets: Offsets) -> None:
        if not offsets:
            return
        try:
            consumer.commit(
                _kafka_offsets(offsets), timeout_ms=int(self.settings.kafka.client_timeout_s * 1000)
            )
        except CommitFailedError as exc:
            # The group rebalanced: another member now owns these partitions and handles this
            # batch again. Its writes are already in Kafka, so this only makes duplicates.
            log.warning("offsets not committed (the group rebalanced): %s", exc)
        except KafkaError as exc:
            if exc.retriable:  # an outage: the batch is handled again later, same as above
                log.warning("offsets not committed (%s); this batch will be handled again", exc)
                return
            raise OrderbookKitError(
                f"Could not commit offsets of group {self.group!r}: {exc}. The batch's writes "
                "are in Kafka; a restart handles it again (at-least-once)."
            ) from exc

    def past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        # Never asked: nothing is sought (resume_points is None), so nothing is checked.
        return OrderbookKitError(f"{tp} resumed at {offset}, past its end {end}")


class StoredOffsets(Protocol):
    """A service that keeps its offsets with its data (the store's rows, the archive's
    markers): how to read them, and what to say when that fails or they no longer fit."""

    def stored_offsets(self, assigned: set[TopicPartition]) -> dict[int, int]:
        """{partition: next offset} of ``assigned``, from the service's own records."""
        ...

    def offsets_unreadable(self, failure: Exception) -> OrderbookKitError:
        """The error to stop with when reading them failed with ``failure``."""
        ...

    def offsets_past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        """The error to stop with when one lies past its partition's end (the topic was deleted
        and created again: the records describe the old one)."""
        ...


@dataclass
class KafkaTransactions:
    """Offsets committed in the Kafka transaction that holds the batch's writes (exactly once:
    both count, or neither). ``writer()`` is the handler's transactional producer, with the
    batch's transaction open. A transaction that does not commit is aborted, the consumer goes
    back to the group's committed offsets, and ``on_abort(partitions)`` tells the handler to
    forget what it learnt from the batch: it is read and handled again."""

    writer: Callable[[], Transactions]
    on_abort: Callable[[set[TopicPartition]], None]
    rejoin: Callable[[], None]

    def resume_points(self, assigned: set[TopicPartition]) -> dict[int, int] | None:
        return None  # the group's committed offsets: only committed transactions moved them

    def commit(self, consumer: GroupConsumer, offsets: Offsets) -> None:
        writer = self.writer()
        if not writer.in_transaction:
            return
        try:
            writer.commit(offsets, consumer.group_metadata())
        except TransactionAbortedError as exc:
            self.recover(consumer, exc, offsets)

    def recover(
        self,
        consumer: GroupConsumer,
        failed: TransactionAbortedError,
        offsets: Offsets | None = None,
    ) -> None:
        """After the batch's transaction failed - at its commit (``offsets``: the batch's), or
        while it was written: read the batch again from the committed offsets. Unless they show
        that it committed after all (ending a transaction whose commit the broker had begun
        finishes that commit): then the batch counts, as if the commit had answered."""
        if failed.member_lost:
            # Paused past its session: the group gave its partitions to another member.
            # Joining again gets it a fresh share, read from the committed offsets.
            log.warning("%s; handling the batch again", failed)
            self.on_abort(consumer.assignment())
            self.rejoin()
            return
        assigned = consumer.assignment()
        committed = {tp: consumer.committed(tp, timeout_ms=10_000) for tp in assigned}
        if offsets and all((committed.get(tp) or 0) >= offset for tp, offset in offsets.items()):
            log.warning("%s; it committed after all, so the batch counts", failed)
            return
        log.warning(
            "%s; handling the batch again, from the committed offsets %s (None: the beginning)",
            failed,
            {tp.partition: offset for tp, offset in committed.items()},
        )
        for tp, offset in committed.items():
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        self.on_abort(set(assigned))

    def past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        # Never asked: nothing is sought (resume_points is None), so nothing is checked.
        return OrderbookKitError(f"{tp} resumed at {offset}, past its end {end}")


@dataclass
class OwnRecords:
    """Offsets kept by the service itself, in the same write as its data, so exact: ``records``
    reads them. Kafka gets the same offsets afterwards, only so that lag tools see them (a
    failure there is logged, never fatal)."""

    settings: Settings
    service: str  # "the store", in messages
    records: StoredOffsets

    def resume_points(self, assigned: set[TopicPartition]) -> dict[int, int] | None:
        try:
            return self.records.stored_offsets(assigned)
        except OrderbookKitError:
            raise
        except Exception as exc:
            raise self.records.offsets_unreadable(exc) from exc

    def commit(self, consumer: GroupConsumer, offsets: Offsets) -> None:
        if not offsets:
            return
        timeout_ms = int(self.settings.kafka.client_timeout_s * 1000)
        try:
            consumer.commit(_kafka_offsets(offsets), timeout_ms=timeout_ms)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offsets committed by %s, but not to Kafka (%s)", self.service, exc)

    def past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        return self.records.offsets_past_the_end(tp, offset, end)


class _Rebalance(ConsumerRebalanceListener):
    """Tells the handler, and seeks each handed-over partition to the keeper's resume point.
    kafka-python calls it inside a poll: a failure is kept, and raised after the poll."""

    def __init__(self, loop: GroupLoop[Any]) -> None:
        self.loop = loop
        self.failure: Exception | None = None
        self.to_check: dict[TopicPartition, int] = {}  # sought offsets, checked after the poll

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.loop.read_to.pop(tp, None)
        self.loop.handler.partitions_moved(revoked, assigned=False)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.loop.handler.partitions_moved(assigned, assigned=True)
        try:
            self._seek(assigned)
        except Exception as exc:
            self.failure = exc
            raise

    def _seek(self, assigned: set[TopicPartition]) -> None:
        points = self.loop.keeper.resume_points(assigned)
        if points is None:
            return
        consumer = self.loop.consumer
        assert consumer is not None
        for tp in assigned:
            offset = points.get(tp.partition)
            if offset is None:
                # No record of it: the whole partition, whatever Kafka's group offset says (it
                # may be ahead of the service's records, if those were emptied).
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
                self.to_check[tp] = offset
                self.loop.read_to[tp] = offset
        log.info("resuming at %s", {tp.partition: points.get(tp.partition) for tp in assigned})


class GroupLoop(Generic[StatsT]):
    """Reads ``topic`` as consumer group ``group``, handing each batch to ``handler`` and what it
    finished to ``keeper``. ``service`` names it in messages ("the gate"); ``on_restart`` says
    what a restart after an outage does ("a restart checks the rest")."""

    def __init__(
        self,
        settings: Settings,
        handler: BatchHandler[StatsT],
        keeper: OffsetKeeper,
        *,
        group: str,
        topic: str,
        client_id: str,
        max_batch: int,
        service: str,
        on_restart: str,
        consumer_options: Mapping[str, Any] | None = None,
        client: str = "kafka-python",
    ) -> None:
        self.settings, self.handler, self.keeper = settings, handler, keeper
        self.group, self.topic, self.client_id = group, topic, client_id
        self.max_batch, self.service, self.on_restart = max_batch, service, on_restart
        self.consumer_options = dict(consumer_options or {})
        self.client = client  # "kafka-python" or "confluent": the consumer's library
        self.consumer: GroupConsumer | None = None
        # Per partition, the offset after the last record handed to the handler (or where it
        # was sought to): the consumer's position beyond it passed offsets with no message.
        self.read_to: Offsets = {}
        self._rebalance = _Rebalance(self)

    @property
    def connected(self) -> bool:
        return self.consumer is not None

    def connect(self) -> None:
        """Prepare the handler, then join the group. No broker at all is said at once (after
        ``settings.kafka.client_timeout_s``); one that is restarting is waited for, up to
        ``settings.kafka.delivery_timeout_s``, as an outage while running is."""
        if self.consumer is not None:
            return
        bootstrap, timeout_s = (
            self.settings.kafka.bootstrap_servers,
            self.settings.kafka.client_timeout_s,
        )
        if not broker_answers(bootstrap, timeout_s):
            raise unreachable_error(bootstrap, timeout_s)
        self.consumer = self.join()

    def join(self) -> GroupConsumer:
        """Prepare the handler and subscribe, trying again while the broker is not ready."""
        return retry_while_retriable(
            self._join_once,
            doing=f"Starting {self.service}",
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            timeout_s=self.settings.kafka.delivery_timeout_s,
            timeout_variable="KAFKA_DELIVERY_TIMEOUT_S",
        )

    def _join_once(self) -> GroupConsumer:
        settings = self.settings
        try:
            self.handler.prepare()
            with admin_client(
                settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
            ) as admin:
                ensure_topic(admin, self.topic, settings.topics.partitions)
            consumer = self._open_consumer(
                group_id=self.group,
                client_id=self.client_id,
                auto_offset_reset="earliest",  # a partition with no offset yet: all of it
                enable_auto_commit=False,  # offsets are committed once the work is done
                session_timeout_ms=SESSION_TIMEOUT_MS,
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
                **self.consumer_options,
            )
            consumer.subscribe([self.topic], listener=self._rebalance)
        except BaseException:
            self.handler.release(timeout_s=0)
            raise
        return consumer

    def _open_consumer(self, **options: Any) -> GroupConsumer:
        if self.client != "confluent":
            return open_consumer(self.settings, **options)
        return ConfluentGroupConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            isolation_level=READ_COMMITTED,
            **client_timeouts(self.settings.kafka.client_timeout_s),
            **options,
        )

    def close(self, timeout_s: float | None = None) -> None:
        """Leave the group, then release the handler. Safe to call twice, or before joining."""
        consumer, self.consumer = self.consumer, None
        self.read_to = {}
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except KafkaError as exc:  # the group's session timeout lets it go by itself
                log.warning("could not leave the group cleanly (it times out by itself): %s", exc)
        self.handler.release(timeout_s)

    def run(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        idle_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> StatsT:
        """Handle batches until ``count`` messages are done, ``duration_s`` passed, the loop is
        idle (caught up, and no message for ``idle_s`` seconds: see :class:`RunLimits`), or
        ``stop`` is set - whichever is first; with none, until stopped. Must be connected."""
        consumer, handler = self.consumer, self.handler
        assert consumer is not None, "connect() first"
        poller = OutageTolerantPoller(
            consumer, self.settings, service=self.service, on_restart=self.on_restart
        )
        limits = RunLimits(
            consumer,
            count=count,
            duration_s=duration_s,
            idle_s=idle_s,
            stop=stop,
            settings=self.settings,
        )
        stats = handler.new_stats()
        while not limits.reached(handler.handled(stats)):
            batches = self._poll(poller, limits.batch_size(handler.handled(stats), self.max_batch))
            if batches:
                limits.got_messages()
                self._handle(consumer, batches, stats)
            elif passed := self._passed_without_messages():
                self.keeper.commit(consumer, handler.passed(passed, stats))
            self.keeper.commit(consumer, handler.after_poll(stats))
        self.keeper.commit(consumer, handler.finish(stats))
        return stats

    def _handle(self, consumer: GroupConsumer, batches: Batches, stats: StatsT) -> None:
        """The batch to the handler, then its offsets to the keeper. A transaction the broker
        aborted while the batch was written (a send raised :class:`TransactionAbortedError`) is
        recovered from as one whose commit failed."""
        try:
            offsets = self.handler.handle(batches, stats)
        except TransactionAbortedError as exc:
            if not isinstance(self.keeper, KafkaTransactions):
                raise
            self.keeper.recover(consumer, exc)
            return
        self.keeper.commit(consumer, offsets)

    def rejoin(self) -> None:
        """Leave the group and join it again (at the next poll): for a member the group has
        moved on without - its partitions were handed to others while it was paused."""
        consumer = self.consumer
        assert consumer is not None
        self.handler.partitions_moved(consumer.assignment(), assigned=False)
        self.read_to = {}
        consumer.unsubscribe()
        consumer.subscribe([self.topic], listener=self._rebalance)

    def next_offsets(self, batches: Batches) -> Offsets:
        """Per partition of ``batches``, the next offset to read once all its records are done:
        past its last record, and past what the consumer skipped after it - on a topic written
        in transactions, the commit marker that ends each one (an offset, but no message) and
        the records of aborted transactions. So a reader that records these offsets is at the
        partition's end when it has read everything, as Kafka's lag tools count it."""
        offsets = {}
        for tp, records in batches.items():
            if records:
                after_last = records[-1].offset + 1
                offsets[tp] = max(after_last, self.read_to.get(tp, after_last))
        return offsets

    def _poll(self, poller: OutageTolerantPoller, limit: int) -> Batches:
        try:
            batches = poller.poll(limit)
        finally:
            self._raise_rebalance_failure()
        self._check_resume_points()  # before any record of the poll is handled
        for tp, records in batches.items():
            if records:
                # Past the last record; past a commit marker too, if the fetch held it and the
                # consumer skipped it already (it never skips a message it has not returned).
                self.read_to[tp] = max(records[-1].offset + 1, self._position(tp) or 0)
        return batches

    def _position(self, tp: TopicPartition) -> int | None:
        """The consumer's position of ``tp``, if it has one now. Read from its subscription state:
        ``KafkaConsumer.position`` may ask the group coordinator first, and this must never wait."""
        assert self.consumer is not None
        if isinstance(self.consumer, ConfluentGroupConsumer):
            return self.consumer.local_position(tp)
        state = self.consumer._subscription.assignment.get(tp)
        position = getattr(state, "position", None)
        return None if position is None else int(position.offset)

    def _passed_without_messages(self) -> Offsets:
        """Partitions whose position moved past :attr:`read_to` in a poll with no message for
        them: the offsets between held none (commit markers, aborted records)."""
        passed = {}
        for tp, read_to in self.read_to.items():
            position = self._position(tp)
            if position is not None and position > read_to:
                passed[tp] = self.read_to[tp] = position
        return passed

    def _raise_rebalance_failure(self) -> None:
        failure, self._rebalance.failure = self._rebalance.failure, None
        if failure is None:
            return
        if isinstance(failure, OrderbookKitError):
            raise failure  # the keeper's own words (see OffsetKeeper.resume_points)
        raise OrderbookKitError(
            f"{self.service.capitalize()} failed while the group handed it partitions "
            f"({type(failure).__name__}: {failure}), so it stopped before reading anything; "
            f"{self.on_restart}."
        ) from failure

    def _check_resume_points(self) -> None:
        sought, self._rebalance.to_check = self._rebalance.to_check, {}
        if not sought:
            return
        assert self.consumer is not None
        for tp, (offset, end) in offsets_past_the_end(self.consumer, sought, self.settings).items():
            raise self.keeper.past_the_end(tp, offset, end)


class GroupService(Connectable, Generic[StatsT]):
    """A stage's public face, over its :class:`GroupLoop` (``self.loop``): ``connect``, ``close``
    and ``with`` are the loop's; :meth:`run` connects first (and closes at the end) when it is not
    connected yet. Nothing connects in the constructor."""

    loop: GroupLoop[StatsT]

    def connect(self) -> Self:
        self.loop.connect()
        return self

    def close(self, timeout_s: float | None = None) -> None:
        self.loop.close(timeout_s)

    def run(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        idle_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> StatsT:
        """See :meth:`GroupLoop.run`."""
        if not self.loop.connected:
            with self:
                return self.loop.run(count=count, duration_s=duration_s, idle_s=idle_s, stop=stop)
        return self.loop.run(count=count, duration_s=duration_s, idle_s=idle_s, stop=stop)
