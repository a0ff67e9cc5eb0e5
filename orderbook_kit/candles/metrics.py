"""What the candles service exports: ticks windowed or set aside (by reason), records sent per
window, late ticks per window, how long after its end each window was sent, and the size of its
state on disk. Its group's lag comes with :class:`ConsumerMetrics`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderbook_kit.candles.application import SKIP_REASONS, WINDOW_NAMES, CandleCounts
from orderbook_kit.monitoring.metrics import ConsumerMetrics, Totals

__all__ = ["CandlesMetrics", "StateSize"]

# From a tenth of a second to two minutes: a window is sent after its grace period and before the
# next commit; far more means the service is behind.
DELAY_BUCKETS_S = (0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120)


class StateSize(Collector):
    """``orderbook_candles_state_bytes``: the bytes of the windows' state on disk (RocksDB),
    measured at each scrape."""

    def __init__(self) -> None:
        self.folder: Path | None = None

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([], float(_size(self.folder)) if self.folder is not None else 0.0)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "orderbook_candles_state_bytes", "Bytes of the candles service's window state on disk"
        )


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # a file RocksDB removed while we walked
                continue
    return total


class CandlesMetrics(ConsumerMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.ticks = Totals(
            self.registry,
            "orderbook_candles_ticks",
            "Messages of the clean topic the candles service read: windowed (reason empty), or "
            "set aside with the reason",
            ["route", "reason"],
            [("windowed", ""), *(("set_aside", reason) for reason in SKIP_REASONS)],
        )
        self.records = Totals(
            self.registry,
            "orderbook_candles_records",
            "Records sent, one per symbol of each closed window (running ones for candles_live)",
            ["window"],
            [(name,) for name in WINDOW_NAMES],
        )
        self.late = Totals(
            self.registry,
            "orderbook_candles_late_ticks",
            "Ticks that came after their window had closed (by its partition's clock and grace)",
            ["window"],
            [(name,) for name in WINDOW_NAMES],
        )
        self.delay = Histogram(
            "orderbook_candles_window_delay_seconds",
            "Seconds from a window's end to the service sending its records (before the commit "
            "that shows them to read-committed readers)",
            buckets=DELAY_BUCKETS_S,
            registry=self.registry,
        )
        self.state = StateSize()
        self.registry.register(self.state)

    def count(self, counts: CandleCounts) -> None:
        """Export ``counts``, the running totals of a run."""
        ticks: dict[tuple[str, ...], float] = {
            ("set_aside", reason): n for reason, n in counts.skipped.copy().items()
        }
        ticks[("windowed", "")] = counts.windowed
        self.ticks.set(ticks)
        self.records.set({(name,): n for name, n in counts.emitted.copy().items()})
        self.late.set({(name,): n for name, n in counts.late.copy().items()})
