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

from orderbook_kit.market.candles import Candle
from orderbook_kit.market.tick import Tick

__all__ = [
    "CANDLES",
    "CANDLE_COLUMNS",
    "SCHEMA_FILE",
    "TICKS",
    "TICK_COLUMNS",
    "BatchResult",
    "StoredTable",
    "TickRow",
    "apply_schema",
    "candle_row",
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

# A streamed candle (the candles service's closed window), then where the store read it.
CANDLE_COLUMNS = (
    "symbol",
    "seconds",
    "bucket",
    "open",
    "high",
    "low",
    "close",
    "ticks",
    "first_seq",
    "last_seq",
    "source_topic",
    "source_partition",
    "source_offset",
)


@dataclass(frozen=True)
class StoredTable:
    """A table the store fills from a topic: its columns, and how many of the first ones are its
    primary key (a row whose key is stored already is skipped: the first copy wins)."""

    name: str
    columns: tuple[str, ...]
    key_width: int

    def _columns(self) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, self.columns))

    # A session's staging table: a batch is COPYed in (the fastest way into PostgreSQL), then
    # inserted in one statement. Its rows vanish at each commit.
    def create_staging(self) -> sql.Composed:
        return sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
            "(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(staging=self._staging(), table=sql.Identifier(self.name))

    def copy_staging(self) -> sql.Composed:
        return sql.SQL("COPY {} ({}) FROM STDIN").format(self._staging(), self._columns())

    # DO NOTHING: a row that is already stored (a duplicate from the gate, or a batch read again
    # after a crash) is left as it is - the first copy wins and nothing fails.
    def insert_new(self) -> sql.Composed:
        key = sql.SQL(", ").join(map(sql.Identifier, self.columns[: self.key_width]))
        return sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
            "ON CONFLICT ({key}) DO NOTHING"
        ).format(
            table=sql.Identifier(self.name),
            columns=self._columns(),
            staging=self._staging(),
            key=key,
        )

    def _staging(self) -> sql.Identifier:
        return sql.Identifier(f"incoming_{self.name}")


TICKS = StoredTable("ticks", TICK_COLUMNS, 2)
CANDLES = StoredTable("candles", CANDLE_COLUMNS, 3)
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


def candle_row(candle: Candle, record: ConsumerRecord) -> TickRow:
    """The ``candles`` row of ``candle``, read from ``record``."""
    seconds = round((candle.end - candle.start).total_seconds())
    return (
        candle.symbol,
        seconds,
        candle.start,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.ticks,
        candle.first_seq,
        candle.last_seq,
        record.topic,
        record.partition,
        record.offset,
    )


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
    """Create this connection's staging tables (once per connection, after
    :func:`apply_schema`)."""
    for table in (TICKS, CANDLES):
        conn.execute(table.create_staging())


def write_batch(
    conn: psycopg.Connection,
    group_id: str,
    rows: Iterable[TickRow],
    next_offsets: Mapping[tuple[str, int], int],
    table: StoredTable = TICKS,
) -> BatchResult:
    """Store ``rows`` in ``table`` and the group's ``next_offsets`` ((topic, partition) ->
    offset) in one transaction. A row stored before (same key: a tick's symbol and seq) is
    skipped, not written twice."""
    distinct: dict[tuple[object, ...], TickRow] = {}
    for row in rows:
        distinct.setdefault(row[: table.key_width], row)  # the batch's first copy of each row
    with conn.transaction(), conn.cursor() as cursor:
        inserted = 0
        if distinct:
            with cursor.copy(table.copy_staging()) as copy:
                for row in distinct.values():
                    copy.write_row(row)
            cursor.execute(table.insert_new())
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
