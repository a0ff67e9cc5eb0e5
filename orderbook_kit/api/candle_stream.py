"""The live candles: one reader of the candles service's closed 1-second and 1-minute candles, any
number of clients.

A background thread reads both candle topics read committed (a candle is there once the
transaction of its window commits, never twice) and keeps each symbol's most recent candles of
each length, so that a new client's chart starts full, not empty for a minute. Each new candle goes
to every client watching that symbol and length. Every record is checked as any reader of a topic
must check it (:func:`~orderbook_kit.market.candles.decode_candle`: the topic is the candles
service's, but anyone with access can write to it); one that is not a candle of the right length is
counted in :attr:`CandleStream.rejected` and never reaches a client. Broker outages are waited out
as by the tick stream.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from kafka import KafkaConsumer, TopicPartition

from orderbook_kit.api.stream import RETRY_S, ReaderThread, Subscription, hand_over
from orderbook_kit.kafka.log_offsets import beginning_offsets_of, end_offsets_of
from orderbook_kit.market.candles import Candle, decode_candle
from orderbook_kit.market.tick import SYMBOL_PATTERN
from orderbook_kit.settings.environment import Settings
from orderbook_kit.settings.timing import POLL_MS

__all__ = ["CANDLE_INTERVALS", "HISTORY", "CandleStream", "CandleSubscription"]

CANDLE_INTERVALS = (1, 60)  # seconds: the candles service's two closed candle topics
HISTORY = 300  # candles kept per symbol and length: 5 minutes of 1 s candles, 5 hours of 1 min
# Where a (re)started reader begins: this many records before each partition's end, enough for
# HISTORY candles of every symbol of a partition while it holds at most this many symbols.
SYMBOLS_PER_PARTITION = 20
MAX_SYMBOLS = 1_000  # symbols held per length: a writer of made-up symbols cannot fill memory
METADATA_REFRESH_S = 10.0
SYMBOL_RE = re.compile(SYMBOL_PATTERN)


@dataclass(eq=False)
class CandleSubscription:
    """One client's watch of one symbol's candles of one length."""

    symbol: str
    interval_s: int
    inner: Subscription


class CandleStream(ReaderThread):
    """Reads ``settings``' 1 s and 1 min candle topics in a thread; :meth:`recent` answers from
    what it keeps and subscribers get each new candle. :meth:`start` and :meth:`close` bound its
    life; nothing connects before."""

    thread_name = "candle-stream"
    client_id = "orderbook-kit-api-candles"

    def __init__(self, settings: Settings, *, buffer: int, history: int = HISTORY) -> None:
        super().__init__(settings)
        self.buffer = buffer
        self.history = history
        self.rejected = 0  # records of the candle topics that were not candles of their length
        self.candles_seen = 0
        self._topics = {
            settings.topics.candles_1s: 1,
            settings.topics.candles_1m: 60,
        }
        # (length, symbol) -> that symbol's newest candles as JSON, by start, oldest first.
        self._recent: dict[tuple[int, str], dict[datetime, str]] = {}
        self._subscriptions: set[CandleSubscription] = set()
        self._lock = threading.Lock()

    def recent(self, symbol: str, interval_s: int) -> list[str]:
        """``symbol``'s newest candles of ``interval_s`` seconds (JSON texts), oldest first."""
        with self._lock:
            return list(self._recent.get((interval_s, symbol), {}).values())

    def symbols(self, interval_s: int) -> list[str]:
        with self._lock:
            return sorted(symbol for length, symbol in self._recent if length == interval_s)

    def subscribe(self, symbol: str, interval_s: int) -> CandleSubscription:
        """A client's watch (call it on the client's event loop): it gets the kept candles at
        once - the newest half a buffer of them, so that they alone never overflow it."""
        inner = Subscription(
            frozenset({symbol}), asyncio.Queue(maxsize=self.buffer), asyncio.get_running_loop()
        )
        subscription = CandleSubscription(symbol, interval_s, inner)
        with self._lock:
            self._subscriptions.add(subscription)
            kept = list(self._recent.get((interval_s, symbol), {}).values())
        inner.offer(kept[-max(self.buffer // 2, 1) :])
        return subscription

    def unsubscribe(self, subscription: CandleSubscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def _assign(self, consumer: KafkaConsumer) -> None:
        """Every partition of both topics (the candles service creates them when it starts, so
        they may come later than the API); a new one from a little before its end."""
        assigned = {
            TopicPartition(topic, p)
            for topic in self._topics
            for p in consumer.partitions_for_topic(topic) or ()
        }
        new = sorted(assigned - consumer.assignment())
        if not new:
            return
        consumer.assign(sorted(assigned))
        timeout_ms = int(self.settings.kafka.client_timeout_s * 1000)
        ends = end_offsets_of(consumer, new, timeout_ms)
        starts = beginning_offsets_of(consumer, new, timeout_ms)
        back = self.history * SYMBOLS_PER_PARTITION
        for partition in new:
            consumer.seek(partition, max(starts[partition], ends[partition] - back))

    def _read(self, consumer: KafkaConsumer) -> None:
        refreshed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - refreshed > METADATA_REFRESH_S or not consumer.assignment():
                self._assign(consumer)
                refreshed = time.monotonic()
                if not consumer.assignment():
                    # No candles service has run yet: not an error. A new consumer asks the
                    # cluster afresh for the topics.
                    self.error = None
                    self._stop.wait(RETRY_S)
                    return
            batches = consumer.poll(timeout_ms=POLL_MS, max_records=max(self.buffer // 2, 1))
            self.error = None
            fresh: list[tuple[int, str, str]] = []
            for partition, records in batches.items():
                interval_s = self._topics[partition.topic]
                for record in records:
                    kept = self._keep(interval_s, record.value)
                    if kept is not None:
                        fresh.append((interval_s, *kept))
            if fresh:
                self.candles_seen += len(fresh)
                self._publish(fresh)

    def _keep(self, interval_s: int, value: bytes | None) -> tuple[str, str] | None:
        """Keep the candle in ``value``: its (symbol, JSON), or None when it is not a candle of
        ``interval_s`` seconds (counted)."""
        candle = decode_candle(value)
        if (
            isinstance(candle, str)
            or candle.end - candle.start != timedelta(seconds=interval_s)
            or not SYMBOL_RE.fullmatch(candle.symbol)
        ):
            self.rejected += 1
            return None
        return candle.symbol, self._store(interval_s, candle)

    def _store(self, interval_s: int, candle: Candle) -> str:
        text = candle.to_json().decode()  # written anew: only the fields of a candle go out
        key = (interval_s, candle.symbol)
        with self._lock:
            kept = self._recent.get(key)
            if kept is None:
                if len(self._recent) >= MAX_SYMBOLS * len(CANDLE_INTERVALS):
                    return text  # handed on to a watcher, but not kept
                kept = self._recent[key] = {}
            kept[candle.start] = text
            if len(kept) > self.history:
                del kept[min(kept)]  # the oldest window
        return text

    def _publish(self, fresh: list[tuple[int, str, str]]) -> None:
        """Each client the fresh candles of its symbol and length (:func:`hand_over`)."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        gone = hand_over(
            (
                s.inner,
                [
                    text
                    for interval_s, symbol, text in fresh
                    if interval_s == s.interval_s and symbol == s.symbol
                ],
            )
            for s in subscriptions
        )
        for subscription in subscriptions:
            if subscription.inner in gone:
                self.unsubscribe(subscription)
