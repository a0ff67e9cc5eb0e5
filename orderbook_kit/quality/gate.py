"""The quality gate on Kafka: read raw ticks, write clean ones on, dead-letter the rest.

Every raw message ends up in exactly one of two topics, byte for byte as it arrived, with headers
saying where it came from (and, in the dead-letter topic, why it was rejected)::

    orderbook.raw ──> QualityGate ──> orderbook.clean   (headers: source.*)
                                 └──> orderbook.dlq     (headers: reason, detail, source.*)

Delivery is *exactly once* by default (``ORDERBOOK_GATE_DELIVERY``, :mod:`.writers`): each
batch's clean and dead-letter writes, its memory (``market/checker_memory.py``) and its offsets
are one Kafka transaction (:class:`KafkaTransactions` commits it). Killed at any moment, the gate
leaves either the whole batch or none of it to readers of committed data, and a restart goes on
from the last committed batch. The transactional id (``<group>.<instance>``) survives restarts:
the restarted gate fences its dead predecessor, whose open transaction the broker aborts.

*At least once* (``ORDERBOOK_GATE_DELIVERY=at-least-once``): after each batch the gate waits until
Kafka has acknowledged every clean and dead-letter write, then saves its memory, and only then
commits the batch's offsets (:class:`KafkaCommits`). A gate that is killed before committing
re-reads the batch when it restarts, so nothing is lost; a message may then be written twice,
and the ``source.*`` headers show the copy. Messages the saved memory says were already routed
go to the dead-letter topic as ``duplicate``, so the clean topic gets a second copy only if the
gate died before its memory was saved.

Several gates can run as one consumer group: Kafka shares the raw partitions between them, and
each partition's memory moves with it (the next owner reads it back before judging a message).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kafka import KafkaAdminClient, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import (
    admin_client,
    ensure_topic,
    message_size_limit,
    raise_message_size_limit,
    retry_while_retriable,
    topic_identity,
)
from orderbook_kit.kafka.headers import (
    HEADER_DETAIL,
    HEADER_REASON,
    header,
    source_headers,
    source_of,
)
from orderbook_kit.kafka.offsets import wait_for_committed_reads
from orderbook_kit.kafka.reader import read_records
from orderbook_kit.kafka.transactions import TransactionAbortedError, Transactions
from orderbook_kit.market.checks import QualityChecker, Verdict
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import Tick
from orderbook_kit.quality.writers import AcknowledgedWrites, GateWriter, TransactionalWrites
from orderbook_kit.runtime.group_loop import (
    Batches,
    BatchHandler,
    GroupLoop,
    GroupService,
    KafkaCommits,
    KafkaTransactions,
    OffsetKeeper,
    Offsets,
)
from orderbook_kit.settings.environment import Settings, load_settings

if TYPE_CHECKING:
    from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.market.checker_memory import (
    STATE_TOPIC_CONFIGS,
    MemoryScope,
    PartitionMemory,
    restore_memory,
    state_records,
)

__all__ = [
    "HEADER_DETAIL",
    "HEADER_REASON",
    "GateStats",
    "QualityGate",
    "Routed",
    "header",
    "source_headers",
    "source_of",
]

log = logging.getLogger(__name__)

# Records per batch: one flush, one memory save and one commit for each. Measured on this machine:
# 8.8k messages/s with 500, 12.6k with 5,000 (kafka-python's own consume-and-produce with no
# check at all does about 14.6k). A crash re-checks at most one batch per gate either way.
MAX_BATCH = 5000
# Bytes a dead letter may add to its raw message: the source and reason headers, and a detail
# that decoding cuts to a few hundred characters.
DEAD_LETTER_HEADROOM = 16 * 1024


@dataclass(frozen=True)
class Routed:
    """What the gate did with one raw message (passed to ``on_routed``)."""

    record: ConsumerRecord
    verdict: Verdict
    topic: str  # where it was written


@dataclass
class GateStats:
    """Counts of one :meth:`QualityGate.run`."""

    processed: int = 0
    clean: int = 0
    rejected: Counter[Reason] = field(default_factory=Counter)
    batches: int = 0

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        text = f"Checked {self.processed} message(s): {self.clean} clean, "
        text += f"{self.rejected_count} rejected"
        if self.rejected:
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) + ")"
        return text + "."


@dataclass
class _Uncommitted:
    """A handled batch until its transaction commits: the run's counts with it and before it,
    and its clean ticks (for the metrics; kept only when they are on)."""

    stats: GateStats
    before: GateStats
    clean: list[Tick]


class QualityGate(GroupService[GateStats], BatchHandler[GateStats]):
    """Validates ``settings.topics.raw`` into ``clean_topic`` and ``dlq_topic``, as consumer group
    ``settings.gate.group``. Nothing connects until :meth:`connect` (or ``with``, or
    :meth:`run`, which connects and closes by itself when the gate is not connected yet).
    Leaving ``with`` on an error closes at once: the batch was not committed, so nothing is lost.
    :meth:`run` checks messages until a limit (see :class:`GroupLoop`). Its own batch handler;
    its offsets are committed to Kafka once a batch's writes are acknowledged
    (:class:`KafkaCommits`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_routed: Callable[[Routed], None] | None = None,
        metrics: GateMetrics | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.settings = settings or load_settings()
        self.max_batch = max_batch  # messages a poll, so a batch (a transaction, exactly once)
        self.on_routed = on_routed
        self.metrics = metrics  # counted once per batch, once it is committed or acknowledged
        self._writer: GateWriter | None = None
        self._scope: MemoryScope | None = None  # known once the raw topic's id is
        self._memory: dict[int, PartitionMemory] = {}  # by raw partition
        self._moved: set[int] = set()  # partitions the group moved: memory to read again
        self._moved_lock = threading.Lock()
        self._uncommitted: _Uncommitted | None = None  # the last batch, until it counts
        self.loop = GroupLoop(
            self.settings,
            self,
            self._offset_keeper(),
            group=self.settings.gate.group,
            topic=self.settings.topics.raw,
            # One per process: `kafka-consumer-groups --describe` tells the gates apart.
            client_id=f"orderbook-kit-quality-{os.getpid()}",
            max_batch=max_batch,
            service="the gate",
            on_restart="a restart checks the rest",
            consumer_options=self._consumer_options(),
            # Its transactions take the group metadata of a consumer of their own client.
            client=self.settings.kafka.client,
        )

    @property
    def exactly_once(self) -> bool:
        return self.settings.gate.delivery == "exactly-once"

    def _consumer_options(self) -> dict[str, object]:
        # Not a static member (KIP-345), though a restarted gate would get its partitions back
        # sooner: a static member does not leave its group when it closes, so the group could
        # not be reset or deleted until its session ran out.
        return {"max_poll_records": self.max_batch}

    def _offset_keeper(self) -> OffsetKeeper:
        if not self.exactly_once:
            return KafkaCommits(self.settings, self.settings.gate.group)
        return KafkaTransactions(
            self._transactional_producer, self._forget_batch, rejoin=lambda: self.loop.rejoin()
        )

    def _transactional_producer(self) -> Transactions:
        assert isinstance(self._writer, TransactionalWrites), "connect() first"
        return self._writer.producer

    def _forget_batch(self, partitions: set[TopicPartition]) -> None:
        """An aborted batch taught the memory things that did not happen: read it again. Nor
        does it count: the batch is read and checked again."""
        self.partitions_moved(partitions, assigned=True)
        batch, self._uncommitted = self._uncommitted, None
        if batch is not None:
            stats, before = batch.stats, batch.before
            stats.processed, stats.clean, stats.batches = (
                before.processed,
                before.clean,
                before.batches,
            )
            stats.rejected = before.rejected

    def after_poll(self, stats: GateStats) -> Offsets:
        """The batch's transaction committed (or, at least once, its writes were acknowledged):
        now it counts in the metrics."""
        batch, self._uncommitted = self._uncommitted, None
        if batch is not None and self.metrics is not None:
            self.metrics.count(batch.stats)
            self.metrics.observe_ticks(batch.clean)
        return {}

    def finish(self, stats: GateStats) -> Offsets:
        """At the end of a run, exactly once: wait (bounded) until readers of committed data see
        the last transaction - so that reading the clean topic right after :meth:`run` finds
        every clean tick it counted (see :func:`wait_for_committed_reads`)."""
        if self.exactly_once and stats.batches:
            topics = self.settings.topics
            wait_for_committed_reads(
                [topics.clean, topics.dead_letters, topics.gate_state],
                self.settings,
                timeout_s=self.settings.kafka.client_timeout_s,
            )
        return {}

    @property
    def tracked_symbols(self) -> int:
        """How many symbols the gate remembers, over the partitions it has now."""
        return sum(memory.checker.tracked_symbols for memory in self._memory.values())

    def _new_checker(self) -> QualityChecker:
        return QualityChecker(self.settings.gate.price_jump_limit)

    # --- BatchHandler ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the four topics if needed and open the writer (before joining)."""
        if self._writer is not None:
            return
        try:
            # Room for the largest raw message plus the dead-letter headers.
            limit = self._prepare_topics()
            kind = TransactionalWrites if self.exactly_once else AcknowledgedWrites
            self._writer = kind(self.settings, max_request_size=limit)
            self._writer.connect()
        except BaseException:
            self.release(timeout_s=0)
            raise

    def release(self, timeout_s: float | None) -> None:
        """Close the writer (waiting up to ``timeout_s`` for acknowledgements; nothing is
        pending after a finished batch). Safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close(timeout_s)

    def new_stats(self) -> GateStats:
        return GateStats()

    def handled(self, stats: GateStats) -> int:
        return stats.processed

    def partitions_moved(self, partitions: set[TopicPartition], *, assigned: bool) -> None:
        # Taken away, or handed over (another gate may have moved it on since we last had it):
        # either way its memory is read again before the next batch judges it.
        with self._moved_lock:
            self._moved.update(tp.partition for tp in partitions)

    def handle(self, batches: Batches, stats: GateStats) -> Offsets:
        """Route the batch, wait for its writes, save the memory: then its offsets are done."""
        writer = self._writer
        assert writer is not None
        with self._moved_lock:
            moved, self._moved = self._moved, set()
        for partition in moved:
            self._memory.pop(partition, None)
        self._restore([tp.partition for tp in batches if tp.partition not in self._memory])
        before = replace(stats, rejected=Counter(stats.rejected))
        try:
            writer.begin()
            clean = self._process(batches, writer, stats)
            self._save_memory(batches, writer)
        except TransactionAbortedError:
            # Its transaction was lost on the way: the counts go back when it is forgotten.
            self._uncommitted = _Uncommitted(stats, before, [])
            raise
        stats.batches += 1
        self._uncommitted = _Uncommitted(stats, before, clean)
        if not self.exactly_once:
            self.after_poll(stats)  # its writes are acknowledged: it counts
        # The committed offset is the *next* message to read: one past the last one written.
        return {tp: records[-1].offset + 1 for tp, records in batches.items() if records}

    def _restore(self, partitions: list[int]) -> None:
        """Read the memory of ``partitions`` back from the state topic, before judging them."""
        if not partitions:
            return
        assert self._scope is not None
        settings = self.settings
        kafka = settings.kafka
        deadline = time.monotonic() + kafka.delivery_timeout_s
        # A broker slow to answer the read's first request (a loaded machine; this gate just
        # woke from a pause) is asked again up to the delivery timeout, like an outage while
        # running: it is no reason to stop.
        read = retry_while_retriable(
            lambda: read_records(
                settings.topics.gate_state,
                settings=settings,
                partitions=partitions,
                timeout_s=max(deadline - time.monotonic(), 1.0),
            ),
            doing=f"Reading the gate's memory of partition(s) {partitions}",
            bootstrap_servers=kafka.bootstrap_servers,
            timeout_s=kafka.delivery_timeout_s,
            timeout_variable="KAFKA_DELIVERY_TIMEOUT_S",
        )
        if read.timed_out:
            raise OrderbookKitError(
                f"The gate could not read its memory of partition(s) {partitions} from "
                f"{settings.topics.gate_state!r} within {settings.kafka.delivery_timeout_s:g} s "
                f"({read.outage or 'the topic did not answer'}), so it stopped before judging "
                "them; nothing was committed. Check the brokers (`make status`) and start the "
                "gate again."
            )
        by_partition: dict[int, list[ConsumerRecord]] = {p: [] for p in partitions}
        for record in read.records:
            by_partition[record.partition].append(record)
        for partition, records in by_partition.items():
            restored = restore_memory(self._scope, partition, records, self._new_checker)
            self._memory[partition] = restored.memory
            log.info(
                "partition %d: memory of %d symbol(s) restored, checked up to offset %d",
                partition,
                restored.symbols,
                restored.memory.checked_through,
            )
            if restored.unreadable:
                log.warning(
                    "partition %d: %d record(s) of %r are not the gate's memory and were skipped",
                    partition,
                    restored.unreadable,
                    settings.topics.gate_state,
                )

    def _save_memory(
        self, batches: dict[TopicPartition, list[ConsumerRecord]], writer: GateWriter
    ) -> None:
        """Write what the batch changed in the memory, before the offsets are committed: in
        the batch's transaction, or - at least once - after the batch's own writes were
        acknowledged, waiting for Kafka to have it (the memory never says a message was routed
        that is not in Kafka)."""
        assert self._scope is not None
        state_topic = self.settings.topics.gate_state
        for tp in batches:
            for key, value in state_records(self._scope, tp.partition, self._memory[tp.partition]):
                writer.send(state_topic, key, value, partition=tp.partition)
        writer.settle()

    def _prepare_topics(self) -> int:
        """Create the four topics if needed; return the dead-letter topic's message size limit.

        Every raw message, whatever its size, must fit in the dead-letter topic together with
        its headers - or one oversized message would stop the gate on every run. So the
        dead-letter topic accepts the raw topic's largest message plus ``DEAD_LETTER_HEADROOM``.
        """
        settings = self.settings
        with admin_client(
            settings.kafka.bootstrap_servers, settings.kafka.client_timeout_s
        ) as admin:
            for topic in (settings.topics.raw, settings.topics.clean):
                ensure_topic(admin, topic, settings.topics.partitions)
            needed = message_size_limit(admin, settings.topics.raw) + DEAD_LETTER_HEADROOM
            configs = {"max.message.bytes": str(needed)}
            created = ensure_topic(
                admin, settings.topics.dead_letters, settings.topics.partitions, configs
            )
            if not created and message_size_limit(admin, settings.topics.dead_letters) < needed:
                raise_message_size_limit(admin, settings.topics.dead_letters, needed)
            self._prepare_state_topic(admin)
        return needed

    def _prepare_state_topic(self, admin: KafkaAdminClient) -> None:
        """The state topic needs a partition for each raw one (raw p's memory is in p)."""
        settings = self.settings
        raw_id, raw_partitions = topic_identity(admin, settings.topics.raw)
        state_topic = settings.topics.gate_state
        ensure_topic(admin, state_topic, raw_partitions, STATE_TOPIC_CONFIGS)
        _, state_partitions = topic_identity(admin, state_topic)
        if state_partitions < raw_partitions:
            raise OrderbookKitError(
                f"The gate's state topic {state_topic!r} has {state_partitions} partition(s) and "
                f"the raw topic {settings.topics.raw!r} has {raw_partitions}: the gate keeps raw "
                f"partition p's memory in partition p. Add partitions to it (kafka-topics.sh "
                f"--alter --topic {state_topic} --partitions {raw_partitions}) and start again."
            )
        self._scope = MemoryScope(settings.gate.group, settings.topics.raw, raw_id)

    def _process(
        self,
        batches: dict[TopicPartition, list[ConsumerRecord]],
        writer: GateWriter,
        stats: GateStats,
    ) -> list[Tick]:
        """Route every record of ``batches``; the clean ticks (kept only when metrics are on)."""
        clean_ticks: list[Tick] = []
        keep = clean_ticks.append if self.metrics is not None else None
        clean, dead = self.settings.topics.clean, self.settings.topics.dead_letters
        for tp, records in batches.items():
            memory = self._memory[tp.partition]
            for record in records:
                verdict = _judge(memory, record)
                headers = source_headers(record)
                if verdict.accepted:
                    target = clean
                    stats.clean += 1
                    if keep is not None and verdict.tick is not None:
                        keep(verdict.tick)
                else:
                    assert verdict.reason is not None
                    target = dead
                    stats.rejected[verdict.reason] += 1
                    headers += [
                        (HEADER_REASON, verdict.reason.value.encode()),
                        (HEADER_DETAIL, verdict.detail.encode()),
                    ]
                # Same key, same bytes, same timestamp: the copy is indistinguishable from the
                # original except for the headers.
                writer.send(
                    target, record.key, record.value, headers=headers, timestamp_ms=record.timestamp
                )
                stats.processed += 1
                if self.on_routed is not None:
                    self.on_routed(Routed(record, verdict, target))
            if records:
                memory.checked_through = max(memory.checked_through, records[-1].offset)
        # At least once: every acknowledgement before the memory and the commit (a failed or
        # unanswered write raises DeliveryError; the offsets are then not committed).
        writer.settle()
        return clean_ticks


def _judge(memory: PartitionMemory, record: ConsumerRecord) -> Verdict:
    if memory.already_checked(record.offset):
        return Verdict(
            Reason.DUPLICATE,
            f"offset {record.offset} was already checked (up to {memory.checked_through}); a "
            "gate stopped after routing it and before committing",
        )
    return memory.checker.check(record.key, record.value)
