"""Producing the simulated feed to Kafka: where each symbol's feed continues, sending ticks
(with bad ones mixed in, on request), and a summary. ``python -m orderbook_kit.ingest`` (see
``__main__.py``) is the command around it."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from orderbook_kit.errors import DeliveryError
from orderbook_kit.ingest.feed_position import last_ticks
from orderbook_kit.ingest.metrics import IngestMetrics
from orderbook_kit.kafka.producer import PACED_LINGER_MS, TickProducer
from orderbook_kit.market.faults import FaultInjector
from orderbook_kit.market.simulator import OrderbookSimulator
from orderbook_kit.market.tick import Tick
from orderbook_kit.runtime.service import StopSignal
from orderbook_kit.settings.environment import Settings

__all__ = ["continue_feed", "produce_ticks", "send_with_faults"]

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
