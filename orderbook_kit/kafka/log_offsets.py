"""Where each partition's log begins and ends, asked of kafka-python so that every partition
gets its answer.

kafka-python 3.0.12's ``end_offsets`` and ``beginning_offsets`` leave out a partition whose
leader its metadata does not know at that moment - a topic created a moment ago, a leader that
has just moved - and then fail with a bare ``KeyError`` for it. These ask again (the client has
requested fresh metadata by then) until every partition is answered, within a bound, and past it
raise kafka-python's retriable ``KafkaTimeoutError``, which the kit's waits already ride out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Protocol

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

__all__ = ["beginning_offsets_of", "end_offsets_of"]

ASK_AGAIN_S = 0.1  # between asks, while the client's metadata catches up

Ask = Callable[[list[TopicPartition], int], dict[TopicPartition, int]]


class LogEnds(Protocol):
    """kafka-python's consumer, or the kit's librdkafka group consumer (which answers every
    partition anyway)."""

    def end_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int
    ) -> dict[TopicPartition, int]: ...


class LogStarts(Protocol):
    """kafka-python's consumer: where each partition's log begins."""

    def beginning_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int
    ) -> dict[TopicPartition, int]: ...


def end_offsets_of(
    consumer: LogEnds, partitions: Collection[TopicPartition], timeout_ms: int
) -> dict[TopicPartition, int]:
    """``consumer.end_offsets(partitions)``, each of ``partitions`` answered within
    ``timeout_ms``."""
    return _every_partition(consumer.end_offsets, partitions, timeout_ms)


def beginning_offsets_of(
    consumer: LogStarts, partitions: Collection[TopicPartition], timeout_ms: int
) -> dict[TopicPartition, int]:
    """``consumer.beginning_offsets(partitions)``, each of ``partitions`` answered within
    ``timeout_ms``."""
    return _every_partition(consumer.beginning_offsets, partitions, timeout_ms)


def _every_partition(
    ask: Ask, partitions: Collection[TopicPartition], bound_ms: int
) -> dict[TopicPartition, int]:
    wanted = list(partitions)
    deadline = time.monotonic() + bound_ms / 1000
    while True:
        left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
        try:
            return ask(wanted, left_ms)
        except KeyError as exc:  # the partition kafka-python left out
            if time.monotonic() + ASK_AGAIN_S >= deadline:
                raise KafkaTimeoutError(
                    f"no leader of {exc.args[0]} known within {bound_ms} ms"
                ) from None
            time.sleep(ASK_AGAIN_S)
