"""Ticks as Parquet: the archive's file format, one schema for every file.

``symbol`` and ``date`` are not columns of a file: they are its folder names
(``symbol=TTF-GAS/date=2026-11-26``), which readers turn back into columns. ``partition`` and
``offset`` say where in Kafka each tick came from, so any row can be traced to its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from orderbook_kit.market.tick import Tick

__all__ = ["SCHEMA", "ArchivedTick", "encode"]

TIMESTAMP = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("bid", pa.float64(), nullable=False),
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("bid_size", pa.float64(), nullable=False),
        pa.field("ask_size", pa.float64(), nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=False),
        pa.field("publish_time", TIMESTAMP),  # None for a tick sent without one
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
    ]
)
# zstd: about a third of snappy's size for these columns, and every reader here supports it.
COMPRESSION = "zstd"


@dataclass(frozen=True)
class ArchivedTick:
    """A tick and the Kafka position it was read from."""

    tick: Tick
    partition: int
    offset: int


def encode(rows: Sequence[ArchivedTick]) -> bytes:
    """``rows`` as the bytes of one Parquet file, in the order given."""
    ticks = [row.tick for row in rows]
    table = pa.table(
        {
            "seq": [t.seq for t in ticks],
            "bid": [t.bid for t in ticks],
            "ask": [t.ask for t in ticks],
            "bid_size": [t.bid_size for t in ticks],
            "ask_size": [t.ask_size for t in ticks],
            "event_time": [t.event_time for t in ticks],
            "publish_time": [t.publish_time for t in ticks],
            "partition": [row.partition for row in rows],
            "offset": [row.offset for row in rows],
        },
        schema=SCHEMA,
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION)
    return bytes(sink.getvalue().to_pybytes())
