"""The ingestion service: simulate the market and publish every tick to Kafka.

python -m orderbook_kit.ingest                       # stream until Ctrl-C
python -m orderbook_kit.ingest --count 500 --quiet   # or a fixed number of ticks
python -m orderbook_kit.ingest --duration 10 --symbol TTF-GAS --symbol NBP-GAS
python -m orderbook_kit.ingest --fault-rate 0.01   # 1% of each kind of bad tick, for the gate
python -m orderbook_kit.ingest --fault crossed_book=0.05 --fault seq_gap=0.02
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from .config import load_settings
from .errors import OrderbookKitError
from .faults import FAULT_KINDS, FaultInjector
from .models import Tick
from .producer import TickProducer
from .service import add_common_arguments, settings_from, stop_on_signals
from .simulator import OrderbookSimulator


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orderbook_kit.ingest", description=__doc__.splitlines()[0]
    )
    add_common_arguments(parser)
    defaults = load_settings()
    parser.add_argument("--topic", default=defaults.raw_topic, help="default %(default)s")
    parser.add_argument(
        "--symbol", action="append", help=f"repeat for several (default {defaults.symbol})"
    )
    parser.add_argument("--interval", type=float, default=defaults.tick_interval_s,
                        help="seconds between ticks (default %(default)s)")  # fmt: skip
    parser.add_argument("--volatility", type=float, default=defaults.volatility,
                        help="per sqrt second (default %(default)s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default %(default)s")
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="P",
                        help="probability of each kind of bad tick (default 0)")  # fmt: skip
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"probability of one kind, repeatable; kinds: {', '.join(FAULT_KINDS)}",
    )
    return parser.parse_args(argv)


def fault_injector(arguments: argparse.Namespace) -> FaultInjector | None:
    """The injector the fault flags ask for, or None for a clean feed."""
    rates: dict[str, float] = dict.fromkeys(FAULT_KINDS, arguments.fault_rate)
    for item in arguments.fault:
        kind, separator, rate = item.partition("=")
        try:
            rates[kind.strip()] = float(rate)
        except ValueError:
            separator = ""
        if not separator:
            raise ValueError(f"--fault {item!r}: write KIND=PROBABILITY, e.g. crossed_book=0.05")
    if not any(rates.values()):
        return None
    return FaultInjector(rates, seed=arguments.seed)


def send_with_faults(
    producer: TickProducer, injector: FaultInjector, ticks: Iterable[Tick], verbose: bool
) -> None:
    for message in injector.messages(ticks):
        if verbose:
            label = "tick" if message.fault is None else f"bad message ({message.fault})"
            print(f"Sending {label}: {message.value.decode(errors='replace')}", flush=True)
        producer.send_raw(message.key, message.value)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = settings_from(arguments, raw_topic=arguments.topic)
    symbols = arguments.symbol or [settings.symbol]
    stop = stop_on_signals()
    print(f"Connecting to Kafka at {settings.bootstrap_servers}", flush=True)
    try:
        injector = fault_injector(arguments)
        simulator = OrderbookSimulator(
            symbols, interval_s=arguments.interval, volatility=arguments.volatility,
            seed=arguments.seed,
        )  # fmt: skip
        with TickProducer(settings, verbose=not arguments.quiet) as producer:
            names = ", ".join(repr(s) for s in symbols)
            label = "symbol" if len(symbols) == 1 else "symbols"
            print(f"Producing ticks for {label} {names} every {arguments.interval} seconds "
                  f"to topic '{producer.topic}'", flush=True)  # fmt: skip
            ticks = simulator.stream(
                count=arguments.count, duration_s=arguments.duration, stop=stop
            )
            if injector is None:
                producer.send_all(ticks)
            else:
                send_with_faults(producer, injector, ticks, verbose=not arguments.quiet)
            producer.flush()
            unit = "ticks" if injector is None else "messages"
            print(f"Sent {producer.sent} {unit} ({producer.delivered} acknowledged by Kafka).")
            if injector is not None:
                faults = ", ".join(f"{n} {kind}" for kind, n in sorted(injector.injected.items()))
                print(f"Injected faults: {faults or 'none'}.")
            return 0 if producer.failed == 0 else 1
    except (OrderbookKitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
