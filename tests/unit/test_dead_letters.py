"""Dead letters as a frame, and the plot of rejections by reason (no broker: records built here)."""

from __future__ import annotations

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.lessons.plots import rejections_figure
from orderbook_kit.quality.dead_letters import DEAD_LETTER_COLUMNS, dead_letters_frame


def dead_letter(offset: int, reason: str, key: bytes | None = b"TTF-GAS") -> ConsumerRecord:
    headers = [
        ("source.topic", b"orderbook.raw"),
        ("source.partition", b"2"),
        ("source.offset", str(100 + offset).encode()),
        ("reason", reason.encode()),
        ("detail", f"why {offset}".encode()),
    ]
    return ConsumerRecord(
        topic="orderbook.dlq",
        partition=0,
        leader_epoch=0,
        offset=offset,
        timestamp=1_767_225_600_000 + offset,
        timestamp_type=0,
        key=key,
        value=b"\xff not even utf-8 " + bytes([offset]),
        headers=headers,
        checksum=None,
        serialized_key_size=7,
        serialized_value_size=20,
        serialized_header_size=-1,
    )


def test_frame_keeps_the_original_bytes_and_the_source() -> None:
    records = [dead_letter(0, "crossed_book"), dead_letter(1, "not_json", key=None)]
    frame = dead_letters_frame(records)
    assert list(frame.columns) == list(DEAD_LETTER_COLUMNS)
    assert frame["value"].tolist() == [r.value for r in records]
    assert frame["reason"].tolist() == ["crossed_book", "not_json"]
    assert frame["source_offset"].tolist() == [100, 101]
    assert frame["key"].isna().tolist() == [False, True]
    assert str(frame["kafka_time"].iloc[0]) == "2026-01-01 00:00:00+00:00"


def test_empty_frame_has_the_columns() -> None:
    assert list(dead_letters_frame([]).columns) == list(DEAD_LETTER_COLUMNS)


def test_a_record_without_source_headers_is_refused() -> None:
    record = dead_letter(0, "crossed_book")._replace(headers=[])
    with pytest.raises(OrderbookKitError, match=r"has no source\.\* headers: was it written by"):
        dead_letters_frame([record])


def test_rejections_figure_stacks_symbols_most_frequent_reason_first() -> None:
    records = [
        dead_letter(0, "seq_gap"),
        dead_letter(1, "crossed_book"),
        dead_letter(2, "seq_gap", key=b"NBP-GAS"),
        dead_letter(3, "seq_gap"),
    ]
    figure = rejections_figure(dead_letters_frame(records))
    bars = {trace.name: (list(trace.x), list(trace.y)) for trace in figure.data}
    assert bars == {
        "NBP-GAS": (["seq_gap", "crossed_book"], [1, 0]),
        "TTF-GAS": (["seq_gap", "crossed_book"], [2, 1]),
    }
    assert figure.layout.barmode == "stack"
