"""Consumer lag per partition, asked of the broker at each scrape.

Lag is the log's end offset minus the group's committed offset: what ``kafka-consumer-groups
--describe`` shows and what lag exporters export. It is asked of the broker, not worked out from
the consumer's own position, so it keeps growing while the service is paused or stuck - exactly
when it matters. Each scrape costs two small requests; they are bounded by ``LAG_TIMEOUT_S``, well
inside Prometheus's scrape timeout (10 s), and a broker that does not answer gives a scrape with
no lag series and one more ``orderbook_consumer_lag_errors_total`` - never a hung scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config import Settings
from ..connection import client_timeouts

__all__ = ["LAG_TIMEOUT_S", "GroupLagCollector"]

log = logging.getLogger(__name__)

LAG_TIMEOUT_S = 3.0


class GroupLagCollector(Collector):
    """``orderbook_consumer_lag_messages{group, topic, partition}`` of one group on one topic.

    Connects on the first scrape (never in the constructor) and keeps its admin client; scrapes
    run on the HTTP server's threads, so one lock keeps them to one request at a time.
    """

    def __init__(
        self, settings: Settings, group: str, topic: str, registry: CollectorRegistry
    ) -> None:
        self.settings, self.group, self.topic = settings, group, topic
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._failing = False
        self.errors = 0  # lookups that failed, exported with the lag in the same scrape
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield self._family()
        yield self._errors()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        with self._lock:
            try:
                lags = self._lags()
            except (KafkaError, OSError) as exc:
                self._failed(exc)
                lags = {}
            errors = self._errors(self.errors)
        for partition, lag in sorted(lags.items()):
            family.add_metric([self.group, self.topic, str(partition)], lag)
        yield family
        yield errors

    def lags(self) -> dict[int, int]:
        """{partition: lag} now (raises ``KafkaError`` if the broker does not answer)."""
        with self._lock:
            return self._lags()

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None

    def _lags(self) -> dict[int, int]:
        admin = self._connected()
        topics = admin.describe_topics([self.topic])
        partitions = [
            TopicPartition(self.topic, p["partition_index"])
            for topic in topics
            if topic.get("name") == self.topic and not topic.get("error_code")
            for p in topic.get("partitions", ())
        ]
        if not partitions:
            return {}  # the topic does not exist (yet): nothing is behind
        ends = admin.list_partition_offsets(
            dict.fromkeys(partitions, OffsetSpec.LATEST), timeout_ms=int(LAG_TIMEOUT_S * 1000)
        )
        committed = admin.list_group_offsets({self.group: partitions}).get(self.group, {})
        done = {
            tp: mark.offset
            for tp, mark in committed.items()
            if tp in ends and mark is not None and mark.offset >= 0
        }
        new = [tp for tp in partitions if tp not in done]
        if new:  # no commit yet: the group starts at the log's beginning, all of it behind
            starts = admin.list_partition_offsets(
                dict.fromkeys(new, OffsetSpec.EARLIEST), timeout_ms=int(LAG_TIMEOUT_S * 1000)
            )
            done.update((tp, found.offset) for tp, found in starts.items())
        lags = {tp.partition: max(ends[tp].offset - done[tp], 0) for tp in partitions}
        if self._failing:
            log.info("the lag of group %r can be read again", self.group)
            self._failing = False
        return lags

    def _connected(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id="orderbook-kit-lag",
                **client_timeouts(LAG_TIMEOUT_S),
            )
        return self._admin

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self._failing:  # once per outage, not once per scrape
            log.warning("could not read the lag of group %r: %s", self.group, exc)
            self._failing = True
        if self._admin is not None:  # a fresh client next time: this one may be wedged
            self._admin.close()
            self._admin = None

    @staticmethod
    def _errors(value: int | None = None) -> CounterMetricFamily:
        return CounterMetricFamily(
            "orderbook_consumer_lag_errors",
            "Scrapes whose lag lookup the broker did not answer in time",
            value=value,
        )

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "orderbook_consumer_lag_messages",
            "Messages in the topic not yet committed by the group (end offset minus committed)",
            labels=["group", "topic", "partition"],
        )
