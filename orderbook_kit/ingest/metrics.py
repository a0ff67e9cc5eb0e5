"""What the ingest service exports: messages sent, acknowledged and failed, and the freshness of
its ticks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from orderbook_kit.market.tick import Tick
from orderbook_kit.monitoring.metrics import ServiceMetrics

if TYPE_CHECKING:
    from orderbook_kit.kafka.producer import TickProducer

__all__ = ["PRODUCER_COUNTS", "IngestMetrics"]


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
