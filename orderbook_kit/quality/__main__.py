"""The quality service: check raw ticks, forward clean ones, dead-letter the rest.

python -m orderbook_kit.quality                  # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.quality --count 500      # or stop after 500 messages
python -m orderbook_kit.quality --idle 5 --quiet # or once no message came for 5 seconds
"""

from __future__ import annotations

import argparse
import sys

from ..config import load_settings
from ..errors import OrderbookKitError
from ..service import add_common_arguments, settings_from, stop_on_signals
from .gate import QualityGate, Routed


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orderbook_kit.quality", description=__doc__.splitlines()[0]
    )
    add_common_arguments(parser)
    defaults = load_settings()
    parser.add_argument("--idle", type=float, help="stop after this many seconds without messages")
    parser.add_argument("--source-topic", default=defaults.raw_topic, help="default %(default)s")
    parser.add_argument("--clean-topic", default=defaults.clean_topic, help="default %(default)s")
    parser.add_argument("--dlq-topic", default=defaults.dlq_topic, help="default %(default)s")
    parser.add_argument("--group", default=defaults.quality_group, help="default %(default)s")
    parser.add_argument(
        "--price-jump-limit",
        type=float,
        default=defaults.price_jump_limit,
        help="largest accepted relative move of the mid per tick (default %(default)s)",
    )
    return parser.parse_args(argv)


def print_routed(routed: Routed) -> None:
    verdict, record = routed.verdict, routed.record
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if verdict.accepted and verdict.tick is not None:
        print(f"clean     {where} {verdict.tick.symbol} seq {verdict.tick.seq}", flush=True)
    else:
        print(f"rejected  {where} {verdict.reason}: {verdict.detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = settings_from(
        arguments,
        raw_topic=arguments.source_topic,
        clean_topic=arguments.clean_topic,
        dlq_topic=arguments.dlq_topic,
        quality_group=arguments.group,
        price_jump_limit=arguments.price_jump_limit,
    )
    stop = stop_on_signals()
    print(f"Connecting to Kafka at {settings.bootstrap_servers}", flush=True)
    print(
        f"Checking '{settings.raw_topic}' as group '{settings.quality_group}': clean ticks to "
        f"'{settings.clean_topic}', rejected ones to '{settings.dlq_topic}'",
        flush=True,
    )
    try:
        gate = QualityGate(settings, on_routed=None if arguments.quiet else print_routed)
        stats = gate.run(
            count=arguments.count, duration_s=arguments.duration, idle_s=arguments.idle, stop=stop
        )
    except (OrderbookKitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(stats.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
