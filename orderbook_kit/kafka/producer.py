"""Publish ticks to Kafka as JSON, keyed by symbol.

The key decides the partition, so every tick of one symbol lands on one partition and Kafka keeps
them in order - which is what lets a consumer check that ``seq`` is contiguous.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from kafka.producer.future import FutureRecordMetadata

from orderbook_kit.errors import DeliveryError, OrderbookKitError
from orderbook_kit.kafka.admin import admin_client, client_timeouts, ensure_topic, unreachable_error
from orderbook_kit.kafka.confluent.producer import ConfluentProducer, ConfluentSend
from orderbook_kit.kafka.replication import replication_shortfall
from orderbook_kit.lifecycle import Connectable
from orderbook_kit.market.tick import Tick
from orderbook_kit.settings.environment import Settings, load_settings

__all__ = [
    "PACED_LINGER_MS",
    "PRODUCER_TUNING",
    "BackgroundProducer",
    "Delivery",
    "SendFuture",
    "TickProducer",
    "produce_in_background",
]

log = logging.getLogger(__name__)

# The acknowledgements are counted once this many sends wait for one, and then every
# SETTLE_STEP-th send while that many still wait: the futures held stay bounded, and a slow
# acknowledgement at the head of the queue is not looked at again on every single send.
SETTLE_EVERY = 512
SETTLE_STEP = 64

# Chosen on purpose: a few milliseconds of linger lets ticks that arrive together share one
# record batch (fewer requests, more throughput) at a latency cost too small to see on a chart;
# 64 KiB batches hold a few hundred ticks. acks="all" with idempotence (kafka-python 3 defaults)
# means a tick is acknowledged only once it is safely in the log, and retries never duplicate it.
# Checksums use the crc32c package (installed with kafka-python[crc32c]) instead of pure Python.
# A paced stream (a feed handler sending each tick as it happens) gains nothing from lingering:
# the next tick is milliseconds away, so each one would wait the whole linger. Measured at 1,000
# ticks/s: p50 publish-to-consume latency 5.4 ms with linger 5, 1.7 ms with 0. kafka-python still
# batches without linger whenever ticks arrive faster than a request takes.
PACED_LINGER_MS = 0
PRODUCER_TUNING: dict[str, Any] = {
    "linger_ms": 5,
    "batch_size": 64 * 1024,
    "acks": "all",
    "enable_idempotence": True,
}


# What a send returns: kafka-python's future, or librdkafka's delivery in the same shape. Both
# have is_done, exception and get(timeout) -> the record's metadata (topic, partition, offset).
SendFuture: TypeAlias = FutureRecordMetadata | ConfluentSend


@dataclass(frozen=True)
class Delivery:
    """Where Kafka stored one message."""

    topic: str
    partition: int
    offset: int
    key: str | None


class TickProducer(Connectable):
    """Sends ticks to ``topic``. Connects in :meth:`connect` (or ``with``), never in ``__init__``.

    ``verbose`` prints ``Sending tick: {...}`` for each tick; ``on_delivery`` is called with a
    :class:`Delivery` once Kafka acknowledges each message - from kafka-python's I/O thread, not
    the caller's, so keep it short and thread-safe (appending to a list is). With
    ``settings.kafka.client == "confluent"`` the same API runs on librdkafka, whose reports run
    on the caller's thread when the producer counts (see :mod:`orderbook_kit.kafka.confluent`).

    Counters: ``sent`` counts the messages handed to kafka-python; ``delivered`` and ``failed``
    those Kafka answered for, counted on the caller's side from the sends' futures, oldest first,
    whenever they are read (and every ``SETTLE_EVERY`` sends): no per-message callback runs on the
    I/O thread, which would compete with the caller for the interpreter. A message Kafka did not
    acknowledge within ``settings.kafka.delivery_timeout_s`` counts as failed;
    :meth:`raise_if_failed` and :meth:`close` raise :class:`DeliveryError` then, so a failure is
    never silent.
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
        self.topic = topic or self.settings.topics.raw
        self.verbose = verbose
        self.on_delivery = on_delivery
        self.create_topic = create_topic
        self._overrides = dict(kafka_overrides)
        self._producer: KafkaProducer | ConfluentProducer | None = None
        self.sent = 0
        self.first_error: BaseException | None = None
        self._abandoning = False
        self._delivered = 0
        self._failed = 0
        # Futures of the sends not yet counted, oldest first, with their keys (for messages).
        self._unsettled: deque[tuple[SendFuture, bytes | None]] = deque()
        self._settling = threading.Lock()  # a notebook may read the counters from another thread

    @property
    def delivered(self) -> int:
        """Messages Kafka acknowledged (counted up to the oldest one it has not answered yet)."""
        self._settle()
        return self._delivered

    @property
    def failed(self) -> int:
        """Messages Kafka refused, or did not acknowledge in time."""
        self._settle()
        return self._failed

    def connect(self) -> TickProducer:
        if self._producer is not None:
            return self
        bootstrap, timeout_s = (
            self.settings.kafka.bootstrap_servers,
            self.settings.kafka.client_timeout_s,
        )
        if self.create_topic:
            with admin_client(bootstrap, timeout_s) as admin:
                ensure_topic(admin, self.topic, self.settings.topics.partitions)
        timeouts = client_timeouts(timeout_s)
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": "orderbook-kit-producer",
            **PRODUCER_TUNING,
            **timeouts,
            # send() blocks at most this long for metadata or buffer space: never forever.
            "max_block_ms": int(timeout_s * 1000),
            # After this, a message that could not be delivered fails (kafka-python requires it
            # to cover one request and the linger).
            "delivery_timeout_ms": max(
                int(self.settings.kafka.delivery_timeout_s * 1000),
                timeouts["request_timeout_ms"] + PRODUCER_TUNING["linger_ms"],
            ),
            **self._overrides,
        }
        try:
            self._producer = self._client(config)
        except KafkaError as exc:
            raise unreachable_error(bootstrap, timeout_s) from exc
        return self

    def _client(self, config: dict[str, Any]) -> KafkaProducer | ConfluentProducer:
        """kafka-python's producer, or librdkafka's with its interface (``kafka_client``)."""
        if self.settings.kafka.client == "confluent":
            return ConfluentProducer(config)
        return KafkaProducer(**config)

    def send(self, tick: Tick) -> SendFuture:
        """Stamp ``publish_time`` and send; the returned future resolves to the record metadata."""
        value = tick.published_json()
        if self.verbose:
            print(f"Sending tick: {value.decode()}", flush=True)
        return self.send_raw(tick.symbol, value)

    def send_raw(
        self,
        key: str | bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> SendFuture:
        """Send bytes as they are (the quality gate forwards and dead-letters this way).

        ``timestamp_ms`` sets the record's Kafka timestamp (default: now); ``partition`` the
        partition (default: chosen by the key).
        """
        producer = self._require_connected()
        key_bytes = key.encode() if isinstance(key, str) else key
        try:
            future = producer.send(
                self.topic,
                key=key_bytes,
                value=value,
                headers=headers,
                timestamp_ms=timestamp_ms,
                partition=partition,
            )
        except MessageSizeTooLargeError as exc:
            raise OrderbookKitError(
                f"A message of {len(value or b''):,} bytes is too large for this producer "
                f"({exc}). Raise the producer's max_request_size and the topic's "
                f"max.message.bytes for {self.topic!r}, or send smaller messages."
            ) from exc
        except KafkaError as exc:
            kafka = self.settings.kafka
            raise OrderbookKitError(
                f"Could not send to topic {self.topic!r} at {kafka.bootstrap_servers} "
                f"within {kafka.client_timeout_s:g} s: {exc}. Check that the broker runs "
                "(`make status`) and the topic exists."
            ) from exc
        self.sent += 1
        if self.on_delivery is not None:  # only then a callback on the I/O thread
            future.add_callback(self._acknowledged, key_bytes)
        self._unsettled.append((future, key_bytes))
        if len(self._unsettled) >= SETTLE_EVERY and self.sent % SETTLE_STEP == 0:
            self._settle()
        return future

    def send_all(self, ticks: Iterable[Tick]) -> int:
        """Send every tick; stop with :class:`DeliveryError` as soon as one failed delivery is
        known, rather than go on sending into a topic that is missing ticks."""
        count = 0
        for tick in ticks:
            self.send(tick)
            count += 1
            self.raise_if_failed()
        return count

    @property
    def pending(self) -> int:
        """Messages sent and not yet acknowledged or failed."""
        return self.sent - self.delivered - self.failed

    def raise_if_failed(self) -> None:
        """Raise :class:`DeliveryError` if Kafka failed to deliver any message so far."""
        if self.failed:
            raise self._delivery_error(self.failed)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every sent message is acknowledged (or ``timeout_s`` passes).

        Raises :class:`DeliveryError` if a message failed or is still unacknowledged then.
        """
        timeout = self.settings.kafka.client_timeout_s * 3 if timeout_s is None else timeout_s
        try:
            self._require_connected().flush(timeout=timeout)
        except KafkaError as exc:
            raise self._delivery_error(self.pending + self.failed, f"within {timeout:g} s") from exc
        self.raise_if_failed()

    def close(self, timeout_s: float | None = None) -> None:
        """Wait up to ``timeout_s`` for acknowledgements, then close. Safe to call twice.

        Whatever is still unacknowledged then is abandoned, and :class:`DeliveryError` says how
        many messages that is: a bounded close never hangs on a broker that is gone, and never
        drops messages silently.
        """
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        timeout = self.settings.kafka.client_timeout_s * 3 if timeout_s is None else timeout_s
        when = ""
        try:
            producer.flush(timeout=timeout)
        except KafkaError:
            when = f"within {timeout:g} s of closing"
            self._abandoning = True  # their failure is ours, not an error worth quoting
            _abandon_pending(producer)
        try:
            producer.close(timeout=1)
        except KafkaError as exc:  # nothing left to flush, so only shutting down failed
            log.debug("closing the producer: %s", exc)
        not_acknowledged = self.sent - self.delivered
        if not_acknowledged:
            raise self._delivery_error(not_acknowledged, when)

    def _delivery_error(self, count: int, when: str = "") -> DeliveryError:
        first = f" The first error: {self.first_error}." if self.first_error else ""
        # kafka-python reports a write refused for too few in-sync replicas as a timeout (it
        # retries NotEnoughReplicas until the delivery timeout), so the cause is looked up.
        cause = replication_shortfall(self.topic, self.settings)
        advice = cause or "Check the broker (`make status`)."
        return DeliveryError(
            f"Kafka did not acknowledge {count} of the {self.sent} message(s) sent to topic "
            f"{self.topic!r}{' ' + when if when else ''}, so they may be missing from it.{first}"
            f" {advice} A producer retries for KAFKA_DELIVERY_TIMEOUT_S "
            f"({self.settings.kafka.delivery_timeout_s:g} s) before giving up.",
            unacknowledged=count,
        )

    def _require_connected(self) -> KafkaProducer | ConfluentProducer:
        if self._producer is None:
            raise OrderbookKitError(
                "The producer is not connected: use `with TickProducer() as producer:` or call "
                "`producer.connect()` first."
            )
        return self._producer

    def _acknowledged(self, key: bytes | None, metadata: Any) -> None:
        if self.on_delivery is not None:
            label = None if key is None else key.decode(errors="replace")
            self.on_delivery(Delivery(metadata.topic, metadata.partition, metadata.offset, label))

    def _settle(self) -> None:
        """Count the sends Kafka has answered for, oldest first, up to one it has not."""
        with self._settling:
            if isinstance(self._producer, ConfluentProducer):
                self._producer.serve()  # librdkafka reports deliveries only when asked
            unsettled = self._unsettled
            while unsettled and unsettled[0][0].is_done:
                future, key = unsettled.popleft()
                error = future.exception
                if error is None:
                    self._delivered += 1
                    continue
                self._failed += 1
                if self.first_error is None and not self._abandoning:
                    self.first_error = error
                    log.warning("delivery of a message with key %r failed: %s", key, error)


def _abandon_pending(producer: KafkaProducer | ConfluentProducer) -> None:
    """Fail every message the producer still holds, now, and stop its I/O thread.

    kafka-python's ``close(timeout)`` raises half-way when its flush times out, leaving the I/O
    thread running (and a traceback at exit). Its force-close - what ``close`` itself does once the
    timeout passed - has no public name, so it is called here, in this one place.
    """
    if isinstance(producer, ConfluentProducer):
        producer.abandon()
        return
    sender = producer._sender
    sender.force_close()
    sender.join(5)


class BackgroundProducer:
    """Ticks being sent to Kafka from a daemon thread (see :func:`produce_in_background`).

    A failure in the thread is never lost: it is kept in ``error``, and :meth:`join` raises it
    in the caller's thread - so a notebook cell shows it like any other error.
    """

    def __init__(
        self,
        ticks: Iterable[Tick],
        settings: Settings | None,
        topic: str | None,
        **kafka_overrides: Any,
    ) -> None:
        overrides = {"linger_ms": PACED_LINGER_MS, **kafka_overrides}  # a paced stream, usually
        self.producer = TickProducer(settings, topic=topic, **overrides)
        self.error: BaseException | None = None
        self._ticks = ticks
        self._thread = threading.Thread(target=self._produce, name="tick-producer", daemon=True)

    def start(self) -> BackgroundProducer:
        self._thread.start()
        return self

    def finished(self) -> bool:
        """True once every tick was sent and acknowledged, or the thread failed."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> int:
        """Wait for the thread; return how many ticks Kafka acknowledged, or raise its error.

        Raises :class:`OrderbookKitError` if the thread is still sending after ``timeout_s``.
        """
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise OrderbookKitError(
                f"The background producer is still sending after {timeout_s:g} s "
                f"({self.producer.delivered} of {self.producer.sent} tick(s) acknowledged so "
                "far). Wait longer, or stop the stream it sends (e.g. its stop event)."
            )
        if self.error is not None:
            raise self.error
        return self.producer.delivered

    def _produce(self) -> None:
        try:
            with self.producer:
                self.producer.send_all(self._ticks)
        except BaseException as exc:  # kept for join(), which raises it where it is seen
            self.error = exc


def produce_in_background(
    ticks: Iterable[Tick],
    settings: Settings | None = None,
    *,
    topic: str | None = None,
    **kafka_overrides: Any,
) -> BackgroundProducer:
    """Send ``ticks`` (e.g. a paced ``simulator.stream(...)``) from a daemon thread, started now,
    without linger (``PACED_LINGER_MS``; ``kafka_overrides`` change that and other settings).

    Lets a notebook read while it writes, to measure real publish-to-consume latency.
    ``finished()`` says when it is done; ``join()`` waits and raises any error it hit.
    """
    return BackgroundProducer(ticks, settings, topic, **kafka_overrides).start()
