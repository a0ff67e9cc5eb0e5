"""The store: read clean ticks from Kafka as a consumer group, write them to PostgreSQL once.

::

    orderbook.clean ──> StoreSink ──> PostgreSQL: ticks + consumer_offsets (one transaction a batch)
                                  └─> Kafka: the same offsets, committed afterwards (for lag tools)

The database, not Kafka, says where to resume: when the group gives the store a partition, a
rebalance listener seeks to the offset stored with the ticks (the KafkaConsumer documentation's
"Storing Offsets Outside Kafka"). Kafka's committed offsets trail the database's and are only
there so that ``kafka-consumer-groups --describe`` and lag monitors see the group's progress.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from orderbook_kit.database.client import connect, first_line
from orderbook_kit.errors import DatabaseError, DatabaseLostError, OrderbookKitError
from orderbook_kit.market.candles import decode_candle
from orderbook_kit.market.decoding import DecodeFailure, Skipped, decode_message
from orderbook_kit.market.reasons import Reason
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.group_loop import (
    Batches,
    BatchHandler,
    GroupLoop,
    GroupService,
    Offsets,
    OwnRecords,
)
from orderbook_kit.settings.environment import Settings, load_settings
from orderbook_kit.settings.rules import redacted_url
from orderbook_kit.store.tables import (
    CANDLES,
    TICKS,
    StoredTable,
    TickRow,
    apply_schema,
    candle_row,
    prepare_session,
    stored_offsets,
    tick_row,
    write_batch,
)

if TYPE_CHECKING:
    from orderbook_kit.store.metrics import StoreMetrics

__all__ = ["CANDLE_SOURCE", "MAX_BATCH", "TICK_SOURCE", "StoreSink", "StoreSource", "StoreStats"]

log = logging.getLogger(__name__)

# Records per batch, and so per transaction. Bigger batches amortise the commit (PostgreSQL syncs
# its log to disk at each one); 2,000 rows are still a transaction of well under a second.
MAX_BATCH = 2000


Row = tuple[TickRow, Tick | None]  # a row, and the tick it holds (for the metrics), if a tick


@dataclass(frozen=True)
class StoreSource:
    """What the store reads - a topic, as a group - and the table it writes it to."""

    what: str  # what a message is, for the summary: "tick"
    topic_key: str  # the setting of the topic ("topics.clean")
    group_key: str  # ... and of the consumer group ("store.group")
    table: StoredTable
    row: Callable[[ConsumerRecord], Row | DecodeFailure]


def _tick_row(record: ConsumerRecord) -> Row | DecodeFailure:
    decoded = decode_message(record.key, record.value)
    if isinstance(decoded, DecodeFailure):
        return decoded
    return tick_row(decoded, record), decoded


def _candle_row(record: ConsumerRecord) -> Row | DecodeFailure:
    decoded = decode_candle(record.value)
    if isinstance(decoded, str):
        return DecodeFailure(Reason.INVALID_SCHEMA, decoded)
    if record.key is not None and record.key != decoded.symbol.encode():
        return DecodeFailure(Reason.KEY_MISMATCH, "the key must be the candle's symbol")
    return candle_row(decoded, record), None


# Clean ticks into `ticks` (the store's first job), streamed 1-minute candles into `candles`.
TICK_SOURCE = StoreSource("tick", "topics.clean", "store.group", TICKS, _tick_row)
CANDLE_SOURCE = StoreSource(
    "candle", "topics.candles_1m", "store.candles_group", CANDLES, _candle_row
)


@dataclass
class StoreStats:
    """Counts of one :meth:`StoreSink.run`."""

    what: str = "tick"  # what the messages are
    read: int = 0  # messages read
    stored: int = 0  # new rows
    duplicates: int = 0  # valid ticks already in the table (the gate wrote them twice)
    skipped: Counter[Reason] = field(default_factory=Counter)
    batches: int = 0

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        text = (
            f"Read {self.read} message(s): {self.stored} stored, {self.duplicates} already "
            f"stored (duplicates), {self.skipped_count} skipped as not a valid {self.what}"
        )
        if self.skipped:
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items())) + ")"
        return text + "."


class StoreSink(GroupService[StoreStats], BatchHandler[StoreStats]):
    """Stores ``settings.topics.clean`` in the tables of ``settings.store.schema`` at
    ``settings.store.database_url``, as consumer group ``settings.store.group``. Nothing connects
    until :meth:`connect` (or ``with``, or :meth:`run`, which stores until a limit: see
    :class:`GroupLoop`). Its own batch handler; its offsets are the rows' (:class:`OwnRecords`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        on_skipped: Callable[[Skipped], None] | None = None,
        metrics: StoreMetrics | None = None,
        source: StoreSource = TICK_SOURCE,
    ) -> None:
        self.settings = settings or load_settings()
        self.on_skipped = on_skipped
        self.metrics = metrics  # counted once per batch, after its transaction
        self.source = source
        self.topic = str(self.settings.value(source.topic_key))
        self.group = str(self.settings.value(source.group_key))
        self._db: psycopg.Connection | None = None
        self.loop = GroupLoop(
            self.settings,
            self,
            OwnRecords(self.settings, "the store", self),
            group=self.group,
            topic=self.topic,
            client_id="orderbook-kit-store",
            max_batch=MAX_BATCH,
            service="the store",
            on_restart="a restart resumes at the last stored offset",
        )

    # --- BatchHandler ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Open the database, creating the tables if needed."""
        if self._db is not None:
            return
        settings = self.settings
        db = connect(
            settings.store.database_url,
            timeout_s=settings.kafka.client_timeout_s,
            schema=settings.store.schema,
            application="orderbook-kit-store",
        )
        try:
            apply_schema(db, settings.store.schema)
            prepare_session(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def release(self, timeout_s: float | None) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def new_stats(self) -> StoreStats:
        return StoreStats(what=self.source.what)

    def handled(self, stats: StoreStats) -> int:
        return stats.read

    def handle(self, batches: Batches, stats: StoreStats) -> Offsets:
        done = self._store(batches, stats)
        stats.batches += 1
        return done

    # --- StoredOffsets: the offsets stored with the rows --------------------------------------

    def stored_offsets(self, assigned: set[TopicPartition]) -> dict[int, int]:
        """The offsets stored with the rows (in the database's transaction, so exact)."""
        assert self._db is not None
        try:
            return stored_offsets(self._db, self.group, self.topic)
        except psycopg.Error as exc:
            raise self._lost(exc, "reading its stored offsets") from exc

    def offsets_unreadable(self, failure: Exception) -> OrderbookKitError:
        return DatabaseLostError(
            f"The store could not read its offsets from PostgreSQL when it was given partitions "
            f"({failure}), so it stopped before reading anything. Check the database "
            "(`python -m orderbook_kit.lab.postgres status`) and start the store again."
        )

    def offsets_past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        return DatabaseError(
            f"The store's stored offset for {tp.topic} partition {tp.partition} "
            f"({offset}) is past the end of the partition ({end}): the topic was "
            "deleted and created again, and the rows in schema "
            f"{self.settings.store.schema!r} come from the old one. Start afresh with "
            "`python -m orderbook_kit.store reset --yes`, or use another schema "
            "(ORDERBOOK_DB_SCHEMA)."
        )

    def _store(self, batches: Batches, stats: StoreStats) -> Offsets:
        assert self._db is not None
        rows: list[TickRow] = []
        ticks: list[Tick] = []  # kept only when metrics are on
        keep = ticks.append if self.metrics is not None else None
        next_offsets: dict[tuple[str, int], int] = {}
        for records in batches.values():
            for record in records:
                decoded = self.source.row(record)
                if isinstance(decoded, DecodeFailure):
                    # Skipped, not stored - but its offset is passed, so it never blocks the
                    # partition. It stays in the clean topic, at the position reported here.
                    stats.skipped[decoded.reason] += 1
                    log.warning(
                        "skipped %s/%d@%d: %s: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        decoded.reason,
                        decoded.detail,
                    )
                    if self.on_skipped is not None:
                        self.on_skipped(Skipped(record, decoded))
                else:
                    row, tick = decoded
                    rows.append(row)
                    if keep is not None and tick is not None:
                        keep(tick)
        for tp, offset in self.loop.next_offsets(batches).items():
            next_offsets[(tp.topic, tp.partition)] = offset
        try:
            result = write_batch(self._db, self.group, rows, next_offsets, self.source.table)
        except psycopg.Error as exc:
            what = self.source.what
            raise self._lost(exc, f"storing a batch of {len(rows)} {what}(s)") from exc
        stats.read += sum(len(records) for records in batches.values())
        stats.stored += result.inserted
        stats.duplicates += len(rows) - result.inserted
        if self.metrics is not None:
            self.metrics.count(stats)
            self.metrics.observe_ticks(ticks)
        return {TopicPartition(t, p): o for (t, p), o in next_offsets.items()}

    def passed(self, offsets: Offsets, stats: StoreStats) -> Offsets:
        """Past commit markers (and aborted records) only: their offsets, with no rows."""
        assert self._db is not None
        moved = {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
        try:
            write_batch(self._db, self.group, [], moved, self.source.table)
        except psycopg.Error as exc:
            raise self._lost(exc, "storing its offsets") from exc
        return offsets

    def _lost(self, exc: psycopg.Error, doing: str) -> DatabaseLostError:
        reason = first_line(exc)
        safe = "No offset was committed past the ticks stored, in the database or in Kafka"
        if not isinstance(exc, psycopg.OperationalError):
            # Not a lost connection: PostgreSQL refused the statement (a constraint or a table
            # changed by hand). Skipping the batch would lose ticks, so the store stops.
            return DatabaseLostError(
                f"PostgreSQL refused the store's statement while it was {doing} "
                f"({type(exc).__name__}: {reason}), so the store stopped. {safe}. Check the "
                f"tables in schema {self.settings.store.schema!r} (were they changed by hand?); "
                "`python -m orderbook_kit.store reset --yes` recreates them empty."
            )
        return DatabaseLostError(
            f"PostgreSQL failed while the store was {doing} ({reason}), so the store stopped. "
            f"{safe}. Make sure PostgreSQL runs at "
            f"{redacted_url(self.settings.store.database_url)} "
            "(`python -m orderbook_kit.lab.postgres status`) and start the store again: it resumes "
            "at the last stored offset, and a tick stored already is not written twice."
        )
