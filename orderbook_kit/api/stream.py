"""The live tick stream: one Kafka consumer, any number of WebSocket clients.

A background thread reads the clean topic from its end (no consumer group: every API process
sees every tick) and hands each tick to every subscriber's queue. Each queue is bounded: a client
that does not keep up fills its queue and is dropped - told why, and free to reconnect - so one
slow client never slows the reader, or the others. Broker outages are waited out: the thread
reconnects by itself, and :attr:`TickStream.error` says what is wrong meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from orderbook_kit.errors import OrderbookKitError
from orderbook_kit.kafka.admin import broker_answers
from orderbook_kit.kafka.reader import open_consumer
from orderbook_kit.market.decoding import DecodeFailure, decode_message
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import POLL_MS

__all__ = ["RETRY_S", "ReaderThread", "Subscription", "TickStream", "hand_over"]

log = logging.getLogger(__name__)

RETRY_S = 1.0  # between attempts to reach the broker again
METADATA_REFRESH_S = 10.0  # a topic created (or grown) after start is picked up this soon
# A consumer's poll just returns nothing while the broker is down: after this long without a tick,
# the stream asks whether the broker answers at all, so that /health can tell quiet from down.
QUIET_CHECK_S = 3.0
HANDOVER_WAIT_S = 0.5


@dataclass(eq=False)  # each client is itself: hashed by identity
class Subscription:
    """One client's queue of tick JSON texts, filled by the stream's thread."""

    symbols: frozenset[str] | None  # None: every symbol
    queue: asyncio.Queue[str]
    loop: asyncio.AbstractEventLoop
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: int = 0

    def offer(self, texts: list[str]) -> None:
        """On the client's event loop: queue ``texts``, or drop the client once it is full."""
        for text in texts:
            if self.dropped.is_set():
                return
            try:
                self.queue.put_nowait(text)
            except asyncio.QueueFull:
                self.dropped.set()


def hand_over(deliveries: Iterable[tuple[Subscription, list[str]]]) -> set[Subscription]:
    """Give each client its texts on its own event loop - one call per client and poll, not per
    text - then wait (briefly) until the loops have taken them (:func:`wait_for_handover`).
    Returns the clients whose event loop has closed: they are gone, for the caller to forget."""
    gone: set[Subscription] = set()
    loops: set[asyncio.AbstractEventLoop] = set()
    for subscription, texts in deliveries:
        if not texts:
            continue
        try:
            subscription.loop.call_soon_threadsafe(subscription.offer, texts)
        except RuntimeError:  # its event loop has closed: the client is gone
            gone.add(subscription)
            continue
        loops.add(subscription.loop)
    wait_for_handover(loops)
    return gone


def wait_for_handover(loops: set[asyncio.AbstractEventLoop]) -> None:
    """Wait (briefly, bounded: a stuck loop never stops a stream) until each of ``loops`` has
    run what was handed to it. Without that wait a reader thread, holding the GIL for
    milliseconds at a time, could queue a thousand messages before a client's sender runs once,
    and drop clients that keep up perfectly well."""
    for loop in loops:
        taken = threading.Event()
        try:
            loop.call_soon_threadsafe(taken.set)
        except RuntimeError:  # its event loop has closed: the client is gone
            continue
        taken.wait(HANDOVER_WAIT_S)


class ReaderThread:
    """A daemon thread that reads Kafka from :meth:`start` until :meth:`close`: the life of the
    API's readers. Each round opens a consumer and hands it to :meth:`_read`; whatever ends the
    round (Kafka unreachable, lost, or anything else - the thread must never end, or the API
    would serve nothing until restarted) is said in :attr:`error` (:meth:`_failed`), and the next
    round starts after ``RETRY_S``."""

    thread_name = "reader"
    client_id = "orderbook-kit-api"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.error: str | None = None  # why nothing can be read now, if so
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                consumer = open_consumer(self.settings, client_id=self.client_id)
            except (OrderbookKitError, KafkaError) as exc:
                self.error = (
                    f"Kafka at {self.settings.kafka.bootstrap_servers} is unreachable ({exc})"
                )
                self._stop.wait(RETRY_S)
                continue
            try:
                self._read(consumer)
            except Exception as exc:
                self._failed(exc)
                self._stop.wait(RETRY_S)
            finally:
                consumer.close()

    def _read(self, consumer: KafkaConsumer) -> None:
        """Read with ``consumer`` until told to stop (or return, to start a new round)."""
        raise NotImplementedError

    def _failed(self, exc: Exception) -> None:
        """Say why the round ended in :attr:`error`."""
        if isinstance(exc, (OrderbookKitError, KafkaError)):
            self.error = f"reading Kafka failed ({exc})"
            log.info("%s lost Kafka (%s); reconnecting", self.thread_name, exc)
        else:
            self.error = f"reading Kafka failed ({type(exc).__name__}: {exc})"
            log.warning("%s failed; starting again", self.thread_name, exc_info=exc)


class TickStream(ReaderThread):
    """Reads ``settings.topics.clean`` from its end in a thread and fans ticks out to
    subscribers. :meth:`start` and :meth:`close` bound its life; nothing connects before."""

    thread_name = "tick-stream"

    def __init__(self, settings: Settings, *, buffer: int) -> None:
        super().__init__(settings)
        self.buffer = buffer
        self.ready = threading.Event()  # set once it reads the topic
        self.ticks_seen = 0
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, symbols: frozenset[str] | None) -> Subscription:
        """A new client's subscription (call it on the client's event loop)."""
        subscription = Subscription(
            symbols, asyncio.Queue(maxsize=self.buffer), asyncio.get_running_loop()
        )
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def _failed(self, exc: Exception) -> None:
        super()._failed(exc)
        self.error = f"reading {self.settings.topics.clean!r} failed ({exc})"

    def _assign_at_end(self, consumer: KafkaConsumer) -> set[TopicPartition]:
        topic = self.settings.topics.clean
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = {TopicPartition(topic, p) for p in partitions}
        if assigned != consumer.assignment():
            new = assigned - consumer.assignment()
            consumer.assign(sorted(assigned))
            consumer.seek_to_end(*sorted(new))  # only what arrives from now on
        return assigned

    def _read(self, consumer: KafkaConsumer) -> None:
        refreshed = 0.0
        last_heard = time.monotonic()  # the last poll with ticks, or the last check
        while not self._stop.is_set():
            if time.monotonic() - refreshed > METADATA_REFRESH_S or not consumer.assignment():
                if not self._assign_at_end(consumer):
                    self.error = f"topic {self.settings.topics.clean!r} does not exist yet"
                    self._stop.wait(RETRY_S)
                    return  # a new consumer asks the cluster afresh for the topic
                refreshed = time.monotonic()
            # At most half a client's buffer a poll: one poll's ticks never alone overflow the
            # queue of a client that keeps up.
            batches = consumer.poll(timeout_ms=POLL_MS, max_records=max(self.buffer // 2, 1))
            if batches:
                last_heard = time.monotonic()
            elif time.monotonic() - last_heard > QUIET_CHECK_S:
                last_heard = time.monotonic()
                if not broker_answers(
                    self.settings.kafka.bootstrap_servers, timeout_s=QUIET_CHECK_S
                ):
                    self.error = f"Kafka at {self.settings.kafka.bootstrap_servers} does not answer"
                    continue
            self.error = None
            self.ready.set()
            ticks: list[tuple[str, str]] = []
            for records in batches.values():
                for record in records:
                    decoded = decode_message(record.key, record.value)
                    if not isinstance(decoded, DecodeFailure):  # a non-tick never reaches a client
                        ticks.append((decoded.symbol, decoded.model_dump_json()))
            if ticks:
                self.ticks_seen += len(ticks)
                self._publish(ticks)

    def _publish(self, ticks: list[tuple[str, str]]) -> None:
        """Each client its symbols' ticks (:func:`hand_over`)."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        gone = hand_over(
            (s, [text for symbol, text in ticks if s.symbols is None or symbol in s.symbols])
            for s in subscriptions
        )
        for subscription in gone:
            self.unsubscribe(subscription)
