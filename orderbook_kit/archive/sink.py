"""The archive: read clean ticks from Kafka as a consumer group, write them as Parquet, once.

::

    orderbook.clean ──> ArchiveSink ──> files: symbol=S/date=D/<range>.parquet (one per symbol, day)
                                    ├─> then: _commits/<range>.json (the range is complete)
                                    └─> then: Kafka, the offsets (for lag tools only)

Each partition's records collect into an open range, closed after ``archive_roll_ticks`` records
or ``archive_roll_s`` seconds. Closing writes its files (each whole, or not at all), then its
commit marker. The markers, not Kafka, say where to resume: when the group gives the archive a
partition, it deletes any file of a range without a marker (a crash between the files and the
marker left it), and seeks to the offset after the partition's last marked range. So a kill at
any moment, and a restart, neither lose nor duplicate a tick in the archive.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from kafka import TopicPartition

from orderbook_kit.archive.layout import (
    OffsetRange,
    data_file,
    marker_file,
    parse_data_file,
    parse_marker_file,
    split_data_files,
)
from orderbook_kit.archive.parquet import ArchivedTick, encode
from orderbook_kit.archive.storage import ArchiveStorage, open_storage
from orderbook_kit.errors import ArchiveStorageError, ArchiveWriteError, OrderbookKitError
from orderbook_kit.market.decoding import DecodeFailure, Skipped, decode_message
from orderbook_kit.market.reasons import Reason
from orderbook_kit.runtime.group_loop import (
    Batches,
    BatchHandler,
    GroupLoop,
    GroupService,
    Offsets,
    OwnRecords,
)
from orderbook_kit.settings.environment import Settings, load_settings

if TYPE_CHECKING:
    from orderbook_kit.archive.metrics import ArchiveMetrics

__all__ = ["ArchiveSink", "ArchiveStats"]

log = logging.getLogger(__name__)

MAX_BATCH = 5000  # records per poll; a range grows over several polls
ON_RESTART = "a restart resumes after the last committed range"


@dataclass
class ArchiveStats:
    """Counts of one :meth:`ArchiveSink.run`."""

    read: int = 0  # messages read from the clean topic
    archived: int = 0  # ticks in ranges committed to the archive
    files: int = 0
    ranges: int = 0  # offset ranges committed (each: its files, then its marker)
    skipped: Counter[Reason] = field(default_factory=Counter)

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        text = (
            f"Read {self.read} message(s): {self.archived} tick(s) archived in {self.files} "
            f"file(s) ({self.ranges} committed range(s)), {self.skipped_count} skipped as not a "
            "valid tick"
        )
        if self.skipped:
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items())) + ")"
        return text + "."


@dataclass
class _OpenRange:
    """The records of one partition read since its last committed range."""

    first: int
    last: int
    opened_at: float  # time.monotonic()
    records: int = 0
    rows: list[ArchivedTick] = field(default_factory=list)


def _after_last_markers(files: list[str], topic: str) -> dict[int, int]:
    resume: dict[int, int] = {}
    for offsets in map(parse_marker_file, files):
        if offsets is not None and offsets.topic == topic:
            resume[offsets.partition] = max(resume.get(offsets.partition, 0), offsets.last + 1)
    return resume


def _in_partitions(relative: str, topic: str, partitions: set[int]) -> bool:
    parsed = parse_data_file(relative)
    return parsed is not None and parsed[2].topic == topic and parsed[2].partition in partitions


class ArchiveSink(GroupService[ArchiveStats], BatchHandler[ArchiveStats]):
    """Archives ``settings.topics.clean`` into ``settings.archive.url`` as consumer group
    ``settings.archive.group``. Nothing connects until :meth:`connect` (or ``with``, or
    :meth:`run`: see :class:`GroupLoop`). A run that ends normally (a limit, or ``stop``) closes
    and commits every open range first. Its own batch handler; its offsets are its commit
    markers (:class:`OwnRecords`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        storage: ArchiveStorage | None = None,
        on_skipped: Callable[[Skipped], None] | None = None,
        metrics: ArchiveMetrics | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.storage = storage or open_storage(self.settings)
        self.on_skipped = on_skipped
        self.metrics = metrics
        self._open: dict[int, _OpenRange] = {}  # by partition
        self._handed_last: dict[int, int] = {}  # by partition: the last offset handed over
        self.loop = GroupLoop(
            self.settings,
            self,
            OwnRecords(self.settings, "the archive", self),
            group=self.settings.archive.group,
            topic=self.settings.topics.clean,
            client_id="orderbook-kit-archive",
            max_batch=MAX_BATCH,
            service="the archive",
            on_restart=ON_RESTART,
        )

    # --- BatchHandler ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check the archive's folder or bucket (before joining the group)."""
        self.storage.check()

    def release(self, timeout_s: float | None) -> None:
        """Open ranges are dropped (not archived; read again next time)."""
        self._open.clear()

    def new_stats(self) -> ArchiveStats:
        return ArchiveStats()

    def handled(self, stats: ArchiveStats) -> int:
        return stats.read

    def handle(self, batches: Batches, stats: ArchiveStats) -> Offsets:
        roll_ticks = self.settings.archive.roll_ticks
        done: Offsets = {}
        for tp, records in batches.items():
            if records:
                self._handed_last[tp.partition] = records[-1].offset
            for record in records:
                open_range = self._open.get(tp.partition)
                if open_range is None:
                    open_range = _OpenRange(record.offset, record.offset, time.monotonic())
                    self._open[tp.partition] = open_range
                decoded = decode_message(record.key, record.value)
                if isinstance(decoded, DecodeFailure):
                    # Passed over, not archived - but inside the range, so the range's marker
                    # moves past it and it never blocks the partition.
                    stats.skipped[decoded.reason] += 1
                    if self.on_skipped is not None:
                        self.on_skipped(Skipped(record, decoded))
                else:
                    open_range.rows.append(ArchivedTick(decoded, tp.partition, record.offset))
                open_range.last = record.offset
                open_range.records += 1
                stats.read += 1
                if open_range.records >= roll_ticks:
                    done.update(self._commit(tp.partition, stats))
        return done

    def after_poll(self, stats: ArchiveStats) -> Offsets:
        now = time.monotonic()
        done: Offsets = {}
        for partition, open_range in list(self._open.items()):
            if now - open_range.opened_at >= self.settings.archive.roll_s:
                done.update(self._commit(partition, stats))
        return done

    def finish(self, stats: ArchiveStats) -> Offsets:
        done: Offsets = {}
        for partition in list(self._open):
            done.update(self._commit(partition, stats))
        return done

    def partitions_moved(self, partitions: set[TopicPartition], *, assigned: bool) -> None:
        if assigned:
            return
        # An open range is not archived yet: the partition's next owner reads it again from the
        # last marker, so it is simply dropped here.
        for tp in partitions:
            dropped = self._open.pop(tp.partition, None)
            if dropped is not None:
                log.info(
                    "partition %d revoked: %d record(s) left for its next owner",
                    tp.partition,
                    dropped.records,
                )

    # --- closing a range ---------------------------------------------------------------------

    def _commit(self, partition: int, stats: ArchiveStats) -> Offsets:
        """Write the open range of ``partition``: its files, then its marker. The offset after
        it, for Kafka (lag tools only: the marker is what counts)."""
        open_range = self._open.pop(partition)
        offsets = OffsetRange(
            self.settings.topics.clean, partition, open_range.first, open_range.last
        )
        by_file: dict[tuple[str, date], list[ArchivedTick]] = defaultdict(list)
        for row in open_range.rows:
            by_file[(row.tick.symbol, row.tick.event_time.astimezone(UTC).date())].append(row)
        files = {data_file(symbol, day, offsets): rows for (symbol, day), rows in by_file.items()}
        marker = {
            "topic": offsets.topic,
            "partition": partition,
            "first_offset": offsets.first,
            "last_offset": offsets.last,
            "records": open_range.records,
            "ticks": len(open_range.rows),
            "files": {relative: len(rows) for relative, rows in sorted(files.items())},
            "committed_at": datetime.now(UTC).isoformat(),
        }
        try:
            for relative, rows in sorted(files.items()):
                self.storage.write(relative, encode(rows))
            self.storage.write(marker_file(offsets), json.dumps(marker, indent=1).encode())
        except ArchiveStorageError as exc:
            raise ArchiveWriteError(
                f"{exc} So the archive stopped while writing offsets {offsets.first}-"
                f"{offsets.last} of {offsets.topic} partition {partition}. Nothing from that "
                f"range counts as archived; {ON_RESTART} and writes the range again."
            ) from exc
        stats.archived += len(open_range.rows)
        stats.files += len(files)
        stats.ranges += 1
        if self.metrics is not None:
            self.metrics.count(stats)
            self.metrics.observe_ticks([row.tick for row in open_range.rows])
        tp = TopicPartition(offsets.topic, partition)
        if self._handed_last.get(partition) == offsets.last:
            # Every record handed over is in this range: Kafka may hear of what the consumer
            # skipped after it too (commit markers), so that an archive at the end shows lag 0.
            return {tp: max(offsets.last + 1, self.loop.read_to.get(tp, 0))}
        return {tp: offsets.last + 1}

    def passed(self, offsets: Offsets, stats: ArchiveStats) -> Offsets:
        """Past commit markers only: for Kafka (lag tools), where no range is open. The markers
        in the archive stay after the last record; a restart there skips the same markers."""
        return {tp: offset for tp, offset in offsets.items() if tp.partition not in self._open}

    # --- StoredOffsets: the commit markers ---------------------------------------------------

    def stored_offsets(self, assigned: set[TopicPartition]) -> dict[int, int]:
        """After the last committed range of each partition - once the files of its
        uncommitted ranges (left by a crash between files and marker) are deleted."""
        topic = self.settings.topics.clean
        partitions = {tp.partition for tp in assigned if tp.topic == topic}
        everything = self.storage.files()
        _, uncommitted = split_data_files(everything)
        leftovers = [f for f in uncommitted if _in_partitions(f, topic, partitions)]
        if leftovers:
            log.warning("deleting %d file(s) of uncommitted ranges: %s", len(leftovers), leftovers)
            self.storage.delete(leftovers)
        return _after_last_markers(everything, topic)

    def offsets_unreadable(self, failure: Exception) -> OrderbookKitError:
        return ArchiveWriteError(
            f"The archive could not read its commit markers when it was given partitions "
            f"({type(failure).__name__}: {failure}), so it stopped before reading anything. "
            f"Check {self.storage.url} and start it again."
        )

    def offsets_past_the_end(self, tp: TopicPartition, offset: int, end: int) -> OrderbookKitError:
        return OrderbookKitError(
            f"The archive at {self.storage.url} has {tp.topic} partition {tp.partition} up to "
            f"offset {offset - 1}, past the partition's end ({end}): the topic was deleted and "
            "created again, and the archive holds the old one. Archive the new topic "
            "elsewhere (ORDERBOOK_ARCHIVE_URL), or move the old archive away."
        )
