"""The metrics each service exports, in a Prometheus registry of its own.

Names follow Prometheus conventions: the ``orderbook_`` prefix, the unit in the name
(``_seconds``, ``_messages``), ``_total`` on counters. Every label comes from a small fixed set -
a route, a reason code, a partition, or a symbol (at most ``MAX_SYMBOLS`` of them) - never from a
message's content: one label value per message would grow Prometheus without bound, and a hostile
feed could make it do so on purpose.

Counts are the services' own running totals, handed over once per batch and read at each scrape,
never counted again in a per-message callback; only the latency histogram sees each tick.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config import Settings
from ..models import Tick
from ..reasons import MESSAGE_REASONS, Reason
from .lag import GroupLagCollector

if TYPE_CHECKING:
    from ..archive.sink import ArchiveStats
    from ..producer import TickProducer
    from ..quality.gate import GateStats
    from ..store.sink import StoreStats

__all__ = [
    "LATENCY_BUCKETS_S",
    "MAX_SYMBOLS",
    "ArchiveMetrics",
    "ConsumerMetrics",
    "GateMetrics",
    "IngestMetrics",
    "ServiceMetrics",
    "StoreMetrics",
    "TickFreshness",
    "Totals",
]

# From a millisecond (a healthy pipeline on one machine) to a minute (a consumer far behind).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Symbols with a freshness series of their own; ticks of any further symbol are only counted.
MAX_SYMBOLS = 100


class TickFreshness(Collector):
    """``orderbook_last_tick_age_seconds{symbol}``: now minus the event time of the newest tick
    seen of each symbol, worked out at each scrape - so it keeps growing while no tick comes,
    which is what an alert on a silent feed needs."""

    def __init__(self, registry: CollectorRegistry, *, max_symbols: int = MAX_SYMBOLS) -> None:
        self.max_symbols = max_symbols
        self._newest: dict[str, float] = {}  # symbol -> newest event time (Unix seconds)
        self._lock = threading.Lock()  # scrapes run on the HTTP server's threads
        self.untracked = Counter(
            "orderbook_untracked_symbol_ticks_total",
            f"Ticks of symbols beyond the first {max_symbols}, which get no freshness series",
            registry=registry,
        )
        registry.register(self)

    def observe(self, ticks: Iterable[Tick]) -> None:
        newest: dict[str, float] = {}
        seen: Tally[str] = Tally()
        for tick in ticks:
            stamp = tick.event_time.timestamp()
            seen[tick.symbol] += 1
            if stamp > newest.get(tick.symbol, float("-inf")):
                newest[tick.symbol] = stamp
        with self._lock:
            for symbol, stamp in newest.items():
                known = self._newest.get(symbol)
                if known is None and len(self._newest) >= self.max_symbols:
                    self.untracked.inc(seen[symbol])
                elif known is None or stamp > known:
                    self._newest[symbol] = stamp

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        now = time.time()
        with self._lock:
            newest = list(self._newest.items())
        for symbol, stamp in sorted(newest):
            family.add_metric([symbol], now - stamp)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "orderbook_last_tick_age_seconds",
            "Seconds since the event time of the newest tick of each symbol",
            labels=["symbol"],
        )


class ServiceMetrics:
    """What every service exports: the freshness of its ticks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.freshness = TickFreshness(self.registry)


class ConsumerMetrics(ServiceMetrics):
    """What a consuming service adds: publish-to-process latency, and its group's lag."""

    def __init__(self) -> None:
        super().__init__()
        self.latency = Histogram(
            "orderbook_publish_to_process_seconds",
            "Seconds from a tick's publish_time (set by its producer) to this service handling it",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.lag: GroupLagCollector | None = None

    def watch_lag(self, settings: Settings, group: str, topic: str) -> None:
        """Export the lag of ``group`` on ``topic`` (asked of the broker once a second)."""
        self.lag = GroupLagCollector(settings, group, topic, self.registry)

    def observe_ticks(self, ticks: Sequence[Tick], now: float | None = None) -> None:
        """Ticks this service has just handled (``now``: when, in Unix seconds)."""
        now = time.time() if now is None else now
        observe = self.latency.observe
        for tick in ticks:
            if tick.publish_time is not None:  # a tick sent as raw bytes may have none
                observe(max(now - tick.publish_time.timestamp(), 0.0))
        self.freshness.observe(ticks)

    def close(self) -> None:
        if self.lag is not None:
            self.lag.close()


class Totals(Collector):
    """A counter family read at each scrape from the latest running totals a service handed over
    (:meth:`set`, once per batch). The totals are replaced whole, so a scrape sees one batch's
    end or the next, never half of one; and nothing is counted twice, however often they are
    handed over. ``series`` are the label values exported at 0 from the start: a ``rate()``
    over a series that appears only with its first event would miss that event."""

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        series: Iterable[tuple[str, ...]] = ((),),
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self._zero = dict.fromkeys(series, 0.0)
        self._latest: dict[tuple[str, ...], float] = dict(self._zero)
        registry.register(self)

    def set(self, totals: dict[tuple[str, ...], float]) -> None:
        self._latest = {**self._zero, **totals}

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self._latest.items():
            family.add_metric(list(labels), value)
        yield family


class IngestMetrics(ServiceMetrics):
    """The ingest service: messages sent, acknowledged and failed, read off its producer."""

    def __init__(self) -> None:
        super().__init__()
        self._counts = _ProducerCounts()
        self.registry.register(self._counts)

    def watch(self, producer: TickProducer) -> None:
        self._counts.producer = producer

    def sent(self, ticks: Iterable[Tick]) -> Iterator[Tick]:
        """``ticks``, noting each one's freshness as it goes by (wrap the feed with it)."""
        for tick in ticks:
            self.freshness.observe((tick,))
            yield tick


# The producer's counters (TickProducer attributes) and the counters they are exported as.
PRODUCER_COUNTS = {
    "sent": ("orderbook_ingest_messages_sent", "Messages handed to the Kafka client"),
    "delivered": (
        "orderbook_ingest_messages_acknowledged",
        "Messages Kafka acknowledged (acks=all: in every in-sync replica)",
    ),
    "failed": (
        "orderbook_ingest_messages_failed",
        "Messages Kafka refused or did not acknowledge within the delivery timeout",
    ),
}


class _ProducerCounts(Collector):
    """The producer's own counters, read at each scrape (nothing is counted twice)."""

    def __init__(self) -> None:
        self.producer: TickProducer | None = None

    def describe(self) -> Iterator[Metric]:
        for name, documentation in PRODUCER_COUNTS.values():
            yield CounterMetricFamily(name, documentation)

    def collect(self) -> Iterator[Metric]:
        producer = self.producer
        for attribute, (name, documentation) in PRODUCER_COUNTS.items():
            value = 0 if producer is None else getattr(producer, attribute)
            yield CounterMetricFamily(name, documentation, value=value)


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
        routed = {("dead_letter", reason.value): n for reason, n in stats.rejected.items()}
        self.routed.set({("clean", ""): stats.clean, **routed})


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
