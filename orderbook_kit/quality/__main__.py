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
from orderbook_kit.runtime.service import ConsumerCommand
from orderbook_kit.settings.environment import Settings, load_settings


def print_routed(routed: Routed) -> None:
    verdict, record = routed.verdict, routed.record
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if verdict.accepted and verdict.tick is not None:
        print(f"clean     {where} {verdict.tick.symbol} seq {verdict.tick.seq}", flush=True)
    else:
        print(f"rejected  {where} {verdict.reason}: {verdict.detail}", flush=True)


def announce(settings: Settings) -> str:
    return (
        f"Connecting to Kafka at {settings.kafka.bootstrap_servers}\n"
        f"Checking '{settings.topics.raw}' as group '{settings.gate.group}': clean ticks to "
        f"'{settings.topics.clean}', rejected ones to '{settings.topics.dead_letters}'"
    )


COMMAND = ConsumerCommand(
    prog="python -m orderbook_kit.quality",
    description=__doc__.splitlines()[0],
    topic_key="topics.raw",
    reads="topic to check",
    group_key="gate.group",
    flags=[
        ("--clean-topic", "topics.clean", "where clean ticks go"),
        ("--dlq-topic", "topics.dead_letters", "where rejected messages go"),
        ("--state-topic", "topics.gate_state", "where the gate keeps its memory"),
        ("--delivery", "gate.delivery", "exactly-once (Kafka transactions) or at-least-once"),
        ("--instance", "gate.instance", "this gate's name in its group; one per running gate"),
        (
            "--price-jump-limit",
            "gate.price_jump_limit",
            "largest accepted relative move of the mid per tick",
        ),
    ],
    announce=announce,
    new_metrics=GateMetrics,
    service=QualityGate,
    reporter="on_routed",
    printer=print_routed,
)


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_settings)


if __name__ == "__main__":
    sys.exit(main())
