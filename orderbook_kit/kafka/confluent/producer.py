"""confluent-kafka's Producer behind the interface ``TickProducer`` uses from kafka-python's.

``TickProducer`` is written against kafka-python: ``send`` returns a future (``is_done``,
``exception``, ``get``), ``flush``/``close`` take a timeout, failures are ``kafka.errors``. This
adapter gives librdkafka the same shape, so every check the kit makes (counting acknowledgements,
naming a refused write's cause, a bounded close that never drops messages silently) is the same
code for both clients. kafka-python's error classes are the shared vocabulary: it is always
installed, and the producer already knows how to explain each of them.

Two differences from kafka-python matter here. librdkafka reports deliveries only when the
caller asks (``poll``/``flush``), on the caller's thread: :meth:`ConfluentProducer.serve` does,
before the kit counts. And its settings have other names (``linger.ms``): :func:`producer_config`
translates the kit's, so ``TickProducer(linger_ms=0)`` means the same with either client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)
from kafka.producer.future import RecordMetadata
from kafka.structs import TopicPartition

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.confluent.loading import confluent_kafka

__all__ = ["ConfluentProducer", "ConfluentSend", "producer_config"]

log = logging.getLogger(__name__)

# kafka-python's name of a setting -> librdkafka's (the kit's defaults and overrides use the
# former). Names with a dot are librdkafka's own and pass through unchanged.
_NAMES = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "compression_type": "compression.type",
    "request_timeout_ms": "request.timeout.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "max_in_flight_requests_per_connection": "max.in.flight.requests.per.connection",
    "max_request_size": "message.max.bytes",
    "retries": "retries",
    "retry_backoff_ms": "retry.backoff.ms",
}
# Settings the adapter applies itself: librdkafka has no equivalent to pass them to.
_APPLIED_HERE = {"max_block_ms", "bootstrap_timeout_ms"}
# librdkafka's default partitioner hashes keys with CRC32, the Java client and kafka-python with
# murmur2: the same key would land in another partition, and one symbol's ticks would be split
# (out of order) between producers using different clients. murmur2_random is the Java one.
SAME_PARTITIONS_AS_JAVA = "murmur2_random"
BLOCKED_PAUSE_S = 0.05  # how long to serve deliveries before trying a full queue again
DEFAULT_MAX_BLOCK_MS = 60_000  # kafka-python's default bound on a blocked send


def producer_config(config: dict[str, Any]) -> dict[str, Any]:
    """The kit's producer settings (kafka-python names) as librdkafka's.

    Raises :class:`OrderbookKitError` for a setting with no librdkafka equivalent, rather than
    silently ignoring it.
    """
    translated: dict[str, Any] = {}
    for name, value in config.items():
        if name in _APPLIED_HERE:
            continue
        if "." in name:
            translated[name] = value
        elif name in _NAMES:
            translated[_NAMES[name]] = str(value) if name == "acks" else value
        else:
            known = ", ".join(sorted(_NAMES))
            raise OrderbookKitError(
                f"The producer setting {name!r} has no confluent-kafka equivalent the kit knows. "
                f"Use one of {known}, or librdkafka's own name (e.g. 'queue.buffering.max.ms'), "
                "or ORDERBOOK_KAFKA_CLIENT=kafka-python."
            )
    return translated


class ConfluentSend:
    """One message's delivery, shaped like kafka-python's ``FutureRecordMetadata``."""

    __slots__ = ("_callbacks", "_owner", "exception", "is_done", "value")

    def __init__(self, owner: ConfluentProducer) -> None:
        self._owner = owner
        self.is_done = False
        self.exception: KafkaError | None = None
        self.value: RecordMetadata | None = None
        self._callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def add_callback(self, function: Callable[..., Any], *args: Any) -> ConfluentSend:
        """Call ``function(*args, metadata)`` once the message is acknowledged."""
        if self.succeeded():
            function(*args, self.value)
        else:
            self._callbacks.append((function, args))
        return self

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait (serving deliveries) until Kafka answers; the metadata, or the failure raised."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise KafkaTimeoutError(f"Kafka did not answer for the message within {timeout} s")
            self._owner.serve(BLOCKED_PAUSE_S if left is None else min(BLOCKED_PAUSE_S, left))
        if self.exception is not None:
            raise self.exception
        assert self.value is not None
        return self.value

    def _delivered(self, error: Any, message: Any) -> None:
        """librdkafka's delivery report, called from ``poll``/``flush`` on the caller's thread."""
        self.is_done = True
        if error is not None:
            self.exception = _kafka_error(error, self._owner._errors)
            return
        topic, partition = message.topic(), message.partition()
        self.value = RecordMetadata(
            topic,
            partition,
            TopicPartition(topic, partition),
            message.offset(),
            message.timestamp()[1],
            None,
            len(message.key() or b""),
            len(message.value() or b""),
            -1,
        )
        for function, args in self._callbacks:
            function(*args, self.value)
        self._callbacks.clear()


class ConfluentProducer:
    """A connected librdkafka producer with kafka-python's ``send``/``flush``/``close``.

    ``config`` uses the kit's (kafka-python's) names; see :func:`producer_config`. Connects here
    (the caller is ``TickProducer.connect``), and raises ``KafkaConnectionError`` if no broker
    answers within ``bootstrap_timeout_ms`` - as kafka-python's constructor does.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        module = confluent_kafka()
        self._errors = module.KafkaError
        self._exception = module.KafkaException
        self._max_block_s = config.get("max_block_ms", DEFAULT_MAX_BLOCK_MS) / 1000
        connect_timeout_s = config.get("bootstrap_timeout_ms", DEFAULT_MAX_BLOCK_MS) / 1000
        # librdkafka logs to stderr unless given a logger: into Python's logging instead.
        settings = {
            "logger": log,
            "partitioner": SAME_PARTITIONS_AS_JAVA,
            **producer_config(config),
        }
        self._producer = module.Producer(settings)
        try:
            self._producer.list_topics(timeout=connect_timeout_s)
        except module.KafkaException as exc:
            self._producer.purge()
            raise KafkaConnectionError(str(exc)) from exc

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> ConfluentSend:
        """Queue one message; block (serving deliveries) at most ``max_block_ms`` if the local
        queue is full, then raise ``KafkaTimeoutError`` - kafka-python's behaviour."""
        future = ConfluentSend(self)
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    -1 if partition is None else partition,
                    on_delivery=future._delivered,
                    timestamp=timestamp_ms or 0,
                    headers=headers,
                )
                return future
            except BufferError:  # librdkafka's queue is full: let it drain, within a bound
                now = time.monotonic()
                deadline = deadline or now + self._max_block_s
                if now >= deadline:
                    raise KafkaTimeoutError(
                        f"librdkafka's queue stayed full for {self._max_block_s:g} s"
                    ) from None
                self.serve(BLOCKED_PAUSE_S)
            except self._exception as exc:
                raise _kafka_error(exc.args[0], self._errors) from exc

    def serve(self, timeout_s: float = 0) -> None:
        """Run the delivery reports librdkafka has ready (they count the acknowledgements)."""
        self._producer.poll(timeout_s)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued message; ``KafkaTimeoutError`` if some are left after it."""
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise KafkaTimeoutError(f"{left} message(s) still unacknowledged after {timeout} s")

    def abandon(self) -> None:
        """Fail every message still queued or in flight, now (their reports say so)."""
        self._producer.purge(in_queue=True, in_flight=True, blocking=False)
        self._producer.flush(1)

    def close(self, timeout: float | None = None) -> None:
        """Release librdkafka's threads and connections (``flush`` first to keep messages)."""
        self._producer.flush(0 if timeout is None else min(timeout, 0.1))
        # Producer.close() came with confluent-kafka 2.13; before it, dropping the last
        # reference releases the same (the workbook pins 2.12 for Quix Streams).
        close = getattr(self._producer, "close", None)
        if close is not None:
            close()


def _kafka_error(error: Any, codes: Any) -> KafkaError:
    """librdkafka's error as the kafka-python error the kit already explains (``codes``:
    confluent_kafka.KafkaError, whose constants name the codes)."""
    text = f"{error.name()}: {error.str()}"
    if error.code() == codes.MSG_SIZE_TOO_LARGE:
        return MessageSizeTooLargeError(text)
    if error.code() == codes._MSG_TIMED_OUT:
        return KafkaTimeoutError(text)
    return KafkaError(text)
