"""What the store exports: rows written, duplicates, and messages skipped as not a tick."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.market.reasons import MESSAGE_REASONS
from orderbook_kit.monitoring.metrics import ConsumerMetrics, Totals

if TYPE_CHECKING:
    from orderbook_kit.store.sink import StoreStats

__all__ = ["StoreMetrics"]


class StoreMetrics(ConsumerMetrics):
    """The store: rows written, duplicates, and messages skipped as not a tick."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = Totals(
            self.registry, "orderbook_store_rows_written", "Ticks written to PostgreSQL as new rows"
        )
        self.duplicates = Totals(
            self.registry,
            "orderbook_store_duplicate_ticks",
            "Valid ticks already in the table (delivered twice), not written again",
        )
        self.skipped = Totals(
            self.registry,
            "orderbook_store_skipped_messages",
            "Messages on the clean topic that are not a valid tick, by reason",
            ["reason"],
            [(reason.value,) for reason in sorted(MESSAGE_REASONS)],
        )

    def count(self, stats: StoreStats) -> None:
        """Export ``stats``, the running totals of a store's run."""
        self.rows.set({(): stats.stored})
        self.duplicates.set({(): stats.duplicates})
        self.skipped.set({(reason.value,): n for reason, n in stats.skipped.items()})
