"""The quality service: check raw ticks, forward clean ones, dead-letter the rest.

python -m orderbook_kit.quality                  # run until Ctrl-C (or SIGTERM)
python -m orderbook_kit.quality --count 500      # or stop after 500 messages
python -m orderbook_kit.quality --idle 5 --quiet # or once no message came for 5 seconds

Ctrl-C (or SIGTERM) finishes the current batch, commits it and prints a summary; a second Ctrl-C
stops at once (the batch is checked again on the next start: at-least-once).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orderbook_kit.quality.gate import QualityGate, Routed
from orderbook_kit.quality.metrics import GateMetrics
from orderbook_kit.runtime.service import (
    ServiceParser,
    StopSignal,
    run_consumer_service,
    run_service,
)
from orderbook_kit.settings.environment import load_settings


def build_parser() -> ServiceParser:
    parser = ServiceParser(
        "python -m orderbook_kit.quality", __doc__.splitlines()[0], load_settings()
    )
    parser.add_idle_flag()
    parser.add_setting("--source-topic", "raw_topic", "topic to check")
    parser.add_setting("--clean-topic", "clean_topic", "where clean ticks go")
    parser.add_setting("--dlq-topic", "dlq_topic", "where rejected messages go")
    parser.add_setting("--state-topic", "gate_state_topic", "where the gate keeps its memory")
    parser.add_setting("--group", "quality_group", "consumer group")
    parser.add_setting(
        "--price-jump-limit",
        "price_jump_limit",
        "largest accepted relative move of the mid per tick",
    )
    return parser


def print_routed(routed: Routed) -> None:
    verdict, record = routed.verdict, routed.record
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if verdict.accepted and verdict.tick is not None:
        print(f"clean     {where} {verdict.tick.symbol} seq {verdict.tick.seq}", flush=True)
    else:
        print(f"rejected  {where} {verdict.reason}: {verdict.detail}", flush=True)


def check_quality(argv: Sequence[str] | None) -> int:
    stop = StopSignal().install()  # until connected, Ctrl-C interrupts at once
    parser = build_parser()
    arguments = parser.parse_args(argv)
    settings = parser.settings(arguments, argv)
    print(f"Connecting to Kafka at {settings.bootstrap_servers}", flush=True)
    print(
        f"Checking '{settings.raw_topic}' as group '{settings.quality_group}': clean ticks to "
        f"'{settings.clean_topic}', rejected ones to '{settings.dlq_topic}'",
        flush=True,
    )
    metrics = GateMetrics()
    metrics.watch_lag(settings, settings.quality_group, settings.raw_topic)
    gate = QualityGate(
        settings,
        on_routed=None if arguments.quiet else print_routed,
        # Counted only when exported: histograms cost a little per tick.
        metrics=metrics if arguments.metrics_port is not None else None,
    )
    return run_consumer_service(gate, stop, arguments, metrics, parser)


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(lambda: check_quality(argv))


if __name__ == "__main__":
    sys.exit(main())
