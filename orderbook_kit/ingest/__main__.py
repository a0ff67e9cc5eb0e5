"""The ingestion service: simulate the market and publish every tick to Kafka.

python -m orderbook_kit.ingest                       # stream until Ctrl-C
python -m orderbook_kit.ingest --count 500 --quiet   # or a fixed number of ticks
python -m orderbook_kit.ingest --duration 10 --symbol TTF-GAS --symbol NBP-GAS
python -m orderbook_kit.ingest --fault-rate 0.01   # 1% of each kind of bad tick, for the gate
python -m orderbook_kit.ingest --fault crossed_book=0.05 --fault seq_gap=0.02
python -m orderbook_kit.ingest --book                 # the order book's depth feed instead
python -m orderbook_kit.ingest --book --fault-rate 0.01  # with drop, repeat, reorder, corrupt...

If Kafka fails to deliver a tick (the broker was gone for longer than KAFKA_DELIVERY_TIMEOUT_S),
ingest stops at once and says how many ticks were not delivered (exit code 1), instead of going
on "sending" ticks that never arrive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orderbook_kit.errors import SettingsError
from orderbook_kit.ingest.metrics import IngestMetrics
from orderbook_kit.ingest.service import produce_book, produce_ticks
from orderbook_kit.market.book_faults import BOOK_FAULT_KINDS, BookFaultInjector
from orderbook_kit.market.faults import FAULT_KINDS, FaultInjector
from orderbook_kit.monitoring.server import metrics_endpoint
from orderbook_kit.runtime.command_line import flag_type
from orderbook_kit.runtime.service import ServiceParser, StopSignal, run_service
from orderbook_kit.settings import rules
from orderbook_kit.settings.environment import load_settings


def build_parser() -> ServiceParser:
    defaults = load_settings()
    parser = ServiceParser("python -m orderbook_kit.ingest", __doc__.splitlines()[0], defaults)
    parser.add_setting("--topic", "topics.raw", "topic to produce to")
    parser.add_argument(
        "--symbol",
        dest="symbols",
        action="append",
        type=flag_type(rules.symbol),
        help=f"repeat for several (env ORDERBOOK_SYMBOL, default {defaults.simulator.symbol})",
    )
    parser.add_setting("--interval", "simulator.tick_interval_s", "seconds between ticks")
    parser.add_setting("--volatility", "simulator.volatility", "relative move per sqrt second")
    parser.add_setting("--seed", "simulator.seed", "random seed")
    parser.add_argument(
        "--book",
        action="store_true",
        help="send the order book's depth feed (updates, and the exchange's snapshots) to the "
        "book's raw topic instead of ticks (for python -m orderbook_kit.book)",
    )
    parser.add_setting("--book-topic", "topics.book_raw", "topic of the depth feed")
    parser.add_argument(
        "--updates-per-tick",
        type=flag_type(rules.whole_number(minimum=0, maximum=1000, example=3)),
        default=3,
        metavar="N",
        help="with --book: updates of deeper levels between two ticks (default 3)",
    )
    parser.add_argument(
        "--exchange-snapshot-every",
        type=flag_type(rules.whole_number(minimum=1, maximum=10**9, example=500)),
        default=500,
        metavar="N",
        help="with --book: the exchange's snapshot of a symbol after this many updates "
        "(default 500)",
    )
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
        help=f"probability of one kind, repeatable; kinds: {', '.join(FAULT_KINDS)}; with "
        f"--book: {', '.join(BOOK_FAULT_KINDS)}",
    )
    return parser


def fault_rates(
    arguments: argparse.Namespace, kinds: Sequence[str], example: str
) -> dict[str, float]:
    """The probability of each of ``kinds`` the fault flags ask for (the injector refuses a
    kind it does not know)."""
    rates: dict[str, float] = dict.fromkeys(kinds, arguments.fault_rate)
    for item in arguments.fault:
        kind, separator, rate = item.partition("=")
        try:
            rates[kind.strip()] = rules.probability(rate)
        except ValueError:
            separator = ""
        if not separator:
            raise SettingsError(
                "fault",
                "--fault",
                f"{item!r} is not KIND=PROBABILITY; use e.g. {example}=0.05",
            )
    return rates


def fault_injector(arguments: argparse.Namespace, seed: int) -> FaultInjector | None:
    """The injector of bad ticks the fault flags ask for, or None for a clean feed."""
    rates = fault_rates(arguments, FAULT_KINDS, "crossed_book")
    if not any(rates.values()):
        return None
    try:
        return FaultInjector(rates, seed=seed)
    except ValueError as exc:
        flag = "--fault" if arguments.fault else "--fault-rate"
        raise SettingsError("fault", flag, str(exc)) from None


def book_fault_injector(arguments: argparse.Namespace, seed: int) -> BookFaultInjector | None:
    """The injector of book faults the fault flags ask for (``--book``), or None."""
    rates = fault_rates(arguments, BOOK_FAULT_KINDS, "drop")
    if not any(rates.values()):
        return None
    try:
        return BookFaultInjector(rates, seed=seed)
    except ValueError as exc:
        flag = "--fault" if arguments.fault else "--fault-rate"
        raise SettingsError("fault", flag, str(exc)) from None


def ingest(argv: Sequence[str] | None) -> int:
    stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
    parser = build_parser()
    arguments = parser.parse_args(argv)
    settings = parser.settings(arguments, argv)
    metrics = IngestMetrics()
    port, source = settings.service.metrics_port, parser.name_of("service.metrics_port")
    if arguments.book:
        book_faults = book_fault_injector(arguments, settings.simulator.seed)
        with metrics_endpoint(metrics.registry, port, source=source):
            return produce_book(settings, arguments, book_faults, stop, metrics)
    injector = fault_injector(arguments, settings.simulator.seed)
    with metrics_endpoint(metrics.registry, port, source=source):
        return produce_ticks(settings, arguments, injector, stop, metrics)


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(lambda: ingest(argv))


if __name__ == "__main__":
    sys.exit(main())
