"""The ingestion service: simulate the market and publish every tick to Kafka.

python -m orderbook_kit.ingest                       # stream until Ctrl-C
python -m orderbook_kit.ingest --count 500 --quiet   # or a fixed number of ticks
python -m orderbook_kit.ingest --duration 10 --symbol TTF-GAS --symbol NBP-GAS
"""

from __future__ import annotations

import argparse
import sys

from .config import load_settings
from .errors import OrderbookKitError
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = settings_from(arguments, raw_topic=arguments.topic)
    symbols = arguments.symbol or [settings.symbol]
    stop = stop_on_signals()
    print(f"Connecting to Kafka at {settings.bootstrap_servers}", flush=True)
    try:
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
            producer.send_all(ticks)
            producer.flush()
            print(f"Sent {producer.sent} ticks ({producer.delivered} acknowledged by Kafka).")
            return 0 if producer.failed == 0 else 1
    except OrderbookKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
