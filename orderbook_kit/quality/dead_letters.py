"""Read the dead-letter topic into a DataFrame: one row per rejected message, with its reason."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.kafka.reader import kafka_time, read_records
from orderbook_kit.quality.gate import HEADER_DETAIL, HEADER_REASON, header, source_of
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = ["DEAD_LETTER_COLUMNS", "dead_letters_frame", "read_dead_letters"]

DEAD_LETTER_COLUMNS = {
    "reason": "string",
    "detail": "string",
    "key": "string",
    "value": "object",  # the original bytes, exactly as the raw topic had them
    "source_partition": "int64",
    "source_offset": "int64",
    "kafka_time": "datetime64[ms, UTC]",
    "partition": "int64",
    "offset": "int64",
}


def dead_letters_frame(records: list[ConsumerRecord]) -> pd.DataFrame:
    rows = []
    for record in records:
        _, source_partition, source_offset = source_of(record)
        rows.append(
            {
                "reason": header(record, HEADER_REASON),
                "detail": header(record, HEADER_DETAIL),
                "key": None if record.key is None else record.key.decode(errors="replace"),
                "value": record.value,
                "source_partition": source_partition,
                "source_offset": source_offset,
                "kafka_time": kafka_time(record),
                "partition": record.partition,
                "offset": record.offset,
            }
        )
    frame = pd.DataFrame(rows, columns=list(DEAD_LETTER_COLUMNS))
    return frame.astype(DEAD_LETTER_COLUMNS)


def read_dead_letters(
    settings: Settings | None = None,
    *,
    topic: str | None = None,
    offsets: dict[int, int] | None = None,
    from_time: datetime | None = None,
    timeout_s: float = 10.0,
) -> pd.DataFrame:
    """The dead-letter topic (``settings.topics.dead_letters`` unless ``topic``), from ``offsets``,
    ``from_time`` or the beginning up to its current end, without a consumer group."""
    settings = settings or load_settings()
    read = read_records(
        topic or settings.topics.dead_letters,
        settings=settings,
        offsets=offsets,
        from_time=from_time,
        timeout_s=timeout_s,
    )
    return dead_letters_frame(read.records)
