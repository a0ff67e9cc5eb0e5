"""The gate's memory follows its partitions, through a compacted Kafka topic.

The checker judges each tick against the last accepted one of its symbol. That memory lives in a
process, and a process stops, dies, or hands its partitions to another gate of the group. So the
gate keeps a copy in Kafka, the way Kafka Streams keeps its state stores in changelog topics:

- After every batch, once its clean and dead-letter writes are acknowledged and before its offsets
  are committed, the gate writes to ``settings.topics.gate_state`` the memory of each symbol the
  batch changed, and how far the partition was checked (its *position*). Raw partition p goes to
  state partition p. The topic is compacted: Kafka keeps the last record of each key, so reading
  it back stays short however long the gate has run.
- When a gate is given a partition (at its start, or because another gate left or died), it
  reads that partition's memory back before it judges any message of it.

Because the memory is written before the commit, it is never behind the committed offsets. A gate
that died after writing it and before committing leaves messages that were already routed: the
next gate re-reads them, sees they are at or before the position, and dead-letters each as a
``duplicate`` instead of writing a second clean copy.

Each record names the consumer group, the raw topic and that topic's id: another group starts with
a memory of its own, and a raw topic deleted and created again under the same name starts blank.
Records that are not the gate's (someone wrote to the topic) are skipped and counted, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.market.checks import QualityChecker

__all__ = [
    "STATE_TOPIC_CONFIGS",
    "MemoryScope",
    "PartitionMemory",
    "Restored",
    "restore_memory",
    "state_records",
]

# Compacted, and compacted soon: a segment rolls every minute and is cleaned once a tenth of it
# is superseded, so a new gate reads about a minute of records plus one per symbol.
STATE_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "60000",
}
# A state record is a few hundred bytes; anything much larger is not one, and is not parsed.
MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class MemoryScope:
    """Whose memory: a consumer group checking one incarnation (id) of a raw topic."""

    group: str
    topic: str
    topic_id: str

    def key(self, partition: int, symbol: str | None) -> bytes:
        """The record key of ``symbol``'s memory in ``partition`` (None: the position)."""
        return json.dumps([self.group, self.topic, partition, symbol]).encode()


@dataclass
class PartitionMemory:
    """What a gate remembers of one raw partition."""

    checker: QualityChecker
    checked_through: int = -1  # offset of the last message routed; -1: none yet

    def already_checked(self, offset: int) -> bool:
        return offset <= self.checked_through


@dataclass(frozen=True)
class Restored:
    """The memory read back for one partition, and how many records could not be used."""

    memory: PartitionMemory
    symbols: int
    unreadable: int


def state_records(
    scope: MemoryScope, partition: int, memory: PartitionMemory
) -> list[tuple[bytes, bytes]]:
    """(key, value) records saving what changed in ``memory`` since the last call: one per
    symbol whose memory changed, then the position."""
    records = [
        (scope.key(partition, symbol), _encode({"topic_id": scope.topic_id, "state": state}))
        for symbol, state in memory.checker.changes().items()
    ]
    position = {"topic_id": scope.topic_id, "checked_through": memory.checked_through}
    records.append((scope.key(partition, None), _encode(position)))
    return records


def restore_memory(
    scope: MemoryScope,
    partition: int,
    records: Iterable[ConsumerRecord],
    new_checker: Callable[[], QualityChecker],
) -> Restored:
    """The memory of ``partition`` from its state records, read in log order (the last record
    of each key wins, as compaction keeps it; an empty value deletes the key)."""
    latest: dict[str | None, dict[str, Any]] = {}
    unreadable = 0
    for record in records:
        symbol, value, readable = _parse(scope, partition, record)
        if not readable:
            unreadable += 1
            continue
        if value is _OTHER_SCOPE:
            continue
        latest.pop(symbol, None)  # re-inserted last: dict order is then last-seen order
        if value is not None:
            latest[symbol] = value
    checker = new_checker()
    position = latest.pop(None, {})
    checked_through = position.get("checked_through", -1)
    if isinstance(checked_through, bool) or not isinstance(checked_through, int):
        unreadable, checked_through = unreadable + 1, -1
    symbols = 0
    for symbol, value in latest.items():
        assert symbol is not None
        try:
            checker.restore(symbol, value["state"])
        except (KeyError, TypeError, ValueError):
            unreadable += 1
            continue
        symbols += 1
    return Restored(PartitionMemory(checker, checked_through), symbols, unreadable)


_OTHER_SCOPE: Any = object()  # a record of another group or topic: not ours, not a problem


def _parse(
    scope: MemoryScope, partition: int, record: ConsumerRecord
) -> tuple[str | None, dict[str, Any] | None, bool]:
    """(symbol, value or None for a deletion or _OTHER_SCOPE, readable)."""
    try:
        key = json.loads(record.key) if record.key and len(record.key) <= MAX_RECORD_BYTES else None
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        key = None
    if not (isinstance(key, list) and len(key) == 4 and isinstance(key[3], str | None)):
        return None, None, False
    group, topic, key_partition, symbol = key
    if [group, topic, key_partition] != [scope.group, scope.topic, partition]:
        return symbol, _OTHER_SCOPE, True
    if record.value is None:
        return symbol, None, True
    try:
        value = json.loads(record.value) if len(record.value) <= MAX_RECORD_BYTES else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        return symbol, None, False
    if value.get("topic_id") != scope.topic_id:  # an earlier topic of the same name
        return symbol, _OTHER_SCOPE, True
    return symbol, value, True


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
