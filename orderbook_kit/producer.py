"""Publish ticks to Kafka as JSON, keyed by symbol.

The key decides the partition, so every tick of one symbol lands on one partition and Kafka keeps
them in order - which is what lets a consumer check that ``seq`` is contiguous.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from .config import Settings, load_settings
from .connection import admin_client, client_timeouts, ensure_topic, unreachable_error
from .errors import OrderbookKitError
from .models import Tick

__all__ = ["PRODUCER_TUNING", "Delivery", "TickProducer", "produce_in_background"]

log = logging.getLogger(__name__)

# Chosen on purpose: a few milliseconds of linger lets ticks that arrive together share one
# record batch (fewer requests, more throughput) at a latency cost too small to see on a chart;
# 64 KiB batches hold a few hundred ticks. acks="all" with idempotence (kafka-python 3 defaults)
# means a tick is acknowledged only once it is safely in the log, and retries never duplicate it.
# Checksums use the crc32c package (installed with kafka-python[crc32c]) instead of pure Python.
PRODUCER_TUNING: dict[str, Any] = {
    "linger_ms": 5,
    "batch_size": 64 * 1024,
    "acks": "all",
    "enable_idempotence": True,
}


@dataclass(frozen=True)
class Delivery:
    """Where Kafka stored one message."""

    topic: str
    partition: int
    offset: int
    key: str | None


class TickProducer:
    """Sends ticks to ``topic``. Connects in :meth:`connect` (or ``with``), never in ``__init__``.

    ``verbose`` prints ``Sending tick: {...}`` for each tick; ``on_delivery`` is called with a
    :class:`Delivery` once Kafka acknowledges each message.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        topic: str | None = None,
        verbose: bool = False,
        on_delivery: Callable[[Delivery], None] | None = None,
        create_topic: bool = True,
        **kafka_overrides: Any,
    ) -> None:
        self.settings = settings or load_settings()
        self.topic = topic or self.settings.raw_topic
        self.verbose = verbose
        self.on_delivery = on_delivery
        self.create_topic = create_topic
        self._overrides = dict(kafka_overrides)
        self._producer: KafkaProducer | None = None
        self.sent = 0
        self.delivered = 0
        self.failed = 0

    def connect(self) -> TickProducer:
        if self._producer is not None:
            return self
        bootstrap, timeout_s = self.settings.bootstrap_servers, self.settings.client_timeout_s
        if self.create_topic:
            with admin_client(bootstrap, timeout_s) as admin:
                ensure_topic(admin, self.topic, self.settings.partitions)
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": "orderbook-kit-producer",
            **PRODUCER_TUNING,
            **client_timeouts(timeout_s),
            # send() blocks at most this long for metadata or buffer space: never forever.
            "max_block_ms": int(timeout_s * 1000),
            **self._overrides,
        }
        try:
            self._producer = KafkaProducer(**config)
        except KafkaError as exc:
            raise unreachable_error(bootstrap, timeout_s) from exc
        return self

    def __enter__(self) -> TickProducer:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, tick: Tick) -> FutureRecordMetadata:
        """Stamp ``publish_time`` and send; the returned future resolves to the record metadata."""
        tick = tick.published()
        if self.verbose:
            print(f"Sending tick: {tick.model_dump(mode='json')}", flush=True)
        return self.send_raw(tick.symbol, tick.to_json())

    def send_raw(
        self,
        key: str | bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Send bytes as they are (the quality gate forwards and dead-letters this way).

        ``timestamp_ms`` sets the record's Kafka timestamp (default: now).
        """
        producer = self._require_connected()
        key_bytes = key.encode() if isinstance(key, str) else key
        try:
            future = producer.send(
                self.topic, key=key_bytes, value=value, headers=headers, timestamp_ms=timestamp_ms
            )
        except KafkaError as exc:
            self.failed += 1
            raise OrderbookKitError(
                f"Could not send to topic {self.topic!r} at {self.settings.bootstrap_servers}: "
                f"{exc}. Check that the broker runs (`make status`) and the topic exists."
            ) from exc
        self.sent += 1
        label = None if key_bytes is None else key_bytes.decode(errors="replace")
        future.add_callback(self._delivered, label)
        future.add_errback(self._failed, label)
        return future

    def send_all(self, ticks: Iterable[Tick]) -> int:
        count = 0
        for tick in ticks:
            self.send(tick)
            count += 1
        return count

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every sent message is acknowledged (or ``timeout_s`` passes)."""
        timeout = self.settings.client_timeout_s * 3 if timeout_s is None else timeout_s
        try:
            self._require_connected().flush(timeout=timeout)
        except KafkaError as exc:
            raise OrderbookKitError(
                f"{self.sent - self.delivered - self.failed} message(s) were not acknowledged "
                f"within {timeout:g} s ({exc}). Check the broker (`make status`)."
            ) from exc

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then close. Safe to call twice."""
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        timeout = self.settings.client_timeout_s * 3 if timeout_s is None else timeout_s
        try:
            producer.flush(timeout=timeout)
        finally:
            producer.close(timeout=timeout)

    def _require_connected(self) -> KafkaProducer:
        if self._producer is None:
            raise OrderbookKitError(
                "The producer is not connected: use `with TickProducer() as producer:` or call "
                "`producer.connect()` first."
            )
        return self._producer

    def _delivered(self, key: str | None, metadata: Any) -> None:
        self.delivered += 1
        if self.on_delivery is not None:
            self.on_delivery(Delivery(metadata.topic, metadata.partition, metadata.offset, key))

    def _failed(self, key: str | None, exc: BaseException) -> None:
        self.failed += 1
        log.error("delivery of a message with key %r failed: %s", key, exc)


def produce_in_background(
    ticks: Iterable[Tick], settings: Settings | None = None, *, topic: str | None = None
) -> threading.Thread:
    """Send ``ticks`` (e.g. a paced ``simulator.stream(...)``) from a daemon thread.

    Lets a notebook read while it writes, to measure real publish-to-consume latency. ``join()``
    the returned thread to wait until every tick was sent and acknowledged.
    """

    def produce() -> None:
        with TickProducer(settings, topic=topic) as producer:
            producer.send_all(ticks)

    thread = threading.Thread(target=produce, name="tick-producer", daemon=True)
    thread.start()
    return thread
