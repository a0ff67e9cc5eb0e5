"""What every service's metrics are built from, in a Prometheus registry of its own: the
freshness of its ticks, a consumer's latency and lag, and counters read from running totals. Each
stage's own metrics live with the stage (``quality/metrics.py``, ...); this module knows none.

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

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderbook_kit.market.tick import Tick
from orderbook_kit.monitoring.lag import GroupLagCollector
from orderbook_kit.settings.environment import Settings

__all__ = [
    "LATENCY_BUCKETS_S",
    "MAX_SYMBOLS",
    "ConsumerMetrics",
    "ServiceMetrics",
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
