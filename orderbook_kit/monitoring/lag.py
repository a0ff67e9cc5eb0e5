"""Consumer lag per partition, asked of the broker in the background and served from memory.

Lag is the log's end offset minus the group's committed offset: what ``kafka-consumer-groups
--describe`` shows and what lag exporters export. It is asked of the broker, not worked out from
the consumer's own position, so it keeps growing while the service is paused or stuck - exactly
when it matters.

Asking takes two small requests, and far longer while the broker is away. So a thread of the
collector's own asks once every ``LAG_REFRESH_S``, each request bounded by ``LAG_TIMEOUT_S``, and
a scrape only reads the last answer: it never waits on the broker, and a broker outage can never
make Prometheus's scrape of the service time out (which would report the *service* as down). An
answer older than ``LAG_STALE_S`` is not exported: no series beats a stale one. Each failed lookup
adds one to ``orderbook_consumer_lag_errors_total``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderbook_kit.kafka.admin import client_timeouts
from orderbook_kit.settings.environment import Settings

__all__ = ["LAG_REFRESH_S", "LAG_STALE_S", "LAG_TIMEOUT_S", "GroupLagCollector"]

log = logging.getLogger(__name__)

LAG_TIMEOUT_S = 3.0  # each request of a lookup
LAG_REFRESH_S = 1.0  # between lookups
LAG_STALE_S = 10.0  # an answer this old is not exported any more


class GroupLagCollector(Collector):
    """``orderbook_consumer_lag_messages{group, topic, partition}`` of one group on one topic.

    Starts asking the broker at the first scrape (never in the constructor), from a daemon
    thread with an admin client of its own; :meth:`close` stops it.
    """

    def __init__(
        self,
        settings: Settings,
        group: str,
        topic: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings, self.group, self.topic = settings, group, topic
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()  # one lookup at a time: the thread's, or lags()'s
        self._failing = False
        self.errors = 0  # lookups that failed
        self._latest: tuple[float, dict[int, int]] | None = None  # (when, lags)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if registry is not None:  # without one, a plain client of the broker: see lags()
            registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield self._family()
        yield self._errors()

    def collect(self) -> Iterator[Metric]:
        self._start_refreshing()
        family = self._family()
        latest = self._latest
        if latest is not None and time.monotonic() - latest[0] <= LAG_STALE_S:
            for partition, lag in sorted(latest[1].items()):
                family.add_metric([self.group, self.topic, str(partition)], lag)
        yield family
        yield self._errors(self.errors)

    def _start_refreshing(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._refresh, name=f"lag-{self.group}", daemon=True
            )
            self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            # A failure is counted and logged by lags(); the last answer ages meanwhile.
            with contextlib.suppress(KafkaError, OSError):
                self._latest = (began, self.lags())
            self._stop.wait(max(0.0, LAG_REFRESH_S - (time.monotonic() - began)))

    def lags(self) -> dict[int, int]:
        """{partition: lag} now, asked of the broker (``KafkaError`` if it does not answer)."""
        with self._lock:
            try:
                return self._lags()
            except (KafkaError, OSError) as exc:
                self._failed(exc)
                raise

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3 * LAG_TIMEOUT_S + 5)
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
                bootstrap_servers=self.settings.kafka.bootstrap_servers,
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
            "Lag lookups the broker did not answer in time",
            value=value,
        )

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "orderbook_consumer_lag_messages",
            "Messages in the topic not yet committed by the group (end offset minus committed)",
            labels=["group", "topic", "partition"],
        )
