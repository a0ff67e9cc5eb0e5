"""What the archive exports: ticks and files committed, and messages skipped as not a tick."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.market.reasons import MESSAGE_REASONS
from orderbook_kit.monitoring.metrics import ConsumerMetrics, Totals

if TYPE_CHECKING:
    from orderbook_kit.archive.sink import ArchiveStats

__all__ = ["ArchiveMetrics"]


class ArchiveMetrics(ConsumerMetrics):
    """The archive: ticks and files committed to it, and messages skipped as not a tick. Counted
    when a range is committed, so the figures never include a range that could still be lost."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks = Totals(
            self.registry,
            "orderbook_archive_ticks",
            "Ticks in offset ranges committed to the archive (files written, then the marker)",
        )
        self.files = Totals(
            self.registry, "orderbook_archive_files", "Parquet files of committed offset ranges"
        )
        self.skipped = Totals(
            self.registry,
            "orderbook_archive_skipped_messages",
            "Messages on the clean topic that are not a valid tick, by reason",
            ["reason"],
            [(reason.value,) for reason in sorted(MESSAGE_REASONS)],
        )

    def count(self, stats: ArchiveStats) -> None:
        """Export ``stats``, the running totals of an archive's run."""
        self.ticks.set({(): stats.archived})
        self.files.set({(): stats.files})
        self.skipped.set({(reason.value,): n for reason, n in stats.skipped.items()})
