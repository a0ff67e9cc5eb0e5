"""What the quality gate exports: messages routed, by route and reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_kit.market.reasons import Reason
from orderbook_kit.monitoring.metrics import ConsumerMetrics, Totals

if TYPE_CHECKING:
    from orderbook_kit.quality.gate import GateStats

__all__ = ["GateMetrics"]


class GateMetrics(ConsumerMetrics):
    """The quality gate: messages routed, by route and reason."""

    def __init__(self) -> None:
        super().__init__()
        self.routed = Totals(
            self.registry,
            "orderbook_gate_messages",
            "Raw messages the gate routed: to the clean topic (reason empty) or the dead-letter "
            "topic, with the reason",
            ["route", "reason"],
            [("clean", ""), *(("dead_letter", reason.value) for reason in Reason)],
        )

    def count(self, stats: GateStats) -> None:
        """Export ``stats``, the running totals of a gate's run."""
        routed: dict[tuple[str, ...], float] = {
            ("dead_letter", reason.value): n for reason, n in stats.rejected.items()
        }
        self.routed.set({("clean", ""): stats.clean, **routed})
