"""What the book service exports: raw messages judged, by route and reason; snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.market.reasons import BookReason
from orderbook_kit.monitoring.metrics import ConsumerMetrics, Totals

if TYPE_CHECKING:
    from orderbook_kit.book.service import BookStats

__all__ = ["BookMetrics"]


class BookMetrics(ConsumerMetrics):
    """The book service: updates published or set aside (by reason), snapshots read and made."""

    def __init__(self) -> None:
        super().__init__()
        self.routed = Totals(
            self.registry,
            "orderbook_book_messages",
            "Raw book messages the service judged: updates published (reason empty), set aside "
            "(with the reason), or exchange snapshots read",
            ["route", "reason"],
            [
                ("update", ""),
                ("exchange_snapshot", ""),
                *(("dead_letter", reason.value) for reason in BookReason),
            ],
        )
        self.snapshots = Totals(
            self.registry, "orderbook_book_snapshots", "Snapshots of the books published"
        )

    def count(self, stats: BookStats) -> None:
        """Export ``stats``, the running totals of a run."""
        routed: dict[tuple[str, ...], float] = {
            ("dead_letter", reason.value): n for reason, n in stats.rejected.items()
        }
        routed[("update", "")] = stats.accepted
        routed[("exchange_snapshot", "")] = stats.exchange_snapshots
        self.routed.set(routed)
        self.snapshots.set({(): stats.snapshots})
