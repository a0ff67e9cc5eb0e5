"""The ingestion service: simulate the market and publish every tick to Kafka.

python -m orderbook_kit.ingest                       # stream until Ctrl-C
python -m orderbook_kit.ingest --count 500 --quiet   # or a fixed number of ticks
python -m orderbook_kit.ingest --duration 10 --symbol TTF-GAS --symbol NBP-GAS
python -m orderbook_kit.ingest --fault-rate 0.01   # 1% of each kind of bad tick, for the gate
python -m orderbook_kit.ingest --fault crossed_book=0.05 --fault seq_gap=0.02

If Kafka fails to deliver a tick (the broker was gone for longer than KAFKA_DELIVERY_TIMEOUT_S),
ingest stops at once and says how many ticks were not delivered (exit code 1), instead of going
on "sending" ticks that never arrive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from . import validation as rules
from .command_line import flag_type
from .config import Settings, load_settings
from .errors import DeliveryError, SettingsError
from .faults import FAULT_KINDS, FaultInjector
from .feed_position import last_ticks
from .models import Tick
from .monitoring.metrics import IngestMetrics
from .monitoring.server import metrics_endpoint
from .producer import PACED_LINGER_MS, TickProducer
from .service import ServiceParser, StopSignal, run_service
from .simulator import OrderbookSimulator

# After Ctrl-C (or a failed delivery), how long to wait for Kafka to acknowledge what was sent.
SHUTDOWN_FLUSH_S = 3.0


def build_parser() -> ServiceParser:
    defaults = load_settings()
    parser = ServiceParser("python -m orderbook_kit.ingest", __doc__.splitlines()[0], defaults)
    parser.add_setting("--topic", "raw_topic", "topic to produce to")
    parser.add_argument(
        "--symbol",
        dest="symbols",
        action="append",
        type=flag_type(rules.symbol),
        help=f"repeat for several (env ORDERBOOK_SYMBOL, default {defaults.symbol})",
    )
    parser.add_setting("--interval", "tick_interval_s", "seconds between ticks")
    parser.add_setting("--volatility", "volatility", "relative move per sqrt second")
    parser.add_setting("--seed", "seed", "random seed")
    parser.add_argument(
        "--fault-rate",
        type=flag_type(rules.probability),
        default=0.0,
        metavar="P",
        help="probability of each kind of bad tick (default 0)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"probability of one kind, repeatable; kinds: {', '.join(FAULT_KINDS)}",
    )
    return parser


def fault_injector(arguments: argparse.Namespace) -> FaultInjector | None:
    """The injector the fault flags ask for, or None for a clean feed."""
    rates: dict[str, float] = dict.fromkeys(FAULT_KINDS, arguments.fault_rate)
    for item in arguments.fault:
        kind, separator, rate = item.partition("=")
        try:
            rates[kind.strip()] = rules.probability(rate)
        except ValueError:
            separator = ""
        if not separator:
            raise SettingsError(
                "fault", "--fault", f"{item!r} is not KIND=PROBABILITY; use e.g. crossed_book=0.05"
            )
    if not any(rates.values()):
        return None
    try:
        return FaultInjector(rates, seed=arguments.seed)
    except ValueError as exc:
        flag = "--fault" if arguments.fault else "--fault-rate"
        raise SettingsError("fault", flag, str(exc)) from None


def send_with_faults(
    producer: TickProducer, injector: FaultInjector, ticks: Iterable[Tick], verbose: bool
) -> None:
    for message in injector.messages(ticks):
        if verbose:
            label = "tick" if message.fault is None else f"bad message ({message.fault})"
            print(f"Sending {label}: {message.value.decode(errors='replace')[:300]}", flush=True)
        producer.send_raw(message.key, message.value)
        producer.raise_if_failed()


def ingest(argv: Sequence[str] | None) -> int:
    stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
    parser = build_parser()
    arguments = parser.parse_args(argv)
    settings = parser.settings(arguments, argv)
    injector = fault_injector(arguments)
    metrics = IngestMetrics()
    port, source = settings.metrics_port, parser.name_of("metrics_port")
    with metrics_endpoint(metrics.registry, port, source=source):
        return produce_ticks(settings, arguments, injector, stop, metrics)


def continue_feed(settings: Settings, simulator: OrderbookSimulator) -> None:
    """Start each symbol where its feed stopped in the raw topic, as a feed handler does after a
    reconnect (see ``feed_position.py``): the quality gate remembers the sequence, so a feed that
    started again at seq 0 would be rejected as out of order."""
    topic = settings.raw_topic
    last = last_ticks(settings, topic, simulator.symbols, timeout_s=settings.delivery_timeout_s)
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
    symbols = arguments.symbols or [settings.symbol]
    simulator = OrderbookSimulator(
        symbols,
        interval_s=settings.tick_interval_s,
        volatility=settings.volatility,
        seed=settings.seed,
    )
    print(f"Connecting to Kafka at {settings.bootstrap_servers}", flush=True)
    # The feed is paced by --interval: each tick goes out at once, without linger.
    producer = TickProducer(settings, verbose=not arguments.quiet, linger_ms=PACED_LINGER_MS)
    continue_feed(settings, simulator)
    metrics.watch(producer)
    with producer:
        stop.running()
        names = ", ".join(repr(s) for s in symbols)
        label = "symbol" if len(symbols) == 1 else "symbols"
        print(
            f"Producing ticks for {label} {names} every {settings.tick_interval_s} seconds "
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


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(lambda: ingest(argv))


if __name__ == "__main__":
    sys.exit(main())
