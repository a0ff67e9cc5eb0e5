"""The headers a stage puts on the records it copies: where each came from (``source.topic``,
``source.partition``, ``source.offset``) and, on a dead letter, why it was set aside (``reason``,
``detail``). The quality gate and the book service write them; readers of their topics read them
back with :func:`header` and :func:`source_of`."""

from __future__ import annotations

from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.errors import OrderbookKitError

__all__ = [
    "HEADER_DETAIL",
    "HEADER_REASON",
    "header",
    "source_headers",
    "source_of",
]

HEADER_REASON = "reason"
HEADER_DETAIL = "detail"
HEADER_SOURCE_TOPIC = "source.topic"
HEADER_SOURCE_PARTITION = "source.partition"
HEADER_SOURCE_OFFSET = "source.offset"


def source_headers(record: ConsumerRecord) -> list[tuple[str, bytes]]:
    """Where ``record`` came from (topic, partition, offset), as the headers of its copy."""
    return [
        (HEADER_SOURCE_TOPIC, record.topic.encode()),
        (HEADER_SOURCE_PARTITION, str(record.partition).encode()),
        (HEADER_SOURCE_OFFSET, str(record.offset).encode()),
    ]


def header(record: ConsumerRecord, name: str) -> str | None:
    """The value of header ``name`` of ``record`` as text, or None."""
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace") if value is not None else None
    return None


def source_of(record: ConsumerRecord) -> tuple[str, int, int]:
    """(topic, partition, offset) of the raw message a clean or dead-letter record copies."""
    topic = header(record, HEADER_SOURCE_TOPIC)
    partition = header(record, HEADER_SOURCE_PARTITION)
    offset = header(record, HEADER_SOURCE_OFFSET)
    if topic is None or partition is None or offset is None:
        raise OrderbookKitError(
            f"record at {record.topic}/{record.partition}@{record.offset} has no source.* "
            "headers: was it written by the quality gate or the book service?"
        )
    return topic, int(partition), int(offset)
