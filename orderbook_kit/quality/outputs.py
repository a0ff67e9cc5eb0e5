"""Everything the gate wrote, traced back to the raw log: the audit of "nothing lost".

Each copy in the clean or dead-letter topic names its raw message in its ``source.*`` headers.
Every raw message the gate checked appears at least once; one it re-read after a crash (its
batch written but not yet committed) appears twice - at-least-once delivery, made visible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.kafka.reader import read_records
from orderbook_kit.quality.gate import source_of
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["copies_by_source", "read_outputs"]


def read_outputs(
    settings: Settings | None = None,
    *,
    timeout_s: float = 10.0,
    isolation_level: str = "read_committed",
) -> list[ConsumerRecord]:
    """Every message in the clean topic, then every one in the dead-letter topic: those of
    committed transactions (the default), or with ``isolation_level="read_uncommitted"`` those
    of aborted ones too."""
    settings = settings or load_settings()
    return [
        record
        for topic in (settings.topics.clean, settings.topics.dead_letters)
        for record in read_records(
            topic, settings=settings, timeout_s=timeout_s, isolation_level=isolation_level
        ).records
    ]


def copies_by_source(records: Iterable[ConsumerRecord]) -> Counter[tuple[int, int]]:
    """{(raw partition, raw offset): how many of ``records`` are copies of that raw message}."""
    return Counter(source_of(record)[1:] for record in records)
