"""Producing the simulated feed to Kafka: where each symbol's feed continues, sending ticks
(with bad ones mixed in, on request), and a summary. ``python -m orderbook_kit.ingest`` (see
``__main__.py``) is the command around it."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime

from orderbook_kit.errors import DeliveryError
from orderbook_kit.ingest.feed_position import last_book_seqs, last_ticks
from orderbook_kit.ingest.metrics import IngestMetrics
from orderbook_kit.kafka.producer import PACED_LINGER_MS, TickProducer
from orderbook_kit.market.book_faults import BookFaultInjector, raw_book_records
from orderbook_kit.market.book_messages import BookSnapshot
from orderbook_kit.market.depth_simulator import DepthSimulator
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.service import StopSignal
from orderbook_kit.settings.environment import Settings

__all__ = [
    "continue_book_feed",
    "continue_feed",
    "produce_book",
    "produce_ticks",
    "send_with_faults",
]

# After Ctrl-C (or a failed delivery), how long to wait for Kafka to acknowledge what was sent.
SHUTDOWN_FLUSH_S = 3.0


def send_with_faults(
    producer: TickProducer, injector: FaultInjector, ticks: Iterable[Tick], verbose: bool
) -> None:
    for message in injector.messages(ticks):
        if verbose:
            label = "tick" if message.fault is None else f"bad message ({message.fault})"
            print(f"Sending {label}: {message.value.decode(errors='replace')[:300]}", flush=True)
        producer.send_raw(message.key, message.value)
        producer.raise_if_failed()


def continue_feed(settings: Settings, simulator: OrderbookSimulator) -> None:
    """Start each symbol where its feed stopped in the raw topic, as a feed handler does after a
    reconnect (see ``feed_position.py``): the quality gate remembers the sequence, so a feed that
    started again at seq 0 would be rejected as out of order."""
    topic = settings.topics.raw
    last = last_ticks(
        settings, topic, simulator.symbols, timeout_s=settings.kafka.delivery_timeout_s
    )
    for symbol in simulator.symbols:
        tick = last.get(symbol)
        if tick is None:
            print(f"{symbol}: a new feed in '{topic}', from seq 0", flush=True)
        else:
            print(
                f"{symbol}: continuing the feed in '{topic}' from seq {tick.seq + 1:,} "
                f"(last tick at {tick.event_time.isoformat()}, mid {tick.mid:g})",
                flush=True,
            )
    simulator.continue_from(last)


def produce_ticks(
    settings: Settings,
    arguments: argparse.Namespace,
    injector: FaultInjector | None,
    stop: StopSignal,
    metrics: IngestMetrics,
) -> int:
    symbols = arguments.symbols or [settings.simulator.symbol]
    simulator = OrderbookSimulator(
        symbols,
        interval_s=settings.simulator.tick_interval_s,
        volatility=settings.simulator.volatility,
        seed=settings.simulator.seed,
    )
    print(f"Connecting to Kafka at {settings.kafka.bootstrap_servers}", flush=True)
    # The feed is paced by --interval: each tick goes out at once, without linger.
    producer = TickProducer(settings, verbose=not arguments.quiet, linger_ms=PACED_LINGER_MS)
    continue_feed(settings, simulator)
    metrics.watch(producer)
    with producer:
        stop.running()
        names = ", ".join(repr(s) for s in symbols)
        label = "symbol" if len(symbols) == 1 else "symbols"
        print(
            f"Producing ticks for {label} {names} every {settings.simulator.tick_interval_s} "
            "seconds "
            f"to topic '{producer.topic}'",
            flush=True,
        )
        ticks = metrics.sent(
            simulator.stream(count=arguments.count, duration_s=arguments.duration, stop=stop.event)
        )
        try:
            if injector is None:
                producer.send_all(ticks)
            else:
                send_with_faults(producer, injector, ticks, verbose=not arguments.quiet)
        except DeliveryError:
            pass  # close() below reports it, counting everything not acknowledged
        finally:
            stop.finishing()
        hurry = stop.event.is_set() or producer.failed > 0
        producer.close(timeout_s=SHUTDOWN_FLUSH_S if hurry else None)
    unit = "ticks" if injector is None else "messages"
    print(f"Sent {producer.sent} {unit} ({producer.delivered} acknowledged by Kafka).")
    if injector is not None:
        faults = ", ".join(f"{n} {kind}" for kind, n in sorted(injector.injected.items()))
        print(f"Injected faults: {faults or 'none'}.")
    return 0


def continue_book_feed(settings: Settings, market: DepthSimulator) -> list[BookSnapshot]:
    """Start each symbol's book feed after the highest seq in the book's raw topic, as a new
    exchange session would: its seq goes on, and its book starts afresh. The snapshots to send
    first, so the book service takes the new book before the first update that builds it (an
    update on top of the old book would not give the checksum it carries)."""
    topic = settings.topics.book_raw
    last = last_book_seqs(
        settings, topic, market.symbols, timeout_s=settings.kafka.delivery_timeout_s
    )
    announced = []
    for symbol in market.symbols:
        seq = last.get(symbol)
        if seq is None:
            print(f"{symbol}: a new book feed in '{topic}', from seq 1", flush=True)
            continue
        book = market.books[symbol]
        book.seq = seq
        announced.append(book.snapshot(datetime.now(UTC)))
        print(
            f"{symbol}: continuing the book feed in '{topic}' after seq {seq:,}, with a fresh "
            "book (announced by a snapshot)",
            flush=True,
        )
    return announced


def produce_book(
    settings: Settings,
    arguments: argparse.Namespace,
    injector: BookFaultInjector | None,
    stop: StopSignal,
    metrics: IngestMetrics,
) -> int:
    """The depth feed: each tick's book updates, and the exchange's snapshots, to the book's raw
    topic (for the book service, ``python -m orderbook_kit.book``)."""
    symbols = arguments.symbols or [settings.simulator.symbol]
    market = DepthSimulator(
        symbols,
        updates_per_tick=arguments.updates_per_tick,
        interval_s=settings.simulator.tick_interval_s,
        volatility=settings.simulator.volatility,
        seed=settings.simulator.seed,
    )
    topic = settings.topics.book_raw
    print(f"Connecting to Kafka at {settings.kafka.bootstrap_servers}", flush=True)
    producer = TickProducer(settings, topic=topic, verbose=False, linger_ms=PACED_LINGER_MS)
    announced = continue_book_feed(settings, market)
    with producer:
        stop.running()
        print(
            f"Producing the book of {', '.join(repr(s) for s in symbols)}: "
            f"{arguments.updates_per_tick + 1} updates a tick, a tick every "
            f"{settings.simulator.tick_interval_s} seconds, to topic '{topic}'",
            flush=True,
        )
        ticks = metrics.sent(
            market.ticks.stream(
                count=arguments.count, duration_s=arguments.duration, stop=stop.event
            )
        )
        feed = itertools.chain(
            announced,
            market.exchange_feed_of(ticks, snapshot_every=arguments.exchange_snapshot_every),
        )
        try:
            for record in raw_book_records(feed, injector):
                if not arguments.quiet:
                    label = record.fault or "clean"
                    print(f"Sending {label} {record.value.decode(errors='replace')[:200]}")
                producer.send_raw(record.key, record.value, record.headers)
                producer.raise_if_failed()
        except DeliveryError:
            pass  # close() below reports it
        finally:
            stop.finishing()
        hurry = stop.event.is_set() or producer.failed > 0
        producer.close(timeout_s=SHUTDOWN_FLUSH_S if hurry else None)
    print(f"Sent {producer.sent} book messages ({producer.delivered} acknowledged by Kafka).")
    if injector is not None:
        faults = ", ".join(f"{n} {kind}" for kind, n in sorted(injector.injected.items()))
        print(f"Injected faults: {faults or 'none'}.")
    return 0
