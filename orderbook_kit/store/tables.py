"""The hot store's tables: the schema, one batch of ticks written effectively once, stored offsets.

Effectively once = at-least-once delivery + an idempotent write + the offsets in the same
transaction. :func:`write_batch` inserts a batch's ticks (a tick already stored is skipped by its
primary key) *and* moves the group's next offsets in one transaction: after a crash at any
moment, either both are in the database or neither is, and the store restarts at the stored
offsets, so every tick is read again until it is stored, and stored once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from kafka.consumer.fetcher import ConsumerRecord
from psycopg import sql

from orderbook_kit.market.tick import Tick

__all__ = [
    "SCHEMA_FILE",
    "TICK_COLUMNS",
    "BatchResult",
    "TickRow",
    "apply_schema",
    "drop_schema",
    "prepare_session",
    "stored_offsets",
    "tick_row",
    "write_batch",
]

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
# Every field of a Tick, in the model's order, then where the store read it.
TICK_FIELDS = tuple(Tick.model_fields)
TICK_COLUMNS = (*TICK_FIELDS, "source_topic", "source_partition", "source_offset")
# Any number will do, as long as it is the same for every store: two stores starting at once
# would otherwise both try to create the tables, and one fail on a duplicate type.
_SCHEMA_LOCK_KEY = 0x0DE7_B00C

# A session's staging table: a batch is COPYed in (the fastest way into PostgreSQL), then inserted
# into `ticks` in one statement. Its rows vanish at each commit.
_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS incoming_ticks
    (LIKE ticks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
_COPY_STAGING = sql.SQL("COPY incoming_ticks ({}) FROM STDIN").format(
    sql.SQL(", ").join(map(sql.Identifier, TICK_COLUMNS))
)
# DO NOTHING: a tick that is already stored (a duplicate from the gate, or a batch read again
# after a crash) is left as it is - the first copy wins and nothing fails.
_INSERT_NEW = sql.SQL(
    "INSERT INTO ticks ({columns}) SELECT {columns} FROM incoming_ticks "
    "ON CONFLICT (symbol, seq) DO NOTHING"
).format(columns=sql.SQL(", ").join(map(sql.Identifier, TICK_COLUMNS)))
# GREATEST: a store that lost its partitions while writing (it stalled, the group moved on) must
# not move the offset back behind what the partition's new owner already stored.
_UPSERT_OFFSET = """
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
VALUES (%s, %s, %s, %s)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
    updated_at = now()
"""

TickRow = tuple[object, ...]  # values in TICK_COLUMNS order


@dataclass(frozen=True)
class BatchResult:
    rows: int  # distinct ticks in the batch
    inserted: int  # of which new: the rest were stored already


def tick_row(tick: Tick, record: ConsumerRecord) -> TickRow:
    """The ``ticks`` row of ``tick``, read from ``record``."""
    values = tuple(getattr(tick, name) for name in TICK_FIELDS)
    return (*values, record.topic, record.partition, record.offset)


def apply_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create ``schema`` and the store's tables in it, where they do not exist yet."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(SCHEMA_FILE.read_text())


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    """Delete ``schema`` with every table in it (for a fresh start, and tests)."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def prepare_session(conn: psycopg.Connection) -> None:
    """Create this connection's staging table (once per connection, after :func:`apply_schema`)."""
    conn.execute(_CREATE_STAGING)


def write_batch(
    conn: psycopg.Connection,
    group_id: str,
    rows: Iterable[TickRow],
    next_offsets: Mapping[tuple[str, int], int],
) -> BatchResult:
    """Store ``rows`` and the group's ``next_offsets`` ((topic, partition) -> offset) in one
    transaction. A tick stored before (same symbol and seq) is skipped, not written twice."""
    distinct: dict[tuple[object, object], TickRow] = {}
    for row in rows:
        distinct.setdefault((row[0], row[1]), row)  # the batch's first copy of each tick
    with conn.transaction(), conn.cursor() as cursor:
        inserted = 0
        if distinct:
            with cursor.copy(_COPY_STAGING) as copy:
                for row in distinct.values():
                    copy.write_row(row)
            cursor.execute(_INSERT_NEW)
            inserted = cursor.rowcount
        cursor.executemany(
            _UPSERT_OFFSET,
            [
                (group_id, topic, partition, offset)
                for (topic, partition), offset in next_offsets.items()
            ],
        )
    return BatchResult(len(distinct), inserted)


def stored_offsets(conn: psycopg.Connection, group_id: str, topic: str) -> dict[int, int]:
    """Partition -> next offset to read, as stored with the ticks."""
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = %s AND topic = %s",
        (group_id, topic),
    ).fetchall()
    return {partition: offset for partition, offset in rows}
